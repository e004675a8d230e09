"""The /ui page and its helper routes: static files with a strict CSP, catalog search,
titles and users, behind the same keys as the API (the page itself holds no data)."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(make_app, keys, tmp_path):
    catalog = tmp_path / "catalog.csv"
    pd.DataFrame(
        {"item": [f"i{i}" for i in range(30)], "title": [f"Film number {i}" for i in range(30)]}
    ).to_csv(catalog, index=False)
    with TestClient(make_app("ease", catalog=catalog)) as c:
        yield c


def test_page_and_static_files(client):
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/ui/app.js">' in page.text and "http" not in page.text.split("<body>")[1]
    js = client.get("/ui/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "sessionStorage" in js.text and "?key=" not in js.text  # the key travels in a header
    assert client.get("/ui/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/secrets.json").status_code == 404


def test_search_titles_and_users_need_a_key(client, keys):
    assert client.get("/v1/ui/search", params={"q": "film"}).status_code == 401
    auth = {"Authorization": f"Bearer {keys[1]['read']}"}
    hits = client.get("/v1/ui/search", params={"q": "number 1", "limit": 50}, headers=auth).json()[
        "items"
    ]
    assert {h["item"] for h in hits} == {
        f"i{i}" for i in range(30) if "1" in str(i)
    }  # every word, as a substring
    assert all("1" in h["title"] for h in hits)
    titles = client.post("/v1/ui/titles", json={"items": ["i3", "nope"]}, headers=auth).json()[
        "titles"
    ]
    assert titles == {"i3": "Film number 3", "nope": "nope"}
    users = client.get("/v1/ui/users", params={"q": "u1"}, headers=auth).json()["users"]
    assert users and all(u.startswith("u1") for u in users)
    assert client.get("/v1/ui/search", params={"q": ""}, headers=auth).status_code == 422


def test_a_query_parameter_given_twice_is_refused(client, keys):
    """Found by the schema fuzzer: ``?limit=5&limit=56.0`` used the last value and
    answered 200; a repeated query parameter is now a 422 naming it."""
    auth = {"Authorization": f"Bearer {keys[1]['read']}"}
    ok = client.get("/v1/ui/users", params={"limit": 5}, headers=auth)
    assert ok.status_code == 200 and len(ok.json()["users"]) <= 5
    twice = client.get("/v1/ui/users?limit=5&limit=56.0", headers=auth)
    assert twice.status_code == 422
    assert "'limit' is given more than once" in twice.text
    assert client.get("/v1/ui/search?q=film&q=number", headers=auth).status_code == 422
