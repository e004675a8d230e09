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

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap
from lmrec.errors import ConfigError

__all__ = ["TOPIC_WORDS", "synthetic_interactions"]

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
)  # fmt: skip
GENERIC_WORDS = (
    "the", "new", "story", "life", "world", "great", "last", "first", "night", "day",
    "secret", "return", "best", "guide", "complete", "edition", "collection", "volume",
)  # fmt: skip
_EPOCH = 1_577_836_800.0  # 2020-01-01T00:00:00Z
_SPAN = 2 * 365 * 86_400.0  # two years of timestamps
_CHUNK = 1 << 20
_TOPIC_NOISE = 0.1


def _check(value: object, name: str, minimum: float, integer: bool = True) -> None:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < minimum:
        kind = "an int" if integer else "a number"
        raise ConfigError(
            f"The {name!r} parameter of synthetic_interactions must be {kind} >= {minimum}. "
            f"Got {value!r} instead."
        )


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
    rng = np.random.default_rng(seed)
    n_topics = min(n_topics, n_items)

    # Items: a topic each (every topic non-empty), a Zipf weight by a shuffled rank.
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

    # Users: a sparse topic mix (plus uniform noise) and a log-normal activity.
    mix = rng.dirichlet(np.full(n_topics, 0.3), size=n_users)
    mix = (1 - _TOPIC_NOISE) * mix + _TOPIC_NOISE / n_topics
    user_cdf = np.cumsum(mix, axis=1).astype(np.float32)
    del mix
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
    items = pd.DataFrame({"topic": item_topic}, index=pd.Index(item_ids, name="item"))
    if with_text:
        titles, texts = _item_text(rng, item_topic, n_topics)
        items = pd.DataFrame(
            {"title": titles, "text": texts, "topic": item_topic},
            index=pd.Index(item_ids, name="item"),
        )
    return Dataset(
        frame,
        IdMap(np.array([f"u{u}" for u in range(n_users)], dtype=object)),
        IdMap(item_ids),
        items=items,
        name=f"synthetic-{n_users}x{n_items}-{n_interactions}-seed{seed}",
    )
