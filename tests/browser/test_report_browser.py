"""The HTML report in a real browser: it opens offline with no console error, shows every
section with its charts, and loads nothing from outside the file."""

from __future__ import annotations

import pytest

from lmrec.models import create_model
from lmrec.report import inputs_from_models, write_report


@pytest.fixture(scope="module")
def report_path(ml100k_split, ml100k, tmp_path_factory):
    split = ml100k_split
    train = split.train.concat(split.valid)
    models = {
        "popularity": create_model("popularity").fit(train),
        "ease": create_model("ease", {"l2": 300.0}).fit(train),
    }
    inputs = inputs_from_models(models, split.test, items=ml100k.items, users=ml100k.users)
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, inputs, groups=["gender", "age_band", "activity", "popularity", "genres"])
    return path


@pytest.mark.realdata
def test_report_opens_offline_and_shows_its_sections(page, report_path, tmp_path):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report_path.as_uri())
    assert page.title() == "lmrec evaluation report"
    for sid in (
        "metrics",
        "curves",
        "distribution",
        "popularity",
        "coverage",
        "item-fairness",
        "user-fairness",
        "calibration",
        "significance",
        "provenance",
    ):
        section = page.locator(f"section#{sid}")
        assert section.is_visible(), sid
        assert section.locator("h2").inner_text()
    assert page.locator("svg.chart").count() >= 10
    assert "ndcg@10" in page.locator("section#metrics table").inner_text()
    assert "F" in page.locator("section#user-fairness").inner_text()
    assert requests == [report_path.as_uri()]  # nothing fetched beside the file itself
    assert page.problems == []
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
