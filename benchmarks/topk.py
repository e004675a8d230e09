"""Exact top-k throughput: lmrec's fused search against the machine's matmul peak and implicit.

Part 1, kernel (``--shapes``, default 10,000 x 200,000 and 4,000 x 1,000,000, 64
factors, k = 20): random float32 user and item factors and 50 random excluded items per
user.

- Peak: the plain product ``users @ items.T`` of the same shapes, in the same row
  blocks as lmrec (numpy into a preallocated buffer; torch too when installed, with as
  many threads as cores); the faster of the two is the peak. No top-k, no exclusion.
- lmrec: :func:`lmrec.ops.topk.dot_topk` (products, exclusion, chunk-max
  pre-selection and top-k) -- the path ``recommend`` takes for factor models.
- implicit: ``implicit.cpu.topk.topk`` (what ``implicit``'s ``recommend`` calls) with
  the same exclusion matrix, ``num_threads=0``.
- ``--generic`` adds lmrec's generic path (``Recommender.recommend_indices`` before the
  fused path: 1024-row blocks of ``_score``, full-row ``argpartition``) on the first shape.

GFLOP/s = 2 U I F / seconds; best of ``--repeats``; the ratio to the peak is printed.

Part 2, the protocol of ``benchmarks/scale.py`` (``--scale``): ALS with 64 factors on
``synthetic_interactions(200,000, 50,000, 10,000,000, seed=2026)`` (2 iterations: top-k
cost does not depend on training length), then top-20 for the same 10,000 users
(``rng(2026).choice``) with training items excluded: lmrec ``ALS.recommend_indices`` and
implicit's ``AlternatingLeastSquares.recommend(users, user_items[users], N=20,
filter_already_liked_items=True)`` holding the *same* factors, best of 3, alternating.

    flock /tmp/lmrec-timing.lock python benchmarks/topk.py --generic --scale

Results: ``benchmarks/results/topk.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lmrec.ops.topk import _BLOCK_CELLS, dot_topk, mask_rows, n_cores, topk

RESULTS = Path(__file__).parent / "results"
K, F = 20, 64


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def kernel_rows(u: int, i: int, repeats: int, generic: bool) -> list[tuple[str, float]]:
    rng = np.random.default_rng(u + i)
    x = rng.standard_normal((u, F), dtype=np.float32)
    y = rng.standard_normal((i, F), dtype=np.float32)
    nnz = 50 * u
    ex = sp.csr_matrix(
        (np.ones(nnz, np.float32), (np.repeat(np.arange(u), 50), rng.integers(0, i, nnz))),
        shape=(u, i),
    )
    ex.sum_duplicates()
    rows = max(1, min(2048, _BLOCK_CELLS // i))
    out = np.empty((rows, i), np.float32)

    def numpy_peak() -> None:
        for lo in range(0, u, rows):
            q = x[lo : lo + rows]
            np.matmul(q, y.T, out=out[: len(q)])

    res = [("numpy matmul (peak candidate)", best_of(numpy_peak, repeats))]
    try:
        import torch

        torch.set_num_threads(n_cores())
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tout = torch.empty((rows, i), dtype=torch.float32)

        def torch_peak() -> None:
            for lo in range(0, u, rows):
                q = tx[lo : lo + rows]
                torch.matmul(q, ty.T, out=tout[: len(q)])

        res.append(("torch matmul (peak candidate)", best_of(torch_peak, repeats)))
    except ImportError:
        pass
    res.append(
        (
            "lmrec dot_topk (exclusion + top-20)",
            best_of(lambda: dot_topk(x, y, K, exclude=ex), repeats),
        )
    )
    from implicit.cpu.topk import topk as implicit_topk

    res.append(
        (
            "implicit topk (exclusion + top-20)",
            best_of(lambda: implicit_topk(y, x, K, filter_query_items=ex, num_threads=0), repeats),
        )
    )
    if generic:

        def old() -> None:
            step = 1024 if i * 1024 <= (1 << 23) else max(1, (1 << 23) // i)
            for lo in range(0, u, step):
                block = np.array(x[lo : lo + step] @ y.T, dtype=np.float32, copy=True)
                block[~np.isfinite(block)] = -np.inf
                mask_rows(block, ex[lo : lo + step])
                topk(block, K)

        res.append(("lmrec generic path (before)", best_of(old, 1)))
    got, _ = dot_topk(x[:200], y, K, exclude=ex[:200])
    full = x[:200] @ y.T
    mask_rows(full, ex[:200])
    want, _ = topk(full, K)
    assert (got == want).mean() > 0.999, "dot_topk disagrees with the full sort"
    return res


def scale_rows(repeats: int) -> tuple[list[tuple[str, float]], float]:
    from implicit.cpu.als import AlternatingLeastSquares

    from lmrec.data.synthetic import synthetic_interactions
    from lmrec.models import create_model

    data = synthetic_interactions(200_000, 50_000, 10_000_000, seed=2026, with_text=False)
    model = create_model("als", {"factors": 64, "iterations": 2, "l2": 0.01, "seed": 2026}).fit(
        data
    )
    users = np.sort(np.random.default_rng(2026).choice(200_000, 10_000, replace=False))
    user_items = sp.csr_matrix(model.seen_)
    imp = AlternatingLeastSquares(factors=64, num_threads=0)
    imp.user_factors, imp.item_factors = model.user_factors_, model.item_factors_
    times: dict[str, list[float]] = {"implicit": [], "lmrec": []}
    for _ in range(repeats):
        for lib in ("implicit", "lmrec"):
            t = time.perf_counter()
            if lib == "implicit":
                ids_i, _ = imp.recommend(
                    users, user_items[users], N=K, filter_already_liked_items=True
                )
            else:
                ids_l, _ = model.recommend_indices(users, K)
            times[lib].append(time.perf_counter() - t)
    active = np.diff(user_items.indptr)[users] > 0
    same = np.mean([set(a) == set(b) for a, b in zip(ids_i[active], ids_l[active], strict=True)])
    return [(lib, min(ts)) for lib, ts in times.items()], float(same)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="10000x200000,4000x1000000", help="UxI,UxI")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--generic", action="store_true", help="also time the generic path")
    ap.add_argument("--scale", action="store_true", help="also run the scale.py protocol")
    ap.add_argument("--out", default=str(RESULTS / "topk.md"))
    args = ap.parse_args()
    lines = [
        "# Exact top-k: lmrec vs the matmul peak and implicit",
        "",
        f"- Command: `{' '.join(['python benchmarks/topk.py', *sys.argv[1:]])}`",
        f"- {F} factors, k = {K}, 50 excluded items per user, float32; best of {args.repeats}. "
        "GFLOP/s = 2 U I F / s. Peak = the faster of numpy and torch plain matmul of the same "
        "shapes in the same blocks, measured in the same run.",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"Python {platform.python_version()}, numpy {np.__version__}.",
        "",
        "| users x items | method | seconds | GFLOP/s | % of peak |",
        "|---|---|---:|---:|---:|",
    ]
    for n, shape in enumerate(args.shapes.split(",")):
        u, i = (int(v) for v in shape.lower().split("x"))
        res = kernel_rows(u, i, args.repeats, args.generic and n == 0)
        gflop = 2 * u * i * F / 1e9
        peak = max(gflop / s for name, s in res if "peak" in name)
        for name, s in res:
            line = f"| {u:,} x {i:,} | {name} | {s:.2f} | {gflop / s:.1f} | {100 * gflop / s / peak:.0f}% |"
            lines.append(line)
            print(line, flush=True)
    if args.scale:
        res, same = scale_rows(3)
        t = dict(res)
        lines += [
            "",
            "## Top-20 for 10,000 users, ALS on 10M synthetic interactions (scale.py protocol)",
            "",
            "| library | seconds (best of 3) |",
            "|---|---:|",
            f"| implicit 0.7 `recommend` | {t['implicit']:.3f} |",
            f"| lmrec `recommend_indices` | {t['lmrec']:.3f} |",
            "",
            f"lmrec / implicit = {t['lmrec'] / t['implicit']:.2f}; identical top-20 sets for "
            f"{100 * same:.1f}% of the users with interactions (same factors in both).",
        ]
        print("\n".join(lines[-6:]), flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
