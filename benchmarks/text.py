"""Text-encoder and content-model benchmark on MovieLens-100K (1,682 item texts).

Measures, in one run on the same texts:

- encoding time of all 1,682 item texts with lmrec's :class:`~lmrec.text.TextEncoder`
  (empty cache, i.e. cold; and a fresh encoder over a filled cache, i.e. warm) against
  plain ``SentenceTransformer(path).encode(texts, batch_size=64,
  normalize_embeddings=True)``; the model is loaded before timing for both, the two
  are alternated and the best of ``--repeats`` is kept; threads are pinned to 2;
- bytes of the stored embeddings per precision, and their top-20 neighbour overlap
  with float32 (:func:`lmrec.text.neighbour_overlap`);
- the cold-start-items protocol (:func:`lmrec.eval.coldstart.evaluate_cold_items`,
  20% of items held out, seed 2026): content (mean, recency, multi), text2cf (ridge map
  from text + item attributes to EASE columns) and text_ease against popularity-by-genre
  and random scores, Recall@20 and NDCG@20 over held-out items. text2cf's defaults were
  chosen on a validation split of the train part (20% of its items held out, seed 7).

Run ``python benchmarks/text.py``; prints markdown and writes
``benchmarks/results/text.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from lmrec.data.sources import load_builtin
from lmrec.data.split import cold_start_items_split
from lmrec.eval.coldstart import GenrePopularity, RandomScores, evaluate_cold_items
from lmrec.models.content import ContentModel
from lmrec.models.text2cf import Text2CF
from lmrec.models.text_ease import TextEASE
from lmrec.text import (
    TextEncoder,
    default_model_path,
    dequantize,
    item_texts,
    neighbour_overlap,
    quantize,
    stored_nbytes,
)

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 2026


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def encoding(texts: list[str], repeats: int, threads: int) -> tuple[list[str], np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    lines = []
    first_dir = tempfile.mkdtemp(prefix="lmrec-bench-")
    t_first, _ = _timed(lambda: TextEncoder(cache_dir=first_dir).encode(texts))
    plain_model = SentenceTransformer(default_model_path(), device="cpu", local_files_only=True)
    ours = TextEncoder(use_cache=True)
    ours.load()
    cold, plain, warm = [], [], []
    emb = np.zeros((0, 0), np.float32)
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="lmrec-bench-") as d:
            ours.cache_dir = d
            t, emb = _timed(lambda: ours.encode(texts))
            cold.append(t)
            fresh = TextEncoder(cache_dir=d)
            warm.append(_timed(lambda fresh=fresh: fresh.encode(texts))[0])
            if fresh.stats.misses:
                raise RuntimeError("warm-cache encode re-encoded texts")
        t, ref = _timed(lambda: plain_model.encode(texts, batch_size=64, normalize_embeddings=True))
        plain.append(t)
    diff = float(np.abs(emb - ref).max())
    n = len(texts)
    lines += [
        f"## Encoding {n:,} MovieLens item texts (all-MiniLM-L6-v2, CPU, {threads} threads)",
        "",
        f"Best of {repeats}, alternated; the model is loaded before timing. "
        f"First use in a fresh process (model load + encode + cache write): {t_first:.2f} s.",
        "",
        "| encoder | seconds | texts/s | vs plain |",
        "|---|---:|---:|---:|",
        f"| plain `SentenceTransformer.encode` (batch 64) | {min(plain):.3f} | "
        f"{n / min(plain):,.0f} | 1.00 |",
        f"| lmrec `TextEncoder`, cold cache | {min(cold):.3f} | {n / min(cold):,.0f} | "
        f"{min(plain) / min(cold):.2f} |",
        f"| lmrec `TextEncoder`, warm cache (no model load) | {min(warm):.4f} | "
        f"{n / min(warm):,.0f} | {min(plain) / min(warm):.0f} |",
        "",
        f"All cold/plain/warm runs (s): plain {', '.join(f'{t:.3f}' for t in plain)}; "
        f"cold {', '.join(f'{t:.3f}' for t in cold)}; warm {', '.join(f'{t:.4f}' for t in warm)}.",
        f"Max |lmrec - plain| over all components: {diff:.2e}.",
        "",
    ]
    return lines, emb


def precision_table(emb: np.ndarray) -> list[str]:
    lines = [
        f"## Stored item embeddings ({emb.shape[0]:,} x {emb.shape[1]})",
        "",
        "| precision | bytes | bytes/item | top-20 neighbour overlap vs float32 |",
        "|---|---:|---:|---:|",
    ]
    for precision in ("float32", "float16", "int8"):
        q, s = quantize(emb, precision)  # type: ignore[arg-type]
        overlap = neighbour_overlap(emb, dequantize(q, s), k=20)
        nbytes = stored_nbytes(q, s)
        lines.append(f"| {precision} | {nbytes:,} | {nbytes / len(emb):,.0f} | {overlap:.4f} |")
    return lines + [""]


def cold_start_table() -> list[str]:
    data = load_builtin("ml-100k")
    split = cold_start_items_split(data, item_fraction=0.2, seed=SEED)
    models = {
        "content (mean)": ContentModel(),
        "content (mean, rating-weighted)": ContentModel(use_ratings=True),
        "content (recency, half-life 30 d)": ContentModel(profile="recency"),
        "content (multi, 3 interests)": ContentModel(profile="multi"),
        "content (mean, not centred)": ContentModel(center=False),
        "text2cf (text + genres/year -> EASE)": Text2CF(),
        "text2cf (text only)": Text2CF(attribute_weight=0.0),
        "text_ease (l2 300, beta 10)": TextEASE(side="features", l2=300.0, beta=10.0),
        "popularity by genre (personalised)": GenrePopularity(),
        "popularity by genre (global)": GenrePopularity(personalised=False),
        "random": RandomScores(seed=0),
    }
    rows, base = [], None
    for label, model in models.items():
        fit_s, _ = _timed(lambda model=model: model.fit(split.train))
        res = evaluate_cold_items(model, split, name=label)
        if label.startswith("popularity by genre (personalised)"):
            base = res.summary
        rows.append((label, res, fit_s))
    n_cold = res.notes[0]
    lines = [
        f"## Cold-start items (cold_start_items_split, 20% of items, seed {SEED})",
        "",
        f"{split.notes[0]}; {n_cold}; {rows[0][1].n_users} test users with training history.",
        "",
        "| model | Recall@20 | NDCG@20 | x genre-pop Recall | x genre-pop NDCG "
        "| fit s (warm cache) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, res, fit_s in rows:
        r, nd = res.summary["recall@20"], res.summary["ndcg@20"]
        lines.append(
            f"| {label} | {r:.4f} | {nd:.4f} | {r / base['recall@20']:.2f} | "  # type: ignore[index]
            f"{nd / base['ndcg@20']:.2f} | {fit_s:.1f} |"  # type: ignore[index]
        )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "text.md")
    args = parser.parse_args()
    texts = item_texts(load_builtin("ml-100k"))
    lines = [
        "# lmrec text encoder and content model",
        "",
        f"`python benchmarks/text.py` on {platform.platform()}, {os.cpu_count()} CPUs "
        f"(shared with other jobs: timings are noisy).",
        "",
    ]
    enc_lines, emb = encoding(texts, args.repeats, args.threads)
    lines += enc_lines + precision_table(emb) + cold_start_table()
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
