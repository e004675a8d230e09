"""A conformance suite every recommender runs: subclass it in a test module.

>>> class TestMyModel(RecommenderContract):   # doctest: +SKIP
...     def make_model(self):
...         return MyModel(factors=8, seed=0)

The checks are the contract of :class:`lmrec.models.Recommender`: same seed gives the
same model, a refit equals a single fit, batch equals single-user, ``exclude_seen``
and ``candidates`` are honoured, unknown users follow the policy, save/load and the
config round-trip exactly, and a block-diagonal "checkerboard" of two user groups is
recommended within the right group. It needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.errors import NotFittedError, UnknownIdError
from lmrec.models.capabilities import DotProductModel, FoldInModel, SequenceModel, supports


def checkerboard(
    n_users: int = 40, n_items: int = 30, density: float = 0.5, seed: int = 0
) -> Dataset:
    """Two disjoint communities: even users like even items, odd users like odd items.

    Rows carry timestamps in row order (0, 1, 2, ...), so sequence models read them too.

    Every user leaves out some items of their own group, which a sensible model
    recommends before any item of the other group.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        own = np.arange(u % 2, n_items, 2)
        chosen = own[rng.random(len(own)) < density]
        if len(chosen) == len(own):
            chosen = chosen[:-1]
        if len(chosen) == 0:
            chosen = own[:1]
        rows += [(f"u{u}", f"i{i}") for i in chosen]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    frame["timestamp"] = np.arange(len(frame), dtype=np.float64)  # for the sequence models
    items = pd.DataFrame(
        {
            "title": [f"item {i}" for i in range(n_items)],
            "genres": ["Even" if i % 2 == 0 else "Odd" for i in range(n_items)],
        },
        index=pd.Index([f"i{i}" for i in range(n_items)], name="item"),
    )
    return Dataset.from_frame(frame, items=items, name="checkerboard")


def rated_checkerboard(seed: int = 0) -> Dataset:
    """The checkerboard with explicit ratings: 5 stars for the items of the user's own group,
    1 star for three items of the other group (for rating models)."""
    board = checkerboard(seed=seed)
    frame = board.to_frame()[["user", "item"]].assign(rating=5.0)
    rng = np.random.default_rng(seed)
    other = []
    for u in frame["user"].unique():
        parity = 1 - int(u[1:]) % 2
        for i in rng.choice(np.arange(parity, board.n_items, 2), size=3, replace=False):
            other.append((u, f"i{i}", 1.0))
    frame = pd.concat([frame, pd.DataFrame(other, columns=["user", "item", "rating"])])
    return Dataset.from_frame(frame, items=board.items, name="rated-checkerboard")


class RecommenderContract:
    """Mixin of pytest tests; subclasses implement :meth:`make_model` (a fresh, unfitted model)."""

    #: Tolerance for score equality between two fits / save-load (0 = bitwise).
    atol: float = 1e-5
    #: Share of the 24 folded-in recommendations (8 new users x 3) that must fall in the right
    #: checkerboard group; chance is 0.5, and 18 of 24 right has a 1% chance under it.
    fold_in_floor: float = 0.8

    def make_model(self):  # pragma: no cover - overridden
        raise AssertionError("subclasses define make_model()")

    def data(self) -> Dataset:
        return checkerboard()

    def fitted(self):
        return self.make_model().fit(self.data())

    def test_not_fitted_raises(self):
        import pytest

        with pytest.raises(NotFittedError):
            self.make_model().recommend(["u0"], k=3)

    def test_same_seed_same_model(self):
        a, b = self.fitted(), self.fitted()
        np.testing.assert_allclose(a.score(["u0", "u1"]), b.score(["u0", "u1"]), atol=self.atol)

    def test_refit_equals_single_fit(self):
        data = self.data()
        once = self.make_model().fit(data)
        other = Dataset.from_frame(
            pd.DataFrame({"user": ["x", "y", "y"], "item": ["i0", "i1", "i2"]}), items=data.items
        )
        twice = self.make_model().fit(other).fit(data)
        np.testing.assert_allclose(
            once.score(["u0", "u3"]), twice.score(["u0", "u3"]), atol=self.atol
        )

    def test_batch_equals_single(self):
        model = self.fitted()
        users = [f"u{i}" for i in range(10)]
        batch = model.recommend(users, k=5)
        single = pd.concat([model.recommend([u], k=5) for u in users], ignore_index=True)
        pd.testing.assert_frame_equal(batch[["user", "rank"]], single[["user", "rank"]])
        np.testing.assert_allclose(batch["score"], single["score"], atol=self.atol)
        # Items must match except among scores tied within atol (BLAS may round a batch
        # and a single row differently, which legitimately reorders exact ties).
        for (_, b), (_, o) in zip(batch.groupby("user"), single.groupby("user"), strict=True):
            cut = b["score"].min() + self.atol
            clear = b["score"].to_numpy() > cut
            untied = (
                clear
                & (np.abs(np.diff(b["score"].to_numpy(), prepend=np.inf)) > self.atol)
                & (np.abs(np.diff(b["score"].to_numpy(), append=-np.inf)) > self.atol)
            )
            assert (b["item"].to_numpy()[untied] == o["item"].to_numpy()[untied]).all()
            assert set(b["item"][clear]) == set(o["item"][o["score"].to_numpy() > cut])

    def test_exclude_seen_and_sorted_unique(self):
        data = self.data()
        model = self.make_model().fit(data)
        recs = model.recommend([f"u{i}" for i in range(data.n_users)], k=10)
        seen = set(map(tuple, data.to_frame()[["user", "item"]].to_numpy()))
        assert not any((u, i) in seen for u, i in recs[["user", "item"]].to_numpy())
        for _, g in recs.groupby("user"):
            assert g["item"].is_unique
            assert (np.diff(g["score"].to_numpy()) <= 1e-6).all()
            assert g["rank"].tolist() == list(range(1, len(g) + 1))
        with_seen = model.recommend(["u0"], k=data.n_items, exclude_seen=False)
        assert len(with_seen) == data.n_items

    def test_topk_is_a_prefix_of_longer_lists(self):
        data = self.data()
        model = self.make_model().fit(data)
        users = [f"u{i}" for i in range(data.n_users)]
        for k, longer in ((1, 4), (3, 10), (5, data.n_items)):
            short = model.recommend(users, k=k).groupby("user")["item"].agg(list)
            full = model.recommend(users, k=longer).groupby("user")["item"].agg(list)
            for user, items in short.items():
                assert full[user][:k] == items, (user, k, longer)

    def test_declared_dot_product_reproduces_scores(self):
        model = self.fitted()
        if not supports(model, DotProductModel):
            return
        idx = np.arange(min(8, model.seen_.shape[0]))
        items = model.item_vectors()
        assert items.dtype == np.float32 and items.flags.c_contiguous
        assert items.shape[0] == model.n_items
        assert model.item_vectors() is items  # built once per fit
        np.testing.assert_allclose(
            model.user_vectors(idx) @ items.T,
            model.score(model.user_ids_.lookup(idx)),
            rtol=1e-4,
            atol=1e-4,
        )

    def test_candidates_honoured(self):
        model = self.fitted()
        recs = model.recommend(["u0", "u1"], k=5, candidates=["i1", "i2", "i3"])
        assert set(recs["item"]) <= {"i1", "i2", "i3"}

    def test_unknown_users_policy(self):
        import pytest

        model = self.fitted()
        with pytest.raises(UnknownIdError):
            model.recommend(["nobody"], k=3)
        out = model.recommend(["nobody", "u0"], k=3, on_unknown="ignore")
        assert set(out["user"]) == {"u0"}

    def test_save_load_round_trip(self, tmp_path):
        from lmrec.models import load_model

        model = self.fitted()
        model.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        users = [f"u{i}" for i in range(8)]
        np.testing.assert_allclose(loaded.score(users), model.score(users), atol=1e-6)
        pd.testing.assert_frame_equal(loaded.recommend(users, k=5), model.recommend(users, k=5))

    def test_config_round_trip(self):
        model = self.make_model()
        again = type(model)(**model.config.model_dump())
        assert again.config == model.config

    def test_checkerboard_known_answer(self):
        model = self.fitted()
        recs = model.recommend([f"u{i}" for i in range(20)], k=3)
        user_group = recs["user"].str[1:].astype(int) % 2
        item_group = recs["item"].str[1:].astype(int) % 2
        assert (user_group == item_group).mean() >= 0.9

    def test_fold_in_history(self):
        import pytest

        from lmrec.errors import ConfigError

        model = self.fitted()
        if not (supports(model, FoldInModel) or supports(model, SequenceModel)):
            with pytest.raises(ConfigError):
                model.recommend_for_items(["i0", "i2"], k=3)
            return
        # Eight new users, four per community, each with three items of their own group.
        histories = [
            [f"i{start + offset + 2 * j}" for j in range(3)]
            for offset in (0, 1)
            for start in range(0, 24, 6)
        ]
        group = np.repeat([0, 1], 4)
        recs = model.recommend_for_items(histories, k=3)
        for row, hist in enumerate(histories):
            assert not set(recs.loc[recs["user"] == str(row), "item"]) & set(hist)
        right = group[recs["user"].astype(int)] == recs["item"].str[1:].astype(int) % 2
        assert len(recs) == 24 and right.mean() >= self.fold_in_floor
