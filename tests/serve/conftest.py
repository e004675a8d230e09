"""Fixtures of the service tests: tiny fitted models saved to disk, keys, and app builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmrec.models.base import Recommender
from lmrec.models.registry import list_models, register_model


class NoFoldIn(Recommender):
    """A model without fold-in (no ``score_history``): scores are item popularity."""

    def _fit(self, dataset, *, valid=None, options=None) -> None:
        self.counts_ = np.bincount(dataset.column("item_idx"), minlength=dataset.n_items).astype(
            np.float32
        )

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(user_idx), len(self.counts_)))

    def _get_state(self):
        return {"counts": self.counts_}, {}

    def _set_state(self, arrays, meta) -> None:
        self.counts_ = arrays["counts"]


if "serve_nofold" not in list_models():
    register_model("serve_nofold", NoFoldIn)


def _fit_save(name: str, path: Path, params: dict | None = None, **data_kw) -> Path:
    from lmrec.models import create_model
    from lmrec.testing import checkerboard

    create_model(name, params or {}).fit(checkerboard(**data_kw)).save(path)
    return path


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> Path:
    """A directory holding every model the tests serve."""
    root = tmp_path_factory.mktemp("models")
    _fit_save("ease", root / "ease", {"l2": 10.0})
    _fit_save("ease", root / "ease_v2", {"l2": 50.0})
    _fit_save("itemknn", root / "knn", {"k_neighbors": 10})
    _fit_save("serve_nofold", root / "nofold")
    _fit_save("ease", root / "ease_big", {"l2": 10.0}, n_users=3000, n_items=400, density=0.3)
    return root


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A keys file with one key per role; returns (path, role -> raw key)."""
    from lmrec.serve.auth import create_key

    path = tmp_path_factory.mktemp("keys") / "keys.json"
    raw = {role: create_key(path, role)[1] for role in ("read", "write", "admin")}
    return path, raw


@pytest.fixture
def make_app(models_root, keys, tmp_path):
    """Build an app: make_app(model="ease", auth=True, db=None, **settings)."""
    from lmrec.serve.app import build_app
    from lmrec.serve.settings import ServeSettings

    def make(model: str = "ease", *, auth: bool = True, db: Path | None = None, **kw):
        settings = ServeSettings(
            model_dir=models_root / model,
            auth=auth,
            keys_file=keys[0],
            store_url=f"sqlite:///{db or tmp_path / 'events.db'}",
            **kw,
        )
        return build_app(settings)

    return make


@pytest.fixture
def headers(keys):
    """Request headers per role: headers['read'] etc."""
    return {role: {"X-API-Key": key} for role, key in keys[1].items()}


@pytest.fixture
def client(make_app):
    """A TestClient of the EASE app with auth off (auth has its own tests)."""
    from fastapi.testclient import TestClient

    with TestClient(make_app(auth=False)) as c:
        yield c
