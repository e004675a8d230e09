"""The HTML report: sections from models and from recommendation files, self-containment,
and clear errors for unknown group attributes."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from lmrec.errors import ConfigError
from lmrec.models import create_model
from lmrec.report import (
    ReportInputs,
    inputs_from_models,
    inputs_from_recommendations,
    render_report,
    write_report,
)
from lmrec.testing import checkerboard


def _inputs() -> ReportInputs:
    data = checkerboard()
    frame = data.to_frame()
    test_rows = frame.groupby("user").tail(2)
    train = data.subset(~frame.index.isin(test_rows.index))  # type: ignore[arg-type]
    test = data.subset(frame.index[frame.index.isin(test_rows.index)].to_numpy())
    users = pd.DataFrame(
        {"gender": ["F" if i % 3 else "M" for i in range(40)]}, index=[f"u{i}" for i in range(40)]
    )
    models = {
        "popularity": create_model("popularity").fit(train),
        "ease": create_model("ease", {"l2": 10.0}).fit(train),
    }
    return inputs_from_models(models, test, items=data.items, users=users, k_max=10)


def test_report_has_every_section_and_nothing_external(tmp_path):
    inputs = _inputs()
    inputs.command = "lmrec compare --models popularity,ease"
    path = write_report(
        tmp_path / "r.html", inputs, k=3, groups=["gender", "genres", "popularity", "activity"]
    )
    html = path.read_text()
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
        assert f'<section id="{sid}">' in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "lmrec compare --models popularity,ease" in html
    assert "miscalibration@3" in html and "Even" in html


def test_unknown_group_attribute_is_named():
    with pytest.raises(ConfigError, match="Unknown group attribute.*'occupation'.*gender"):
        render_report(_inputs(), groups=["occupation"])


def test_report_from_recommendation_lists():
    recs = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rank": [1, 2, 1]})
    test = pd.DataFrame({"user": ["a", "b"], "item": ["y", "z"]})
    train = pd.DataFrame({"user": ["a", "b", "b"], "item": ["z", "y", "w"]})
    inputs = inputs_from_recommendations(recs, test, train=train, name="mine")
    html = render_report(inputs, k=2)
    assert '<section id="metrics">' in html and "mine" in html
    no_train = render_report(inputs_from_recommendations(recs, test), k=2)
    assert "Needs the training data" in no_train
