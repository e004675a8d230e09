"""Recommend, similar, explain, auth, validation and error handling through TestClient."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from lmrec.models import load_model


def test_recommend_known_user_uses_precomputed_list_without_seen_items(client, models_root):
    r = client.post("/v1/recommend", json={"user": "u0", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] is False and body["strategy"] == "precomputed"
    assert len(body["items"]) == 5 == len(body["scores"])
    assert body["scores"] == sorted(body["scores"], reverse=True)
    model = load_model(models_root / "ease")
    expected = model.recommend("u0", k=5)
    assert body["items"] == expected["item"].tolist()
    seen = set(model.item_ids_.lookup(model.seen_[0].indices))
    assert not seen & set(body["items"])
    assert body["model_version"].startswith("ease-")


def test_unknown_user_gets_flagged_popularity_fallback_not_500(client):
    r = client.post("/v1/recommend", json={"user": "nobody-ever", "k": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] is True and body["strategy"] == "popularity"
    assert len(body["items"]) == 4


def test_session_items_fold_in_and_unknown_session_items_fall_back(client):
    r = client.post("/v1/recommend", json={"items": ["i0", "i2", "i4"], "k": 5})
    body = r.json()
    assert r.status_code == 200 and body["fallback"] is False and body["strategy"] == "fold-in"
    assert not {"i0", "i2", "i4"} & set(body["items"])
    # checkerboard: even items go with even items
    assert all(int(i[1:]) % 2 == 0 for i in body["items"])
    r = client.post("/v1/recommend", json={"items": ["not-an-item"], "k": 3})
    assert r.status_code == 200 and r.json()["fallback"] is True


def test_exclusions_and_candidate_filter(client):
    first = client.post("/v1/recommend", json={"user": "u0", "k": 3}).json()["items"]
    r = client.post("/v1/recommend", json={"user": "u0", "k": 3, "exclude": first[:2]})
    assert not set(first[:2]) & set(r.json()["items"])
    r = client.post("/v1/recommend", json={"user": "u0", "k": 10, "candidates": ["i1", "i3", "i5"]})
    body = r.json()
    assert set(body["items"]) <= {"i1", "i3", "i5"} and body["strategy"] == "model"
    r = client.post("/v1/recommend", json={"user": "nobody", "k": 10, "candidates": ["i1", "zz"]})
    assert r.json()["items"] == ["i1"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"user": "u0", "k": 101}, "body.k"),
        ({"user": "u0", "k": 0}, "body.k"),
        ({"k": 5}, "exactly one of 'user'"),
        ({"user": "u0", "items": ["i1"]}, "exactly one of 'user'"),
        ({"user": "u0", "colour": "red"}, "body.colour"),
        ({"user": "x" * 300}, "body.user"),
        ({"user": ""}, "body.user"),
        ({"items": ["i1"] * 1001}, "body.items"),
        ({"user": "u0", "exclude_seen": "maybe"}, "body.exclude_seen"),
    ],
)
def test_bad_input_is_422_with_a_clear_message(client, payload, fragment):
    r = client.post("/v1/recommend", json=payload)
    assert r.status_code == 422
    body = r.json()
    assert fragment in body["detail"] and body["errors"]
    assert "Traceback" not in r.text


def test_malformed_json_and_oversized_body(client):
    r = client.post(
        "/v1/recommend", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = client.post(
        "/v1/recommend", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_similar_items(client, models_root):
    r = client.get("/v1/items/i0/similar", params={"k": 5})
    body = r.json()
    assert r.status_code == 200 and body["item"] == "i0" and "i0" not in body["items"]
    assert body["strategy"] == "item-item" and len(body["items"]) == 5
    model = load_model(models_root / "ease")
    b_row = model.B_[model.item_ids_.index(["i0"])[0]]
    assert np.isclose(body["scores"][0], np.sort(b_row)[-1], atol=1e-5)
    assert client.get("/v1/items/nope/similar").status_code == 404
    assert client.get("/v1/items/i0/similar", params={"k": 10_000}).status_code == 422


def test_explain_is_exact_for_ease_and_the_librarys_answer(client, models_root):
    item = client.post("/v1/recommend", json={"user": "u0", "k": 1}).json()["items"][0]
    r = client.post("/v1/explain", json={"user": "u0", "item": item, "n": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["method"] == "exact" and body["fallback"] is False
    model = load_model(models_root / "ease")
    target = model.item_ids_.index([item])[0]
    for c in body["contributions"]:
        j = model.item_ids_.index([c["item"]])[0]
        assert np.isclose(c["weight"], model.B_[j, target], atol=1e-5)
    assert len(body["explanation"]) == len(body["contributions"]) == 2
    assert body["explanation"][0].startswith("You interacted with item ")
    assert f"to the score of item {item}" in body["explanation"][0]
    expected = model.explain(item, user="u0", n=2)
    assert body["explanation"] == list(expected.sentences)
    assert np.isclose(body["score"], expected.score)


def test_explain_unknown_user_and_unknown_item(client, models_root):
    r = client.post("/v1/explain", json={"user": "stranger", "item": "i4"})
    assert r.status_code == 200 and r.json()["contributions"] == []
    assert "no history yet" in r.json()["explanation"][0]
    assert client.post("/v1/explain", json={"user": "u0", "item": "nope"}).status_code == 404
    model = load_model(models_root / "ease")
    had = model.item_ids_.lookup(model.user_history(model.user_ids_.index(["u0"])[0])[:1])[0]
    seen = client.post("/v1/explain", json={"user": "u0", "item": had})
    assert seen.status_code == 422 and "already in user 'u0'" in seen.json()["detail"]


def test_explain_session_with_catalog_titles(make_app, tmp_path):
    catalog = tmp_path / "items.csv"
    catalog.write_text("item,title\ni0,Toy Story\ni4,Heat\n")
    with TestClient(make_app(auth=False, catalog=catalog)) as c:
        r = c.post("/v1/explain", json={"items": ["i0", "i2"], "item": "i4"})
    assert r.status_code == 200
    assert any("'Toy Story'" in s and "'Heat'" in s for s in r.json()["explanation"])


def test_model_without_fold_in_uses_cooccurrence(make_app):
    with TestClient(make_app("nofold", auth=False)) as c:
        r = c.post("/v1/recommend", json={"items": ["i0"], "k": 3})
        assert r.json()["strategy"] == "co-occurrence" and r.json()["fallback"] is True
        r = c.get("/v1/items/i0/similar", params={"k": 3})
        assert r.status_code == 200 and r.json()["strategy"] == "co-occurrence"
        assert all(int(i[1:]) % 2 == 0 for i in r.json()["items"])
        r = c.post("/v1/explain", json={"user": "u0", "item": "i4"})
        assert r.status_code == 422 and "cannot explain" in r.json()["detail"]
        assert c.get("/v1/models").json()["models"][0]["fold_in"] is False


def test_itemknn_model_serves_all_endpoints(make_app):
    with TestClient(make_app("knn", auth=False)) as c:
        assert (
            c.post("/v1/recommend", json={"items": ["i1"], "k": 3}).json()["strategy"] == "fold-in"
        )
        assert c.get("/v1/items/i1/similar").status_code == 200
        assert c.post("/v1/explain", json={"user": "u1", "item": "i3"}).status_code == 200


# ---------------------------------------------------------------------- auth
def test_auth_missing_invalid_and_insufficient_roles(make_app, headers):
    with TestClient(make_app()) as c:
        r = c.post("/v1/recommend", json={"user": "u0"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = c.post("/v1/recommend", json={"user": "u0"}, headers={"X-API-Key": "lmrec_wrong"})
        assert r.status_code == 401
        assert (
            c.post("/v1/recommend", json={"user": "u0"}, headers=headers["read"]).status_code == 200
        )
        bearer = {"Authorization": "Bearer " + headers["read"]["X-API-Key"]}
        assert c.post("/v1/recommend", json={"user": "u0"}, headers=bearer).status_code == 200
        event = {"events": [{"user": "u0", "item": "i1", "idempotency_key": "k1"}]}
        r = c.post("/v1/feedback", json=event, headers=headers["read"])
        assert r.status_code == 403 and "'write'" in r.json()["detail"]
        assert c.post("/v1/feedback", json=event, headers=headers["write"]).status_code == 200
        assert c.post("/v1/models/reload", headers=headers["write"]).status_code == 403
        assert c.post("/v1/models/reload", headers=headers["admin"]).status_code == 200
        assert c.get("/v1/models", headers=headers["admin"]).status_code == 200
        # auth is checked before the body: a bad body without a key is still 401
        assert c.post("/v1/recommend", json={"k": -1}).status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200


def test_keys_file_holds_only_hashes(keys):
    path, raw = keys
    text = path.read_text()
    assert all(key not in text for key in raw.values())
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_metrics_can_require_a_key(make_app, headers):
    with TestClient(make_app(metrics_auth=True)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=headers["read"]).status_code == 200


# ---------------------------------------------------------------------- errors, CORS, OpenAPI
def test_unexpected_error_is_a_generic_500_without_trace(make_app):
    from lmrec.serve.deps import get_model

    app = make_app(auth=False)

    async def broken():
        raise RuntimeError("secret internal detail")

    app.dependency_overrides[get_model] = broken
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v1/recommend", json={"user": "u0"})
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text
    assert r.json()["detail"].startswith("Internal server error")


def test_a_500_logs_the_route_not_the_user_id_in_the_path(make_app, caplog, monkeypatch):
    """DELETE /v1/users/{id} carries the id in its path; the error log must not keep it."""
    from lmrec.serve.routes import users

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(users, "erase_user", broken)
    with TestClient(make_app(auth=False), raise_server_exceptions=False) as c:
        with caplog.at_level(logging.ERROR, logger="lmrec.serve"):
            r = c.delete("/v1/users/person-42@example.org")
    assert r.status_code == 500
    logged = [rec.getMessage() for rec in caplog.records if "unhandled error" in rec.getMessage()]
    assert logged and "/v1/users/{user_id" in logged[0]
    assert all("person-42" not in m for m in logged)


def test_model_pinning_unknown_model_is_404(client):
    version = client.get("/v1/models").json()["models"][0]["version"]
    assert client.post("/v1/recommend", json={"user": "u0", "model": version}).status_code == 200
    assert client.post("/v1/recommend", json={"user": "u0", "model": "ease"}).status_code == 200
    assert client.post("/v1/recommend", json={"user": "u0", "model": "als-0"}).status_code == 404
    assert client.get(f"/v1/models/{version}").status_code == 200
    assert client.get("/v1/models/als-123").status_code == 404


def test_cors_is_off_by_default_and_configurable(make_app):
    pre = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    with TestClient(make_app(auth=False)) as c:
        r = c.options("/v1/recommend", headers=pre)
        assert "access-control-allow-origin" not in r.headers
    with TestClient(make_app(auth=False, cors_origins=["https://shop.example"])) as c:
        r = c.options("/v1/recommend", headers=pre)
        assert r.headers["access-control-allow-origin"] == "https://shop.example"


def test_openapi_schema_states_the_limits(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for p in (
        "/v1/recommend",
        "/v1/items/{item_id}/similar",
        "/v1/explain",
        "/v1/feedback",
        "/v1/models",
        "/v1/models/reload",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert p in paths
    req = schema["components"]["schemas"]["RecommendRequest"]["properties"]["k"]
    assert req["maximum"] == 100
    assert "422" in paths["/v1/recommend"]["post"]["responses"]


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_integral_json_numbers_are_integers_but_strings_and_bools_are_not(client):
    # JSON Schema counts 10.0 as an integer (schemathesis sends it as valid data).
    r = client.post("/v1/recommend", json={"user": "u0", "k": 3.0})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    r = client.post("/v1/explain", json={"user": "u0", "item": "i1", "n": 2.0})
    assert r.status_code == 200
    for bad in (3.5, "3", True):
        assert client.post("/v1/recommend", json={"user": "u0", "k": bad}).status_code == 422


def test_wrong_method_names_the_allowed_one(client):
    for path in ("/v1/models/rollback", "/v1/models/reload"):
        for method in ("OPTIONS", "DELETE", "PUT"):
            r = client.request(method, path)
            assert r.status_code == 405 and r.headers["allow"] == "POST", (method, path)
    assert client.get("/v1/models").status_code == 200


def test_404_messages_name_request_fields_not_python_parameters(client, monkeypatch):
    r = client.get("/v1/items/nope/similar")
    assert r.status_code == 404 and "item_id" in r.json()["detail"]
    r = client.post("/v1/explain", json={"user": "u0", "item": "nope"})
    assert r.status_code == 404 and "field 'item'" in r.json()["detail"]
    from lmrec.errors import UnknownIdError

    def unknown(*a, **k):
        raise UnknownIdError("user", ["ghost"])

    monkeypatch.setattr(client.app.state.engine, "for_user", unknown)
    r = client.post("/v1/recommend", json={"user": "ghost"})
    assert r.status_code == 404 and "'ghost'" in r.json()["detail"]
    for detail in (r.json()["detail"], client.get("/v1/items/nope/similar").json()["detail"]):
        assert "on_unknown" not in detail and "=" not in detail
