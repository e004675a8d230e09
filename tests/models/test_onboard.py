"""Cold-start users: attribute groups, group popularity, the Onboard model, the CI table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.errors import DataWarning
from lmrec.models.attributes import AttributeGroups, attribute_labels
from lmrec.models.base import history_matrix
from lmrec.models.group_popularity import GroupPopularity
from lmrec.models.onboard import Onboard
from lmrec.testing import RecommenderContract, checkerboard


def checkerboard_with_groups() -> Dataset:
    """The contract's checkerboard, each user with a ``side`` attribute (their group)."""
    base = checkerboard()
    users = pd.DataFrame(
        {"side": ["even" if int(u[1:]) % 2 == 0 else "odd" for u in base.user_ids.ids]},
        index=pd.Index(base.user_ids.ids, name="user"),
    )
    return Dataset.from_frame(
        base.to_frame()[["user", "item"]], items=base.items, users=users, name="checkerboard"
    )


class TestGroupPopularityContract(RecommenderContract):
    def make_model(self):
        return GroupPopularity(attributes=("side",))

    def data(self):
        return checkerboard_with_groups()

    def test_fold_in_history(self):  # a history carries no attributes: global popularity
        recs = self.fitted().recommend_for_items(["i0"], k=3)
        assert "i0" not in set(recs["item"])


class TestOnboardContract(RecommenderContract):
    def make_model(self):
        return Onboard(l2_items=10.0, seed=3)


class TestOnboardAttributesContract(RecommenderContract):
    def make_model(self):
        return Onboard(groups=(("side",),), l2_items=10.0, seed=3)

    def data(self):
        return checkerboard_with_groups()


def test_attribute_labels_and_groups():
    users = pd.DataFrame({"age": [17, 24, 25, 60, None], "gender": ["F", "M", "M", "F", "F"]})
    assert attribute_labels(users, "age").tolist() == [
        "age <18",
        "age 18-24",
        "age 25-34",
        "age 56+",
        "",
    ]
    g = AttributeGroups(users, [("gender",), ("age", "gender")], 5)
    assert g.vocabularies[0] == ["gender F", "gender M"]
    assert g.describe(2) == ["gender M", "age 25-34, gender M"]
    assert g.codes[4, 1] == -1  # a missing age: no age x gender group
    assert g.one_hot(np.array([4])).sum() == 1.0
    with pytest.warns(DataWarning, match="zip"):
        assert AttributeGroups(users, [("zip",)], 5).n_features == 0


def test_group_popularity_counts_within_the_group():
    frame = pd.DataFrame({"user": ["a", "b", "b", "c"], "item": ["x", "y", "z", "z"]})
    users = pd.DataFrame({"gender": ["F", "M", "F"]}, index=pd.Index(["a", "b", "c"], name="user"))
    model = GroupPopularity(attributes=("gender",)).fit(Dataset.from_frame(frame, users=users))
    scores = model.score(["a", "b"], ["x", "y", "z"])
    assert scores[0].argmax() == 2 and scores[0, 0] > scores[0, 1]  # F: z (c), x (a); y (M) last
    assert scores[1, 1] == pytest.approx(1.0, abs=1e-4)  # M: y and z once each
    assert model.explain("y", user="a").contributions == ()


def test_onboard_prior_is_the_group_and_items_take_over(ml100k):
    """With no items a user gets their group's taste; with items, V moves the list."""
    model = Onboard().fit(ml100k)
    assert model.user_groups("1") == ["age 18-24", "gender M", "age 18-24, gender M"]
    # Two cold users (empty histories) of different groups get different lists.
    young_men = model._attribute_rows(np.array([0]), np.array([0]))[0]
    old_women = model._attribute_rows(np.array([ml100k.user_ids.index(["2"])[0]]), np.array([0]))[0]
    assert np.argsort(-young_men)[:10].tolist() != np.argsort(-old_women)[:10].tolist()
    # Star Wars fans' history pushes the sequels up (V), beyond the popularity prior.
    titles = ml100k.items["title"]
    ids = {t: i for i, t in titles.items()}
    recs = model.recommend_for_items([ids["Star Wars"], ids["Empire Strikes Back, The"]], k=5)
    assert ids["Return of the Jedi"] in set(recs["item"])


def test_onboard_explanation_is_its_own_score(ml100k):
    model = Onboard().fit(ml100k)
    user = 10
    item = int(model.recommend_indices(np.array([user]), 1)[0][0, 0])
    att = model.attribute(item, user_idx=user)
    assert att.score == pytest.approx(float(model._score(np.array([user]))[0, item]), abs=1e-4)
    assert att.contributions.max() > 0


def test_cold_user_curve_reports_cis_and_beats_popularity(ml100k):
    """A small real cold-user curve: CIs, ratios, paired differences; Onboard above
    popularity once items arrive, and >= 1.08x popularity from a single item (1.088x; with
    the former defaults -- summed history rows, ``l2_items=300``, ``l2_attributes_items=30``
    -- it was 1.069x)."""
    from lmrec.eval.coldusers import cold_user_cis, cold_user_curve
    from lmrec.models.popularity import Popularity

    models = {"popularity": Popularity, "group_popularity": GroupPopularity, "onboard": Onboard}
    curve = cold_user_curve(ml100k, models, ns=(0, 1, 3), user_fraction=0.1, seed=7)
    table = cold_user_cis(curve, reference="group_popularity", n_resamples=200)
    assert len(table) == 9 and set(table["model"]) == set(models)
    assert (table["low"] <= table["mean"]).all() and (table["mean"] <= table["high"]).all()
    pop = table[table["model"] == "popularity"]
    assert np.allclose(pop["ratio"], 1.0)
    onboard = table[(table["model"] == "onboard") & (table["n_known"] == 3)].iloc[0]
    assert onboard["ratio"] > 1.05
    one = table[(table["model"] == "onboard") & (table["n_known"] == 1)].iloc[0]
    assert one["ratio"] >= 1.08
    assert onboard["diff"] == pytest.approx(
        onboard["mean"]
        - table[(table["model"] == "group_popularity") & (table["n_known"] == 3)]["mean"].iloc[0],
        abs=1e-9,
    )


@pytest.mark.parametrize("norm", [0.0, 0.5, 1.0])
def test_onboard_history_rows_are_divided_by_their_length(norm):
    """A history of n items scores ``W_b(n)[intercept] + (sum of their V rows) / n**norm``:
    by hand, for one and for three items."""
    model = Onboard(l2_items=10.0, length_norm=norm, seed=3).fit(checkerboard())
    for history in ([4], [0, 7, 12]):
        n = len(history)
        got = model.score_history(history_matrix([np.array(history)], model.n_items))[0]
        bucket = max(b for b, p in enumerate(model.config.prefixes) if p <= n)
        expected = model.W_[bucket, 0] + model.V_[history].sum(axis=0) / n**norm
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_onboard_files_keep_length_norm_and_older_files_sum_the_rows(tmp_path):
    """Saved models score as fitted; files written before ``length_norm`` existed (no
    ``length_norm`` in their metadata) were fitted on summed rows and load with 0."""
    from lmrec.models import load_model

    model = Onboard(l2_items=10.0, length_norm=0.5, seed=3).fit(checkerboard())
    model.save(tmp_path / "new")
    users = np.arange(6)
    np.testing.assert_allclose(load_model(tmp_path / "new")._score(users), model._score(users))
    summed = Onboard(l2_items=10.0, length_norm=0.0, seed=3).fit(checkerboard())
    arrays, meta = summed._get_state()
    del meta["length_norm"]
    summed._get_state = lambda: (arrays, meta)  # what an older version wrote
    summed.save(tmp_path / "old")
    old = load_model(tmp_path / "old")
    assert old.length_norm_ == 0.0
    np.testing.assert_allclose(old._score(users), summed._score(users))


def test_onboard_stage_zero_is_apart_from_the_stages_with_items():
    """Stage 0 rows have no items and only stage-0 attribute columns, so its weights do not
    depend on ``l2_attributes_items``; a larger one shrinks the group weights of the
    stages with items (their intercepts stay nearly free)."""
    data = checkerboard_with_groups()
    loose = Onboard(groups=(("side",),), l2_items=10.0, l2_attributes_items=1.0).fit(data)
    tight = Onboard(groups=(("side",),), l2_items=10.0, l2_attributes_items=1e4).fit(data)
    np.testing.assert_allclose(loose.W_[0], tight.W_[0], rtol=1e-4, atol=1e-6)
    assert np.abs(tight.W_[1:, 1:]).max() < 0.1 * np.abs(loose.W_[1:, 1:]).max()
