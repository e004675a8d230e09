"""Explanations: exact decompositions, occlusion, catalog reasons, bad input, faithfulness."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.errors import ConfigError, UnknownIdError
from lmrec.models.explain import Catalog, catalog_reasons, occlusion
from tests.conftest import SEED

# Fast settings of every registered model for a small real sample (the explanation and
# deletion tests below run on each). A newly registered model needs an entry here.
FAST = {
    "popularity": {},
    "group_popularity": {},
    "onboard": {"l2_items": 100.0},
    "itemknn": {"k_neighbors": 50},
    "userknn": {"k_neighbors": 20},
    "ease": {"l2": 50.0},
    "svd": {"factors": 16, "seed": SEED},
    "als": {"factors": 16, "iterations": 5, "n_threads": 1, "seed": SEED},
    "bpr": {"factors": 16, "epochs": 5, "seed": SEED, "n_threads": 1},
    "fm": {"factors": 16, "epochs": 5, "seed": SEED, "n_threads": 1},
    "content": {"seed": 0},
    "blend": {"cf_params": {"l2": 50.0}, "weight": 0.3},
    "twotower": {"factors": 16, "epochs": 5, "n_threads": 1},
    "text2cf": {"cf_l2": 50.0},
    "text_ease": {"l2": 50.0, "beta": 1.0, "side": "features"},
    "ranker": {
        "n_layers": 1,
        "max_length": 64,
        "batch_size": 8,
        "max_examples": 200,
        "warmup_steps": 1,
        "n_history": 5,
        "n_threads": 2,
        "max_steps": 8,
        "seed": SEED,
        "full_rank_limit": 2000,
    },
    "sasrec": {
        "factors": 16,
        "epochs": 2,
        "max_len": 20,
        "device": "cpu",
        "seed": SEED,
        "n_threads": 1,
    },
    "gru4rec": {
        "factors": 16,
        "epochs": 2,
        "max_len": 20,
        "device": "cpu",
        "seed": SEED,
        "n_threads": 1,
    },
    "biasedmf": {"factors": 8, "iterations": 3},
    "knnbaseline": {"k_neighbors": 20},
    "rerank": {"base_params": {"l2": 50.0}, "n_candidates": 30},
    "pipeline": {
        "n_candidates": 20,
        "retriever_params": {"l2": 50.0},
        "ranker_params": {
            "n_layers": 1,
            "max_length": 64,
            "batch_size": 8,
            "max_examples": 200,
            "warmup_steps": 1,
            "n_history": 5,
            "n_threads": 2,
            "max_steps": 8,
            "seed": SEED,
        },
    },
}
#: Models whose scores do not depend on the history (every contribution is 0).
HISTORY_FREE = {"popularity", "group_popularity"}
#: Rating models score a user's ratings, not an item list: they explain known users only,
#: exactly, from the ratings they keep (tests below).
NO_HISTORY_SCORING = {"biasedmf", "knnbaseline"}
EXPLAINED = sorted(set(FAST) - NO_HISTORY_SCORING)


@pytest.fixture(scope="module")
def sample(ml100k):
    """60 users of real MovieLens-100K (id maps and catalogs kept)."""
    return ml100k.subset(ml100k.column("user_idx") < 60, name="ml-sample")


@pytest.fixture(scope="module")
def fitted(sample):
    """``fitted(name)``: the registered model ``name`` fitted on the sample, once."""
    from lmrec.models import create_model

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            if name in ("ranker", "pipeline"):
                pytest.importorskip("peft")
            cache[name] = create_model(name, FAST[name]).fit(sample)
        return cache[name]

    return get


def test_every_registered_model_has_fast_settings():
    from lmrec.models.registry import get_model_class, list_models

    builtin = {n for n in list_models() if get_model_class(n).__module__.startswith("lmrec.")}
    missing = sorted(builtin - set(FAST))
    assert not missing, f"add fast settings for {missing} to FAST in {__file__}"


def _top_item(model, history: np.ndarray, pool: np.ndarray) -> int:
    """The model's best item for ``history`` among ``pool`` (history items excluded)."""
    pool = pool[~np.isin(pool, history)]
    scores = model.score_histories([history], items=pool)[0]
    return int(pool[np.argmax(scores)])


@pytest.mark.parametrize("name", ["ease", "itemknn", "svd"])
def test_linear_models_are_exact_and_equal_occlusion(fitted, name):
    model = fitted(name)
    user = 7
    item = int(model.recommend_indices(np.array([user]), 1)[0][0, 0])
    att = model.attribute(item, user_idx=user)
    assert att.method == "exact"
    assert att.score == pytest.approx(float(model._score(np.array([user]))[0, item]), abs=1e-4)
    score, contributions = occlusion(
        lambda rows: model.score_histories(rows, items=np.array([item]))[:, 0], att.history
    )
    assert score == pytest.approx(att.score, abs=1e-4)
    np.testing.assert_allclose(contributions, att.contributions, atol=1e-4)


def test_als_decomposition_is_implicits_explain(fitted):
    """The ALS contributions are those of implicit's own ``explain`` (same factors)."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    model = fitted("als")
    user, item = 3, 50
    hist = model.user_history(user)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit warns about a threaded BLAS otherwise
        ref = AlternatingLeastSquares(factors=model.config.factors, regularization=model.config.l2)
    ref.item_factors = model.item_factors_.astype(np.float32)
    ref.user_factors = model.user_factors_.astype(np.float32)
    row = sp.csr_matrix(
        (
            np.full(len(hist), 1.0 + model.config.alpha, np.float32),
            (np.zeros(len(hist), int), hist),
        ),
        shape=(1, model.n_items),
    )
    total, top, _ = ref.explain(0, row, item, N=len(hist))
    att = model.attribute(item, user_idx=user)
    assert att.score == pytest.approx(total, rel=1e-3, abs=1e-5)
    ours = dict(zip(att.history.tolist(), att.contributions.tolist(), strict=True))
    for j, value in top:
        assert ours[int(j)] == pytest.approx(value, rel=1e-3, abs=1e-5)
    folded = model.score_histories([hist], items=np.array([item]))[0, 0]
    assert att.score == pytest.approx(float(folded), rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("name", ["userknn", "ranker", "pipeline"])
def test_known_user_attribution_starts_from_the_models_own_score(fitted, name):
    """The explained score is the one the model gives that user (neighbours without the
    user; the ranker's prompt with attributes and like marks)."""
    model = fitted(name)
    user = 5
    item = int(model.recommend_indices(np.array([user]), 1)[0][0, 0]) if name != "ranker" else 50
    att = model.attribute(item, user_idx=user)
    assert att.score == pytest.approx(
        float(model._score(np.array([user]))[0, item])
        if name != "ranker"
        else float(model.score_candidates(np.array([user]), np.array([[item]]))[0, 0]),
        abs=1e-4,
    )
    if name != "userknn":  # the prompt shows the last n_history items only
        window = model.config.n_history if name == "ranker" else 5
        assert not att.contributions[:-window].any()


@pytest.mark.parametrize("name", EXPLAINED)
def test_explanation_ids_titles_and_reasons(fitted, sample, name):
    model = fitted(name)
    hist = model.user_history(9)
    item = _top_item(model, hist, np.arange(100))
    ids = model.item_ids_.lookup([item])[0]
    by_user = model.explain(ids, user=model.user_ids_.lookup([9])[0], n=3, catalog=sample.items)
    assert by_user.item == ids and by_user.title == sample.items.loc[ids, "title"]
    assert by_user.n_history == len(hist) and len(by_user.contributions) <= 3
    values = [c.contribution for c in by_user.contributions]
    assert values == sorted(values, reverse=True) and all(v > 0 for v in values)
    if name in HISTORY_FREE:
        assert not by_user.contributions
    for c in by_user.contributions:
        assert c.title == sample.items.loc[c.item, "title"]
        assert any(c.title in s for s in by_user.sentences)  # titles, never bare ids
    new_user = model.explain(ids, items=model.item_ids_.lookup(hist[:8]), n=3)
    assert new_user.user is None and new_user.n_history == 8
    d = new_user.to_dict()
    assert d["item"] == ids and d["title"] is None and "explanation" in d


@pytest.fixture(scope="module")
def converged_mf(sample):
    """biasedmf fitted to convergence, so its stored user factors are the ridge solution
    up to the CG solver's tolerance (FAST's 3 iterations are not)."""
    from lmrec.models import create_model

    return create_model("biasedmf", {"factors": 8, "iterations": 15, "cg_steps": 8}).fit(sample)


def test_biasedmf_explains_known_users_exactly(converged_mf, tmp_path):
    """The user's ``[p, b]`` refitted by ridge regression on their ratings (computed here
    by least squares on the augmented system) gives one term per rated item; the terms
    plus ``mu + b_i`` are the attribution's score, which is the stored model's score up
    to its CG solver's tolerance."""
    from lmrec.models import load_model

    model = converged_mf
    cfg, user = model.config, 7
    item = int(model.recommend_indices(np.array([user]), 1)[0][0, 0])
    att = model.attribute(item, user_idx=user)
    assert att.method == "exact"
    rated, ratings = model.known_ratings(user)
    x = np.hstack([model.item_factors_[rated].astype(np.float64), np.ones((len(rated), 1))])
    y = ratings - model.mean_ - model.item_bias_[rated]
    penalty = np.sqrt(np.append(np.full(cfg.factors, cfg.l2 * len(rated)), cfg.l2_bias))
    w = np.linalg.lstsq(np.vstack([x, np.diag(penalty)]), np.append(y, np.zeros(len(penalty))))[0]
    x_item = np.append(model.item_factors_[item], 1.0)
    assert att.score == pytest.approx(model.mean_ + model.item_bias_[item] + x_item @ w, abs=1e-4)
    assert att.score == pytest.approx(float(model._score(np.array([user]))[0, item]), abs=0.05)
    baseline = model.mean_ + model.item_bias_[item]
    assert baseline + att.contributions.astype(np.float64).sum() == pytest.approx(
        att.score, abs=1e-4
    )
    assert set(att.history.tolist()) == set(rated.tolist())
    # One rated item's term is its part of the solve: zero its residual, lose exactly that.
    j = int(np.argmax(np.abs(att.contributions)))
    j_pos = int(np.flatnonzero(rated == att.history[j])[0])
    y0 = y.copy()
    y0[j_pos] = 0.0
    w0 = np.linalg.lstsq(np.vstack([x, np.diag(penalty)]), np.append(y0, np.zeros(len(penalty))))[0]
    assert x_item @ (w - w0) == pytest.approx(float(att.contributions[j]), abs=1e-4)
    expl = model.explain(model.item_ids_.lookup([item])[0], user=model.user_ids_.lookup([user])[0])
    assert expl.method == "exact" and expl.contributions
    with pytest.raises(ConfigError, match="known users only"):
        model.explain(model.item_ids_.lookup([item])[0], items=model.item_ids_.lookup(rated[:3]))
    model.save(tmp_path / "mf")
    again = load_model(tmp_path / "mf").attribute(item, user_idx=user)
    np.testing.assert_array_equal(again.contributions, att.contributions)


def test_biasedmf_files_without_ratings_still_load_and_say_why_they_cannot_explain(
    sample, tmp_path
):
    """Files saved before biasedmf kept its training ratings: same recommendations, and a
    clear message instead of an explanation."""
    from lmrec.models import create_model, load_model

    model = create_model("biasedmf", {"factors": 4, "iterations": 3}).fit(sample)
    model.ratings_ = None  # what such a file holds
    model.save(tmp_path / "old")
    old = load_model(tmp_path / "old")
    users = np.arange(5)
    np.testing.assert_array_equal(
        old.recommend_indices(users, 5)[0], model.recommend_indices(users, 5)[0]
    )
    item = int(model.recommend_indices(np.array([2]), 1)[0][0, 0])
    with pytest.raises(ConfigError, match="refit it"):
        old.attribute(item, user_idx=2)


@pytest.mark.parametrize("name", sorted(NO_HISTORY_SCORING))
def test_rating_models_score_ratings_given_at_request_time(fitted, converged_mf, name):
    model = converged_mf if name == "biasedmf" else fitted(name)
    rated, ratings = model.known_ratings(3)
    targets = np.arange(40)
    folded = model.score_ratings(rated, ratings, targets)
    stored = model._score(np.array([3]))[0, targets]
    tolerance = 1e-4 if name == "knnbaseline" else 0.05  # biasedmf: CG vs exact solve
    np.testing.assert_allclose(folded, stored, atol=tolerance)
    # A new user who loves what they rated: higher ratings raise the scores on average.
    low = model.score_ratings(rated[:10], np.full(10, 1.0), targets)
    high = model.score_ratings(rated[:10], np.full(10, 5.0), targets)
    assert high.mean() > low.mean()
    no_ratings = model.score_ratings(np.array([], np.int64), np.array([]), targets)
    assert np.isfinite(no_ratings).all()
    with pytest.raises(ConfigError, match="one rating per item"):
        model.score_ratings(rated[:3], ratings[:2], targets)
    with pytest.raises(ConfigError, match="rated once"):
        model.score_ratings(rated[[0, 0]], ratings[:2], targets)
    with pytest.raises(ConfigError, match=r"targets must lie in \[0"):
        model.score_ratings(rated[:2], ratings[:2], np.array([model.n_items]))
    with pytest.raises(ConfigError, match="finite"):
        model.score_ratings(rated[:2], np.array([np.nan, 3.0]), targets)
    with pytest.raises(ConfigError, match="out of range"):
        model.known_ratings(len(model.user_ids_))


@pytest.mark.parametrize("name", sorted(NO_HISTORY_SCORING))
def test_rating_deletion_top_attributed_ratings_matter_most(fitted, name):
    """Removing a user's 3 most contributing ratings lowers the explained item's score
    more than removing 3 random ratings (summed over users)."""
    from lmrec.eval.faithfulness import rating_deletion_test

    model = fitted(name)
    users = [u for u in range(20) if len(model.known_ratings(u)[0]) > 3][:12]
    items = [int(model.recommend_indices(np.array([u]), 1)[0][0, 0]) for u in users]
    result = rating_deletion_test(model, users, items, max_removed=3, n_random=5, seed=SEED)
    assert result.area_attributed > result.area_random > -1.0
    assert result.win_rate > 0.5
    with pytest.raises(ConfigError, match="one explained item per user"):
        rating_deletion_test(model, users, items[:-1])


def test_knnbaseline_explains_known_users_exactly(fitted):
    """Each rated item's vote is ``s_ij / sum s`` (positive similarities among the item's
    k most similar rated items) times the user's residual; the votes and the baseline sum
    to the model's prediction."""
    model = fitted("knnbaseline")
    user = 7
    item = int(model.recommend_indices(np.array([user]), 1)[0][0, 0])
    att = model.attribute(item, user_idx=user)
    assert att.method == "exact"
    assert att.score == pytest.approx(float(model._score(np.array([user]))[0, item]), abs=1e-4)
    res = model.residuals_
    rated = res.indices[res.indptr[user] : res.indptr[user + 1]]
    z = res.data[res.indptr[user] : res.indptr[user + 1]]
    s = model.similarity_[item, rated].astype(np.float64)
    k = model.config.k_neighbors
    keep = np.zeros(len(s), bool)
    keep[np.argsort(-s, kind="stable")[:k]] = True
    w = np.where(keep & (s > 0), s, 0.0)
    expected = dict(zip(rated.tolist(), (w / w.sum() * z).tolist(), strict=True))
    got = dict(zip(att.history.tolist(), att.contributions.tolist(), strict=True))
    assert set(got) == set(expected)
    for j, value in expected.items():
        assert got[j] == pytest.approx(value, abs=1e-5)
    baseline = model.mean_ + model.user_bias_[user] + model.item_bias_[item]
    assert baseline + sum(expected.values()) == pytest.approx(att.score, abs=1e-4)
    expl = model.explain(model.item_ids_.lookup([item])[0], user=model.user_ids_.lookup([user])[0])
    assert expl.method == "exact" and expl.contributions
    with pytest.raises(ConfigError, match="known users only"):
        model.explain(model.item_ids_.lookup([item])[0], items=model.item_ids_.lookup(rated[:3]))


def test_bad_input_gets_a_clear_message(fitted):
    model = fitted("ease")
    user = model.user_ids_.lookup([0])[0]
    seen = model.item_ids_.lookup(model.user_history(0)[:1])[0]
    with pytest.raises(UnknownIdError, match="user"):
        model.explain("1", user="no-such-user")
    with pytest.raises(UnknownIdError, match="item"):
        model.explain("no-such-item", user=user)
    with pytest.raises(ConfigError, match="already in user"):
        model.explain(seen, user=user)
    with pytest.raises(ConfigError, match="already in the given history"):
        model.explain(seen, items=[seen, "2"])
    with pytest.raises(ConfigError, match="exactly one of user"):
        model.explain("1")
    with pytest.raises(ConfigError, match="exactly one of user"):
        model.explain("1", user=user, items=["2"])
    with pytest.raises(ConfigError, match="'n'"):
        model.explain("1", user=user, n=0)


def test_catalog_reasons_name_shared_genres_years_and_title_words(ml100k):
    items = ml100k.items
    by_title = {t: i for i, t in items["title"].items()}
    cat = Catalog(items)
    khan = by_title["Star Trek: The Wrath of Khan"]
    contact = by_title["Star Trek: First Contact"]
    reasons = catalog_reasons(cat, contact, [khan])
    assert any("'star', 'trek'" in r and "Wrath of Khan" in r for r in reasons)
    assert any(
        r.startswith("Same genres as 'Star Trek: The Wrath of Khan' (1982)") for r in reasons
    )
    assert cat.label(contact) == "'Star Trek: First Contact' (1996)"
    assert catalog_reasons(cat, "no-such-item", [khan]) == []


@pytest.mark.parametrize("name", EXPLAINED)
def test_deletion_removing_top_attributed_items_lowers_the_score_most(fitted, name):
    """On real data, removing the 3 most contributing items lowers the explained item's
    score more than removing 3 random ones (summed over users)."""
    from lmrec.eval.faithfulness import deletion_test

    model = fitted(name)
    users = np.arange(12)
    histories = [model.user_history(u) for u in users]
    pool = np.arange(150)
    items = [_top_item(model, h, pool) for h in histories]
    result = deletion_test(model, histories, items, max_removed=3, n_random=5, seed=SEED)
    if name in HISTORY_FREE:  # nothing to attribute: both curves are flat
        assert result.area_attributed == result.area_random == 0.0
        return
    assert result.area_attributed > result.area_random
    assert result.win_rate > 0.5


@pytest.fixture(scope="module")
def catalog_file(sample, tmp_path_factory):
    """The sample's item catalog as a CSV file (as ``--items`` reads it)."""
    path = tmp_path_factory.mktemp("catalog") / "items.csv"
    sample.items.reset_index().to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", EXPLAINED)
def test_cli_and_http_give_the_librarys_explanation(fitted, catalog_file, tmp_path, capsys, name):
    """``lmrec explain``, ``/v1/explain`` and ``model.explain`` agree for every model."""
    import json

    from fastapi.testclient import TestClient

    from lmrec.cli import main
    from lmrec.data import read_items
    from lmrec.models import load_model
    from lmrec.serve.app import build_app
    from lmrec.serve.settings import ServeSettings

    model = fitted(name)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    user = model.user_ids_.lookup([4])[0]
    item = model.item_ids_.lookup([_top_item(model, model.user_history(4), np.arange(100))])[0]
    rc = main(
        [
            "explain",
            "--model",
            str(tmp_path / "m"),
            "--user",
            user,
            "--item",
            item,
            "--items",
            str(catalog_file),
            "-n",
            "3",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    expected = loaded.explain(item, user=user, n=3, catalog=read_items(catalog_file)).to_dict()
    assert out == json.loads(json.dumps(expected))
    assert out["title"] and all(c["title"] for c in out["contributions"])
    settings = ServeSettings(
        model_dir=tmp_path / "m",
        auth=False,
        catalog=catalog_file,
        store_url=f"sqlite:///{tmp_path / 'events.db'}",
        precompute_max_users=0,
    )
    with TestClient(build_app(settings)) as client:
        r = client.post("/v1/explain", json={"user": user, "item": item, "n": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["item"], body["title"], body["method"]) == (
        out["item"],
        out["title"],
        out["method"],
    )
    assert body["score"] == pytest.approx(out["score"], rel=1e-6, abs=1e-9)
    assert [(c["item"], c["title"]) for c in body["contributions"]] == [
        (c["item"], c["title"]) for c in out["contributions"]
    ]
    np.testing.assert_allclose(
        [c["weight"] for c in body["contributions"]],
        [c["contribution"] for c in out["contributions"]],
        rtol=1e-6,
    )
    assert body["explanation"] == out["explanation"] and body["reasons"] == out["reasons"]
    history = ",".join(model.item_ids_.lookup(model.user_history(4)[:6]))
    assert (
        main(["explain", "--model", str(tmp_path / "m"), "--history", history, "--item", item]) == 0
    )
    assert "score" in capsys.readouterr().out


def test_cli_explain_bad_input_is_a_usage_error(fitted, tmp_path, capsys):
    from lmrec.cli import main

    fitted("ease").save(tmp_path / "m")
    assert main(["explain", "--model", str(tmp_path / "m"), "--user", "nobody", "--item", "1"]) == 2
    assert "unknown user id" in capsys.readouterr().err
    assert main(["explain", "--model", str(tmp_path / "m"), "--history", " , ", "--item", "1"]) == 2
    assert "--history lists no item ids" in capsys.readouterr().err
    assert (
        main(["explain", "--model", str(tmp_path / "m"), "--user", "1", "--item", "1", "-n", "0"])
        == 2
    )
    assert "'-n'" in capsys.readouterr().err


def test_ranker_recommends_for_a_new_user_from_candidates_on_a_large_catalog(fitted, ml100k):
    """The cross-encoder ranks a new user's candidates on any catalog (only they are
    scored); the pipeline ranks the whole catalog for them."""
    ranker, pipeline = fitted("ranker"), fitted("pipeline")
    history = ["50", "172", "181"]
    cands = [str(i) for i in range(1, 41)]
    recs = ranker.recommend_for_items(history, k=5, candidates=cands)
    assert len(recs) == 5 and set(recs["item"]) <= set(cands) - set(history)
    full = pipeline.recommend_for_items(history, k=pipeline.n_items)
    assert len(full) == pipeline.n_items - 3  # every unseen item, candidates first
