"""The service with a sequence model: sessions in the order of their items, and feedback
that extends the user's sequence at once."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.test_sequential import TINY, cyclic_checkerboard


@pytest.fixture(scope="module")
def sasrec_client(models_root, keys, tmp_path_factory):
    from fastapi.testclient import TestClient

    from lmrec.models.seq.sasrec import SASRec
    from lmrec.serve.app import build_app
    from lmrec.serve.settings import ServeSettings

    model = SASRec(**TINY).fit(cyclic_checkerboard())
    model.save(models_root / "sasrec")
    db = tmp_path_factory.mktemp("seqdb") / "events.db"
    settings = ServeSettings(
        model_dir=models_root / "sasrec", auth=False, keys_file=keys[0], store_url=f"sqlite:///{db}"
    )
    with TestClient(build_app(settings)) as client:
        yield client, model


def test_session_uses_the_order_of_its_items(sasrec_client):
    client, model = sasrec_client
    for session in (["i0", "i2", "i4", "i6"], ["i6", "i4", "i2", "i0"], ["i5", "i7", "i9"]):
        got = client.post("/v1/recommend", json={"items": session, "k": 5}).json()
        want = model.recommend_for_items(session, k=5)
        assert got["items"] == want["item"].tolist()
        np.testing.assert_allclose(got["scores"], want["score"], rtol=1e-5)
    forward = client.post("/v1/recommend", json={"items": ["i0", "i2", "i4", "i6"], "k": 1})
    assert forward.json()["items"] == ["i8"]


def test_feedback_extends_the_users_sequence_at_once(sasrec_client):
    client, model = sasrec_client
    user = "u4"
    event = {"user": user, "item": "i21", "type": "click", "idempotency_key": "seq-1"}
    assert client.post("/v1/feedback", json={"events": [event]}).status_code == 200
    got = client.post("/v1/recommend", json={"user": user, "k": 3}).json()
    u = int(model.user_ids_.index([user])[0])
    new = model.item_ids_.index(["i21"])
    past = model.user_sequence(u)
    scores = model.score_sequences([np.concatenate([past[past != new[0]], new])])[0]
    scores[np.union1d(past, new)] = -np.inf
    assert got["strategy"] == "fold-in"
    assert got["items"] == model.item_ids_.lookup(np.argsort(-scores, kind="stable")[:3]).tolist()
