"""``lmrec index build`` and ``lmrec index info``: ANN indexes saved beside a model."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from lmrec.cli._common import check_input, info


def register(sub: Any) -> None:
    """Add ``index`` (with ``build`` and ``info``) to the parser."""
    p = sub.add_parser(
        "index",
        help="build an approximate nearest-neighbour index beside a factor model",
        description="Approximate top-k retrieval (faiss, extra 'ann') for factor and embedding "
        "models. The index is saved in MODEL_DIR/index/ with checksums tied to the model; "
        "`lmrec recommend` and `lmrec serve` then use it for large catalogs.",
    )
    isub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    b = isub.add_parser(
        "build",
        help="build and save MODEL_DIR/index/",
        description="Example: lmrec index build --model models/als --kind hnsw --m 32 "
        "--ef-search 128",
    )
    b.add_argument("--model", required=True, help="model directory from lmrec train")
    b.add_argument(
        "--kind",
        default="hnsw",
        choices=["hnsw", "ivfpq"],
        help="hnsw (graph, more memory) or ivfpq (compact codes); default hnsw",
    )
    b.add_argument(
        "--m",
        type=int,
        default=32,
        help="HNSW degree / IVF-PQ sub-quantisers (must divide dim + 1); default 32",
    )
    b.add_argument("--ef-construction", type=int, default=200, help="HNSW build beam (200)")
    b.add_argument("--ef-search", type=int, default=128, help="HNSW search beam (128)")
    b.add_argument("--nlist", type=int, default=1024, help="IVF-PQ lists (1024)")
    b.add_argument("--nprobe", type=int, default=32, help="IVF-PQ lists visited per query (32)")
    b.add_argument("--nbits", type=int, default=8, help="IVF-PQ bits per code (8)")
    b.add_argument(
        "--rerank",
        type=int,
        default=0,
        help="IVF-PQ: fetch this many times the candidates and rerank exactly (0)",
    )
    b.add_argument(
        "--overfetch",
        type=float,
        default=1.0,
        help="extra candidates per query, as a multiple of k (1.0)",
    )
    b.add_argument("--seed", type=int, default=0, help="k-means sample seed (IVF-PQ)")
    b.add_argument("--force", action="store_true", help="replace an existing index")
    b.set_defaults(func=cmd_build)

    i = isub.add_parser("info", help="check and describe MODEL_DIR/index/ (JSON)")
    i.add_argument("--model", required=True, help="model directory")
    i.set_defaults(func=cmd_info)


def cmd_build(args: argparse.Namespace) -> int:
    """Build the index and print its directory."""
    from lmrec.retrieval.attached import build_model_index

    model_dir = check_input(args.model, "Model directory")
    start = time.perf_counter()
    params = {
        "m": args.m,
        "ef_construction": args.ef_construction,
        "ef_search": args.ef_search,
        "nlist": args.nlist,
        "nprobe": args.nprobe,
        "nbits": args.nbits,
        "rerank": args.rerank,
        "overfetch": args.overfetch,
        "seed": args.seed,
    }
    out = build_model_index(model_dir, args.kind, overwrite=args.force, **params)
    info(f"built a {args.kind} index in {time.perf_counter() - start:.1f}s")
    print(out)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Verify the index against the model and print its parameters as JSON."""
    from lmrec.errors import ConfigError
    from lmrec.models import load_model
    from lmrec.retrieval.attached import load_model_index

    model_dir = check_input(args.model, "Model directory")
    model = load_model(model_dir)
    index = load_model_index(model_dir, model)
    if index is None:
        raise ConfigError(
            f"{model_dir} has no index; build one with: lmrec index build --model {model_dir}"
        )
    out = {"n_items": index.n_items, "dim": index.dim_, **index.params}
    print(json.dumps(out, indent=2))
    return 0
