"""The cold-start-user curve: accuracy on new users against how much of them is known.

For each ``n`` in ``ns``, :func:`lmrec.data.split.cold_start_users_split` holds out the
same random ``user_fraction`` of users (one seed for all ``n``); their earliest ``n``
interactions (by timestamp) stay in train and the rest are the test set. Every model
is fitted on that train set and evaluated on the held-out users' remaining items with
:func:`lmrec.eval.protocol.evaluate` (full ranking, the ``n`` known items excluded).

What ``n = 0`` means
--------------------
The split keeps the data set's id maps, so a held-out user is *in* every model's user
map, with an empty training row. No fallback is substituted: each model scores such a
user the way it scores an empty history, which is how it would serve a user who has
just signed up. Popularity ranks by popularity; a CF model like EASE gives every item
the same score (so its list is no better than arbitrary -- the point of the curve);
content and two-tower models use what they know of the user without a history
(e.g. ``twotower`` with ``user_features`` projects the user's attribute text, and its
learned item bias acts as a popularity prior); a blend fuses its components.
``group_popularity`` (popularity within the user's attribute group) is the demographic
baseline, and ``onboard`` mixes the attributes with the first items as they arrive.

Confidence intervals
--------------------
:func:`cold_user_cis` turns a curve into one row per (model, ``n``): the mean with a
percentile-bootstrap interval over the held-out users, its ratio to a baseline, and the
paired-bootstrap interval of its difference to a reference model (the same users are
evaluated for every model at a given ``n``).

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.data.split import cold_start_users_split
from lmrec.errors import ConfigError
from lmrec.eval.bootstrap import bootstrap_ci, paired_bootstrap_diff
from lmrec.eval.protocol import EvaluationResult, evaluate


def cold_user_curve(
    dataset: Dataset,
    models: Mapping[str, Callable[[], Any]],
    *,
    ns: Sequence[int] = (0, 1, 3, 5),
    user_fraction: float = 0.2,
    seed: int = 2026,
    metric: str = "ndcg@10",
) -> pd.DataFrame:
    """``metric`` of each model on held-out users, for each number ``n`` of known interactions.

    Parameters
    ----------
    dataset : Dataset
        All interactions (with timestamps, so "the first ``n``" is well defined).
    models : mapping of str to callable
        Display name -> factory returning a fresh, unfitted model (called once per ``n``).
    ns : sequence of int >= 0
        Numbers of each held-out user's earliest interactions revealed in train.
    user_fraction : float in (0, 1)
        Share of users held out.
    seed : int
        Seed of the held-out users (the same users for every ``n``).
    metric : str
        A per-user list metric such as ``"ndcg@10"``.

    Returns
    -------
    DataFrame
        Index: model names; columns: the values of ``n``; cells: the metric averaged
        over the held-out users. ``frame.attrs["results"]`` maps ``(name, n)`` to the
        full :class:`~lmrec.eval.protocol.EvaluationResult` (per-user values for CIs)
        and ``frame.attrs["n_users"]`` maps ``n`` to the number of users evaluated.

    Raises
    ------
    ConfigError
        No models, or no values of ``n``.

    Examples
    --------
    >>> from lmrec.models.popularity import Popularity                   # doctest: +SKIP
    >>> cold_user_curve(data, {"popularity": Popularity}, ns=(0, 5))    # doctest: +SKIP
    """
    if not models:
        raise ConfigError("cold_user_curve needs at least one model factory.")
    ns = [int(n) for n in ns]
    if not ns:
        raise ConfigError("cold_user_curve needs at least one value of n in 'ns'.")
    table: dict[str, dict[int, float]] = {name: {} for name in models}
    results: dict[tuple[str, int], EvaluationResult] = {}
    n_users: dict[int, int] = {}
    for n in ns:
        split = cold_start_users_split(dataset, user_fraction=user_fraction, seed=seed, n_known=n)
        for name, factory in models.items():
            model = factory().fit(split.train)
            result = evaluate(model, split.test, metrics=[metric], name=name, show_progress=False)
            table[name][n] = next(iter(result.summary.values()))
            results[(name, n)] = result
            n_users[n] = result.n_users
    frame = pd.DataFrame(table).T[ns]
    frame.index.name = "model"
    frame.columns.name = "n_known"
    frame.attrs["results"] = results
    frame.attrs["n_users"] = n_users
    return frame


def cold_user_cis(
    curve: pd.DataFrame,
    *,
    baseline: str = "popularity",
    reference: str | None = None,
    metric: str = "ndcg@10",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Confidence intervals of a :func:`cold_user_curve`, one row per (model, ``n``).

    Parameters
    ----------
    curve : DataFrame
        The output of :func:`cold_user_curve` (its ``attrs["results"]`` hold the per-user
        values).
    baseline : str
        Model whose mean the ``ratio`` column divides by.
    reference : str, optional
        Model the paired ``diff`` interval is taken against (default: ``baseline``).
    metric, n_resamples, confidence, seed
        The per-user metric and the bootstrap settings.

    Returns
    -------
    DataFrame
        Columns ``model, n_known, users, mean, low, high, ratio, diff, diff_low,
        diff_high``.

    Raises
    ------
    ConfigError
        ``baseline`` or ``reference`` is not a model of the curve.
    """
    results: dict[tuple[str, int], EvaluationResult] = curve.attrs["results"]
    reference = baseline if reference is None else reference
    for name in (baseline, reference):
        if name not in curve.index:
            raise ConfigError(f"{name!r} is not in the curve; models: {list(curve.index)}.")
    rows = []
    for n in map(int, curve.columns):
        ref = results[(reference, n)].per_user[metric]
        base = results[(baseline, n)].per_user[metric].mean()
        for name in curve.index:
            values = results[(name, n)].per_user[metric]
            mean, low, high = bootstrap_ci(
                values.to_numpy(), n_resamples=n_resamples, confidence=confidence, seed=seed
            )
            paired = ref.reindex(values.index)
            diff = paired_bootstrap_diff(
                values.to_numpy(),
                paired.to_numpy(),
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
            )
            rows.append(
                {
                    "model": name,
                    "n_known": int(n),
                    "users": len(values),
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "ratio": mean / base if base else float("nan"),
                    "diff": diff["mean_diff"],
                    "diff_low": diff["low"],
                    "diff_high": diff["high"],
                }
            )
    return pd.DataFrame(rows)
