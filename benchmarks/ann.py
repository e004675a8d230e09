"""ANN benchmark: faiss HNSW / IVF-PQ against exact blocked search on 1M item vectors.

Protocol:

- Items: ``--n-items`` (default 1,000,000) vectors of ``--dim`` (default 64) dims,
  seeded (``--seed``). ``--vectors clustered`` (default) draws them around 1,000
  Gaussian centres with per-item norm scaling in [0.5, 2] (like trained factors:
  taste clusters and a popularity-like norm); ``normal`` draws i.i.d. N(0, 1), the
  hardest case for graph indexes. Queries: ``--n-queries`` users drawn the same way.
- Truth: :class:`lmrec.retrieval.ExactIndex` top-20 (the library's fused exact search,
  :func:`lmrec.ops.topk.dot_topk`: float32 products in blocks, chunk-max
  pre-selection, one thread per core), batched over all queries: its queries/s is the
  exact baseline. ``--vectors als`` uses the factors of lmrec ALS trained on synthetic
  interactions (see :func:`als_vectors`). ``--cache DIR`` keeps vectors and built
  indexes, so a long build (``--build-only``) and the searches can run separately.
- Each ANN index is built once and searched with each ``--ef`` (HNSW efSearch) or
  ``--nprobe`` (IVF-PQ) value: recall@20 (share of the exact top-20 found), batched
  queries/s (all queries in one call), and single-query latency p50/p99 over
  ``--n-single`` one-row calls. No seen-item exclusion (that path is tested in
  ``tests/test_retrieval.py``).
- Threads: faiss and BLAS use all cores the machine gives (2 here, shared).

Run ``python benchmarks/ann.py`` (about 10 minutes on 2 cores); ``--quick`` uses
100,000 items. Results: ``benchmarks/results/ann.md`` (``ann-quick.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from lmrec.retrieval import ExactIndex, FaissIndex

RESULTS = Path(__file__).parent / "results"
K = 20


def als_vectors(n_items: int, n_queries: int, dim: int, seed: int):
    """Item and user factors of lmrec ALS trained on synthetic interactions.

    ``synthetic_interactions(n_items // 5 users, n_items, 10 x n_items pairs)``: Zipf-like
    item popularity and 20 topics, so the factors have the structure of a real model
    (topic directions, popular items with large norms, a long tail near zero). Queries
    are the factors of ``n_queries`` random users.
    """
    from lmrec.data.synthetic import synthetic_interactions
    from lmrec.models import create_model

    t = time.perf_counter()
    data = synthetic_interactions(n_items // 5, n_items, 10 * n_items, seed=seed, with_text=False)
    model = create_model("als", {"factors": dim, "iterations": 5, "l2": 0.05, "seed": seed}).fit(
        data
    )
    print(
        f"ALS on {data.n_interactions:,} interactions in {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    rng = np.random.default_rng(seed + 1)
    users = rng.choice(len(model.user_factors_), n_queries, replace=False)
    return model.item_factors_.copy(), model.user_factors_[users].copy()


def make_vectors(
    n_items: int, n_queries: int, dim: int, kind: str, seed: int, cache: Path | None = None
):
    if cache is not None:
        f = cache / f"vectors-{kind}-{n_items}-{n_queries}-{dim}-{seed}.npz"
        if f.is_file():
            z = np.load(f, allow_pickle=False)
            return z["items"], z["queries"]
        items, queries = make_vectors(n_items, n_queries, dim, kind, seed)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(f, items=items, queries=queries)
        return items, queries
    if kind == "als":
        return als_vectors(n_items, n_queries, dim, seed)
    rng = np.random.default_rng(seed)
    if kind == "normal":
        items = rng.standard_normal((n_items, dim), dtype=np.float32)
        queries = rng.standard_normal((n_queries, dim), dtype=np.float32)
        return items, queries
    centres = rng.standard_normal((1_000, dim), dtype=np.float32)
    items = centres[rng.integers(0, 1_000, n_items)]
    items += 0.6 * rng.standard_normal((n_items, dim), dtype=np.float32)
    items *= rng.uniform(0.5, 2.0, (n_items, 1)).astype(np.float32)
    queries = centres[rng.integers(0, 1_000, n_queries)]
    queries += 0.6 * rng.standard_normal((n_queries, dim), dtype=np.float32)
    return items, queries


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = (approx[:, :, None] == exact[:, None, :]).any(axis=2).sum(axis=1)
    return float(np.mean(hits / K))


def timed_search(index, queries: np.ndarray, n_single: int):
    t = time.perf_counter()
    items, _ = index.search(queries, K)
    batch_s = time.perf_counter() - t
    lat = []
    for q in queries[:n_single]:
        t = time.perf_counter()
        index.search(q[None, :], K)
        lat.append(time.perf_counter() - t)
    lat_ms = np.array(lat) * 1e3
    return (
        items,
        len(queries) / batch_s,
        float(np.percentile(lat_ms, 50)),
        float(np.percentile(lat_ms, 99)),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--n-queries", type=int, default=2_000)
    ap.add_argument("--n-single", type=int, default=200)
    ap.add_argument("--vectors", choices=["clustered", "normal", "als"], default="clustered")
    ap.add_argument("--cache", help="directory to keep vectors and built indexes between runs")
    ap.add_argument("--threads", type=int, help="threads of the exact search (default: all cores)")
    ap.add_argument("--kinds", default="hnsw,ivfpq")
    ap.add_argument("--m", type=int, default=32, help="HNSW degree")
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--ef", default="64,128,256")
    ap.add_argument("--nprobe", default="16,64")
    ap.add_argument("--rerank", type=int, default=4, help="IVF-PQ exact re-rank factor")
    ap.add_argument("--build-only", action="store_true", help="build and cache indexes, no search")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="markdown file (default results/ann[-quick].md)")
    args = ap.parse_args()
    if args.quick:
        args.n_items, args.n_queries, args.n_single = 100_000, 500, 100
    out = Path(args.out) if args.out else RESULTS / ("ann-quick.md" if args.quick else "ann.md")

    cache = Path(args.cache) if args.cache else None
    items, queries = make_vectors(
        args.n_items, args.n_queries, args.dim, args.vectors, args.seed, cache
    )
    exact_index = ExactIndex(n_threads=args.threads).build(items)
    if args.build_only:
        exact = exact_qps = exact_p50 = exact_p99 = 0
    else:
        exact, exact_qps, exact_p50, exact_p99 = timed_search(
            exact_index, queries, min(args.n_single, 50)
        )
    rows = [("exact (lmrec dot_topk, batched)", "-", 0.0, 1.0, exact_qps, exact_p50, exact_p99)]
    print(f"exact: {exact_qps:.1f} q/s, p99 {exact_p99:.1f} ms", flush=True)
    for kind in args.kinds.split(","):
        if kind == "hnsw":
            index = FaissIndex("hnsw", m=args.m, ef_construction=args.ef_construction)
            settings = [("ef_search", int(v)) for v in args.ef.split(",")]
        else:
            nlist = int(4 * np.sqrt(args.n_items))
            index = FaissIndex(
                "ivfpq", m=13, nlist=nlist, nbits=8, rerank=args.rerank
            )  # 65 = 5 x 13
            settings = [("nprobe", int(v)) for v in args.nprobe.split(",")]
        saved = None
        if cache is not None:
            tag = "-".join(
                f"{k}{v}" for k, v in index.params.items() if k not in ("ef_search", "nprobe")
            )
            saved = cache / f"index-{args.vectors}-{args.n_items}-{args.dim}-{args.seed}-{tag}"
        if saved is not None and (saved / "index.json").is_file():
            index = FaissIndex.load(saved)
            build_s = json.loads((saved / "build.json").read_text())["build_s"]
            print(f"{kind}: loaded from {saved} (built in {build_s:.1f} s)", flush=True)
        else:
            t = time.perf_counter()
            index.build(items)
            build_s = time.perf_counter() - t
            print(f"{kind}: built in {build_s:.1f} s", flush=True)
            if saved is not None:
                index.save(saved)
                (saved / "build.json").write_text(json.dumps({"build_s": build_s}))
        if args.build_only:
            continue
        for key, value in settings:
            index.params[key] = value
            index._set_search_params()
            got, qps, p50, p99 = timed_search(index, queries, args.n_single)
            r = recall(got, exact)
            label = (
                f"{kind} ("
                + ", ".join(
                    f"{k}={v}"
                    for k, v in index.params.items()
                    if k
                    in (
                        ("m", "ef_construction", "ef_search")
                        if kind == "hnsw"
                        else ("m", "nlist", "nprobe", "rerank")
                    )
                )
                + ")"
            )
            rows.append((label, f"{build_s:.0f}", 0.0, r, qps, p50, p99))
            print(
                f"  {label}: recall@20 {r:.4f}, {qps:.0f} q/s ({qps / exact_qps:.1f}x), p99 {p99:.2f} ms",
                flush=True,
            )

    if args.build_only:
        return
    lines = [
        f"# ANN benchmark: {args.n_items:,} items x {args.dim} dims ({args.vectors} vectors)",
        "",
        f"- Command: `{' '.join(['python benchmarks/ann.py', *sys.argv[1:]])}`",
        f"- {args.n_queries:,} queries, k = {K}; recall@20 against exact top-20; batched q/s = all "
        f"queries in one call; latency = {args.n_single} single-query calls (exact: "
        f"{min(args.n_single, 50)}).",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python "
        f"{platform.python_version()}, numpy {np.__version__}, faiss {__import__('faiss').__version__}.",
        "- HNSW searches by inner product directly; IVF-PQ turns inner product into L2 by the norm augmentation and reranks 4x candidates exactly (see lmrec.retrieval.index).",
        "",
        "| Index | Build (s) | recall@20 | batched q/s | speed-up vs exact | p50 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, build, _, r, qps, p50, p99 in rows:
        lines.append(
            f"| {label} | {build} | {r:.4f} | {qps:,.0f} | {qps / exact_qps:.1f}x | {p50:.2f} | {p99:.2f} |"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=2))
    print(out.read_text())


if __name__ == "__main__":
    main()
