"""The /ui page in a real browser against a real server: it loads with no console error,
search finds titles, and a like changes the recommendations (new visitor and known user)."""

from __future__ import annotations

import json
import time

import pytest

from lmrec.models import create_model
from tests.serve.server import Server


@pytest.fixture(scope="module")
def server(ml100k, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    create_model("ease", {"l2": 300.0}).fit(ml100k).save(tmp / "ease")
    catalog = tmp / "catalog.csv"
    ml100k.items.rename_axis("item").reset_index()[["item", "title"]].to_csv(catalog, index=False)
    with Server(tmp / "ease", tmp, "--catalog", str(catalog)) as srv:
        yield srv


def _wait_until(page, expression: str, arg=None, timeout_s: float = 15.0) -> None:
    """Poll ``expression`` (a JS function of ``arg``) until it is truthy.

    Not ``page.wait_for_function``: its in-page poller evaluates strings, which the
    server's Content-Security-Policy (script-src 'self') rightly forbids; ``evaluate``
    runs through the DevTools protocol, outside the page's CSP.
    """
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s:.0f} s: {expression}")
        page.wait_for_timeout(50)


#: True once the recommendation list differs from the JSON list passed as the argument.
CHANGED = (
    "before => JSON.stringify([...document.querySelectorAll('#recommendations li')]"
    ".map(r => r.dataset.item)) !== before"
)


def _recommended(page) -> list[str]:
    return page.locator("#recommendations li").evaluate_all("rows => rows.map(r => r.dataset.item)")


@pytest.mark.realdata
def test_visitor_searches_likes_and_the_list_changes(page, server, tmp_path):
    page.goto(f"{server.url}/ui")
    _wait_until(page, "() => document.getElementById('model-info').textContent.includes('ease')")
    page.click("#visitor")
    page.fill("#query", "star wars")
    page.click("#search-form button")
    page.wait_for_selector("#results li")
    assert "Star Wars" in page.locator("#results li").first.inner_text()
    page.locator("#results li").first.locator("button", has_text="like").click()
    page.wait_for_selector("#recommendations li")
    first = _recommended(page)
    assert len(first) == 10
    _wait_until(
        page,
        "() => [...document.querySelectorAll('#recommendations .why')].some(n => n.textContent)",
    )
    page.fill("#query", "sound of music")
    page.click("#search-form button")
    page.wait_for_selector("#results li >> text=Sound of Music")
    page.locator("#results li").first.locator("button", has_text="like").click()
    _wait_until(page, CHANGED, arg=json.dumps(first, separators=(",", ":")))
    assert _recommended(page) != first
    page.locator("#recommendations li").first.locator("button", has_text="similar").click()
    _wait_until(
        page,
        "() => document.querySelector('#similar-items li') || document.getElementById('error').textContent",
    )
    assert page.locator("#error").inner_text() == ""
    assert page.locator("#similar-items li").count() == 8
    assert page.problems == []
    page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)


@pytest.mark.realdata
def test_known_user_like_folds_in_online(page, server):
    page.goto(f"{server.url}/ui")
    page.fill("#user-id", "1")
    page.click("#user-form button[type=submit]")
    page.wait_for_selector("#recommendations li")
    first = _recommended(page)
    page.locator("#recommendations li").nth(0).locator("button", has_text="like").click()
    _wait_until(page, CHANGED, arg=json.dumps(first, separators=(",", ":")))
    assert first[0] not in _recommended(page)  # the liked item joined the history
    assert page.problems == []
