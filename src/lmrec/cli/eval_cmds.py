"""``lmrec evaluate``, ``lmrec compare``, ``lmrec models`` and ``lmrec demo``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lmrec.cli import _groups
from lmrec.cli._common import add_read_flags, check_input, check_output, info, read_kwargs
from lmrec.cli._inputs import add_catalog_flags, read_pairs
from lmrec.cli.data_cmds import SPLIT_PROTOCOLS, add_data_source, load_input, run_split
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.data import Dataset
    from lmrec.eval.protocol import EvaluationResult
    from lmrec.models.base import Recommender


def register(sub: Any) -> None:
    """Add the evaluation subcommands to the parser."""
    e = sub.add_parser(
        "evaluate",
        help="score a model directory or a recommendation file against test data",
        description="Either --model DIR (full ranking over the catalog, training items "
        "excluded) or --recommendations recs.csv (columns user,item,rank[,score]) from any "
        "system, against --test.",
    )
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model directory from lmrec train")
    src.add_argument("--recommendations", help="CSV with columns user,item,rank[,score]")
    e.add_argument("--test", required=True, help="test interactions file")
    e.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="FILE",
        help="with --model: interactions whose items are also dropped from each "
        "user's list, e.g. the validation file of a model trained on train only "
        "(repeatable)",
    )
    e.add_argument(
        "--train",
        action="append",
        default=[],
        metavar="FILE",
        help="with --recommendations: the training interactions of the system that "
        "made the lists (repeatable, e.g. train and valid); they define the catalog "
        "for coverage and Gini and the popularity for novelty",
    )
    e.add_argument(
        "--items",
        help="item catalog file (see --items-item-col): its items join the "
        "catalog for coverage and Gini of --recommendations, its attributes (genres) "
        "give diversity, calibration and item groups",
    )
    add_metric_flags(e)
    e.add_argument(
        "--format",
        default="table",
        choices=["table", "json"],
        help="table (default: value and 95%% bootstrap CI per metric) or json",
    )
    e.add_argument("--per-user", help="also write per-user metrics to this CSV")
    add_read_flags(e)
    add_catalog_flags(e)
    _groups.add_group_flags(e)
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser(
        "compare",
        help="train several models on one split and compare them with confidence intervals",
        description="Split --data/--dataset (or take --train and --test), fit every model of "
        "--models on train (+ valid), evaluate each on test under the full-ranking protocol, "
        "and print each metric with its 95%% bootstrap CI and the paired difference to the "
        "baseline model. Example: lmrec compare --dataset ml-100k --models popularity,ease",
    )
    add_data_source(c, required=False)
    c.add_argument("--train", help="train file (instead of --data/--dataset + split)")
    c.add_argument("--test", help="test file, with --train")
    c.add_argument(
        "--models", required=True, help="comma-separated model names, e.g. popularity,ease"
    )
    c.add_argument(
        "--baseline",
        help="model the differences are taken against (default: the first of --models)",
    )
    c.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="MODEL.KEY=VALUE",
        help="hyperparameter for one model, e.g. ease.l2=300 (repeatable)",
    )
    c.add_argument(
        "--protocol",
        default="random",
        choices=SPLIT_PROTOCOLS,
        help="how --data/--dataset is split, as in lmrec split (default: random); "
        "models are fitted on train + valid",
    )
    c.add_argument(
        "--ratios",
        type=float,
        nargs="+",
        default=[0.8, 0.1, 0.1],
        help="random and global_temporal: train/valid/test (or train/test) "
        "fractions (default: 0.8 0.1 0.1)",
    )
    c.add_argument(
        "--test-fraction",
        type=float,
        help="user_temporal: each user's latest fraction goes to test",
    )
    c.add_argument(
        "--test-n", type=int, help="user_temporal: each user's latest n interactions go to test"
    )
    c.add_argument(
        "--fraction",
        type=float,
        default=0.2,
        help="cold_items / cold_users: share held out (default 0.2)",
    )
    c.add_argument("--seed", type=int, default=2026, help="split seed (default 2026)")
    add_metric_flags(c)
    c.add_argument(
        "--format",
        default="table",
        choices=["table", "json", "markdown"],
        help="table: one line per model and metric, within 100 columns "
        "(default); markdown: a table of rounded values with CIs and one of "
        "differences; json: every number",
    )
    add_catalog_flags(c)
    _groups.add_group_flags(c)
    c.set_defaults(func=cmd_compare)

    m = sub.add_parser("models", help="list registered models and their hyperparameters")
    m.add_argument(
        "dirs",
        nargs="*",
        metavar="MODEL_DIR",
        help="instead, describe saved models: name, size, differential privacy",
    )
    m.set_defaults(func=cmd_models)

    d = sub.add_parser(
        "demo", help="the MovieLens-100K walk-through: train, evaluate, compare, show"
    )
    d.add_argument("--models", default=None, help="comma-separated models (default: a strong set)")
    d.add_argument("--seed", type=int, default=2026, help="split seed (default 2026)")
    d.add_argument("--users", type=int, default=3, help="how many example users to show")
    d.set_defaults(func=cmd_demo)


def add_metric_flags(p: argparse.ArgumentParser) -> None:
    """``-k`` and ``--metrics``."""
    p.add_argument("-k", type=int, nargs="+", default=[10, 20], help="cut-offs (default 10 20)")
    p.add_argument(
        "--metrics",
        help="comma-separated metric names overriding the defaults, "
        "e.g. ndcg@10,recall@20,coverage@10",
    )


def metric_names(args: argparse.Namespace) -> list[str]:
    """Metric specs from ``--metrics`` or the defaults at each ``-k``."""
    from lmrec.eval.metrics import parse_metric
    from lmrec.models.base import check_k

    if args.metrics:
        names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    else:
        ks = sorted({check_k(k, "-k") for k in args.k})
        names = [
            f"{m}@{k}"
            for k in ks
            for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
        ]
        names += [f"{m}@{ks[-1]}" for m in ("coverage", "gini", "novelty")]
    for n in names:
        parse_metric(n)
    return names


def _print_result(res, fmt: str) -> None:
    """The metrics of one evaluation: a table with 95% bootstrap CIs, or JSON."""
    ci = {m: res.ci(m)[1:] for m in res.summary if m in res.per_user}
    if fmt == "json":
        print(
            json.dumps(
                {
                    "model": res.name,
                    "users": res.n_users,
                    "cold_users": res.n_cold_users,
                    "metrics": res.summary,
                    "ci95": ci,
                    "notes": res.notes,
                },
                indent=2,
            )
        )
        return
    width = max(len(k) for k in ["model", *res.summary])
    print(f"{'model':<{width}}  {res.name}")
    print(f"{'users':<{width}}  {res.n_users}")
    for k, v in res.summary.items():
        interval = f"  [{ci[k][0]:.4f}, {ci[k][1]:.4f}]" if k in ci else ""
        print(f"{k:<{width}}  {v:.4f}{interval}")
    for note in res.notes:
        info(f"note: {note}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lmrec.data import load_dataset, read_interactions
    from lmrec.eval.protocol import evaluate_recommendations

    names = metric_names(args)
    list_names, point_names = _groups.split_metrics(names)
    groups = _groups.groups_list(args)
    test_path = check_input(args.test, "Test file")
    if args.per_user:
        check_output(args.per_user, True)
    if args.model and args.train:
        raise ConfigError(
            "--train goes with --recommendations; a model directory knows its training data."
        )
    if args.recommendations and args.exclude:
        raise ConfigError(
            "--exclude goes with --model; lists from --recommendations are scored as they are."
        )
    _groups.check_group_outputs(args)
    fingerprint = _groups.file_fingerprint(
        model=args.model,
        recommendations=args.recommendations,
        test=args.test,
        train=args.train,
        items=args.items,
        users=args.users_file,
    )
    if args.model:
        from lmrec.models import load_model

        model = load_model(check_input(args.model, "Model directory"))
        test, report = load_dataset(test_path, **read_kwargs(args))
        exclude = read_pairs(args.exclude, "--exclude file", **read_kwargs(args))
        items, users = _groups.read_catalogs(args, test.items, test.users)
        _groups.check_groups_known(groups, items, users)
        features = _groups.item_features(
            items, model._item_ids.lookup(np.arange(model.n_items)), args, list_names
        )
        res = _evaluate_model(
            model, test, list_names, point_names, exclude=exclude, item_features=features
        )
        seen = model._seen
        history: pd.Series | None = pd.Series(
            np.diff(seen.indptr), index=model._user_ids.lookup(np.arange(seen.shape[0]))
        )
        if args.report:
            _groups.write_model_report(args, {res.name: model}, test, items, users, fingerprint)
    else:
        if point_names:
            raise ConfigError(
                f"{', '.join(point_names)} need a model's scores or predicted ratings, which "
                "recommendation lists do not carry; evaluate a model directory with --model, or "
                "use list metrics (ndcg@10, recall@10, ...)."
            )
        items, users = _groups.read_catalogs(args)
        _groups.check_groups_known(groups, items, users)
        if any(m.split("@")[0] in _groups.NEEDS_FEATURES for m in list_names):
            raise ConfigError(
                "ild and miscalibration of recommendation files are in the report: "
                "add --report report.html --items catalog.csv."
            )
        recs_path = check_input(args.recommendations, "Recommendation file")
        recs = pd.read_csv(recs_path, dtype={"user": str, "item": str})
        test_frame, _ = read_interactions(test_path, **read_kwargs(args))
        train = read_pairs(args.train, "--train file", **read_kwargs(args))
        catalog = None if items is None else items.index
        res = evaluate_recommendations(
            recs, test_frame, train=train, metrics=list_names, catalog=catalog
        )
        history = None if train is None else train.groupby("user").size()
        if args.report:
            _groups.write_recs_report(args, recs, test_frame, train, items, users, fingerprint)
    _print_result(res, args.format)
    if groups:
        _groups.print_groups(res, users, groups, history)
    if args.per_user:
        res.per_user.to_csv(args.per_user)
    return 0


def _evaluate_model(
    model: Recommender,
    test: Dataset,
    list_names: list[str],
    point_names: list[str],
    *,
    name: str | None = None,
    exclude: pd.DataFrame | None = None,
    item_features: Any = None,
) -> EvaluationResult:
    """One result: list metrics (:func:`~lmrec.eval.protocol.evaluate`) and pointwise ones
    (:func:`~lmrec.eval.ratings.evaluate_pointwise`), per-user values joined."""
    from lmrec.eval.protocol import evaluate
    from lmrec.eval.ratings import evaluate_pointwise

    res = None
    if list_names:
        res = evaluate(
            model,
            test,
            metrics=list_names,
            exclude=exclude,
            item_features=item_features,
            name=name,
        )
    if point_names:
        point = evaluate_pointwise(model, test, metrics=point_names, name=name)
        return point if res is None else _with_pointwise(res, point)
    if res is None:
        raise ConfigError("No metric to compute: give --metrics (e.g. ndcg@10,recall@10).")
    return res


def _with_pointwise(res: EvaluationResult, point: EvaluationResult) -> EvaluationResult:
    """``res`` (list metrics) with ``point``'s pointwise metrics and per-user values joined."""
    res.summary.update(point.summary)
    if "auc" in point.per_user:
        res.per_user = res.per_user.join(point.per_user[["auc"]], how="left")
    res.notes += [n for n in point.notes if n not in res.notes]
    return res


def _split_params(pairs: list[str], models: list[str]) -> dict[str, dict[str, str]]:
    from lmrec.models.config import parse_params

    out: dict[str, dict[str, str]] = {m: {} for m in models}
    for key, value in parse_params(pairs).items():
        model, dot, param = key.partition(".")
        if not dot or model not in out:
            raise ConfigError(
                f"--param for compare is MODEL.KEY=VALUE with MODEL in {models}; got {key!r}."
            )
        out[model][param] = value
    return out


def _compare_inputs(args: argparse.Namespace):
    from lmrec.data import read_interactions
    from lmrec.data.dataset import datasets_with_shared_ids

    if args.train or args.test:
        if not (args.train and args.test) or args.data or args.dataset:
            raise ConfigError(
                "Use --train with --test, or --data/--dataset (split here), not both."
            )
        tr, _ = read_interactions(check_input(args.train, "Train file"), **read_kwargs(args))
        te, _ = read_interactions(check_input(args.test, "Test file"), **read_kwargs(args))
        train, test = datasets_with_shared_ids([tr, te], names=["train", "test"])
        return train, test
    if not (args.data or args.dataset):
        raise ConfigError("compare needs --data FILE or --dataset NAME, or --train with --test.")
    split = run_split(load_input(args), args)
    info(split.summary())
    train = (
        split.train if split.valid is None else split.train.concat(split.valid, name="train+valid")
    )
    return train, split.test


def run_comparison(
    train,
    test,
    models: list[str],
    params: dict[str, dict[str, Any]],
    metrics: list[str],
    baseline: str | None = None,
    *,
    item_features: Any = None,
) -> tuple[pd.DataFrame, dict, dict]:
    """Fit each model on ``train``, evaluate on ``test``: the comparison table (differences
    against ``baseline``, default the first model), the fitted models and their results.
    Pointwise metrics (rmse, mae, auc, f1) go through ``evaluate_pointwise``."""
    import time

    from lmrec.eval.protocol import compare
    from lmrec.models import create_model

    metrics, point = _groups.split_metrics(metrics)

    results, fitted = {}, {}
    for name in models:
        model = create_model(name, params.get(name))
        start = time.perf_counter()
        model.fit(train)
        seconds = time.perf_counter() - start
        info(f"fitted {name} in {seconds:.1f}s")
        res = _evaluate_model(model, test, metrics, point, name=name, item_features=item_features)
        results[name] = res
        results[name].summary["fit_seconds"] = seconds
        fitted[name] = model
    table = compare(results, metrics=[*metrics, *point, "fit_seconds"], baseline=baseline)
    return table, fitted, results


def cmd_compare(args: argparse.Namespace) -> int:
    from lmrec.models.config import build_config
    from lmrec.models.registry import get_model_class

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise ConfigError("--models lists no model.")
    params = _split_params(args.param, models)
    for m in models:
        cls = get_model_class(m)
        build_config(cls.config_class, params[m])
    baseline = args.baseline or models[0]
    if baseline not in models:
        raise ConfigError(f"--baseline {baseline!r} is not one of --models ({', '.join(models)}).")
    names = metric_names(args)
    groups = _groups.groups_list(args)
    _groups.check_group_outputs(args)
    from lmrec.cli.model_cmds import check_timestamps_for

    check_timestamps_for(args, models)
    train, test = _compare_inputs(args)
    items, users = _groups.read_catalogs(args, train.items, train.users)
    _groups.check_groups_known(groups, items, users)
    features = _groups.item_features(
        items,
        train.item_ids.lookup(np.arange(train.n_items)),
        args,
        _groups.split_metrics(names)[0],
    )
    table, fitted, results = run_comparison(
        train, test, models, params, names, baseline=baseline, item_features=features
    )
    _print_comparison(table, names, baseline, args.format)
    if groups:
        history = pd.Series(
            train.user_counts(), index=train.user_ids.lookup(np.arange(train.n_users))
        )
        for res in results.values():
            _groups.print_groups(res, users, groups, history)
    if args.report:
        fingerprint = _groups.file_fingerprint(
            data=args.data,
            dataset=args.dataset,
            train=args.train,
            test=args.test,
            items=args.items,
            users=args.users_file,
        )
        _groups.write_model_report(args, fitted, test, items, users, fingerprint)
    return 0


def _print_comparison(table: pd.DataFrame, names: list[str], baseline: str, fmt: str) -> None:
    """The comparison table as ``--format`` asks: json, markdown or the long table."""
    from lmrec.cli.tables import comparison_long, comparison_markdown

    if fmt == "json":
        print(table.to_json(orient="index", indent=2))
    elif fmt == "markdown":
        print(comparison_markdown(table, names, baseline))
    else:
        print(comparison_long(table, names, baseline))


def cmd_models(args: argparse.Namespace) -> int:
    from lmrec.models.registry import get_model_class, list_models

    if getattr(args, "dirs", None):
        return _describe_model_dirs(args.dirs)
    for name in list_models():
        try:
            cls = get_model_class(name)
        except ImportError as e:
            print(f"{name}\t(unavailable: {e})")
            continue
        fields = ", ".join(
            f"{k}={v.get_default(call_default_factory=True)!r}"
            for k, v in cls.config_class.model_fields.items()
        )
        print(f"{name}\t{fields}")
    return 0


def _describe_model_dirs(dirs: list[str]) -> int:
    """One line per saved model: name, users x items, and its privacy budget (issue 21)."""
    from lmrec.models.files import read_model_files

    for d in dirs:
        files = read_model_files(d)
        p = files.meta.get("privacy")
        dp = (
            f"dp: epsilon={p['epsilon']:.3g}, delta={p['delta']:.3g}, unit={p['unit']}"
            if p
            else "dp: none"
        )
        print(f"{d}\t{files.name}\t{len(files.user_ids)} users x {len(files.item_ids)} items\t{dp}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lmrec.demo import run_demo

    models = [m.strip() for m in args.models.split(",")] if args.models else None
    run_demo(models=models, seed=args.seed, n_users=args.users, out=sys.stdout)
    return 0
