"""Fairness, popularity bias and calibration of every lmrec model on MovieLens-100K, and the
trade-off curves of the three re-rankers.

Protocol (issue 22): the per-user random 80/10/10 split of ``benchmarks/movielens.py``
(seed 2026); every model is fitted on train + valid with the parameters that benchmark
tuned (``benchmarks/results/movielens.json``; defaults for models it does not tune) and
evaluated on test under the strict protocol (full ranking, training items excluded).
Per model: NDCG@10 overall, by gender and by age band (MovieLens' bands) with the gap
between the best- and worst-served group and its stratified bootstrap 95% interval;
exposure share of head / mid / tail items (tiers by the first and last 20% of training
interactions); ARP, popularity lift, coverage and miscalibration@10 (genres). The LM
ranker and the retrieve-then-rerank pipeline are left out (their fine-tuning takes
hours on a CPU; ``benchmarks/ranker.py`` measures them).

Trade-offs: ``rerank`` over EASE (tuned ``l2``) for trade_off 0 ... 0.95 with each method:
calibrated (NDCG@10 vs miscalibration@10), MMR (vs intra-list diversity@10 on genres)
and exposure for tail items (vs the tail's exposure share). Issue target: calibrated
re-ranking cuts mean miscalibration by >= 50% at <= 5% NDCG@10 loss against EASE.

Command (~7 minutes on 2 idle cores)::

    flock /tmp/lmrec-bench.lock .venv/bin/python benchmarks/fairness.py

Writes ``benchmarks/results/fairness.json``, ``fairness.md`` and ``fairness_report.html``
(the HTML report of EASE, calibrated EASE and popularity, with the trade-off curves).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"
SKIPPED = {"ranker", "pipeline"}
#: Settings for models benchmarks/movielens.py does not tune (text models: the default encoder).
DEFAULTS: dict[str, dict] = {
    "twotower": {"epochs": 10, "seed": 2026, "n_threads": 1},
    "rerank": {"base_model": "ease", "trade_off": 0.7},
    # Fitted on train + valid there is nothing to stop early on: the epochs at which the
    # early-stopped leave-one-out run peaked (17 of 22, benchmarks/sequential.py --part cost).
    "sasrec": {"epochs": 20},
    "gru4rec": {"epochs": 20},
}
TRADE_OFFS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def tuned_params() -> dict[str, dict]:
    path = RESULTS / "movielens.json"
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["rows"]
    return {r["model"]: r["params"] for r in rows if r.get("library") == "lmrec"}


def model_rows(train, test, users, items, names, params, features):
    """One row of fairness figures per model."""
    from lmrec.eval.groups import ItemGroups, age_bands, exposure_table, group_breakdown, group_gap
    from lmrec.eval.protocol import evaluate
    from lmrec.models import create_model

    tiers = ItemGroups.popularity_tiers(train.matrix)
    gender = users["gender"].astype(str)
    gender.index = gender.index.astype(str)
    bands = age_bands(users["age"])
    bands.index = bands.index.astype(str)
    metrics = ["ndcg@10", "recall@10", "coverage@10", "arp@10", "pop_lift@10", "miscalibration@10"]
    rows, fitted = [], {}
    for name in names:
        start = time.perf_counter()
        model = create_model(name, params.get(name, {})).fit(train)
        seconds = time.perf_counter() - start
        res = evaluate(model, test, metrics=metrics, item_features=features, name=name)
        recs = model.recommend_indices(model.user_ids_.index(res.per_user.index), 10)[0]
        truth_rows = test.to_frame()
        from lmrec.models.validation import truth_from_ids

        _, truth, _, _ = truth_from_ids(
            model.user_ids_, model.item_ids_, truth_rows["user"], truth_rows["item"]
        )
        exposure = exposure_table(recs, truth, tiers, k=10)["exposure_share"]
        nd = res.per_user["ndcg@10"]
        nd.index = nd.index.astype(str)
        row = {"model": name, "fit_s": seconds, **{m: res.summary[m] for m in metrics}}
        by_g = group_breakdown(nd.to_frame("ndcg@10"), gender, n_resamples=1000).loc[
            "ndcg@10", "mean"
        ]
        by_a = group_breakdown(nd.to_frame("ndcg@10"), bands, n_resamples=1000).loc[
            "ndcg@10", "mean"
        ]
        for g, v in by_g.items():
            row[f"ndcg@10 {g}"] = v
        for g, v in by_a.items():
            row[f"ndcg@10 age {g}"] = v
        for label, groups in (("gender", gender), ("age", bands)):
            gap = group_gap(nd, groups, n_resamples=1000, min_users=20)
            row[f"{label} gap"] = gap["gap"]
            row[f"{label} gap low"], row[f"{label} gap high"] = gap["low"], gap["high"]
            row[f"{label} gap groups"] = f"{gap['best']} - {gap['worst']}"
        for tier in ("head", "mid", "tail"):
            row[f"exposure {tier}"] = exposure[tier]
        rows.append(row)
        fitted[name] = model
        print(
            json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}),
            flush=True,
        )
    return rows, fitted, exposure_table(recs, truth, tiers, k=10)["relevance_share"]


def tradeoffs(train, test, ease_params, features):
    """Each re-ranker's metrics over the trade-off grid."""
    from lmrec.eval.protocol import evaluate
    from lmrec.models.rerank import Rerank

    metrics = ["ndcg@10", "miscalibration@10", "ild@10", "arp@10"]
    rows = []
    for method, extra in (
        ("calibrated", {}),
        ("mmr", {"similarity": "attribute"}),
        ("exposure", {"protected_group": "tail"}),
    ):
        for lam in TRADE_OFFS:
            model = Rerank(
                base_model="ease", base_params=ease_params, method=method, trade_off=lam, **extra
            )
            res = evaluate(
                model.fit(train), test, metrics=metrics, item_features=features, name=method
            )
            row = {"method": method, "trade_off": lam, **res.summary}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, index: bool = True) -> str:
    """A GitHub markdown table (floats to 4 decimals) without the tabulate dependency."""
    df = frame.reset_index() if index else frame
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", help="comma-separated (default: every built-in but ranker, pipeline)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-tradeoff", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from lmrec.data.sources import load_builtin
    from lmrec.data.split import random_split
    from lmrec.eval.groups import ItemGroups
    from lmrec.models.capabilities import RatingModel, supports
    from lmrec.models.registry import builtin_models, get_model_class
    from lmrec.report import inputs_from_models, write_report

    t0 = time.perf_counter()
    data = load_builtin("ml-100k")
    split = random_split(data, ratios=(0.8, 0.1, 0.1), seed=args.seed)
    train = split.train.concat(split.valid)
    features = ItemGroups.from_labels(train.items["genres"].to_numpy(), separator="|").membership
    params = {**DEFAULTS, **tuned_params()}
    params["rerank"] = {**DEFAULTS["rerank"], "base_params": params.get("ease", {})}
    names = (
        args.models.split(",")
        if args.models
        else [
            n
            for n in builtin_models()
            if n not in SKIPPED and not supports(get_model_class(n), RatingModel)
        ]
    )
    rows, fitted, relevance = model_rows(
        train, split.test, data.users, data.items, names, params, features
    )
    table = pd.DataFrame(rows).set_index("model")
    out = {"seed": args.seed, "rows": rows, "test_tier_share": relevance.to_dict()}
    tradeoff = None
    if not args.no_tradeoff:
        tradeoff = tradeoffs(train, split.test, params.get("ease", {}), features)
        out["tradeoff"] = tradeoff.to_dict(orient="records")
        cal = tradeoff[tradeoff["method"] == "calibrated"].set_index("trade_off")
        base = cal.loc[0.0]
        cal = cal.assign(
            kl_cut=1 - cal["miscalibration@10"] / base["miscalibration@10"],
            ndcg_loss=1 - cal["ndcg@10"] / base["ndcg@10"],
        )
        ok = cal[(cal["kl_cut"] >= 0.5) & (cal["ndcg_loss"] <= 0.05)]
        out["calibration_target"] = {
            "met": bool(len(ok)),
            "points": cal[["kl_cut", "ndcg_loss"]].reset_index().to_dict(orient="records"),
        }
        print(cal[["ndcg@10", "miscalibration@10", "kl_cut", "ndcg_loss"]].to_string(), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fairness.json").write_text(json.dumps(out, indent=1, default=float))
    show = [
        "ndcg@10",
        "ndcg@10 F",
        "ndcg@10 M",
        "gender gap",
        "gender gap low",
        "gender gap high",
        "age gap",
        "age gap low",
        "age gap high",
        "age gap groups",
        "exposure head",
        "exposure mid",
        "exposure tail",
        "arp@10",
        "pop_lift@10",
        "coverage@10",
        "miscalibration@10",
    ]
    md = [
        f"# Fairness on MovieLens-100K (seed {args.seed})\n",
        markdown(table[show]),
    ]
    ages = [c for c in table.columns if c.startswith("ndcg@10 age ")]
    md += ["\n## NDCG@10 by age band\n", markdown(table[ages])]
    if tradeoff is not None:
        md += [
            "\n## Re-ranking trade-offs (EASE base)\n",
            markdown(tradeoff, index=False),
        ]
    (RESULTS / "fairness.md").write_text("\n".join(md) + "\n")
    report_models = {n: fitted[n] for n in ("ease", "rerank", "popularity") if n in fitted}
    if report_models:
        start = time.perf_counter()
        inputs = inputs_from_models(report_models, split.test, items=data.items, users=data.users)
        inputs.command = "benchmarks/fairness.py"
        inputs.tradeoff = (
            tradeoff[["method", "trade_off", "ndcg@10", "miscalibration@10"]]
            if tradeoff is not None
            else None
        )
        write_report(
            RESULTS / "fairness_report.html",
            inputs,
            groups=["gender", "age_band", "activity", "popularity", "genres"],
            title="lmrec fairness report: MovieLens-100K",
        )
        # The report's cost (lists of 3 models + page; issue target: under 10 s for ML-100K),
        # against fitting EASE measured in the same run on the same machine.
        report_s = time.perf_counter() - start
        ease_s = float(table.loc["ease", "fit_s"]) if "ease" in table.index else float("nan")
        out["report_seconds"] = {"report": report_s, "ease_fit": ease_s, "ratio": report_s / ease_s}
        (RESULTS / "fairness.json").write_text(json.dumps(out, indent=1, default=float))
        print(
            f"report (3 models, lists + page) {report_s:.1f}s = {report_s / ease_s:.2f}x an EASE fit"
        )
    print(table[show].to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"total {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
