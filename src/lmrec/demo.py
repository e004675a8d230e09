"""The MovieLens-100K walk-through behind ``lmrec demo`` (the README's first command).

Fetches the data (cached, checksummed), splits it per user 80/10/10 with a fixed
seed, trains each model on train+valid with hyperparameters tuned on valid
(``benchmarks/movielens.py`` re-derives them), evaluates on test under the strict
full-ranking protocol, prints a comparison with bootstrap confidence intervals,
and shows recommendations with movie titles -- for known users and for a brand-new
user described only by a few liked movies.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO, TypedDict

import pandas as pd

#: Models shown by default, with hyperparameters tuned on the validation split.
DEMO_MODELS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "itemknn": {"k_neighbors": 200},
    "svd": {"factors": 20},
    "ease": {"l2": 500.0},
    "bpr": {"n_threads": 1},
}
DEMO_METRICS = [
    "recall@10",
    "recall@20",
    "ndcg@10",
    "ndcg@20",
    "hit_rate@10",
    "mrr@10",
    "coverage@10",
    "novelty@10",
]
STAR_WARS_FAN = ["Star Wars", "Empire Strikes Back, The", "Return of the Jedi"]


def _titles(dataset, item_ids) -> list[str]:
    items = dataset.items
    return [f"{items.at[i, 'title']} ({items.at[i, 'year']})" for i in item_ids]


def run_demo(
    models: list[str] | None = None, *, seed: int = 2026, n_users: int = 3, out: TextIO = sys.stdout
) -> pd.DataFrame:
    """Run the walk-through and return the comparison table."""
    from lmrec._optional import require
    from lmrec.data.sources import fetch, load_builtin
    from lmrec.data.split import random_split
    from lmrec.errors import ConfigError, DataError, MissingExtraError
    from lmrec.eval.protocol import compare, evaluate
    from lmrec.models import create_model
    from lmrec.models.registry import list_models

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    names = models or [m for m in DEMO_MODELS if m in list_models()]
    say("== lmrec demo: MovieLens-100K ==")
    path = fetch("ml-100k")
    data = load_builtin("ml-100k")
    say(
        f"data: {data.n_users} users, {data.n_items} movies, {data.n_interactions} ratings (cache: {path})"
    )
    users, items = data.users, data.items
    if users is None or items is None:
        raise DataError(
            f"{path}: MovieLens-100K comes with user and item tables; these are missing."
        )
    split = random_split(data, ratios=(0.8, 0.1, 0.1), seed=seed)
    if split.valid is None:  # three ratios: train, valid, test
        raise DataError("The demo's 80/10/10 split gave no validation part.")
    train = split.train.concat(split.valid, name="train+valid")
    say(
        f"split: per-user random 80/10/10, seed {seed}: train+valid {train.n_interactions}, "
        f"test {split.test.n_interactions} interactions"
    )
    say("protocol: full ranking over all movies, each user's training movies excluded\n")

    results, fitted = {}, {}
    for name in names:
        model = create_model(name, DEMO_MODELS.get(name, {}))
        start = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - start
        res = evaluate(model, split.test, metrics=DEMO_METRICS, name=name)
        say(f"  {name:<12} fit {fit_s:6.2f}s   ndcg@10 {res.summary['ndcg@10']:.4f}")
        results[name], fitted[name] = res, model
    table = compare(results, baseline=names[0], metrics=DEMO_METRICS)
    say(f"\nTest metrics (95% bootstrap CI over users; 'diff' = paired difference vs {names[0]}):")
    main_cols = [c for c in table.columns if c in DEMO_METRICS]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4f}".format
    ):
        say(table[main_cols].to_string())
        ci_cols = [c for c in table.columns if c.startswith("ndcg@10 ")]
        say("\n" + table[ci_cols].to_string())

    best = max(results, key=lambda n: results[n].summary["ndcg@10"])
    model = fitted[best]
    say(f"\nExample recommendations from the best model ({best}):")
    ratings = data.to_frame()
    for user in sorted(split.test.to_frame()["user"].unique(), key=int)[:n_users]:
        liked = ratings[(ratings["user"] == user)].sort_values("rating", ascending=False)
        recs = model.recommend([user], k=5)
        hits = set(split.test.to_frame().query("user == @user")["item"])
        person = users.loc[user]
        say(
            f"\n  user {user} ({person['age']}, {person['gender']}, "
            f"{person['occupation']}) rated highly: "
            + "; ".join(_titles(data, liked["item"].head(3)))
        )
        for _, r in recs.iterrows():
            mark = "  <- in this user's test set" if r["item"] in hits else ""
            say(f"    {r['rank']}. {_titles(data, [r['item']])[0]}{mark}")

    titles = items["title"]
    fan = [titles.index[titles == t][0] for t in STAR_WARS_FAN]
    say(f"\nA brand-new user who liked only: {'; '.join(STAR_WARS_FAN)}")
    try:
        new = model.recommend_for_items(fan, k=5)
        for _, r in new.iterrows():
            say(f"    {r['rank']}. {_titles(data, [r['item']])[0]}")
    except ConfigError as e:  # a model without fold-in is reported, not fatal
        say(f"    ({best} cannot fold in new users: {e})")

    try:
        require("sentence_transformers", "lm")
    except MissingExtraError as e:
        say(f"\n(language-model part skipped: {e})")
        return table
    say("\n== Language models: item text read by all-MiniLM-L6-v2 (offline) ==")
    _lm_part(data, split, train, fitted.get("ease"), results.get("ease"), say)
    return table


class _Movie(TypedDict):
    title: str
    year: int
    genres: str


NEW_MOVIE: _Movie = {"title": "Toy Story 3", "year": 2010, "genres": "Animation|Children's|Comedy"}


def _lm_part(data, split, train, ease, ease_result, say) -> None:
    """Text-aware EASE vs EASE on warm items, then a brand-new movie known only by its text."""
    from lmrec.data import Dataset
    from lmrec.eval.protocol import compare, evaluate
    from lmrec.models import create_model
    from lmrec.models.content import ContentModel

    if ease is None or ease_result is None:
        say("  (train ease in the demo to compare the hybrid with it)")
        return
    start = time.perf_counter()
    hybrid = create_model("text_ease").fit(train)
    hybrid_res = evaluate(hybrid, split.test, metrics=DEMO_METRICS, name="text_ease")
    say(
        f"  text_ease (EASE whose Gram matrix also links each movie to its 10 nearest movies "
        f"by text): fit {time.perf_counter() - start:.1f}s"
    )
    table = compare(
        {"ease": ease_result, "text_ease": hybrid_res}, metrics=["ndcg@10", "recall@20"]
    )
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        say(table.to_string())

    items = pd.concat(
        [data.items, pd.DataFrame([NEW_MOVIE], index=pd.Index(["new-1"], name="item"))]
    )
    frame = train.to_frame()
    with_new = Dataset.from_frame(frame, items=items, users=data.users, name="ml-100k+new")
    content = ContentModel().fit(with_new)
    say(
        f"\nA brand-new movie nobody has rated: {NEW_MOVIE['title']} ({NEW_MOVIE['year']}), "
        f"{NEW_MOVIE['genres'].replace('|', ', ')}"
    )
    sims = content.similar_items(["new-1"], k=5)
    say("  closest catalog movies by text: " + "; ".join(_titles(with_new, sims["similar_item"])))
    scores = pd.Series(
        content.score(with_new.user_ids.ids, ["new-1"])[:, 0], index=with_new.user_ids.ids
    )
    fans = set(frame.loc[frame["item"] == "1", "user"])
    top = scores.sort_values(ascending=False).head(50)
    say(
        f"  of the 50 users it is recommended to most strongly, {sum(u in fans for u in top.index)} "
        f"watched Toy Story (as did {len(fans) / len(scores):.0%} of all users)"
    )
