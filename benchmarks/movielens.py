"""Accuracy benchmark on MovieLens-100K: lmrec models against peer libraries.

Protocol (the same for every row of the table):

- MovieLens-100K through ``lmrec.data.sources.load_builtin("ml-100k")``; every rating
  is a positive implicit interaction (weight 1).
- Per-user random 80/10/10 split (``lmrec.data.split.random_split``, seed 2026).
- Each model is tuned on *valid* with ``lmrec.tune.tune`` (TPE sampler, same seed, same
  number of trials for a model and its peers), refit on train + valid with the best
  parameters, and evaluated once on *test* with ``lmrec.eval.protocol.evaluate``: full
  ranking over the catalog, the user's train + valid items excluded, 95% per-user
  bootstrap confidence intervals.
- Peers (implicit ALS, BPR, cosine and BM25 item-kNN; LightFM WARP when installed) are
  wrapped in small :class:`~lmrec.models.base.Recommender` adapters below, so they go
  through exactly the same tuning and evaluation code.
- Parity checks at identical parameters (not tuned separately): lmrec EASE against a
  plain NumPy EASE (dense float64 inverse), and lmrec ALS against implicit ALS.

Run ``python benchmarks/movielens.py`` (about 10 minutes on 2 idle cores) or
``--quick`` (3 trials per model) for a smoke test. Results go to
``benchmarks/results/movielens.md`` (and ``.json``; tuning trials under
``benchmarks/results/movielens_tuning/``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from lmrec.data.dataset import Dataset
from lmrec.data.sources import load_builtin
from lmrec.data.split import random_split
from lmrec.errors import ConfigError
from lmrec.eval.metrics import METRICS
from lmrec.eval.protocol import evaluate
from lmrec.models.base import Recommender
from lmrec.models.capabilities import DotProductModel
from lmrec.models.config import ModelConfig
from lmrec.models.registry import create_model, get_model_class, list_models, register_model
from lmrec.tune import search_space, tune

HIT = "hit_rate@10" if "hit_rate" in METRICS else "hitrate@10"
TEST_METRICS = ["recall@10", "recall@20", "ndcg@10", "ndcg@20", HIT, "mrr@10", "coverage@10"]
METRIC_LABELS = {
    "recall@10": "Recall@10",
    "recall@20": "Recall@20",
    "ndcg@10": "NDCG@10",
    "ndcg@20": "NDCG@20",
    HIT: "HitRate@10",
    "mrr@10": "MRR@10",
    "coverage@10": "Coverage@10",
}
TUNE_METRIC = "ndcg@10"
RESULTS = Path(__file__).resolve().parent / "results"

#: Models whose fits take seconds, not milliseconds: they get half the trial budget
#: (and so do their peers, so a model and its peers always get the same budget).
SLOW = {"bpr", "fm", "implicit_bpr", "lightfm_warp", "lightfm_warp_genre"}


# ---------------------------------------------------------------------- peer adapters
def _binary(dataset: Dataset) -> sp.csr_matrix:
    x = dataset.matrix.astype(np.float32, copy=True)
    x.data[:] = 1.0
    return x


class ImplicitALSConfig(ModelConfig):
    """implicit's ALS parameters; ``alpha`` is implicit's own (confidence = alpha * r)."""

    factors: int = Field(default=64, ge=1)
    regularization: float = Field(default=0.01, ge=0)
    alpha: float = Field(default=2.0, gt=0)
    iterations: int = Field(default=15, ge=1)
    use_cg: bool = True
    seed: int = Field(default=0, ge=0)


class _FactorAdapter(Recommender, DotProductModel):
    """Scores ``user_factors @ item_factors.T`` (so lmrec's fused top-k serves it too)."""

    user_factors_: np.ndarray | None = None
    item_factors_: np.ndarray | None = None

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.user_factors_[user_idx] @ self.item_factors_.T, dtype=np.float32)  # type: ignore[index,union-attr]

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_  # type: ignore[return-value]

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_factors_[user_idx]  # type: ignore[index]

    def _keep(self, model: Any) -> None:
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)


class ImplicitALS(_FactorAdapter):
    """``implicit.als.AlternatingLeastSquares`` on the binary user x item matrix."""

    config_class = ImplicitALSConfig
    config: ImplicitALSConfig

    def _fit(
        self, dataset: Dataset, *, valid: Dataset | None = None, options: object = None
    ) -> None:
        from implicit.als import AlternatingLeastSquares

        c = self.config
        model = AlternatingLeastSquares(
            factors=c.factors,
            regularization=c.regularization,
            alpha=c.alpha,
            iterations=c.iterations,
            use_cg=c.use_cg,
            random_state=c.seed,
            use_gpu=False,
        )
        with threadpool_limits(1, "blas"):
            model.fit(_binary(dataset), show_progress=False)
        self._keep(model)


class ImplicitBPRConfig(ModelConfig):
    """implicit's BPR parameters."""

    factors: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    regularization: float = Field(default=0.01, ge=0)
    iterations: int = Field(default=100, ge=1)
    seed: int = Field(default=0, ge=0)


class ImplicitBPR(_FactorAdapter):
    """``implicit.bpr.BayesianPersonalizedRanking`` (item bias folded into the factors)."""

    config_class = ImplicitBPRConfig
    config: ImplicitBPRConfig

    def _fit(
        self, dataset: Dataset, *, valid: Dataset | None = None, options: object = None
    ) -> None:
        from implicit.bpr import BayesianPersonalizedRanking
        from implicit.recommender_base import ModelFitError

        c = self.config
        model = BayesianPersonalizedRanking(
            factors=c.factors,
            learning_rate=c.learning_rate,
            regularization=c.regularization,
            iterations=c.iterations,
            random_state=c.seed,
            use_gpu=False,
        )
        with threadpool_limits(1, "blas"):
            try:
                model.fit(_binary(dataset), show_progress=False)
            except ModelFitError as e:  # diverged (NaN factors): a failed trial, not a crash
                raise ConfigError(f"implicit BPR diverged with {c!r}: {e}") from e
        self._keep(model)


class ImplicitCosineConfig(ModelConfig):
    """implicit's cosine item-kNN parameters."""

    K: int = Field(default=20, ge=1)


class ImplicitBM25Config(ModelConfig):
    """implicit's BM25 item-kNN parameters."""

    K: int = Field(default=20, ge=1)
    K1: float = Field(default=1.2, ge=0)
    B: float = Field(default=0.75, ge=0, le=1)


class _ImplicitKNN(Recommender):
    """Scores ``user_items @ similarity`` like implicit's ItemItemRecommender."""

    similarity_: sp.csr_matrix | None = None
    user_items_: sp.csr_matrix | None = None

    def _make(self) -> Any:
        raise NotImplementedError

    def _fit(
        self, dataset: Dataset, *, valid: Dataset | None = None, options: object = None
    ) -> None:
        from implicit.utils import ParameterWarning

        model = self._make()
        self.user_items_ = _binary(dataset)
        # We pass CSR; implicit 0.7.3 itself hands a COO (its normalize / bm25_weight
        # output on current SciPy) to all_pairs_knn, which warns on every fit.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ParameterWarning)
            model.fit(self.user_items_, show_progress=False)
        self.similarity_ = model.similarity.tocsr()

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray((self.user_items_[user_idx] @ self.similarity_).toarray(), np.float32)  # type: ignore[index,operator]


class ImplicitCosine(_ImplicitKNN):
    """``implicit.nearest_neighbours.CosineRecommender``."""

    config_class = ImplicitCosineConfig
    config: ImplicitCosineConfig

    def _make(self) -> Any:
        from implicit.nearest_neighbours import CosineRecommender

        return CosineRecommender(K=self.config.K)


class ImplicitBM25(_ImplicitKNN):
    """``implicit.nearest_neighbours.BM25Recommender``."""

    config_class = ImplicitBM25Config
    config: ImplicitBM25Config

    def _make(self) -> Any:
        from implicit.nearest_neighbours import BM25Recommender

        c = self.config
        return BM25Recommender(K=c.K, K1=c.K1, B=c.B)


class NumpyEASEConfig(ModelConfig):
    """The reference EASE's one parameter."""

    l2: float = Field(default=500.0, gt=0)


class NumpyEASE(Recommender):
    """Reference EASE (Steck 2019) in plain NumPy: dense float64 inverse, eq. 8."""

    config_class = NumpyEASEConfig
    config: NumpyEASEConfig
    B_: np.ndarray | None = None
    X_: sp.csr_matrix | None = None

    def _fit(
        self, dataset: Dataset, *, valid: Dataset | None = None, options: object = None
    ) -> None:
        x = _binary(dataset).astype(np.float64)
        g = (x.T @ x).toarray()
        g[np.diag_indices_from(g)] += self.config.l2
        p = np.linalg.inv(g)
        b = -p / np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        self.B_, self.X_ = b, x

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.X_[user_idx] @ self.B_, dtype=np.float32)  # type: ignore[index,operator]


class LightFMConfig(ModelConfig):
    """LightFM WARP parameters."""

    no_components: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    item_alpha: float = Field(default=1e-6, ge=0)
    user_alpha: float = Field(default=1e-6, ge=0)
    epochs: int = Field(default=30, ge=1)
    genres: bool = False
    seed: int = Field(default=0, ge=0)


class LightFMWarp(Recommender):
    """``lightfm.LightFM(loss="warp")``, optionally with item genre features (+ identity)."""

    config_class = LightFMConfig
    config: LightFMConfig
    user_emb_: np.ndarray | None = None
    item_emb_: np.ndarray | None = None
    item_bias_: np.ndarray | None = None

    def _fit(
        self, dataset: Dataset, *, valid: Dataset | None = None, options: object = None
    ) -> None:
        from lightfm import LightFM

        c = self.config
        features = _genre_features(dataset) if c.genres else None
        model = LightFM(
            loss="warp",
            no_components=c.no_components,
            learning_rate=c.learning_rate,
            item_alpha=c.item_alpha,
            user_alpha=c.user_alpha,
            random_state=c.seed,
        )
        model.fit(_binary(dataset).tocoo(), item_features=features, epochs=c.epochs, num_threads=1)
        self.item_bias_, self.item_emb_ = model.get_item_representations(features)
        _, self.user_emb_ = model.get_user_representations()

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        s = self.user_emb_[user_idx] @ self.item_emb_.T + self.item_bias_  # type: ignore[index,union-attr,operator]
        return np.asarray(s, np.float32)


def _genre_features(dataset: Dataset) -> sp.csr_matrix:
    """Identity plus one-hot genres, rows normalised (LightFM's usual item features)."""
    genres = dataset.items["genres"].fillna("").astype(str).str.get_dummies(sep="|")  # type: ignore[index]
    onehot = sp.csr_matrix(genres.to_numpy(np.float32))
    feats = sp.hstack([sp.identity(dataset.n_items, np.float32, format="csr"), onehot]).tocsr()
    norm = np.asarray(feats.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.maximum(norm, 1.0)).astype(np.float32) @ feats


# ---------------------------------------------------------------------- model table
def _lightfm_available() -> tuple[bool, str]:
    try:
        import lightfm  # noqa: F401
    except ModuleNotFoundError as e:
        return False, f"LightFM is unavailable ({e}); its rows are skipped."
    return True, ""


LIGHTFM_SPACE = {
    "no_components": ("int_log", 16, 256),
    "learning_rate": ("float_log", 1e-3, 0.3),
    "item_alpha": ("float_log", 1e-8, 1e-3),
    "user_alpha": ("float_log", 1e-8, 1e-3),
    "epochs": ("int", 5, 50),
}
ALS_SPACE_IMPLICIT = {
    "factors": ("int_log", 16, 256),
    "regularization": ("float_log", 1e-3, 10.0),
    "alpha": ("float_log", 1.0, 100.0),
    "iterations": ("int", 5, 30),
}

# lmrec's bpr / fm spaces with the slowest corners cut, so the default run fits in
# ~20 min on a shared 2-core machine (a 191-factor, 17-negative, 30-epoch WARP trial of
# fm took 8 minutes there).
BPR_SPACE = {**search_space("bpr"), "factors": ("int_log", 16, 128), "epochs": ("int", 5, 40)}
FM_SPACE = {
    **search_space("fm"),
    "factors": ("int_log", 16, 128),
    "epochs": ("int", 5, 30),
    "n_negatives": ("int", 2, 8, {"loss": "warp"}),
}

#: name -> (library, adapter class or None for an lmrec model, space or None, fixed params).
MODELS: dict[str, tuple[str, type | None, dict | None, dict]] = {
    "popularity": ("lmrec", None, None, {}),
    "itemknn": ("lmrec", None, None, {}),
    "userknn": ("lmrec", None, None, {}),
    "ease": ("lmrec", None, None, {}),
    "svd": ("lmrec", None, None, {}),
    "als": ("lmrec", None, None, {}),
    "bpr": ("lmrec", None, BPR_SPACE, {"device": "cpu"}),
    "fm": ("lmrec", None, FM_SPACE, {"device": "cpu"}),
    "implicit_als": ("implicit", ImplicitALS, ALS_SPACE_IMPLICIT, {}),
    "implicit_bpr": (
        "implicit",
        ImplicitBPR,
        {
            "factors": ("int_log", 16, 256),
            "learning_rate": ("float_log", 1e-3, 0.3),
            "regularization": ("float_log", 1e-5, 0.1),
            "iterations": ("int", 10, 200),
        },
        {},
    ),
    "implicit_cosine": ("implicit", ImplicitCosine, {"K": ("int_log", 10, 500)}, {}),
    "implicit_bm25": (
        "implicit",
        ImplicitBM25,
        {
            "K": ("int_log", 10, 500),
            "K1": ("float", 0.5, 3.0),
            "B": ("float", 0.0, 1.0),
        },
        {},
    ),
    "lightfm_warp": ("lightfm", LightFMWarp, LIGHTFM_SPACE, {"genres": False}),
    "lightfm_warp_genre": ("lightfm", LightFMWarp, LIGHTFM_SPACE, {"genres": True}),
}


def _register_peers() -> None:
    """Register each adapter under its row name (a subclass each: one class, one name)."""
    known = set(list_models())
    for name, (_, cls, _, _) in MODELS.items():
        if cls is not None and name not in known:
            register_model(name, type(f"{cls.__name__}_{name}", (cls,), {}))


def _fm_fixed() -> dict[str, Any]:
    """FM with item genres and user age, gender and occupation."""
    return {"item_features": ["genres"], "user_features": ["age", "gender", "occupation"]}


# ---------------------------------------------------------------------- running
def _fmt_ci(mean: float, lo: float, hi: float) -> str:
    return f"{mean:.4f} [{lo:.4f}, {hi:.4f}]"


def _fmt_params(
    params: dict[str, Any], hide: tuple[str, ...] = ("seed", "device", "n_threads")
) -> str:
    def one(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    return ", ".join(f"{k}={one(v)}" for k, v in params.items() if k not in hide) or "-"


def _evaluate_row(model: Recommender, test: Dataset, name: str, seed: int) -> dict[str, Any]:
    res = evaluate(model, test, metrics=TEST_METRICS, name=name, show_progress=False)
    row: dict[str, Any] = {"users": res.n_users}
    for m in TEST_METRICS:
        if m in res.per_user:
            mean, lo, hi = res.ci(m, seed=seed)
            row[m] = {"mean": mean, "low": lo, "high": hi}
        else:
            row[m] = {"mean": res.summary[m]}
    return row


def run_model(
    name: str, split: Any, n_trials: int, seed: int, out: Path, torch_threads: int
) -> dict[str, Any]:
    library, _, space, fixed = MODELS[name]
    fixed = dict(fixed)
    if name == "fm":
        fixed.update(_fm_fixed())
    if library == "lmrec" and "n_threads" in get_model_class(name).config_class.model_fields:
        fixed["n_threads"] = torch_threads
    t0 = time.perf_counter()
    result = tune(
        name,
        split.train,
        split.valid,
        metric=TUNE_METRIC,
        n_trials=n_trials,
        sampler="tpe",
        seed=seed,
        fixed_params=fixed,
        space=space,
        show_progress=False,
    )
    tune_s = time.perf_counter() - t0
    result.save(out / name)
    t0 = time.perf_counter()
    model = result.refit(split.train, split.valid)
    fit_s = time.perf_counter() - t0
    row = _evaluate_row(model, split.test, name, seed)
    n_failed = int((result.trials["state"] != "COMPLETE").sum())
    row.update(
        model=name,
        library=library,
        params=result.best_params,
        valid_ndcg10=result.best_value,
        trials=len(result.trials),
        failed_trials=n_failed,
        tune_s=tune_s,
        fit_s=fit_s,
    )
    return row


def parity(split: Any, rows: dict[str, dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Identical-parameter comparisons: EASE vs NumPy EASE, lmrec ALS vs implicit ALS."""
    full = split.train.concat(split.valid)
    checks = []
    if "ease" in rows:
        l2 = rows["ease"]["params"]["l2"]
        t0 = time.perf_counter()
        ref = NumpyEASE(l2=l2).fit(full)
        ref_s = time.perf_counter() - t0
        ref_row = _evaluate_row(ref, split.test, "numpy_ease", seed)
        ours = rows["ease"]["ndcg@10"]["mean"]
        checks.append(
            {
                "check": "lmrec ease / numpy EASE",
                "params": f"l2={l2:.4g}",
                "lmrec": ours,
                "reference": ref_row["ndcg@10"]["mean"],
                "ratio": ours / ref_row["ndcg@10"]["mean"],
                "reference_fit_s": ref_s,
            }
        )
    if "als" in rows:
        p = rows["als"]["params"]
        ours_model = create_model("als", p).fit(full)
        ours = _evaluate_row(ours_model, split.test, "als", seed)["ndcg@10"]["mean"]
        # lmrec's confidence is 1 + alpha * r; implicit's is its alpha * r (r = 1 here).
        peer = {
            "factors": p["factors"],
            "regularization": p["l2"],
            "alpha": 1.0 + p["alpha"],
            "iterations": p["iterations"],
            "seed": p["seed"],
        }
        t0 = time.perf_counter()
        peer_model = ImplicitALS(**peer).fit(full)
        peer_s = time.perf_counter() - t0
        theirs = _evaluate_row(peer_model, split.test, "implicit_als", seed)["ndcg@10"]["mean"]
        checks.append(
            {
                "check": "lmrec als / implicit als",
                "params": _fmt_params(p) + " (implicit alpha = 1 + alpha)",
                "lmrec": ours,
                "reference": theirs,
                "ratio": ours / theirs,
                "reference_fit_s": peer_s,
            }
        )
    return checks


def markdown(rows: list[dict[str, Any]], checks: list[dict[str, Any]], header: list[str]) -> str:
    cols = [
        "Model",
        "Library",
        "Best params",
        *(METRIC_LABELS[m] for m in TEST_METRICS),
        "Trials",
        "Tune s",
        "Fit s",
    ]
    lines = [*header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [r["model"], r["library"], _fmt_params(r["params"]).replace("|", "\\|")]
        for m in TEST_METRICS:
            v = r[m]
            cells.append(
                _fmt_ci(v["mean"], v["low"], v["high"]) if "low" in v else f"{v['mean']:.4f}"
            )
        trials = f"{r['trials']}" + (
            f" ({r['failed_trials']} failed)" if r["failed_trials"] else ""
        )
        cells += [trials, f"{r['tune_s']:.1f}", f"{r['fit_s']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if checks:
        lines += [
            "",
            "Parity at identical parameters (test NDCG@10; the issue requires |ratio - 1| <= 1%):",
            "",
            "| Check | Params | lmrec | reference | ratio | within 1% | reference fit s |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in checks:
            ok = "yes" if abs(c["ratio"] - 1.0) <= 0.01 else "NO"
            lines.append(
                f"| {c['check']} | {c['params']} | {c['lmrec']:.4f} | {c['reference']:.4f} | "
                f"{c['ratio']:.4f} | {ok} | {c['reference_fit_s']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials",
        type=int,
        default=20,
        help="tuning trials per fast model (slow SGD ones get half, >= 3); default 20",
    )
    parser.add_argument("--seed", type=int, default=2026, help="split, tuning and model seed")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma list from: {', '.join(MODELS)}"
    )
    parser.add_argument("--quick", action="store_true", help="3 trials per model (smoke test)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads of bpr and fm (default 1: on a busy 2-core machine 2 "
        "threads made each BPR epoch ~20x slower)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "movielens.md",
        help="markdown output (a .json with the same stem is written beside it)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if args.trials < 1 or args.seed < 0 or args.torch_threads < 1:
        parser.error("--trials and --torch-threads must be >= 1, --seed >= 0")
    n_fast = 3 if args.quick else args.trials
    n_slow = 3 if args.quick else max(3, args.trials // 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tuning_dir = args.out.parent / f"{args.out.stem}_tuning"

    has_lightfm, lightfm_note = _lightfm_available()
    if not has_lightfm:
        print(lightfm_note, flush=True)
        names = [n for n in names if MODELS[n][0] != "lightfm"]
    _register_peers()

    t_start = time.perf_counter()
    data = load_builtin("ml-100k")
    split = random_split(data, ratios=(0.8, 0.1, 0.1), seed=args.seed)
    print(
        f"ml-100k: {data.n_users} users, {data.n_items} items, {data.n_interactions} interactions; "
        f"train/valid/test = {split.train.n_interactions}/{split.valid.n_interactions}/"
        f"{split.test.n_interactions}",
        flush=True,
    )

    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        n_trials = n_slow if name in SLOW else n_fast
        print(
            f"[{time.perf_counter() - t_start:7.1f}s] {name}: tuning with {n_trials} trials ...",
            flush=True,
        )
        row = run_model(name, split, n_trials, args.seed, tuning_dir, args.torch_threads)
        rows[name] = row
        print(
            f"    best {_fmt_params(row['params'])}; valid NDCG@10 {row['valid_ndcg10']:.4f}, "
            f"test NDCG@10 {row['ndcg@10']['mean']:.4f}, tune {row['tune_s']:.1f}s, "
            f"fit {row['fit_s']:.2f}s",
            flush=True,
        )
    checks = parity(split, rows, args.seed)
    total = time.perf_counter() - t_start

    command = " ".join(
        ["python benchmarks/movielens.py", *(sys.argv[1:] if argv is None else argv)]
    )
    header = [
        "# MovieLens-100K accuracy benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"- Data: ml-100k, all {data.n_interactions} ratings as implicit positives (weight 1); "
        f"per-user random 80/10/10 split, seed {args.seed} ({split.train.n_interactions}/"
        f"{split.valid.n_interactions}/{split.test.n_interactions} interactions).",
        "- Protocol: full ranking over all items, train + valid items excluded; metrics by "
        "`lmrec.eval.protocol.evaluate` for every row (peers through adapters); "
        "mean [95% per-user bootstrap CI, 1000 resamples]. Coverage has no per-user CI.",
        f"- Tuning: TPE (seed {args.seed}) on valid NDCG@10, {n_fast} trials per model, "
        f"{n_slow} for the slower SGD models ({', '.join(sorted(SLOW))}; bpr/fm spaces "
        "capped at 128 factors, 40/30 epochs); refit on train + valid "
        "with the best parameters, evaluated once on test.",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; total wall time {total / 60:.1f} min. "
        "Tune s = all trials; Fit s = the final refit on train + valid.",
    ]
    if not has_lightfm:
        header.append(f"- {lightfm_note}")
    md = markdown(list(rows.values()), checks, header)
    print()
    print(md)
    args.out.write_text(md)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "rows": list(rows.values()),
                "parity": checks,
                "seed": args.seed,
                "trials": [n_fast, n_slow],
                "total_s": total,
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
