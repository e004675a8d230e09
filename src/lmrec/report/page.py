"""The HTML report: one self-contained page (inline CSS and SVG, no script, font or link).

:func:`render_report` turns :class:`~lmrec.report.inputs.ReportInputs` into the page:
metrics with bootstrap intervals, metric-vs-K curves, the per-user distribution,
popularity bias, coverage, fairness by item and user group, calibration, paired
significance between models, rating accuracy and re-ranking trade-offs when given, and
the command and data fingerprint that produced it. Every section has a stable ``id``
(the browser test looks for them).
"""

from __future__ import annotations

import datetime as _dt
import math
import warnings
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from lmrec.errors import ConfigError, DataWarning
from lmrec.eval.bias import PopularityLift
from lmrec.eval.bootstrap import bootstrap_ci, paired_bootstrap_diff
from lmrec.eval.groups import (
    ItemGroups,
    activity_bands,
    age_bands,
    exposure_table,
    group_breakdown,
    group_gap,
    group_relevance,
)
from lmrec.eval.metrics import compute_ranking_metrics
from lmrec.report.inputs import ReportInputs
from lmrec.report.svg import bar_chart, histogram, line_chart

__all__ = ["SECTIONS", "check_groups", "render_report"]

#: Section ids, in page order (those without data are left out).
SECTIONS = (
    "metrics",
    "curves",
    "distribution",
    "popularity",
    "coverage",
    "item-fairness",
    "user-fairness",
    "calibration",
    "significance",
    "ratings",
    "tradeoff",
    "provenance",
)
CURVE_KS = (1, 3, 5, 10, 20, 50)
#: Group names computed from the data rather than read from a column.
DERIVED_GROUPS = ("activity", "popularity")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85;font-size:13px}nav{padding:8px 28px;background:#e9eef3;font-size:13px}
nav a{margin-right:12px;color:#1f3b57}main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:14px 18px;margin:16px 0}
h2{font-size:18px;margin:0 0 8px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f0f3f6}td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}
.note{color:#555;font-size:13px}code,pre{background:#f3f3f3;padding:2px 4px;border-radius:3px;font-size:12px}
pre{padding:8px;white-space:pre-wrap;word-break:break-all}
"""


# ------------------------------------------------------------------------------ helpers


def _num(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if not math.isfinite(v) else f"{v:.4f}"
    return escape(str(v))


def _table(frame: pd.DataFrame, *, index: bool = True) -> str:
    head = ([escape(str(frame.index.name or ""))] if index else []) + [
        escape(str(c)) for c in frame.columns
    ]
    rows = []
    for idx, row in frame.iterrows():
        cells = ([f"<td>{escape(str(idx))}</td>"] if index else []) + [
            f"<td>{_num(v)}</td>" for v in row
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def _item_attributes(inputs: ReportInputs) -> list[str]:
    return [] if inputs.items is None else [str(c) for c in inputs.items.columns]


def _item_column(inputs: ReportInputs, attribute: str) -> np.ndarray:
    """One attribute column of the item catalog (an attribute from :func:`_item_attributes`)."""
    if inputs.items is None:
        raise ConfigError(f"Item attribute {attribute!r} needs an item catalog (--items).")
    return inputs.items[attribute].to_numpy()


def _user_attributes(inputs: ReportInputs) -> list[str]:
    cols = [] if inputs.users is None else [str(c) for c in inputs.users.columns]
    return cols + (["age_band"] if "age" in cols else [])


def check_groups(inputs: ReportInputs, groups: Sequence[str]) -> None:
    """Refuse group attributes the data does not have, listing the ones it does."""
    known = set(_item_attributes(inputs)) | set(_user_attributes(inputs)) | set(DERIVED_GROUPS)
    bad = [g for g in groups if g not in known]
    if bad:
        have = ", ".join(sorted(known))
        raise ConfigError(
            f"Unknown group attribute(s) {', '.join(map(repr, bad))}. Groups can be user "
            f"attributes (--users), item attributes (--items) or {', '.join(DERIVED_GROUPS)}; "
            f"this data has: {have}."
        )


def _features(inputs: ReportInputs, attribute: str | None) -> tuple[str | None, Any]:
    """The item attribute used for diversity and calibration, and its p(g|i) matrix."""
    cols = _item_attributes(inputs)
    if attribute is None:
        attribute = "genres" if "genres" in cols else None
    if attribute is None:
        return None, None
    if attribute not in cols:
        raise ConfigError(
            f"Item attribute {attribute!r} is not in the catalog; it has {', '.join(cols) or 'no columns'}."
        )
    groups = ItemGroups.from_labels(
        _item_column(inputs, attribute), separator="|", attribute=attribute
    )
    return attribute, groups.membership


def _user_labels(inputs: ReportInputs, name: str) -> pd.Series:
    index = pd.Index(np.asarray(inputs.user_ids).astype(str))
    if name == "activity":
        return pd.Series(
            activity_bands(np.diff(inputs.history.indptr)).to_numpy(), index=index, name=name
        )
    if inputs.users is None:
        raise ConfigError(f"User group {name!r} needs a user table (--users).")
    if name == "age_band":
        return pd.Series(age_bands(inputs.users["age"]).to_numpy(), index=index, name=name)
    return pd.Series(inputs.users[name].to_numpy(), index=index, name=name)


# ------------------------------------------------------------------------------ sections


class _Computed:
    """Metrics of every run, computed once and shared by the sections."""

    def __init__(self, inputs: ReportInputs, k: int, features: Any) -> None:
        has_train = inputs.train.nnz > 0
        self.specs = [
            f"{m}@{k}"
            for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage", "gini")
        ]
        if has_train:
            self.specs += [f"novelty@{k}", f"arp@{k}", f"pop_lift@{k}"]
        if features is not None:
            self.specs.append(f"ild@{k}")
            if has_train:
                self.specs.append(f"miscalibration@{k}")
        curve = [f"{m}@{c}" for c in CURVE_KS for m in ("ndcg", "recall", "coverage")]
        self.summary: dict[str, dict[str, float]] = {}
        self.per_user: dict[str, pd.DataFrame] = {}
        self.curves: dict[str, dict[str, float]] = {}
        index = pd.Index(np.asarray(inputs.user_ids).astype(str), name="user")
        for name, recs in inputs.runs.items():
            summary, per_user = compute_ranking_metrics(
                recs,
                inputs.truth,
                list(dict.fromkeys(self.specs + curve)),
                n_items=inputs.n_items,
                train=inputs.train if has_train else None,
                item_features=features,
                history=inputs.history if has_train else None,
            )
            self.summary[name] = {s: summary[s] for s in self.specs}
            self.curves[name] = {s: summary[s] for s in curve}
            self.per_user[name] = pd.DataFrame(
                {s: v for s, v in per_user.items() if s in self.specs}, index=index
            )


def _metrics_section(c: _Computed, seed: int, n_resamples: int) -> str:
    rows = []
    for name, summary in c.summary.items():
        row: dict[str, Any] = {"model": name}
        for spec, value in summary.items():
            if spec in c.per_user[name]:
                _, lo, hi = bootstrap_ci(
                    c.per_user[name][spec].dropna().to_numpy(), n_resamples=n_resamples, seed=seed
                )
                row[spec] = f"{value:.4f} [{lo:.4f}, {hi:.4f}]"
            else:
                row[spec] = f"{value:.4f}"
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("model").T
    frame.index.name = "metric"
    return (
        '<p class="note">Mean over evaluated users with a 95% percentile bootstrap interval '
        "(users resampled); coverage, Gini and popularity lift describe all lists together "
        "(no interval). Definitions: docs/metrics.md.</p>" + _table(frame)
    )


def _curves_section(c: _Computed) -> str:
    charts = []
    for metric in ("ndcg", "recall", "coverage"):
        series = {
            n: (list(CURVE_KS), [v[f"{metric}@{k}"] for k in CURVE_KS]) for n, v in c.curves.items()
        }
        charts.append(
            line_chart(
                series, title=f"{metric}@K", xlabel="K (list length)", ylabel=metric, log_x=True
            )
        )
    return '<div class="charts">' + "".join(charts) + "</div>"


def _distribution_section(c: _Computed, k: int) -> str:
    spec = f"ndcg@{k}"
    series = {n: pu[spec].dropna().to_numpy() for n, pu in c.per_user.items()}
    rows = [
        {
            "model": n,
            "users": str(len(v)),
            "zero": float(np.mean(v == 0)),
            "median": float(np.median(v)),
            "p90": float(np.quantile(v, 0.9)),
        }
        for n, v in series.items()
        if len(v)
    ]
    chart = histogram(series, title=f"per-user {spec}", xlabel=spec, value_range=(0.0, 1.0))
    return (
        f'<p class="note">How {spec} is spread over users: the share of users with no hit, the '
        "median and the 90th percentile.</p>"
        + _table(pd.DataFrame(rows).set_index("model"))
        + '<div class="charts">'
        + chart
        + "</div>"
    )


def _popularity_section(inputs: ReportInputs, c: _Computed, k: int) -> str:
    if inputs.train.nnz == 0:
        return '<p class="note">Needs the training data (--train).</p>'
    tiers = ItemGroups.popularity_tiers(inputs.train)
    shares = {
        "history": group_relevance(inputs.history, tiers),
        "test": group_relevance(inputs.truth, tiers),
    }
    lift = PopularityLift(k)
    rows = []
    for name, recs in inputs.runs.items():
        shares[name] = exposure_table(recs, inputs.truth, tiers, k=k)["exposure_share"].to_numpy()
        listed, own = lift.parts(recs, train=inputs.train, history=inputs.history)
        rows.append(
            {
                "model": name,
                f"arp@{k}": float(np.nanmean(listed)),
                "history popularity": float(np.nanmean(own)),
                f"pop_lift@{k}": c.summary[name].get(f"pop_lift@{k}", math.nan),
            }
        )
    chart = bar_chart(
        list(tiers.names),
        {n: list(v) for n, v in shares.items()},
        title="share of items by popularity tier",
        xlabel="popularity tier",
        ylabel="share",
    )
    return (
        '<p class="note">Popularity of recommended items against the users\' own histories '
        "(ARP: mean share of training users who interacted with a listed item; popularity "
        "lift 0 means lists as popular as histories). Tiers: head items take the first 20% of "
        "training interactions, tail the last 20%.</p>"
        + _table(pd.DataFrame(rows).set_index("model"))
        + '<div class="charts">'
        + chart
        + "</div>"
    )


def _coverage_section(c: _Computed, k: int) -> str:
    rows = [
        {"model": n, f"coverage@{k}": s[f"coverage@{k}"], f"gini@{k}": s[f"gini@{k}"]}
        for n, s in c.summary.items()
    ]
    series = {
        n: (list(CURVE_KS), [v[f"coverage@{x}"] for x in CURVE_KS]) for n, v in c.curves.items()
    }
    return (
        _table(pd.DataFrame(rows).set_index("model"))
        + '<div class="charts">'
        + line_chart(
            series,
            title="catalog coverage by list length",
            xlabel="K",
            ylabel="coverage",
            log_x=True,
        )
        + "</div>"
    )


def _item_fairness_section(inputs: ReportInputs, k: int, item_groups: list[str]) -> str:
    parts = []
    for attr in item_groups:
        if attr == "popularity":
            if inputs.train.nnz == 0:
                continue
            groups = ItemGroups.popularity_tiers(inputs.train)
        else:
            groups = ItemGroups.from_labels(
                _item_column(inputs, attr), separator="|", attribute=attr
            )
        tables = {n: exposure_table(r, inputs.truth, groups, k=k) for n, r in inputs.runs.items()}
        first = next(iter(tables.values()))
        keep = first.sort_values("relevance_share", ascending=False).index[:12]
        combined = first.loc[keep, ["catalog_share", "relevance_share"]].copy()
        for n, t in tables.items():
            combined[f"{n} exposure"] = t.loc[keep, "exposure_share"]
            combined[f"{n} ratio"] = t.loc[keep, "exposure_ratio"]
        chart = bar_chart(
            [str(g) for g in keep],
            {n: list(t.loc[keep, "exposure_ratio"]) for n, t in tables.items()},
            title=f"exposure ratio by {attr}",
            xlabel=attr,
            ylabel="exposure / relevance share",
            reference=1.0,
        )
        parts.append(
            f"<h3>By {escape(attr)}</h3>"
            + _table(combined)
            + '<div class="charts">'
            + chart
            + "</div>"
        )
    if not parts:
        return '<p class="note">No item groups: pass --items with attributes, or --groups popularity.</p>'
    return (
        '<p class="note">Exposure share: each group\'s share of the top-K slots; relevance share: '
        "its share of the test items; ratio 1 means exposure in proportion to what users "
        "chose, below 1 under-exposure (dashed line).</p>" + "".join(parts)
    )


def _user_fairness_section(
    inputs: ReportInputs, c: _Computed, k: int, user_groups: list[str], seed: int, n_resamples: int
) -> str:
    parts = []
    metrics = [f"ndcg@{k}", f"recall@{k}"]
    for attr in user_groups:
        labels = _user_labels(inputs, attr)
        gap_rows, bars, errs = [], {}, {}
        cats: list[str] = []
        for name, pu in c.per_user.items():
            table = group_breakdown(pu[metrics], labels, n_resamples=n_resamples, seed=seed)
            sub = table.loc[metrics[0]]
            cats = [str(g) for g in sub.index]
            bars[name] = list(sub["mean"])
            errs[name] = (list(sub["low"]), list(sub["high"]))
            for m in metrics:
                with warnings.catch_warnings():  # a single group: the gap is NaN in the table
                    warnings.simplefilter("ignore", DataWarning)
                    gap = group_gap(pu[m], labels, n_resamples=n_resamples, seed=seed)
                gap_rows.append(
                    {
                        "model": name,
                        "metric": m,
                        "best": gap["best"],
                        "worst": gap["worst"],
                        "gap": gap["gap"],
                        "low": gap["low"],
                        "high": gap["high"],
                    }
                )
            means = table["mean"].unstack(0)
            means.columns = [f"{name} {col}" for col in means.columns]
            counts = table.loc[metrics[0], ["users"]]
            if name == next(iter(c.per_user)):
                wide = counts.join(means)
            else:
                wide = wide.join(means)
        chart = bar_chart(
            cats, bars, title=f"{metrics[0]} by {attr}", xlabel=attr, ylabel=metrics[0], errors=errs
        )
        parts.append(
            f"<h3>By {escape(attr)}</h3>"
            + _table(wide)
            + "<p>Gap between the best- and worst-served "
            "group (stratified bootstrap 95% interval; an interval containing 0 shows no gap):</p>"
            + _table(pd.DataFrame(gap_rows).set_index("model"))
            + '<div class="charts">'
            + chart
            + "</div>"
        )
    if not parts:
        return '<p class="note">No user groups: pass --users with attributes and --groups, or --groups activity.</p>'
    return "".join(parts)


def _calibration_section(
    c: _Computed, k: int, attribute: str | None, seed: int, n_resamples: int
) -> str:
    spec = f"miscalibration@{k}"
    if not any(spec in pu for pu in c.per_user.values()):
        return '<p class="note">Needs an item attribute such as genres (--items) and the training data.</p>'
    rows, series = [], {}
    for name, pu in c.per_user.items():
        v = pu[spec].dropna().to_numpy()
        mean, lo, hi = bootstrap_ci(v, n_resamples=n_resamples, seed=seed)
        rows.append({"model": name, spec: mean, "low": lo, "high": hi, "users": len(v)})
        series[name] = v
    return (
        f'<p class="note">KL divergence between the {escape(str(attribute))} mix of each user\'s '
        "history and of the list (Steck 2018; 0 = calibrated).</p>"
        + _table(pd.DataFrame(rows).set_index("model"))
        + '<div class="charts">'
        + histogram(series, title=f"per-user {spec}", xlabel=spec)
        + "</div>"
    )


def _significance_section(c: _Computed, seed: int, n_resamples: int) -> str:
    names = list(c.per_user)
    if len(names) < 2:
        return '<p class="note">One model: nothing to compare.</p>'
    base = names[0]
    rows = []
    for name in names[1:]:
        for spec in c.per_user[name].columns:
            if spec not in c.per_user[base]:
                continue
            d = paired_bootstrap_diff(
                c.per_user[name][spec].to_numpy(),
                c.per_user[base][spec].to_numpy(),
                n_resamples=n_resamples,
                seed=seed,
            )
            rows.append(
                {
                    "model": name,
                    "metric": spec,
                    f"difference vs {base}": d["mean_diff"],
                    "low": d["low"],
                    "high": d["high"],
                    "p": d["p_value"],
                }
            )
    return (
        f'<p class="note">Paired bootstrap over the same users against {escape(base)}; two-sided p '
        f"(resolution 1/{n_resamples}).</p>" + _table(pd.DataFrame(rows).set_index("model"))
    )


def _ratings_section(inputs: ReportInputs) -> str:
    rows = [{"model": n, **r.summary, "users": r.n_users} for n, r in inputs.ratings.items()]
    return _table(pd.DataFrame(rows).set_index("model"))


def _tradeoff_section(t: pd.DataFrame) -> str:
    """The re-ranker's trade-off table (``ReportInputs.tradeoff``) and its chart."""
    metrics = [c for c in t.columns if c not in ("method", "trade_off")]
    if len(metrics) < 2:
        return _table(t.set_index("method"))
    x_metric, y_metric = metrics[1], metrics[0]
    series = {
        str(m): (list(g[x_metric]), list(g[y_metric])) for m, g in t.groupby("method", sort=False)
    }
    return (
        '<p class="note">Each point is one value of the re-ranker\'s trade_off (0 = the base '
        "model).</p>"
        + _table(t.set_index("method"))
        + '<div class="charts">'
        + line_chart(
            series, title=f"{y_metric} against {x_metric}", xlabel=x_metric, ylabel=y_metric
        )
        + "</div>"
    )


def _provenance_section(inputs: ReportInputs, k: int) -> str:
    from lmrec import __version__

    facts = pd.DataFrame(
        [
            ("command", inputs.command or "(library call)"),
            ("lmrec", __version__),
            ("created", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
            ("evaluated users", f"{len(inputs.user_ids):,}"),
            ("catalog items", f"{inputs.n_items:,}"),
            ("list length K", str(k)),
            *[(f"data: {n}", v) for n, v in inputs.fingerprint.items()],
            *[("note", n) for n in inputs.notes],
        ],
        columns=["what", "value"],
    ).set_index("what")
    return _table(facts)


# ------------------------------------------------------------------------------ page


def render_report(
    inputs: ReportInputs,
    *,
    k: int = 10,
    groups: Sequence[str] = (),
    attribute: str | None = None,
    title: str = "lmrec evaluation report",
    seed: int = 0,
    n_resamples: int = 500,
) -> str:
    """The report as one HTML string (see the module docstring for its sections).

    Parameters
    ----------
    inputs : ReportInputs
    k : int
        List length of the headline metrics.
    groups : sequence of str
        Attributes to break results down by: user columns (``gender``, ``occupation``;
        ``age`` gives MovieLens age bands), item columns (``genres``), ``activity``
        (user activity bands) or ``popularity`` (head/mid/tail items). Default:
        popularity tiers, ``activity``, and the catalog attribute.
    attribute : str, optional
        Item attribute for intra-list diversity and calibration (default ``genres`` when
        the catalog has it).

    Raises
    ------
    ConfigError
        On an unknown group or attribute (the message lists the available ones).
    """
    check_groups(inputs, groups)
    attribute, features = _features(inputs, attribute)
    item_cols, user_cols = set(_item_attributes(inputs)), set(_user_attributes(inputs))
    chosen = list(groups) or ["popularity", "activity"] + ([attribute] if attribute else [])
    item_groups = [g for g in chosen if g in item_cols or g == "popularity"]
    user_groups = [
        g for g in chosen if (g in user_cols or g == "activity") and g not in item_groups
    ]
    c = _Computed(inputs, k, features)
    sections = {
        "metrics": ("Metrics", _metrics_section(c, seed, n_resamples)),
        "curves": ("Metrics by list length", _curves_section(c)),
        "distribution": ("Per-user distribution", _distribution_section(c, k)),
        "popularity": ("Popularity bias", _popularity_section(inputs, c, k)),
        "coverage": ("Coverage", _coverage_section(c, k)),
        "item-fairness": ("Fairness by item group", _item_fairness_section(inputs, k, item_groups)),
        "user-fairness": (
            "Fairness by user group",
            _user_fairness_section(inputs, c, k, user_groups, seed, n_resamples),
        ),
        "calibration": ("Calibration", _calibration_section(c, k, attribute, seed, n_resamples)),
        "significance": ("Paired significance", _significance_section(c, seed, n_resamples)),
    }
    if inputs.ratings:
        sections["ratings"] = ("Rating prediction", _ratings_section(inputs))
    if inputs.tradeoff is not None and len(inputs.tradeoff):
        sections["tradeoff"] = ("Re-ranking trade-off", _tradeoff_section(inputs.tradeoff))
    sections["provenance"] = ("Command and data", _provenance_section(inputs, k))
    nav = "".join(f'<a href="#{sid}">{escape(t)}</a>' for sid, (t, _) in sections.items())
    body = "\n".join(_section(sid, t, html) for sid, (t, html) in sections.items())
    models = ", ".join(inputs.runs)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
        f"<body><header><h1>{escape(title)}</h1><p>{escape(models)} · {len(inputs.user_ids):,} users · "
        f"K = {k}</p></header><nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
