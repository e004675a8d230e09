"""Text renderings of a comparison table (:func:`lmrec.eval.protocol.compare`) for the CLI.

The default layout has one line per (metric, model), so it stays within
:data:`MAX_WIDTH` columns however many models and metrics are compared; the markdown
layout is a real GitHub table (rounded values, one row per model) for reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

#: The widest line the default table prints.
MAX_WIDTH = 100


def _value(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _cell(table: pd.DataFrame, model: str, column: str) -> str:
    if column not in table.columns:
        return ""
    value = table.at[model, column]
    if column == "fit_seconds" and isinstance(value, float) and not math.isnan(value):
        return f"{value:.2f}"
    return _value(value)


def _columns(table: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    extra = [c for c in ("fit_seconds",) if c in table.columns and c not in metrics]
    return [m for m in [*metrics, *extra] if m in table.columns]


def comparison_long(table: pd.DataFrame, metrics: Sequence[str], baseline: str) -> str:
    """One line per metric and model: value, 95% CI, paired difference to ``baseline``.

    >>> t = pd.DataFrame({"users": [3, 3], "ndcg@10": [0.1, 0.25],
    ...                   "ndcg@10 ci": ["[0.0500, 0.1500]", "[0.2000, 0.3000]"],
    ...                   "ndcg@10 diff": ["-", "+0.1500 [+0.1000, +0.2000]"]},
    ...                  index=pd.Index(["pop", "ease"], name="model"))
    >>> print(comparison_long(t, ["ndcg@10"], "pop"))
    metric   model  value   95% CI            difference to pop [95% CI]
    ndcg@10  pop    0.1000  [0.0500, 0.1500]  -
             ease   0.2500  [0.2000, 0.3000]  +0.1500 [+0.1000, +0.2000]
    users: pop 3, ease 3
    """
    models = [str(m) for m in table.index]
    columns = _columns(table, metrics)
    mw = max(len("metric"), *(len(c) for c in columns))
    nw = max(len("model"), *(len(m) for m in models))
    header = f"{'metric':<{mw}}  {'model':<{nw}}  {'value':<6}  {'95% CI':<16}  "
    if len(models) > 1:  # one model has nothing to differ from
        header += f"difference to {baseline} [95% CI]"
    lines = [header.rstrip()]
    for col in columns:
        for i, model in enumerate(models):
            value = _cell(table, model, col)
            ci = _cell(table, model, f"{col} ci")
            diff = _cell(table, model, f"{col} diff") if len(models) > 1 else ""
            name = col if i == 0 else ""
            line = f"{name:<{mw}}  {model:<{nw}}  {value:<6}  {ci:<16}  {diff}"
            lines.append(line.rstrip())
    if "users" in table.columns:
        users = table["users"]
        lines.append("users: " + ", ".join(f"{m} {int(users[m])}" for m in models))
    return "\n".join(lines)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def comparison_markdown(table: pd.DataFrame, metrics: Sequence[str], baseline: str) -> str:
    """Two GitHub markdown tables: values with 95% CIs, then differences to ``baseline``.

    >>> t = pd.DataFrame({"users": [3, 3], "ndcg@10": [0.1, 0.25],
    ...                   "ndcg@10 ci": ["[0.0500, 0.1500]", "[0.2000, 0.3000]"],
    ...                   "ndcg@10 diff": ["-", "+0.1500 [+0.1000, +0.2000]"]},
    ...                  index=pd.Index(["pop", "ease"], name="model"))
    >>> print(comparison_markdown(t, ["ndcg@10"], "pop"))
    | model | users | ndcg@10 [95% CI] |
    |---|---:|---|
    | pop | 3 | 0.1000 [0.0500, 0.1500] |
    | ease | 3 | 0.2500 [0.2000, 0.3000] |
    <BLANKLINE>
    Paired difference to pop (per-user bootstrap, 95% CI):
    <BLANKLINE>
    | model | ndcg@10 |
    |---|---|
    | pop | - |
    | ease | +0.1500 [+0.1000, +0.2000] |
    """
    models = [str(m) for m in table.index]
    columns = _columns(table, metrics)
    heads = [f"{c} [95% CI]" if f"{c} ci" in table.columns else c for c in columns]
    out = [_md_row(["model", "users", *heads]), "|---|---:|" + "---|" * len(columns)]
    for model in models:
        cells = [model, _cell(table, model, "users")]
        for col in columns:
            ci = _cell(table, model, f"{col} ci")
            cells.append(f"{_cell(table, model, col)} {ci}".strip())
        out.append(_md_row(cells))
    diffs = [c for c in columns if f"{c} diff" in table.columns]
    if diffs and len(models) > 1:
        out += ["", f"Paired difference to {baseline} (per-user bootstrap, 95% CI):", ""]
        out += [_md_row(["model", *diffs]), "|---|" + "---|" * len(diffs)]
        for model in models:
            out.append(_md_row([model, *(_cell(table, model, f"{c} diff") for c in diffs)]))
    return "\n".join(out)
