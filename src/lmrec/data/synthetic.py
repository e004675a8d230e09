"""Synthetic interaction data with known structure, for scale benchmarks and tests.

:func:`synthetic_interactions` draws a users x items data set in which both taste and
popularity matter, and whose item text carries real signal:

- every item belongs to one of ``n_topics`` topics and has a popularity weight
  following a Zipf-like power law, ``w = rank ** -alpha_items`` (ranks shuffled over
  items, so every topic has popular and obscure items);
- every user has a log-normal activity (``sigma = activity_sigma``) and a topic mix
  drawn from a sparse Dirichlet, so most users like a few topics;
- each interaction picks a topic from the user's mix (with 10% uniform noise), then an
  item of that topic in proportion to its popularity;
- item titles and descriptions are drawn mostly from a per-topic vocabulary ("space
  robot galaxy ..."), so a text model can recover the topics.

Generation is vectorised and chunked: ten million interactions take seconds and well
under a few GiB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap
from lmrec.errors import ConfigError

__all__ = ["TOPIC_WORDS", "SyntheticFiles", "synthetic_interactions", "write_synthetic"]

#: Vocabulary of the first topics; further topics get generated words (``t21w3``).
TOPIC_WORDS: tuple[tuple[str, ...], ...] = (
    ("space", "robot", "galaxy", "planet", "rocket", "alien", "orbit", "starship"),
    ("cooking", "recipe", "kitchen", "spice", "bake", "flavor", "chef", "dessert"),
    ("football", "match", "goal", "league", "coach", "stadium", "season", "striker"),
    ("guitar", "album", "concert", "melody", "band", "rhythm", "singer", "vinyl"),
    ("empire", "ancient", "dynasty", "battle", "king", "medieval", "archive", "ruins"),
    ("love", "wedding", "romance", "heart", "kiss", "letter", "summer", "promise"),
    ("detective", "murder", "crime", "clue", "police", "suspect", "alibi", "heist"),
    ("forest", "river", "wildlife", "mountain", "bird", "ocean", "garden", "climate"),
    ("travel", "journey", "island", "passport", "beach", "hotel", "flight", "road"),
    ("software", "code", "startup", "network", "data", "cloud", "laptop", "algorithm"),
    ("ghost", "haunted", "zombie", "curse", "nightmare", "blood", "vampire", "shadow"),
    ("comedy", "joke", "laugh", "prank", "sitcom", "funny", "clown", "satire"),
    ("dragon", "wizard", "magic", "quest", "sword", "elf", "castle", "spell"),
    ("soldier", "army", "war", "tank", "trench", "general", "mission", "frontline"),
    ("physics", "quantum", "experiment", "laboratory", "theory", "atom", "chemistry", "genome"),
    ("market", "stock", "investor", "bank", "economy", "profit", "trading", "budget"),
    ("fitness", "yoga", "diet", "health", "running", "sleep", "muscle", "therapy"),
    ("fashion", "style", "designer", "dress", "runway", "model", "fabric", "vintage"),
    ("cartoon", "puppy", "toy", "school", "friendship", "adventure", "family", "kids"),
    ("cowboy", "desert", "horse", "sheriff", "ranch", "outlaw", "saloon", "frontier"),
)
GENERIC_WORDS = (
    "the",
    "new",
    "story",
    "life",
    "world",
    "great",
    "last",
    "first",
    "night",
    "day",
    "secret",
    "return",
    "best",
    "guide",
    "complete",
    "edition",
    "collection",
    "volume",
)
# Dictionary page limit of the id columns written by write_synthetic (see there).
_DICTIONARY_PAGE_BYTES = 64 << 20
_EPOCH = 1_577_836_800.0  # 2020-01-01T00:00:00Z
_SPAN = 2 * 365 * 86_400.0  # two years of timestamps
_CHUNK = 1 << 20
_TOPIC_NOISE = 0.1


def _check(value: object, name: str, minimum: float, integer: bool = True) -> None:
    if integer:
        ok = isinstance(value, (int, np.integer)) and not value < minimum
    else:
        ok = isinstance(value, (int, float)) and not value < minimum
    if isinstance(value, bool) or not ok:
        kind = "an int" if integer else "a number"
        raise ConfigError(
            f"The {name!r} parameter of synthetic_interactions must be {kind} >= {minimum}. "
            f"Got {value!r} instead."
        )


def _validate(
    n_users: int,
    n_items: int,
    n_interactions: int,
    seed: int,
    n_topics: int,
    alpha_items: float,
    activity_sigma: float,
) -> int:
    """Check the generator's arguments; return the soft per-user cap on distinct items."""
    _check(n_users, "n_users", 1)
    _check(n_items, "n_items", 1)
    _check(n_interactions, "n_interactions", 1)
    _check(seed, "seed", 0)
    _check(n_topics, "n_topics", 1)
    _check(alpha_items, "alpha_items", 0, integer=False)
    _check(activity_sigma, "activity_sigma", 0, integer=False)
    cap = max(1, n_items // 4)  # a soft cap: top-ups stop for users past a quarter of the catalog
    if n_interactions > n_users * cap // 2:
        raise ConfigError(
            f"n_interactions={n_interactions} is too dense for {n_users} users x {n_items} "
            f"items: at most n_users * (n_items // 4) / 2 = {n_users * cap // 2} pairs, so "
            "that users can follow their tastes. Use fewer interactions or more users/items."
        )
    return cap


def _vocabulary(n_topics: int) -> list[tuple[str, ...]]:
    vocab = list(TOPIC_WORDS[:n_topics])
    for t in range(len(vocab), n_topics):
        vocab.append(tuple(f"t{t}w{j}" for j in range(8)))
    return vocab


def _item_text(
    rng: np.random.Generator, topic: np.ndarray, n_topics: int
) -> tuple[np.ndarray, np.ndarray]:
    """Titles (3 words) and descriptions (12 words): 80% topic words, 20% generic words."""
    vocab = _vocabulary(n_topics)
    words = np.array([w for ws in vocab for w in ws] + list(GENERIC_WORDS), dtype=object)
    per_topic, n_generic = 8, len(GENERIC_WORDS)
    n = len(topic)

    def draw(length: int) -> np.ndarray:
        own = topic[:, None] * per_topic + rng.integers(0, per_topic, (n, length))
        generic = n_topics * per_topic + rng.integers(0, n_generic, (n, length))
        return words[np.where(rng.random((n, length)) < 0.8, own, generic)]

    titles = np.array([" ".join(row).capitalize() for row in draw(3)], dtype=object)
    texts = np.array([" ".join(row) for row in draw(12)], dtype=object)
    return titles, texts


def _sample(
    rng: np.random.Generator,
    users: np.ndarray,
    user_cdf: np.ndarray,
    item_key: np.ndarray,
    item_order: np.ndarray,
    n_topics: int,
) -> np.ndarray:
    """One item per entry of ``users``: a topic from the user's mix, then an item by popularity."""
    out = np.empty(len(users), np.int64)
    for lo in range(0, len(users), _CHUNK):
        u = users[lo : lo + _CHUNK]
        r = rng.random(len(u))
        topic = (user_cdf[u] < r[:, None]).sum(axis=1)
        np.minimum(topic, n_topics - 1, out=topic)
        # item_key holds topic + (cumulative popularity share within the topic), sorted,
        # so one searchsorted picks an item of `topic` in proportion to its weight.
        pos = np.searchsorted(item_key, topic + rng.random(len(u)), side="left")
        out[lo : lo + len(u)] = item_order[np.minimum(pos, len(item_order) - 1)]
    return out


def _item_model(
    rng: np.random.Generator, n_items: int, n_topics: int, alpha_items: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item topics, plus the sorted ``item_key`` / ``item_order`` that :func:`_sample` draws from.

    Every topic is non-empty; popularity is a Zipf weight of a shuffled rank.
    """
    item_topic = rng.permutation(np.arange(n_items) % n_topics)
    weight = np.power(rng.permutation(n_items) + 1.0, -alpha_items)
    item_order = np.lexsort((np.arange(n_items), item_topic))
    w_sorted = weight[item_order]
    t_sorted = item_topic[item_order]
    cum = np.cumsum(w_sorted)
    starts = np.searchsorted(t_sorted, np.arange(n_topics))
    ends = np.append(starts[1:], n_items)
    before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    total = cum[ends - 1] - before
    share = (cum - before[t_sorted]) / total[t_sorted]
    item_key = t_sorted + np.minimum(share, 1.0)
    item_key[ends - 1] = np.arange(n_topics) + 1.0  # exact upper end of each topic
    return item_topic, item_key, item_order


def _user_cdf(rng: np.random.Generator, n_users: int, n_topics: int) -> np.ndarray:
    """Cumulative topic mix per user (float32, n_users x n_topics): sparse Dirichlet + noise."""
    mix = rng.dirichlet(np.full(n_topics, 0.3), size=n_users)
    mix = (1 - _TOPIC_NOISE) * mix + _TOPIC_NOISE / n_topics
    user_cdf = np.cumsum(mix, axis=1).astype(np.float32)
    return user_cdf


def _merge_unique(keys: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Sorted union of sorted unique ``keys`` and any ``new`` (sort-based: NumPy 2's hash
    ``np.unique`` is an order of magnitude slower on ten million int64)."""
    new = np.sort(new)
    fresh = np.empty(len(new), bool)
    fresh[:1] = True
    np.not_equal(new[1:], new[:-1], out=fresh[1:])
    new = new[fresh]
    if len(keys) == 0:
        return new
    pos = np.searchsorted(keys, new)
    known = keys[np.minimum(pos, len(keys) - 1)] == new
    return np.insert(keys, pos[~known], new[~known])


def synthetic_interactions(
    n_users: int,
    n_items: int,
    n_interactions: int,
    *,
    seed: int,
    alpha_items: float = 1.0,
    activity_sigma: float = 1.0,
    n_topics: int = 20,
    with_text: bool = True,
) -> Dataset:
    """A synthetic implicit-feedback data set where topic affinity and popularity matter.

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the id universes; ids are ``"u0", "u1", ...`` and ``"i0", "i1", ...``
        with dense index equal to the number.
    n_interactions : int
        Number of distinct (user, item) pairs. Draws that repeat a pair are dropped
        and topped up with fresh draws; in the rare case that users saturate their
        topics the result may hold slightly fewer pairs (never more).
    seed : int
        The same seed gives the same data set, bit for bit.
    alpha_items : float, default 1.0
        Exponent of the Zipf-like item popularity ``rank ** -alpha_items`` (0 = uniform).
    activity_sigma : float, default 1.0
        Sigma of the log-normal user activity (0 = every user equally active).
    n_topics : int, default 20
        Number of topics; the first 20 have hand-written vocabularies.
    with_text : bool, default True
        Add an item table with ``title``, ``text`` and the true ``topic``.

    Returns
    -------
    Dataset
        Interactions with ``weight`` 1.0 and ``timestamp`` (seconds, spread over
        2020-2021), sorted by user and item; ``items`` holds the item table (``topic``
        only when ``with_text`` is false).

    Examples
    --------
    >>> d = synthetic_interactions(200, 100, 1_000, seed=0)
    >>> d.n_users, d.n_items, d.n_interactions
    (200, 100, 1000)
    >>> d.items.columns.tolist()
    ['title', 'text', 'topic']
    """
    cap = _validate(n_users, n_items, n_interactions, seed, n_topics, alpha_items, activity_sigma)
    rng = np.random.default_rng(seed)
    n_topics = min(n_topics, n_items)

    item_topic, item_key, item_order = _item_model(rng, n_items, n_topics, alpha_items)

    # Users: a sparse topic mix (plus uniform noise) and a log-normal activity.
    user_cdf = _user_cdf(rng, n_users, n_topics)
    activity = rng.lognormal(0.0, activity_sigma, n_users)
    activity /= activity.sum()
    counts = np.minimum(rng.multinomial(n_interactions, activity), cap)

    keys = np.empty(0, np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    for _ in range(20):
        items = _sample(rng, users, user_cdf, item_key, item_order, n_topics)
        keys = _merge_unique(keys, users * n_items + items)
        deficit = n_interactions - len(keys)
        if deficit <= 0:
            break
        # Top up: more draws for users picked by activity, with slack for repeats.
        extra = int(deficit * 1.2) + 16
        users = np.sort(rng.choice(n_users, size=extra, p=activity))
        per_user = np.bincount(keys // n_items, minlength=n_users)
        users = users[per_user[users] < cap]
    if len(keys) > n_interactions:
        drop = rng.choice(len(keys), size=len(keys) - n_interactions, replace=False)
        keys = np.delete(keys, drop)

    n = len(keys)
    frame = pd.DataFrame(
        {
            "user_idx": (keys // n_items).astype(np.int32),
            "item_idx": (keys % n_items).astype(np.int32),
            "weight": np.ones(n, np.float32),
            "timestamp": np.floor(_EPOCH + rng.random(n) * _SPAN),
        }
    )
    del keys
    item_ids = np.array([f"i{i}" for i in range(n_items)], dtype=object)
    table = pd.DataFrame({"topic": item_topic}, index=pd.Index(item_ids, name="item"))
    if with_text:
        titles, texts = _item_text(rng, item_topic, n_topics)
        table = pd.DataFrame(
            {"title": titles, "text": texts, "topic": item_topic},
            index=pd.Index(item_ids, name="item"),
        )
    return Dataset(
        frame,
        IdMap(np.array([f"u{u}" for u in range(n_users)], dtype=object)),
        IdMap(item_ids),
        items=table,
        name=f"synthetic-{n_users}x{n_items}-{n_interactions}-seed{seed}",
    )


# ====================================================================== chunked files
_ROWS_PER_FILE = 1 << 21
_ITEM_TEXT_CHUNK = 100_000


@dataclass(frozen=True)
class SyntheticFiles:
    """What :func:`write_synthetic` wrote.

    Attributes
    ----------
    path : Path
        The output directory.
    files : list of str
        Interaction files (``part-00000.parquet``, ...), in user order.
    n_interactions : int
        Rows written over all files (distinct (user, item) pairs).
    n_users, n_items : int
        Sizes of the id universes (``u0..``, ``i0..``); ``items.parquet`` lists every item.
    """

    path: Path
    files: list[str]
    n_interactions: int
    n_users: int
    n_items: int


def _id_strings(prefix: str, values: np.ndarray):  # noqa: ANN202 - a pyarrow array
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(values), pa.string()), "")


def _block_pairs(
    rng: np.random.Generator,
    counts: np.ndarray,
    activity: np.ndarray,
    item_key: np.ndarray,
    item_order: np.ndarray,
    n_items: int,
    n_topics: int,
    cap: int,
) -> np.ndarray:
    """Distinct ``local_user * n_items + item`` keys (sorted) for one block of users.

    The block's target is ``counts.sum()``; repeats and capped users are topped up
    inside the block, as :func:`synthetic_interactions` does for the whole set.
    """
    n_block = len(counts)
    target = int(counts.sum())
    user_cdf = _user_cdf(rng, n_block, n_topics)
    p = activity / activity.sum()
    keys = np.empty(0, np.int64)
    users = np.repeat(np.arange(n_block, dtype=np.int64), np.minimum(counts, cap))
    for _ in range(20):
        items = _sample(rng, users, user_cdf, item_key, item_order, n_topics)
        keys = _merge_unique(keys, users * n_items + items)
        deficit = target - len(keys)
        if deficit <= 0:
            break
        users = np.sort(rng.choice(n_block, size=int(deficit * 1.2) + 16, p=p))
        per_user = np.bincount(keys // n_items, minlength=n_block)
        users = users[per_user[users] < cap]
    if len(keys) > target:
        keys = np.delete(keys, rng.choice(len(keys), size=len(keys) - target, replace=False))
    return keys


def write_synthetic(
    out: str | Path,
    n_users: int,
    n_items: int,
    n_interactions: int,
    *,
    seed: int,
    alpha_items: float = 1.0,
    activity_sigma: float = 1.0,
    n_topics: int = 20,
    with_weight: bool = False,
    rows_per_file: int = _ROWS_PER_FILE,
    overwrite: bool = False,
) -> SyntheticFiles:
    """Write a synthetic data set as chunked Parquet files, one block of users at a time.

    Same generative model as :func:`synthetic_interactions` (topics, Zipf item
    popularity, log-normal user activity, topic-worded item text), but users are
    generated in contiguous blocks of about ``rows_per_file`` interactions, each from
    its own child seed (``SeedSequence(seed).spawn``) and written before the next is
    drawn, so memory is bounded by one block plus O(n_users + n_items): 100 million
    interactions fit in a few GiB. The draws differ from :func:`synthetic_interactions`
    with the same seed; the same arguments always give the same files.

    Parameters
    ----------
    out : str or Path
        Output directory, written atomically (a temporary sibling, then a rename).
    n_users, n_items, n_interactions, seed, alpha_items, activity_sigma, n_topics
        As in :func:`synthetic_interactions` (same limits).
    with_weight : bool, default False
        Add a ``weight`` column (float32, geometric counts 1, 2, 3, ...).
    rows_per_file : int, default 2**21
        Interactions per Parquet file (approximately: blocks end at user boundaries).
    overwrite : bool, default False
        Replace ``out`` if it exists.

    Returns
    -------
    SyntheticFiles
        Files ``part-NNNNN.parquet`` with columns ``user``, ``item`` (strings ``u0``,
        ``i0``, ...), ``timestamp`` (int64 epoch seconds) [, ``weight``], sorted by user
        and item within and across files; plus ``items.parquet`` with columns ``item``,
        ``title``, ``text``, ``topic``.

    Examples
    --------
    >>> import pathlib, tempfile, pandas as pd
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "synth"
    >>> files = write_synthetic(d, 300, 100, 2_000, seed=0, rows_per_file=500)
    >>> files.n_interactions, len(files.files)
    (2000, 4)
    >>> pd.read_parquet(d / "items.parquet").columns.tolist()
    ['item', 'title', 'text', 'topic']
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lmrec._atomic import atomic_dir

    cap = _validate(n_users, n_items, n_interactions, seed, n_topics, alpha_items, activity_sigma)
    _check(rows_per_file, "rows_per_file", 1)
    seeds = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(seeds[0])
    n_topics = min(n_topics, n_items)
    item_topic, item_key, item_order = _item_model(rng, n_items, n_topics, alpha_items)
    activity = rng.lognormal(0.0, activity_sigma, n_users)
    activity /= activity.sum()
    counts = rng.multinomial(n_interactions, activity)
    n_files = max(1, -(-n_interactions // rows_per_file))
    bounds = np.concatenate(
        [[0], np.searchsorted(np.cumsum(counts), np.arange(1, n_files) * rows_per_file), [n_users]]
    )
    bounds = np.unique(bounds)
    block_seeds = np.random.SeedSequence(seed).spawn(2 + len(bounds))[2:]
    files: list[str] = []
    total = 0
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            if counts[lo:hi].sum() == 0:
                continue
            brng = np.random.default_rng(block_seeds[b])
            keys = _block_pairs(
                brng, counts[lo:hi], activity[lo:hi], item_key, item_order, n_items, n_topics, cap
            )
            n = len(keys)
            columns = {
                "user": _id_strings("u", keys // n_items + lo),
                "item": _id_strings("i", keys % n_items),
                "timestamp": pa.array(np.floor(_EPOCH + brng.random(n) * _SPAN).astype(np.int64)),
            }
            if with_weight:
                columns["weight"] = pa.array(brng.geometric(0.5, n).astype(np.float32))
            del keys
            name = f"part-{len(files):05d}.parquet"
            # Id columns dictionary-encoded whatever the catalog size: past pyarrow's
            # default 1 MiB dictionary page (about 80k distinct ids per row group) the
            # writer falls back to plain strings, which read 3-4x slower.
            pq.write_table(
                pa.table(columns),
                tmp / name,
                use_dictionary=["user", "item"],
                dictionary_pagesize_limit=_DICTIONARY_PAGE_BYTES,
            )
            files.append(name)
            total += n
        trng = np.random.default_rng(seeds[1])
        schema = pa.schema(
            [
                ("item", pa.string()),
                ("title", pa.string()),
                ("text", pa.string()),
                ("topic", pa.int32()),
            ]
        )
        with pq.ParquetWriter(tmp / "items.parquet", schema) as writer:
            for lo in range(0, n_items, _ITEM_TEXT_CHUNK):
                topic = item_topic[lo : lo + _ITEM_TEXT_CHUNK]
                titles, texts = _item_text(trng, topic, n_topics)
                writer.write_table(
                    pa.table(
                        {
                            "item": _id_strings("i", np.arange(lo, lo + len(topic))),
                            "title": pa.array(titles.tolist(), pa.string()),
                            "text": pa.array(texts.tolist(), pa.string()),
                            "topic": pa.array(topic.astype(np.int32)),
                        },
                        schema=schema,
                    )
                )
    return SyntheticFiles(Path(out), files, total, n_users, n_items)
