"""SASRec and GRU4Rec: the recommender contract, sessions in order, text items, training."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, DataError
from lmrec.models import load_model
from lmrec.models.capabilities import FitOptions, SequenceModel, supports
from lmrec.models.seq.gru4rec import GRU4Rec
from lmrec.models.seq.sasrec import SASRec
from lmrec.testing import RecommenderContract, checkerboard

TINY = {
    "factors": 16,
    "max_len": 8,
    "epochs": 25,
    "batch_size": 16,
    "lr": 0.01,
    "dropout": 0.1,
    "n_threads": 1,
    "device": "cpu",
}


def cyclic_checkerboard(n_users: int = 160, n_items: int = 30, seed: int = 0) -> Dataset:
    """The contract's checkerboard, each user walking their group's items in a cycle
    (i0 -> i2 -> i4 -> ... for even users) from a random start, mostly (70%) one item ahead,
    sometimes skipping one or two; a few timestamps tie and are then ordered by input
    row, which is the walk order."""
    rng = np.random.default_rng(seed)
    base = checkerboard(n_users, n_items, seed=seed)
    rows = []
    for u in range(n_users):
        own = np.arange(u % 2, n_items, 2)
        pos = np.cumsum(rng.choice([1, 2, 3], size=len(own), p=[0.7, 0.15, 0.15]))
        pos = pos[pos < len(own)][: int(rng.integers(5, len(own) - 3))]  # >= 4 left unseen
        walk = np.roll(own, -int(rng.integers(len(own))))[pos]
        t = np.cumsum(rng.integers(0, 3, len(walk)))  # steps of 0 make ties
        rows += [(f"u{u}", f"i{i}", float(ts)) for i, ts in zip(walk, t, strict=True)]
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    return Dataset.from_frame(frame, items=base.items, name="cyclic")


class SequentialContract(RecommenderContract):
    """The contract on the cyclic data; one fitted model per class serves the read-only
    checks (a fit takes seconds), while the checks about fitting itself fit afresh."""

    _fitted: dict[type, object] = {}

    def data(self) -> Dataset:
        return cyclic_checkerboard()

    def fitted(self):
        cls = type(self)
        if cls not in self._fitted:
            self._fitted[cls] = self.make_model().fit(self.data())
        return self._fitted[cls]

    def test_same_seed_same_model(self):
        a, b = self.make_model().fit(self.data()), self.make_model().fit(self.data())
        np.testing.assert_allclose(a.score(["u0", "u1"]), b.score(["u0", "u1"]), atol=self.atol)

    def test_refit_equals_single_fit(self):
        data = self.data()
        once = self.make_model().fit(data)
        other = Dataset.from_frame(
            pd.DataFrame(
                {"user": ["x", "x", "y"], "item": ["i0", "i1", "i2"], "timestamp": [1.0, 2.0, 3.0]}
            ),
            items=data.items,
        )
        twice = self.make_model().fit(other).fit(data)
        np.testing.assert_allclose(
            once.score(["u0", "u3"]), twice.score(["u0", "u3"]), atol=self.atol
        )


class TestSASRecContract(SequentialContract):
    def make_model(self):
        return SASRec(**TINY)


class TestGRU4RecContract(SequentialContract):
    def make_model(self):
        return GRU4Rec(**TINY)


class TestSASRecTextContract(SequentialContract):
    def make_model(self):
        return SASRec(**TINY, item_repr="id+text", adaptor="linear")


@pytest.fixture(scope="module")
def sasrec():
    return SASRec(**TINY).fit(cyclic_checkerboard())


def test_import_is_lazy():
    import subprocess

    code = (
        "import sys, lmrec.models.seq.sasrec, lmrec.models.seq.gru4rec; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_declares_sequence_capability():
    assert supports(SASRec, SequenceModel) and supports(GRU4Rec, SequenceModel)


def test_session_follows_the_order_of_its_items(sasrec):
    # the walk i0 -> i2 -> i4 -> ...: the next item depends on the last one
    for k in (6, 12, 18, 24):
        recs = sasrec.recommend_for_items([f"i{j}" for j in range(k - 6, k + 1, 2)], k=1)
        assert recs["item"].tolist() == [f"i{k + 2}"]
    idx = sasrec.item_ids_.index(["i2", "i8"])
    forward, backward = sasrec.score_sequences([idx, idx[::-1]])
    assert not np.allclose(forward, backward)


def test_gru4rec_session_follows_the_order_of_its_items():
    # the GRU reads its inputs at the transformer's scale: it learns the walk, too
    gru = GRU4Rec(**TINY).fit(cyclic_checkerboard())
    for k in (6, 12, 18, 24):
        recs = gru.recommend_for_items([f"i{j}" for j in range(k - 6, k + 1, 2)], k=1)
        assert recs["item"].tolist() == [f"i{k + 2}"]


def test_session_scores_survive_save_load(sasrec, tmp_path):
    sasrec.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    sessions = [["i0", "i2", "i4"], ["i5", "i7"], []]
    pd.testing.assert_frame_equal(
        loaded.recommend_for_items(sessions, k=5), sasrec.recommend_for_items(sessions, k=5)
    )
    idx = [sasrec.item_ids_.index(s) for s in sessions[:2]]
    np.testing.assert_array_equal(loaded.score_sequences(idx), sasrec.score_sequences(idx))
    np.testing.assert_array_equal(loaded.sequences_.items, sasrec.sequences_.items)


def test_known_user_scores_equal_their_sequence_scores(sasrec):
    users = np.arange(6)
    via_session = sasrec.score_sequences([sasrec.user_sequence(u) for u in users])
    np.testing.assert_allclose(sasrec._score(users), via_session, rtol=1e-5, atol=1e-5)


def test_sequence_models_need_timestamps():
    untimed = Dataset.from_frame(checkerboard().to_frame().drop(columns="timestamp"))
    with pytest.raises(DataError, match="--timestamp-col"):
        SASRec(**TINY).fit(untimed)


def test_text_needs_an_item_table():
    data = cyclic_checkerboard()
    bare = Dataset.from_frame(data.to_frame())
    with pytest.raises(ConfigError, match="--items"):
        SASRec(**TINY, item_repr="text").fit(bare)


def test_text_items_without_interactions_are_recommended_and_understood():
    data = cyclic_checkerboard()
    new = pd.DataFrame(
        {"title": ["item new"], "genres": ["Even"]}, index=pd.Index(["inew"], name="item")
    )
    twin = data.items.loc[["i10"]].set_axis(pd.Index(["i10-twin"], name="item"))
    data = Dataset.from_frame(data.to_frame(), items=pd.concat([data.items, new, twin]))
    model = SASRec(**TINY, item_repr="text").fit(data)
    scores = model.score([f"u{i}" for i in range(40)], ["inew"])[:, 0]
    assert np.isfinite(scores).all()
    assert scores[0::2].mean() > scores[1::2].mean()  # its text says "Even"
    # a session through an item nobody interacted with is read from its text: the twin
    # of i10 (same text, no interactions) leads where i10 leads
    real, twin = (model.item_ids_.index(["i4", "i6", "i8", last]) for last in ("i10", "i10-twin"))
    np.testing.assert_allclose(*model.score_sequences([real, twin]), rtol=1e-6)
    recs = model.recommend_for_items(["i4", "i6", "i8", "i10-twin"], k=3)
    assert (recs["item"].str[1:3].astype(int) % 2 == 0).all()


def test_text_vectors_carry_the_item_attributes():
    # 30 items, genres "Even" or "Odd" half each: one-hot columns centred (1 - 0.5, 0 - 0.5)
    # and scaled by attribute_weight, after the 384 dims of the unit-length sentence vector
    data = cyclic_checkerboard()
    text = SASRec(**TINY, item_repr="text", attribute_weight=0.5)._item_text(data)
    alone = SASRec(**TINY, item_repr="text", attribute_weight=0)._item_text(data)
    assert text.dtype == np.float32 and text.shape == (30, alone.shape[1] + 2)
    np.testing.assert_array_equal(text[:, : alone.shape[1]], alone)
    np.testing.assert_allclose(np.linalg.norm(alone, axis=1), 1.0, rtol=1e-5)
    even = np.array([int(i[1:]) % 2 == 0 for i in data.item_ids.lookup(np.arange(30))])[:, None]
    np.testing.assert_allclose(text[:, -2:], np.where(even, [0.25, -0.25], [-0.25, 0.25]))


@pytest.mark.parametrize("loss", ["sampled", "bce"])
def test_other_losses_learn_the_groups(loss):
    model = SASRec(**{**TINY, "epochs": 40}, loss=loss, n_negatives=8).fit(cyclic_checkerboard())
    recs = model.recommend([f"u{i}" for i in range(20)], k=3)
    same = recs["user"].str[1:].astype(int) % 2 == recs["item"].str[1:].astype(int) % 2
    assert same.mean() >= 0.9


def test_early_stopping_keeps_the_best_validation_epoch():
    from lmrec.data.split import leave_one_out_split

    split = leave_one_out_split(cyclic_checkerboard())
    model = SASRec(**{**TINY, "epochs": 30, "patience": 3}).fit(split.train, valid=split.valid)
    values = [h["valid_ndcg@10"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmax(values)) + 1
    assert len(values) == 30 or len(values) - model.best_epoch_ == 3


def test_checkpoint_resume_equals_an_uninterrupted_fit(tmp_path):
    data = cyclic_checkerboard()
    params = {**TINY, "epochs": 4}
    straight = GRU4Rec(**params).fit(data)
    GRU4Rec(**{**params, "epochs": 2}).fit(data, options=FitOptions(checkpoint_dir=tmp_path))
    resumed = GRU4Rec(**params).fit(data, options=FitOptions(checkpoint_dir=tmp_path))
    assert [h["epoch"] for h in resumed.history_] == [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(resumed.item_vectors_, straight.item_vectors_, atol=1e-6)
    with pytest.raises(ConfigError, match="seed"):
        GRU4Rec(**{**params, "seed": 5}).fit(data, options=FitOptions(checkpoint_dir=tmp_path))


def test_bf16_autocast_on_cpu():
    model = SASRec(**{**TINY, "epochs": 3}, precision="mixed").fit(cyclic_checkerboard())
    assert np.isfinite(model.item_vectors_).all() and np.isfinite(model.history_[-1]["loss"])


def test_loss_scaler_skips_overflowing_steps():
    import torch

    from lmrec.models.seq.trainer import LossScaler

    scaler = LossScaler(True, scale=8.0, growth_interval=2)
    grads = [torch.full((2,), 16.0)]
    assert scaler.unscale_and_check(torch, grads) and grads[0].tolist() == [2.0, 2.0]
    assert not scaler.unscale_and_check(torch, [torch.tensor([float("inf")])])
    assert scaler.scale == 4.0
    scaler.unscale_and_check(torch, [torch.ones(1)])
    scaler.unscale_and_check(torch, [torch.ones(1)])
    assert scaler.scale == 8.0  # doubled after growth_interval clean steps


def test_windows_cover_every_transition():
    from lmrec.data.sequences import user_sequences
    from lmrec.models.seq.trainer import make_windows

    data = cyclic_checkerboard()
    seqs = user_sequences(data)
    x, y = make_windows(seqs, 4)
    assert (y > 0).sum() == (seqs.lengths() - 1).clip(min=0).sum()
    pairs = {(a, b) for a, b in zip(x[y > 0], y[y > 0], strict=True)}
    expected = {
        (s[t] + 1, s[t + 1] + 1)
        for u in range(len(seqs))
        for s in [seqs.of(u)]
        for t in range(len(s) - 1)
    }
    assert pairs == expected


def _fit_on_rank(path: str) -> None:
    from lmrec.train.distributed import dist_info

    model = GRU4Rec(**{**TINY, "epochs": 2}, distributed=True).fit(cyclic_checkerboard())
    if dist_info().rank == 0:
        np.save(path, model.item_vectors_)


def test_two_ranks_equal_one(tmp_path):
    from lmrec.train.distributed import run_local

    one = GRU4Rec(**{**TINY, "epochs": 2}).fit(cyclic_checkerboard())
    run_local(_fit_on_rank, 2, str(tmp_path / "two.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "two.npy"), one.item_vectors_, atol=1e-5)


@pytest.mark.gpu
def test_cuda_mixed_precision_training():
    """fp16 autocast with loss scaling on CUDA learns what the CPU run learns."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    data = cyclic_checkerboard()
    gpu = SASRec(**{**TINY, "device": "cuda"}, precision="mixed").fit(data)
    recs = gpu.recommend([f"u{i}" for i in range(20)], k=3)
    same = recs["user"].str[1:].astype(int) % 2 == recs["item"].str[1:].astype(int) % 2
    assert same.mean() >= 0.9
    assert gpu.recommend_for_items(["i0", "i2", "i4", "i6"], k=1)["item"].tolist() == ["i8"]


def test_service_scores_sessions_in_order_and_explains_by_occlusion(sasrec):
    from lmrec.serve.scoring import supports_fold_in

    assert supports_fold_in(sasrec)  # the service scores request-time histories
    walk = sasrec.item_ids_.index(["i0", "i2", "i4", "i6"])
    np.testing.assert_array_equal(
        sasrec.score_histories([walk])[0], sasrec.score_sequences([walk])[0]
    )
    assert not np.allclose(
        sasrec.score_histories([walk[::-1]])[0], sasrec.score_histories([walk])[0]
    )
    u = 3
    np.testing.assert_array_equal(sasrec.user_history(u), sasrec.user_sequence(u))  # its own order
    attribution = sasrec.attribute(int(sasrec.item_ids_.index(["i8"])[0]), walk)
    weights = attribution.contributions
    assert (
        attribution.method == "occlusion" and weights.shape == (4,) and np.isfinite(weights).all()
    )
    assert np.argmax(weights) == 3  # the last item (i6) leads to i8 most


def test_item_lookup_gradient_is_the_ordered_sum_on_two_threads():
    # ``table[idx]``'s gradient adds rows with parallel atomic adds on CPU, in no fixed
    # order, so a seeded fit could end differently from run to run (0 of 20 gradients
    # below matched the ordered sum that way). ``lookup`` must give the ordered float32
    # sum every time: the same sums as NumPy's sequential ``np.add.at``.
    import torch

    from lmrec.models.seq.nets import lookup

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = np.random.default_rng(0)
        idx = torch.from_numpy(rng.integers(0, 50, size=(400, 50)))
        upstream = torch.from_numpy(rng.normal(size=(400, 50, 64)).astype(np.float32))
        expected = np.zeros((50, 64), np.float32)
        np.add.at(expected, idx.numpy().ravel(), upstream.numpy().reshape(-1, 64))
        for _ in range(5):
            table = torch.zeros(50, 64, requires_grad=True)
            (lookup(table, idx) * upstream).sum().backward()
            assert np.array_equal(table.grad.numpy(), expected)
        assert torch.equal(lookup(table, idx), table[idx])  # the same rows forward
    finally:
        torch.set_num_threads(before)


def test_popularity_text_weight_scales_each_items_text_part():
    # id+text row i is m_i * E[i] + w_i * A(t_i); with text_weight='popularity',
    # w = c / (c + median count) and 1 for items without interactions
    import torch

    from lmrec.models.seq import nets
    from lmrec.models.seq.base import popularity_text_weight

    counts = np.array([1, 3, 9, 0])
    w = popularity_text_weight(counts)
    np.testing.assert_allclose(w, [0.25, 0.5, 0.75, 1.0])
    net = nets.build(
        "sasrec",
        n_items=4,
        factors=4,
        max_len=3,
        item_repr="id+text",
        text_dim=3,
        adaptor="linear",
        n_experts=1,
        dropout=0.0,
        n_layers=1,
        n_heads=1,
        gen=torch.Generator().manual_seed(0),
        device="cpu",
    )
    tower = net.tower
    text = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    known = torch.tensor([1.0, 1.0, 1.0, 0.0])
    tower.set_data(text, known, torch.from_numpy(w))
    with torch.no_grad():
        table = tower(None).numpy()
        rows = tower(torch.tensor([0, 2, 4])).numpy()
        e = tower.id[1:].numpy()
        a = (text @ tower.adaptor.weight.T + tower.adaptor.bias).numpy()
    expected = known.numpy()[:, None] * e + w[:, None] * a
    np.testing.assert_allclose(table[1:], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(table[0], 0.0)
    np.testing.assert_allclose(rows, table[[0, 2, 4]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(popularity_text_weight(counts, half=1.0)[:2], [0.5, 0.75])


def test_popularity_text_weight_fits_and_changes_the_model():
    data = cyclic_checkerboard()
    params = {**TINY, "item_repr": "id+text", "adaptor": "linear"}
    plain = SASRec(**params).fit(data)
    weighted = SASRec(**params, text_weight="popularity").fit(data)
    recs = weighted.recommend([f"u{i}" for i in range(20)], k=3)
    same = recs["user"].str[1:].astype(int) % 2 == recs["item"].str[1:].astype(int) % 2
    assert same.mean() >= 0.9
    assert not np.allclose(plain.item_vectors(), weighted.item_vectors())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"item_repr": "id", "text_weight": "popularity"}, "needs item_repr='id\\+text'"),
        ({"item_repr": "text", "text_weight": "popularity"}, "needs item_repr='id\\+text'"),
        ({"item_repr": "id+text", "text_weight_count": 5.0}, "needs text_weight='popularity'"),
        (
            {"item_repr": "id+text", "text_weight": "popularity", "text_weight_count": 0},
            "text_weight_count",
        ),
        (
            {"item_repr": "id+text", "text_weight": "popularity", "dp_epsilon": 8.0},
            "keeps private",
        ),
    ],
)
def test_text_weight_settings_are_checked(params, match):
    with pytest.raises(ConfigError, match=match):
        SASRec(**params)
