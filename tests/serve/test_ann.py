"""The service with an ANN index beside the model: used above the threshold, after reloads too."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("faiss", reason="extra 'ann' (faiss-cpu) not installed")


def _als_with_index(path: Path, seed: int) -> Path:
    from lmrec.models import create_model
    from lmrec.retrieval.attached import build_model_index
    from lmrec.testing import checkerboard

    data = checkerboard(n_users=120, n_items=600, density=0.1, seed=seed)
    create_model("als", {"factors": 8, "iterations": 3, "seed": seed}).fit(data).save(path)
    build_model_index(path, "hnsw", m=8, ef_search=64)
    return path


@pytest.fixture(scope="module")
def ann_models(models_root) -> Path:
    """als_ann and als_ann_v2 (each with MODEL_DIR/index) under the shared models root."""
    for name, seed in (("als_ann", 0), ("als_ann_v2", 1)):
        if not (models_root / name).exists():
            _als_with_index(models_root / name, seed)
    return models_root


def _recs(c: TestClient, user: str, k: int = 10) -> dict:
    r = c.post("/v1/recommend", json={"user": user, "k": k})
    assert r.status_code == 200, r.text
    return r.json()


def test_service_uses_the_index_and_excludes_seen_items(make_app, ann_models):
    from lmrec.models import load_model

    model = load_model(ann_models / "als_ann")
    # precompute_max_users=0: every request goes through the per-request path
    with TestClient(make_app("als_ann", auth=False, ann_min_items=0, precompute_max_users=0)) as c:
        assert c.get("/v1/models").json()["models"][0]["ann"] == "hnsw"
        hits = []
        for u in range(0, 120, 7):
            body = _recs(c, f"u{u}")
            assert body["strategy"] == "ann"
            row = model.user_ids_.index([f"u{u}"])[0]
            seen = set(model.item_ids_.lookup(model.seen_[row].indices))
            assert not seen & set(body["items"]) and len(body["items"]) == 10
            exact = model.recommend([f"u{u}"], k=10)["item"]
            hits.append(len(set(exact) & set(body["items"])) / 10)
        assert np.mean(hits) >= 0.9
        # a candidate filter cannot go through the index: exact model path
        r = c.post("/v1/recommend", json={"user": "u0", "k": 3, "candidates": ["i1", "i3", "i5"]})
        assert r.json()["strategy"] == "model"


def test_threshold_and_switch_keep_small_catalogs_exact(make_app, ann_models):
    with TestClient(make_app("als_ann", auth=False, precompute_max_users=0)) as c:  # 600 < 100k
        assert c.get("/v1/models").json()["models"][0]["ann"] is None
        assert _recs(c, "u1")["strategy"] == "model"
    off = make_app("als_ann", auth=False, ann=False, ann_min_items=0, precompute_max_users=0)
    with TestClient(off) as c:
        assert _recs(c, "u1")["strategy"] == "model"


def test_index_is_used_after_reload_and_a_stale_one_is_refused(make_app, ann_models):
    stale = ann_models / "als_ann_stale"
    if not stale.exists():
        shutil.copytree(ann_models / "als_ann", stale)
        shutil.rmtree(stale / "index")
        shutil.copytree(ann_models / "als_ann_v2" / "index", stale / "index")  # other model's
    with TestClient(make_app("ease", auth=False, ann_min_items=0, precompute_max_users=0)) as c:
        assert c.get("/v1/models").json()["models"][0]["ann"] is None
        r = c.post("/v1/models/reload", json={"path": str(ann_models / "als_ann_v2")})
        assert r.status_code == 200
        assert c.get("/v1/models").json()["models"][0]["ann"] == "hnsw"
        assert _recs(c, "u3")["strategy"] == "ann"
        r = c.post("/v1/models/reload", json={"path": str(stale)})
        assert r.status_code == 422 and "another version of the model" in r.json()["detail"]
        assert _recs(c, "u3")["strategy"] == "ann"  # the previous model keeps serving


def test_edited_or_unlisted_index_files_are_refused(ann_models, tmp_path):
    from lmrec.errors import ModelFileError
    from lmrec.retrieval.attached import load_model_index

    model_dir = tmp_path / "m"
    shutil.copytree(ann_models / "als_ann", model_dir)
    assert load_model_index(model_dir) is not None
    (model_dir / "index" / "item_vectors.npy").write_bytes(b"not listed")
    with pytest.raises(ModelFileError, match="every index file"):
        load_model_index(model_dir)
    (model_dir / "index" / "item_vectors.npy").unlink()
    with open(model_dir / "index" / "index.json", "a") as f:
        f.write(" ")
    with pytest.raises(ModelFileError, match="checksum"):
        load_model_index(model_dir)
