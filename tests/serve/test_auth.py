"""Authentication and object-level authorization, route by route (reliability check 11).

``MATRIX`` lists every route of the OpenAPI document with the role it needs and a
valid request for it; the first test fails when a route is added without a line here.
"""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient

_counter = itertools.count()


def _event(user: str) -> dict:
    return {"events": [{"user": user, "item": "i1", "idempotency_key": f"k{next(_counter)}"}]}


#: (method, path) -> (role, "erase" for the erase permission, or None for public; request
#: builder for a given user id).
MATRIX = {
    ("post", "/v1/recommend"): ("read", lambda u: {"json": {"user": u, "k": 3}}),
    ("get", "/v1/items/{item_id}/similar"): ("read", lambda u: {"url": "/v1/items/i1/similar"}),
    ("post", "/v1/explain"): ("read", lambda u: {"json": {"user": u, "item": "i1"}}),
    ("post", "/v1/feedback"): ("write", lambda u: {"json": _event(u)}),
    ("get", "/v1/models"): ("read", lambda u: {}),
    ("get", "/v1/models/{model_id}"): ("read", lambda u: {"url": "/v1/models/ease"}),
    ("post", "/v1/models/reload"): ("admin", lambda u: {}),
    ("post", "/v1/models/rollback"): ("admin", lambda u: {}),
    # a user the shared model does not hold: deleting one of its users would rewrite it
    ("delete", "/v1/users/{user_id}"): ("erase", lambda u: {"url": f"/v1/users/{u}-gone"}),
    ("get", "/v1/ui/users"): ("read", lambda u: {}),
    ("get", "/v1/ui/search"): ("read", lambda u: {"url": "/v1/ui/search?q=i"}),
    ("post", "/v1/ui/titles"): ("read", lambda u: {"json": {"items": ["i1"]}}),
    ("get", "/healthz"): (None, lambda u: {}),
    ("get", "/readyz"): (None, lambda u: {}),
    ("get", "/metrics"): (None, lambda u: {}),
}
#: Routes that act for the user in the request: a scoped key gets 403 for other users.
USER_ROUTES = [("post", "/v1/recommend"), ("post", "/v1/explain"), ("post", "/v1/feedback")]
#: A key just below the route's need ("erase" is a permission no role implies).
LOWER = {"read": None, "write": "read", "admin": "write", "erase": "admin"}


@pytest.fixture(scope="module")
def scoped_keys(tmp_path_factory):
    """Keys of every role, and scoped ones: raw keys by name, in one keys file."""
    from lmrec.serve.auth import create_key

    path = tmp_path_factory.mktemp("scoped") / "keys.json"
    raw = {role: create_key(path, role)[1] for role in ("read", "write", "admin")}
    raw["u0-only"] = create_key(path, "write", users=["u0"])[1]
    raw["tenant-acme"] = create_key(path, "write", tenants=["acme"])[1]
    raw["no-history"] = create_key(path, "read", history=False)[1]
    raw["erase"] = create_key(path, "write", erase=True)[1]
    return path, raw


@pytest.fixture
def app_client(models_root, scoped_keys, tmp_path):
    from lmrec.serve.app import build_app
    from lmrec.serve.settings import ServeSettings

    settings = ServeSettings(
        model_dir=models_root / "ease",
        keys_file=scoped_keys[0],
        store_url=f"sqlite:///{tmp_path / 'events.db'}",
    )
    with TestClient(build_app(settings)) as c:
        yield c


def _call(c, method: str, path: str, key: str | None, user: str = "u0"):
    role, build = MATRIX[(method, path)]
    kw = build(user)
    url = kw.pop("url", path)
    headers = {} if key is None else {"X-API-Key": key}
    return c.request(method.upper(), url, headers=headers, **kw)


def test_the_matrix_lists_every_route_of_the_openapi_document(app_client):
    paths = app_client.get("/openapi.json").json()["paths"]
    routes = {(m, p) for p, ops in paths.items() for m in ops}
    assert routes == set(MATRIX)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0].upper()} {r[1]}")
def test_every_route_needs_its_role(app_client, scoped_keys, route):
    raw = scoped_keys[1]
    method, path = route
    role = MATRIX[route][0]
    if role is None:  # health and metrics are public
        assert _call(app_client, method, path, None).status_code == 200
        return
    r = _call(app_client, method, path, None)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert _call(app_client, method, path, "lmrec_not-a-key").status_code == 401
    # keys travel in headers only
    r = app_client.request(method.upper(), path + f"?api_key={raw['admin']}")
    assert r.status_code == 401
    if LOWER[role] is not None:
        r = _call(app_client, method, path, raw[LOWER[role]])
        assert r.status_code == 403 and f"'{role}'" in r.json()["detail"]
    passing = ("erase",) if role == "erase" else (role, "admin")
    for name in passing:  # past authorization (rollback with no previous model: 409)
        assert _call(app_client, method, path, raw[name]).status_code in (200, 409)


@pytest.mark.parametrize("route", USER_ROUTES, ids=lambda r: r[1])
def test_a_key_limited_to_one_user_gets_403_for_every_other_user(app_client, scoped_keys, route):
    key = scoped_keys[1]["u0-only"]
    assert _call(app_client, *route, key, user="u0").status_code == 200
    for other in ("u1", "acme:u0", "u0 ", "U0"):
        r = _call(app_client, *route, key, user=other)
        assert r.status_code == 403, (other, r.text)
        detail = r.json()["detail"]
        field = "'events[0].user'" if route[1] == "/v1/feedback" else "'user'"
        assert "may not act for user" in detail and field in detail


@pytest.mark.parametrize("route", USER_ROUTES, ids=lambda r: r[1])
def test_a_tenant_key_acts_for_its_tenant_only(app_client, scoped_keys, route):
    key = scoped_keys[1]["tenant-acme"]
    assert _call(app_client, *route, key, user="acme:7").status_code == 200
    for other in ("globex:7", "acme", "acme7", "u0"):
        assert _call(app_client, *route, key, user=other).status_code == 403, other


def test_feedback_with_one_foreign_event_stores_nothing(app_client, scoped_keys):
    key = {"X-API-Key": scoped_keys[1]["u0-only"]}
    body = {
        "events": [
            {"user": "u0", "item": "i1", "idempotency_key": "mixed-1"},
            {"user": "u1", "item": "i1", "idempotency_key": "mixed-2"},
        ]
    }
    r = app_client.post("/v1/feedback", json=body, headers=key)
    assert r.status_code == 403 and "events[1].user" in r.json()["detail"]
    assert app_client.app.state.event_store.count() == 0


def test_history_permission_guards_explanations_of_users_not_sessions(app_client, scoped_keys):
    key = {"X-API-Key": scoped_keys[1]["no-history"]}
    r = app_client.post("/v1/explain", json={"user": "u0", "item": "i1"}, headers=key)
    assert r.status_code == 403 and "histories" in r.json()["detail"]
    r = app_client.post("/v1/explain", json={"items": ["i2", "i3"], "item": "i1"}, headers=key)
    assert r.status_code == 200
    assert app_client.post("/v1/recommend", json={"user": "u0"}, headers=key).status_code == 200


def test_sessions_and_items_need_no_user_scope(app_client, scoped_keys):
    key = {"X-API-Key": scoped_keys[1]["u0-only"]}
    assert app_client.post("/v1/recommend", json={"items": ["i1"]}, headers=key).status_code == 200
    assert app_client.get("/v1/items/i1/similar", headers=key).status_code == 200


def test_malformed_scopes_in_the_keys_file_are_refused(tmp_path):
    import json

    from lmrec.errors import ConfigError
    from lmrec.serve.auth import KeyRing

    bad = {"keys": [{"id": "a", "role": "read", "sha256": "00", "users": "u0"}]}
    path = tmp_path / "k.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="list of non-empty strings"):
        KeyRing.load(path)


def test_cli_creates_scoped_keys(tmp_path, capsys):
    import argparse

    from lmrec.cli import serve_cmds
    from lmrec.serve.auth import KeyRing

    p = argparse.ArgumentParser(prog="lmrec")
    serve_cmds.register(p.add_subparsers(dest="command", required=True))
    keys = tmp_path / "k.json"
    argv = ["serve", "--create-key", "read", "--keys", str(keys), "--key-users", "u0, u1"]
    args = p.parse_args([*argv, "--key-tenants", "acme", "--key-no-history"])
    assert args.func(args) == 0
    principal = KeyRing.load(keys).verify(capsys.readouterr().out.strip())
    assert principal.users == {"u0", "u1"} and principal.tenants == {"acme"}
    assert not principal.history and principal.may_act_for("acme:9", ":")
