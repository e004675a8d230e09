"""Fine-tuned LM ranker benchmark: a TALLRec-style CTR task on MovieLens-100K.

Task (after TALLRec, Bao et al. 2023): a rating > 3 is a *like*. Every interaction
with at least 10 earlier ones (by timestamp) is a sample: the prompt shows the user's
attributes and those 10 previous items with liked/disliked marks, the candidate is the
next item, and the label is whether the user liked it. Users are split 80/20 at random
(``--seed``, default 2026): training samples come from the 80%, test samples are the
last ``--test-per-user`` samples of each test user. Metric: ROC AUC on the test samples.

Few-shot draws: for each ``n`` (not ``all``) the n training samples are drawn
``--draws`` times (default 5), draw ``d`` by a generator seeded with ``(seed, n, d)``
alone, so a draw never depends on which other shots or modes ran before it (issue
15.13); draw ``d`` also seeds the model (``seed + d``: head/LoRA initialisation and batch
order). Every few-shot row reports the mean and the standard deviation (and min-max) of
the test AUC over the draws; ``all`` is one run on the whole pool.

Compared, for each ``n`` in ``--shots`` (``all`` = every training-user sample):

- ``LMRanker`` (all-MiniLM-L6-v2 cross-encoder + linear head) fine-tuned in ``lora``,
  ``head`` or ``full`` mode (``--modes``), ``--epochs`` passes over the n examples
  (at least ``--min-steps`` steps; ``all`` runs ``--all-steps`` steps of batch 16
  drawn from the whole pool, i.e. a documented sub-sample), 2 torch threads; wall
  time of the fit. A ``+side`` suffix (``lora+side``) is the wide-and-deep ranker
  (``side_features=True``): the logit adds a linear term on 4 numeric features
  (:mod:`lmrec.ranker.features`: the user's liked share in the 10-item history and
  overall, the candidate's smoothed like rate and log count among the *training
  users'* samples), fixed at a logistic regression on the same n examples (the
  language model learns what it leaves unexplained; ``train_wide=False``);
- a classic baseline: logistic regression (scikit-learn) on simple features -- the
  share of liked items in the 10-item history, the user's mean rating over those
  items, the candidate's like rate and log popularity among the *training users'*
  samples, genre overlap of the candidate with the liked history -- fitted on the same n
  samples and, as a reference, on all training samples.

Compression: the first lora model of the largest n is merged and int8-quantized
(``merge_and_quantize``); reported are its test AUC, the score correlation with
float32, and the latency of scoring 100 candidates for one user in one batch
(float32 vs int8, best and median of ``--repeats``; measured while holding
``/tmp/lmrec-timing.lock`` so that no other timed job runs at the same time).

Head modes (frozen encoder) share one cache of the encoder's pooled test outputs
across draws: the encoder is the same frozen base model in each, so only the head and
wide part differ, and the scores are those of ``predict_pairs``.

Run ``flock /tmp/lmrec-bench.lock python benchmarks/ranker.py`` (``--quick`` for a smoke
test); prints markdown and writes ``benchmarks/results/ranker.md``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import time
from pathlib import Path

import numpy as np

from lmrec.data.sources import load_builtin
from lmrec.eval.pointwise import auc
from lmrec.ranker.features import ItemStats, fit_logistic, side_features
from lmrec.ranker.prompts import DEFAULT_TEMPLATE, PromptBuilder
from lmrec.ranker.trainer import Examples

OUT = Path(__file__).parent / "results" / "ranker.md"
N_HISTORY = 10


def ctr_samples(data, seed: int, test_per_user: int):
    """Per-sample arrays (user, item, position, label) plus the train/test masks."""
    b = PromptBuilder.from_dataset(data, n_history=N_HISTORY, template=DEFAULT_TEMPLATE)
    users, items, pos = [], [], []
    for u in range(data.n_users):
        seq = b.positions(u)
        for p in range(N_HISTORY, len(seq)):
            users.append(u)
            items.append(seq[p])
            pos.append(p)
    users, items, pos = np.array(users), np.array(items), np.array(pos)
    liked = b.liked
    labels = liked[b.indptr[users] + pos].astype(np.float32)
    rng = np.random.default_rng(seed)
    test_users = rng.permutation(data.n_users)[: data.n_users // 5]
    is_test_user = np.isin(users, test_users)
    # The last test_per_user samples of each test user.
    last = np.zeros(len(users), bool)
    for u in test_users:
        idx = np.flatnonzero(users == u)
        last[idx[-test_per_user:]] = True
    return b, users, items, pos, labels, ~is_test_user, last


def features(b, data, users, items, pos, train_mask, labels):
    """Simple features for the logistic-regression baseline."""
    genres = data.items["genres"].fillna("").str.get_dummies(sep="|").to_numpy(np.float32)
    n_items = data.n_items
    like_sum = np.bincount(items[train_mask], weights=labels[train_mask], minlength=n_items)
    cnt = np.bincount(items[train_mask], minlength=n_items)
    prior = labels[train_mask].mean()
    item_rate = (like_sum + 5 * prior) / (cnt + 5)
    ratings = data.column("rating")
    # the builder's items are per user by time; recover ratings in that order
    order_ratings = np.empty(len(b.items), np.float32)
    uidx = np.asarray(data.column("user_idx"), np.int64)
    ts = data.column("timestamp")
    order = np.lexsort((np.arange(len(uidx)), ts, uidx))
    order_ratings[:] = ratings[order]
    rows = []
    for u, i, p in zip(users, items, pos, strict=True):
        s = b.indptr[u] + p
        h = slice(s - N_HISTORY, s)
        hl = b.liked[h]
        liked_items = b.items[h][hl == 1]
        g = genres[liked_items].sum(0) if len(liked_items) else np.zeros(genres.shape[1])
        overlap = float(g @ genres[i]) / max(1.0, float(genres[i].sum()) * N_HISTORY)
        rows.append([hl.mean(), order_ratings[h].mean(), item_rate[i], np.log1p(cnt[i]), overlap])
    return np.array(rows, np.float32)


def draw(pool: np.ndarray, n: str, seed: int, d: int) -> np.ndarray:
    """Draw ``d`` of ``n`` training samples (``all``: the whole pool), seeded by (seed, n, d) only.

    Examples
    --------
    >>> pool = np.arange(100)
    >>> bool((draw(pool, "16", 1, 0) == draw(pool, "16", 1, 0)).all())
    True
    >>> bool((draw(pool, "16", 1, 0) == draw(pool, "16", 1, 1)).all())
    False
    """
    if n == "all":
        return pool
    rng = np.random.default_rng([seed, int(n), d])
    return np.sort(rng.choice(pool, size=int(n), replace=False))


def logreg_auc(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y_train)) < 2:
        return float("nan")
    sc = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(sc.transform(x_train), y_train)
    return auc(y_test, clf.decision_function(sc.transform(x_test)))


def compression_section(lora_big, test, b, stats, user: int, repeats: int) -> list[str]:
    """Merge + int8 the lora ranker; AUC, score correlation and 100-candidate latency."""
    import torch

    r, value, mode_name, n = lora_big
    q = r.merge_and_quantize()
    f_test = r.predict_pairs(test.contexts, test.candidates, test.features)
    q_test = q.predict_pairs(test.contexts, test.candidates, test.features)
    q_auc = auc(test.labels, q_test)
    # One test user's context against 100 catalog items, scored in one batch.
    k100 = np.arange(100)
    c100 = [test.contexts[0]] * 100
    t100 = [b.item_texts[i] for i in k100]
    f100 = side_features(b, stats, np.full(100, user), k100)
    assert r.config.score_batch_size >= 100  # the 100 candidates in one forward pass

    def lat(model):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model.predict_pairs(c100, t100, f100)
            times.append(time.perf_counter() - t)
        return min(times), float(np.median(times))

    with open("/tmp/lmrec-timing.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # no other timed job runs meanwhile
        lat(r), lat(q)  # warm-up
        f_lat, q_lat = lat(r), lat(q)
    s_f, s_q = r.predict_pairs(c100, t100, f100), q.predict_pairs(c100, t100, f100)
    corr100 = np.corrcoef(s_f, s_q)[0, 1]
    corr_test = np.corrcoef(f_test, q_test)[0, 1]
    return [
        "",
        f"## Compression ({mode_name}, n = {n}): merge LoRA + dynamic int8 "
        f"(per-tensor weights, per-channel for the output projections; engine {torch.backends.quantized.engine})",
        "",
        f"| model | test AUC | latency, 100 candidates of 1 user, one batch (ms, best / median "
        f"of {repeats}) |",
        "|---|---|---|",
        f"| float32 | {value:.4f} | {f_lat[0] * 1000:.0f} / {f_lat[1] * 1000:.0f} |",
        f"| int8 | {q_auc:.4f} | {q_lat[0] * 1000:.0f} / {q_lat[1] * 1000:.0f} |",
        "",
        f"Speed-up (median): {f_lat[1] / q_lat[1]:.2f}x; AUC change {q_auc - value:+.4f}. "
        f"Score correlation int8 vs float32: {corr_test:.4f} over the {len(f_test)} test pairs, "
        f"{corr100:.4f} over the 100 candidates of one user.",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--shots", default="16,64,256,all")
    ap.add_argument("--modes", default="lora+side,head+side")
    ap.add_argument("--all-steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--min-steps", type=int, default=30)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--test-per-user", type=int, default=2)
    ap.add_argument("--draws", type=int, default=5, help="independent draws per few-shot n")
    ap.add_argument("--no-compression", action="store_true", help="skip the int8 section")
    ap.add_argument("--quick", action="store_true", help="n=16 lora only, 10 steps, 1 draw")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    from lmrec._optional import require
    from lmrec.ranker.model import LMRanker

    torch = require("torch", "lm")  # through lmrec: its thread settings apply

    data = load_builtin("ml-100k")
    b, users, items, pos, labels, train_mask, test_mask = ctr_samples(
        data, args.seed, args.test_per_user
    )
    ctx, cand = b.pairs(users, items, pos)
    stats = ItemStats.from_labels(items[train_mask], labels[train_mask], data.n_items)
    side = side_features(b, stats, users, items, pos)
    test_idx = np.flatnonzero(test_mask)
    test = Examples(
        [ctx[i] for i in test_idx], [cand[i] for i in test_idx], labels[test_idx], side[test_idx]
    )
    train_pool = np.flatnonzero(train_mask)
    print(
        f"samples: {len(train_pool)} train-user, {len(test_idx)} test ({labels[test_idx].mean():.2f} liked)"
    )
    x = features(b, data, users, items, pos, train_mask, labels)
    shots = ["16"] if args.quick else args.shots.split(",")
    modes = ["lora"] if args.quick else args.modes.split(",")
    draws = 1 if args.quick else args.draws
    picks = {
        (n, d): draw(train_pool, n, args.seed, d)
        for n in shots
        for d in range(1 if n == "all" else draws)
    }
    rows = []
    ref = logreg_auc(x[train_pool], labels[train_pool], x[test_idx], labels[test_idx])
    rows.append(("logreg (5 features)", "all", len(train_pool), [ref], [0.0], 6, ""))
    for n in shots:
        keys = [k for k in picks if k[0] == n]
        wide = []
        for k in keys:
            w, b0 = fit_logistic(side[picks[k]], labels[picks[k]])
            wide.append(auc(test.labels, test.features @ w + b0))
        rows.append(
            (
                "wide part alone (lmrec fit_logistic, 4 side features)",
                "-",
                len(picks[keys[0]]),
                wide,
                [0.0],
                5,
                "",
            )
        )
    for n in shots:
        if n != "all":
            keys = [k for k in picks if k[0] == n]
            rows.append(
                (
                    "logreg (5 features)",
                    "-",
                    n,
                    [
                        logreg_auc(x[picks[k]], labels[picks[k]], x[test_idx], labels[test_idx])
                        for k in keys
                    ],
                    [0.0],
                    6,
                    "",
                )
            )
    lora_big = None
    frozen_cache: dict = {}  # head modes: the frozen encoder's pooled outputs, shared
    for mode_name in modes:
        mode, _, extra = mode_name.partition("+")
        for n in shots:
            aucs, walls = [], []
            for (n_key, d), pick in picks.items():
                if n_key != n:
                    continue
                ex = Examples(
                    [ctx[i] for i in pick], [cand[i] for i in pick], labels[pick], side[pick]
                )
                if args.quick:
                    steps = 10
                elif n == "all":
                    steps = args.all_steps
                else:
                    steps = max(args.min_steps, args.epochs * int(n) // 16)
                lr = {"lora": 1e-3, "head": 3e-3, "full": 5e-5}[mode]
                r = LMRanker(
                    mode=mode,
                    lr=lr,
                    max_steps=steps,
                    warmup_steps=max(1, steps // 10),
                    batch_size=16,
                    max_length=args.max_length,
                    seed=args.seed + d,
                    side_features=extra == "side",
                )
                t = time.perf_counter()
                r.fit_examples(ex)
                wall = time.perf_counter() - t
                t = time.perf_counter()
                if mode == "head":
                    r._pool_cache = frozen_cache  # same frozen encoder, same test pairs
                value = auc(
                    test.labels, r.predict_pairs(test.contexts, test.candidates, test.features)
                )
                r._pool_cache = None
                score_s = time.perf_counter() - t
                trainable, total = r.trainable_parameters()
                aucs.append(value)
                walls.append(wall)
                print(
                    f"{mode_name} n={n} draw {d}: AUC {value:.4f} fit {wall:.0f}s "
                    f"({steps} steps) score {score_s:.0f}s",
                    flush=True,
                )
                if mode == "lora" and n == shots[-1] and lora_big is None:
                    lora_big = (r, value, mode_name, n)
            rows.append(
                (
                    f"LMRanker {mode_name}",
                    f"{steps}",
                    len(picks[(n, 0)]),  # every draw of n has n examples
                    aucs,
                    walls,
                    trainable,
                    f"{total:,}",
                )
            )
            args.out.with_suffix(".partial.md").write_text(
                "\n".join(" | ".join(map(str, row)) for row in rows) + "\n"
            )
    lines = [
        "# Fine-tuned LM ranker: TALLRec-style CTR on MovieLens-100K",
        "",
        f"`python benchmarks/ranker.py {' '.join(os.sys.argv[1:])}`; {platform.processor() or platform.machine()}, "
        f"torch threads = {torch.get_num_threads()} (lmrec's default), seed {args.seed}. Test: "
        f"{len(test_idx)} samples (last {args.test_per_user} of each of {data.n_users // 5} "
        f"held-out users), {labels[test_idx].mean():.0%} liked. History: 10 previous items with "
        f"like marks. Few-shot rows: {draws} independent draws of the n examples (and of the "
        "model seed); AUC mean, standard deviation and range over the draws.",
        "",
        "| model | steps | n train | draws | test AUC mean | sd | min - max | fit wall (s, median) "
        "| trainable params | total params |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, steps, n, values, walls, trainable, total in rows:
        v = np.asarray(values, float)
        lines.append(
            f"| {name} | {steps} | {n} | {len(v)} | {v.mean():.4f} | "
            f"{v.std(ddof=1) if len(v) > 1 else 0:.4f} | {v.min():.4f} - {v.max():.4f} | "
            f"{np.median(walls):.0f} | {trainable:,} | {total} |"
        )
    if lora_big is not None and not args.no_compression:
        lines += compression_section(
            lora_big, test, b, stats, int(users[test_idx[0]]), args.repeats
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
