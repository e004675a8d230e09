"""Cold-start users: attribute groups, group popularity, the Onboard model, the CI table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.errors import DataWarning
from lmrec.models.attributes import AttributeGroups, attribute_labels
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
    popularity once items arrive."""
    from lmrec.eval.coldusers import cold_user_cis, cold_user_curve
    from lmrec.models.popularity import Popularity

    models = {"popularity": Popularity, "group_popularity": GroupPopularity, "onboard": Onboard}
    curve = cold_user_curve(ml100k, models, ns=(0, 3), user_fraction=0.1, seed=7)
    table = cold_user_cis(curve, reference="group_popularity", n_resamples=200)
    assert len(table) == 6 and set(table["model"]) == set(models)
    assert (table["low"] <= table["mean"]).all() and (table["mean"] <= table["high"]).all()
    pop = table[table["model"] == "popularity"]
    assert np.allclose(pop["ratio"], 1.0)
    onboard = table[(table["model"] == "onboard") & (table["n_known"] == 3)].iloc[0]
    assert onboard["ratio"] > 1.05
    assert onboard["diff"] == pytest.approx(
        onboard["mean"]
        - table[(table["model"] == "group_popularity") & (table["n_known"] == 3)]["mean"].iloc[0],
        abs=1e-9,
    )
