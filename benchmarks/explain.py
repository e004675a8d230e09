"""Faithfulness of explanations: the deletion test for every model on MovieLens-100K.

Protocol. Every registered model is fitted on all of MovieLens-100K (every rating a
positive) with the settings in ``SETTINGS`` (library defaults; the LM ranker and the
pipeline with a 2-layer MiniLM and 100 fine-tuning steps, the sequence models with 20
epochs, to fit CPU time). For
``--users`` users drawn with ``--seed``, the user's history (as the model reads it,
``model.user_history``; oldest first for the LM models) is given as a new user's item
list, the explained item is the model's top recommendation for it
(``score_histories``, history excluded; the standalone ranker, which does not rank the
whole catalog, picks its best of EASE's top 50), and
:func:`lmrec.eval.faithfulness.deletion_test` removes the top ``m = 1..--max-removed``
attributed history items, or ``m`` random ones (``--draws`` draws), and re-scores the
item through the model's own request-time scoring.

Reported per model: the attribution method, the deletion-curve areas (mean score drop
over ``m``, in the model's score units) for attributed and random removal, their ratio
(scale-free; > 1 means the attribution finds what the score depends on), the share of
users whose attributed curve lies above the random one, and the wall time of the
explanations (each an ``attribute`` call) relative to EASE's in the same run.
Models whose score ignores the history (popularity, group popularity) have nothing to
attribute: both areas are 0 and the ratio is undefined.

The rating models (biasedmf, knnbaseline) score a user's ratings, not an item list: for
the same users, the explained item is the model's top recommendation for the known user,
and :func:`lmrec.eval.faithfulness.rating_deletion_test` removes rated items from the
user's ratings and re-scores with ``score_ratings`` (rating units).

Run ``python benchmarks/explain.py`` (about 30-60 min on 2 shared cores, most of it the
two LM models); ``--models ease,als`` for a subset. Writes
``benchmarks/results/explain.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from lmrec.data.sources import load_builtin
from lmrec.eval.faithfulness import deletion_test, rating_deletion_test
from lmrec.models import create_model
from lmrec.models.capabilities import FoldInModel, RatingModel, SequenceModel, supports
from lmrec.models.registry import get_model_class, list_models

OUT = Path(__file__).parent / "results" / "explain.md"
_LM = {"n_layers": 2, "max_steps": 100, "max_length": 96, "n_threads": 2, "seed": 0}
SETTINGS: dict[str, dict] = {
    "ranker": dict(_LM),
    "pipeline": {"ranker_params": dict(_LM)},
    "bpr": {"seed": 0},
    "fm": {"seed": 0},
    "twotower": {"seed": 0},
    # Fitted on all data there is no validation to stop early on; 20 epochs as in
    # benchmarks/fairness.py (with the default 200, gru4rec alone ran over 8 minutes).
    "sasrec": {"epochs": 20, "seed": 0},
    "gru4rec": {"epochs": 20, "seed": 0},
}
#: Models that cannot rank the whole catalog pick their explained item among EASE's top-N.
POOL = {"ranker": 50}


def explained_items(model, histories, ease) -> list[int]:
    """The model's top item for each history (among EASE's top-N where POOL says so)."""
    out = []
    for h in histories:
        if model.name in POOL:
            scores = ease.score_histories([h])[0]
            scores[h] = -np.inf
            pool = np.argsort(-scores, kind="stable")[: POOL[model.name]]
        else:
            pool = np.setdiff1d(np.arange(model.n_items), h)
        s = model.score_histories([h], items=pool)[0]
        s[np.isin(pool, h)] = -np.inf
        out.append(int(pool[int(np.argmax(s))]))
    return out


def rating_test(model, users, args):
    """The deletion test of a rating model on the users' own ratings, and its methods."""
    items = [int(model.recommend_indices(np.array([u]), 1)[0][0, 0]) for u in users]
    methods = {
        model.attribute(i, user_idx=int(u)).method
        for u, i in zip(users[:3], items[:3], strict=True)
    }
    res = rating_deletion_test(
        model,
        [int(u) for u in users],
        items,
        max_removed=args.max_removed,
        n_random=args.draws,
        seed=args.seed,
    )
    return res, methods


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated registered models (default: all)")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--max-removed", type=int, default=10)
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.models:
        names = args.models.split(",")
    else:  # every model that scores a new user's item list or a user's ratings
        names = [
            n
            for n in list_models()
            if supports(get_model_class(n), FoldInModel)
            or supports(get_model_class(n), SequenceModel)
            or supports(get_model_class(n), RatingModel)
        ]
        print("skipped (no fold-in):", ", ".join(sorted(set(list_models()) - set(names))))
    data = load_builtin("ml-100k")
    users = np.sort(
        np.random.default_rng(args.seed).choice(data.n_users, args.users, replace=False)
    )
    ease = create_model("ease").fit(data)
    rows, started = [], time.time()
    ease_seconds = None
    for name in ["ease"] + [n for n in names if n != "ease"]:
        t0 = time.time()
        model = ease if name == "ease" else create_model(name, SETTINGS.get(name, {})).fit(data)
        fit_s = time.time() - t0
        t1 = time.time()
        if supports(model, RatingModel):
            res, methods = rating_test(model, users, args)
        else:
            histories = [model.user_history(int(u)) for u in users]
            items = explained_items(model, histories, ease)
            t1 = time.time()
            methods = {
                model.attribute(i, h).method for h, i in zip(histories[:3], items[:3], strict=True)
            }
            res = deletion_test(
                model,
                histories,
                items,
                max_removed=args.max_removed,
                n_random=args.draws,
                seed=args.seed,
            )
        test_s = time.time() - t1
        if name == "ease":
            ease_seconds = test_s
        rows.append((name, "/".join(sorted(methods)), res, fit_s, test_s / ease_seconds))
        curve_a = " ".join(f"{v:.3g}" for v in res.attributed.mean(0))
        curve_r = " ".join(f"{v:.3g}" for v in res.random.mean(0))
        print(
            f"{name}: {res.summary()} fit {fit_s:.0f}s, test {test_s:.0f}s\n"
            f"  attributed drops by m: {curve_a}\n  random drops by m:     {curve_r}",
            flush=True,
        )
        if name not in names:
            rows.pop()
    lines = [
        "# Faithfulness of explanations: deletion test on MovieLens-100K",
        "",
        f"Generated by `python benchmarks/explain.py` ({time.time() - started:.0f} s; "
        f"Python {platform.python_version()}, {sys.platform}). {args.users} users (seed "
        f"{args.seed}), m = 1..{args.max_removed} history items removed, {args.draws} random "
        "draws per m. Areas: mean drop of the explained item's score over m, in the model's "
        "score units; ratio = attributed / random (scale-free). Time: the deletion test "
        "(attributions + re-scoring) relative to EASE's in the same run (shared machine).",
        "",
        "| model | method | area, attributed | area, random | ratio | users attributed > random | time vs EASE |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, method, res, _, rel in rows:
        ratio = "n/a (score ignores history)" if res.area_random == 0 else f"{res.ratio:.2f}"
        lines.append(
            f"| {name} | {method} | {res.area_attributed:.4g} | {res.area_random:.4g} | "
            f"{ratio} | {res.win_rate:.0%} | {rel:.1f}x |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
