"""Screenshots of the HTML report and of the /ui page in headless Chromium, for the README.

Protocol: the report of ``lmrec compare`` on MovieLens-100K (popularity, EASE and
calibrated EASE; split seed 2026) with groups gender, age band, activity, popularity and
genres is rendered and opened in Debian's Chromium (through Playwright); the page must
log no console error. Then ``lmrec serve`` runs an EASE model with the MovieLens
catalog, and the browser picks "new visitor", searches "star wars", likes two results
and waits for the recommendations.

Command (needs ``apt-get install chromium`` and the dev extra)::

    .venv/bin/python benchmarks/screenshots.py

Writes ``benchmarks/results/report.png``, ``report.html`` and ``ui.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def lmrec(*args: str, **kwargs) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lmrec")
    return subprocess.run([str(exe), *args], check=True, **kwargs)


def data_files(tmp: Path) -> dict[str, Path]:
    """ML-100K interactions, catalog and users as CSV files (what a user would have)."""
    from lmrec.data.sources import load_builtin

    data = load_builtin("ml-100k")
    files = {"data": tmp / "ratings.csv", "items": tmp / "items.csv", "users": tmp / "users.csv"}
    data.to_frame()[["user", "item", "rating", "timestamp"]].to_csv(files["data"], index=False)
    data.items.rename_axis("item").reset_index().to_csv(files["items"], index=False)
    data.users.rename_axis("user").reset_index().to_csv(files["users"], index=False)
    return files


def report_shot(browser, tmp: Path, files: dict[str, Path]) -> None:
    out = RESULTS / "report.html"
    lmrec(
        "compare",
        "--data",
        str(files["data"]),
        "--models",
        "popularity,ease,rerank",
        "--param",
        "ease.l2=300",
        "--param",
        "rerank.trade_off=0.7",
        "--items",
        str(files["items"]),
        "--users",
        str(files["users"]),
        "--groups",
        "gender,age_band,activity,popularity,genres",
        "--report",
        str(out),
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(out.resolve().as_uri())
    page.screenshot(path=str(RESULTS / "report.png"), full_page=False)
    page.locator("section#user-fairness").screenshot(path=str(RESULTS / "report_fairness.png"))
    if errors:
        raise SystemExit(f"report: console errors {errors}")
    page.close()


def ui_shot(browser, tmp: Path, files: dict[str, Path]) -> None:
    model = tmp / "ease"
    lmrec(
        "train",
        "--data",
        str(files["data"]),
        "--model",
        "ease",
        "--param",
        "l2=300",
        "--out",
        str(model),
    )
    port = 8765
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("lmrec")),
            "serve",
            str(model),
            "--catalog",
            str(files["items"]),
            "--port",
            str(port),
            "--no-auth",
            "--store",
            f"sqlite:///{tmp}/events.db",
        ],
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
    )
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/ui")
        page.click("#visitor")
        page.fill("#query", "star wars")
        page.click("#search-form button")
        page.locator("#results li button", has_text="like").first.click()
        page.fill("#query", "toy story")
        page.click("#search-form button")
        page.locator("#results li button", has_text="like").first.click()
        page.wait_for_selector("#recommendations li .why")
        page.locator("#recommendations li button", has_text="similar").first.click()
        page.wait_for_selector("#similar-items li")
        time.sleep(0.5)
        page.screenshot(path=str(RESULTS / "ui.png"), full_page=True)
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["report", "ui"])
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Chromium is not installed: apt-get install chromium")
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir, sync_playwright() as p:
        tmp = Path(tmpdir)
        files = data_files(tmp)
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        if args.only in (None, "report"):
            report_shot(browser, tmp, files)
        if args.only in (None, "ui"):
            ui_shot(browser, tmp, files)
        browser.close()
    print(
        "wrote",
        ", ".join(
            str(p.relative_to(ROOT))
            for p in sorted(RESULTS.glob("*.png"))
            if p.stem in ("report", "ui", "report_fairness")
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
