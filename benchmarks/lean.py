"""Lean factors: NDCG@10 of ALS on MovieLens-100K with float32, float16 and int8 factors.

Protocol: ml-100k (``load_builtin``, every rating a positive), per-user random split
80/20 (``random_split``, seed ``--seed``), ALS (64 factors, 15 iterations, ``--alpha``,
``num_threads=1``, seed 2026) fitted once on train. The user and item factors are then
stored with :class:`lmrec.retrieval.quantize.LeanFactors` in each precision and
dequantized for scoring; top-10 per test user with train items excluded
(:class:`lmrec.retrieval.ExactIndex`), NDCG@10 against the test items
(:class:`lmrec.eval.ranking.NDCG`). Relative change = (lean - float32) / float32.
Targets: float16 within 0.5%, int8 within 2%.

Run ``python benchmarks/lean.py`` (under a minute). Results: ``benchmarks/results/lean.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lmrec.data.sources import load_builtin
from lmrec.data.split import random_split
from lmrec.eval.ranking import NDCG
from lmrec.models.als import ALS
from lmrec.retrieval import ExactIndex, item_user_vectors
from lmrec.retrieval.quantize import LeanFactors

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--regularization", type=float, default=0.1)
    args = ap.parse_args()
    data = load_builtin("ml-100k")
    split = random_split(data, ratios=(0.8, 0.2), seed=args.seed)
    train, test = split.train, split.test
    model = ALS(
        factors=64,
        iterations=15,
        alpha=args.alpha,
        l2=args.regularization,
        n_threads=1,
        seed=2026,
    ).fit(train)
    users_f32, items_f32 = item_user_vectors(model)
    eval_users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    truth = test.matrix[eval_users]
    seen = train.matrix[eval_users]
    rows = []
    base = None
    for precision in ("float32", "float16", "int8"):
        lu = LeanFactors.from_array(users_f32, precision)
        li = LeanFactors.from_array(items_f32, precision)
        recs, _ = (
            ExactIndex().build(li.to_float32()).search(lu.to_float32(eval_users), 10, exclude=seen)
        )
        ndcg = NDCG(10)(recs, truth)
        base = ndcg if base is None else base
        rows.append((precision, ndcg, (ndcg - base) / base, lu.nbytes + li.nbytes))
        print(precision, ndcg, flush=True)
    lines = [
        "# Lean factors: ALS on MovieLens-100K",
        "",
        f"- Command: `{' '.join(['python benchmarks/lean.py', *sys.argv[1:]])}`",
        f"- Split: per-user random 80/20, seed {args.seed}; {len(eval_users)} test users. ALS: 64 "
        f"factors, 15 iterations, alpha {args.alpha}, regularization {args.regularization}, "
        "num_threads=1, seed 2026 (fitted once; only the factor storage changes).",
        "- Scores from dequantized user and item factors; train items excluded; NDCG@10.",
        "- Targets: float16 within 0.5%, int8 within 2% of float32.",
        "",
        "| Precision | NDCG@10 | change vs float32 | factor bytes (users + items) |",
        "|---|---:|---:|---:|",
    ]
    for precision, ndcg, rel, nbytes in rows:
        lines.append(f"| {precision} | {ndcg:.5f} | {rel:+.3%} | {nbytes:,} |")
    out = RESULTS / "lean.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
