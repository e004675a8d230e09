"""Build a new model version from a served model plus the feedback events in the store.

A model directory keeps the binary training pattern (``seen_``) and both id maps, which
is the training data of every implicit-feedback model: no separate copy of the
original interactions is needed. New events extend it (new users and items extend the
id maps); an event with weight <= 0 removes that (user, item) pair. The new model has
the same registry name and hyperparameters as the base, and is written atomically.

Limits: interaction *weights* of the original data are not in the model directory, so
the retrained model sees every pair with weight 1 (as all implicit models do by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap
from lmrec.errors import ConfigError


def training_frame(base, events: pd.DataFrame) -> pd.DataFrame:
    """(user, item) pairs of ``base``'s training pattern updated by ``events``."""
    seen = base.seen_.tocoo()
    # Stored events name ids as text; integer ids of the model are compared as text too.
    users = base.user_ids_.texts()
    items = base.item_ids_.texts()
    pairs = pd.DataFrame({"user": users[seen.row], "item": items[seen.col]})
    if len(events):
        latest = events.sort_values("id").drop_duplicates(["user", "item"], keep="last")
        pos = latest.loc[latest["weight"] > 0, ["user", "item"]]
        neg = latest.loc[latest["weight"] <= 0, ["user", "item"]]
        pairs = pd.concat([pairs, pos], ignore_index=True).drop_duplicates(["user", "item"])
        if len(neg):
            drop = pairs.merge(neg.assign(_drop=True), on=["user", "item"], how="left")["_drop"]
            pairs = pairs[drop.isna().to_numpy()]
    return pairs.reset_index(drop=True)


def retrain(store_url: str, base_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False):
    """Refit the model in ``base_dir`` on its training pattern plus stored events.

    Parameters
    ----------
    store_url : str
        SQLAlchemy URL of the event store written by ``lmrec serve``.
    base_dir : path
        The model directory being served.
    out_dir : path
        Where to write the new model directory (atomically).
    overwrite : bool
        Replace ``out_dir`` if it exists.

    Returns
    -------
    Recommender
        The fitted model (also saved to ``out_dir``).
    """
    from lmrec.models import create_model, load_model
    from lmrec.serve.events import EventStore

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True (CLI: --force).")
    base = load_model(base_dir)
    store = EventStore(store_url)
    try:
        rows = [(e.id, e.user, e.item, e.weight) for e in store.iter_events()]
    finally:
        store.close()
    events = pd.DataFrame(rows, columns=["id", "user", "item", "weight"])
    pairs = training_frame(base, events)
    if pairs.empty:
        raise ConfigError("No interactions left to train on (base model and events are empty).")
    user_ids = IdMap.from_values(np.concatenate([base.user_ids_.ids, pairs["user"].to_numpy()]))
    item_ids = IdMap.from_values(np.concatenate([base.item_ids_.ids, pairs["item"].to_numpy()]))
    dataset = Dataset.from_frame(pairs, user_ids=user_ids, item_ids=item_ids, name="retrain")
    model = create_model(base.name, base.config.model_dump())
    model.fit(dataset)
    model.save(out_dir, overwrite=overwrite)
    return model
