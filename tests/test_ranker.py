"""The fine-tuned LM ranker: prompts, training, LoRA, checkpoint resume, pipeline, int8."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.models.capabilities import FitOptions
from tests.conftest import SEED

pytest.importorskip("peft")

# A tiny, fast cross-encoder: 1 transformer layer of the bundled MiniLM, short prompts.
FAST = {
    "n_layers": 1,
    "max_length": 64,
    "batch_size": 8,
    "max_examples": 300,
    "warmup_steps": 1,
    "n_history": 5,
    "n_threads": 2,
    "seed": SEED,
}


@pytest.fixture(scope="module")
def small(ml100k):
    """40 users of real MovieLens-100K (all id maps kept)."""
    return ml100k.subset(ml100k.column("user_idx") < 40, name="ml-small")


@pytest.fixture(scope="module")
def pipeline(small):
    from lmrec.ranker.pipeline import RetrieveRerank

    params = dict(FAST, lr=3e-3, max_steps=12)
    return RetrieveRerank(
        n_candidates=20, retriever_params={"l2": 100.0}, ranker_params=params
    ).fit(small)


def test_prompt_keeps_most_recent_history(small):
    from lmrec.ranker.prompts import PromptBuilder

    b = PromptBuilder.from_dataset(small, n_history=3)
    user = 0
    rows = np.flatnonzero(small.column("user_idx") == user)
    ts = small.column("timestamp")[rows]
    latest = small.column("item_idx")[rows][np.argsort(ts, kind="stable")][-1]
    oldest = small.column("item_idx")[rows][np.argsort(ts, kind="stable")][0]
    text = b.context(user)
    assert text.startswith("A 24-year-old man technician.")
    assert text.count(";") == 2  # three items
    first = text.split("first: ")[1].split(";")[0]
    assert first.startswith(b.item_titles[latest])
    assert b.item_titles[oldest] not in text
    assert "(liked)" in text or "(disliked)" in text


def test_bad_template_is_rejected(small):
    from lmrec.errors import ConfigError
    from lmrec.ranker.prompts import PromptBuilder

    with pytest.raises(ConfigError, match="unknown field"):
        PromptBuilder.from_dataset(small, template="{history} {age}")


def test_few_steps_reduce_the_loss(small):
    from lmrec.ranker.model import LMRanker

    ranker = LMRanker(**dict(FAST, mode="lora", lr=1e-2, max_steps=10, few_shot=32))
    ranker.fit(small)
    rng = np.random.default_rng(ranker.config.seed)
    examples = ranker.build_examples(small, rng)  # the same 32 real rows fit() trained on
    assert len(examples) == 32 and 0 < examples.labels.mean() < 1
    after = ranker.loss(examples)
    ranker._build()  # same seed: the initial weights (LoRA B = 0, same head)
    before = ranker.loss(examples)
    assert after < before - 0.01
    assert len(ranker.train_log_) == 10


def test_lora_trains_only_adapters_and_head(pipeline):
    ranker = pipeline.ranker_
    assert len(ranker.train_log_) == 12
    trainable, total = ranker.trainable_parameters()
    assert 0 < trainable < 0.05 * total
    names = [n for n, p in ranker._module.named_parameters() if p.requires_grad]
    assert all("lora_" in n or n.startswith("head.") for n in names)


def test_full_ranking_is_refused_for_large_catalogs(pipeline):
    from lmrec.errors import ConfigError

    with pytest.raises(ConfigError, match="pipeline"):
        pipeline.ranker_.recommend([pipeline.user_ids_.ids[0]], k=5)


def test_checkpoint_resume_is_bitwise_identical(small, tmp_path):
    import shutil

    from lmrec.ranker.model import LMRanker

    params = dict(FAST, mode="head", max_steps=4, checkpoint_every=2, max_examples=64)
    full = LMRanker(**params).fit(small, options=FitOptions(checkpoint_dir=tmp_path / "a"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["step-000002", "step-000004"]
    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a" / "step-000002", tmp_path / "b" / "step-000002")
    resumed = LMRanker(**params).fit(small, options=FitOptions(checkpoint_dir=tmp_path / "b"))
    a = dict(full._module.named_parameters())
    b = dict(resumed._module.named_parameters())
    for name, p in a.items():
        assert np.array_equal(p.detach().numpy(), b[name].detach().numpy()), name
    assert [r["loss"] for r in full.train_log_] == [r["loss"] for r in resumed.train_log_]


def test_pipeline_save_load_same_rankings(pipeline, tmp_path):
    from lmrec.models import load_model

    users = pipeline.user_ids_.ids[:3]
    before = pipeline.recommend(users, k=5)
    pipeline.save(tmp_path / "pipe")
    loaded = load_model(tmp_path / "pipe")
    after = loaded.recommend(users, k=5)
    assert before[["user", "item", "rank"]].equals(after[["user", "item", "rank"]])
    np.testing.assert_allclose(before["score"], after["score"], rtol=1e-5, atol=1e-5)
    # Only the adapter + head are stored: far smaller than the 90 MB base model.
    assert (tmp_path / "pipe" / "arrays.safetensors").stat().st_size < 20e6


def test_int8_scores_correlate_with_float32(pipeline):
    users = np.arange(10)
    cand = pipeline.candidates(users)
    f32 = pipeline.ranker_.score_candidates(users, cand)
    i8 = pipeline.ranker_.merge_and_quantize().score_candidates(users, cand)
    ok = np.isfinite(f32)
    assert np.corrcoef(f32[ok], i8[ok])[0, 1] > 0.99


def test_validation_auc_early_stopping_and_bf16(small):
    from lmrec.ranker.model import LMRanker

    params = dict(
        FAST, mode="head", max_steps=6, eval_every=2, patience=1, bf16=True, max_examples=80
    )
    ranker = LMRanker(**params).fit(small)
    evals = [r for r in ranker.train_log_ if "valid_auc" in r]
    assert evals and all(0 <= r["valid_auc"] <= 1 for r in evals)
    assert len(ranker.train_log_) <= 6


def test_side_features_see_only_the_past(small):
    from lmrec.ranker.features import ItemStats, side_features
    from lmrec.ranker.prompts import PromptBuilder

    b = PromptBuilder.from_dataset(small, n_history=3)
    stats = ItemStats.from_prompts(b, small.n_items)
    user, end = 0, 7
    liked = b.liked[b.indptr[user] : b.indptr[user] + end]
    items = np.array([b.items[0], b.items[1]])
    x = side_features(b, stats, np.array([user, user]), items, np.array([end, end]))
    assert x.shape == (2, 4)
    np.testing.assert_allclose(x[:, 0], (liked[-3:] == 1).mean(), rtol=1e-6)
    np.testing.assert_allclose(x[:, 1], (liked == 1).mean(), rtol=1e-6)
    count = np.bincount(b.items, minlength=small.n_items)[items]
    np.testing.assert_allclose(x[:, 3], np.log1p(count), rtol=1e-6)
    rate = stats.like_rate()[items]
    assert np.all((rate > 0) & (rate < 1)) and np.allclose(x[:, 2], rate)


def test_wide_and_deep_starts_at_the_logistic_regression(small, tmp_path):
    from lmrec.eval.pointwise import auc
    from lmrec.models import load_model
    from lmrec.ranker.features import fit_logistic
    from lmrec.ranker.model import LMRanker

    params = dict(FAST, mode="head", side_features=True, max_steps=1, lr=1e-9, few_shot=64)
    ranker = LMRanker(**params).fit(small)
    examples = ranker.build_examples(small, np.random.default_rng(ranker.config.seed))
    w, b = fit_logistic(examples.features, examples.labels)
    logits = ranker.predict_pairs(examples.contexts, examples.candidates, examples.features)
    np.testing.assert_allclose(logits, examples.features @ w + b, rtol=1e-3, atol=1e-3)
    assert auc(examples.labels, logits) > 0.6  # popularity and like rate are informative
    assert ranker.trainable_parameters()[0] == 384 + 1  # text head; wide part stays fixed
    trained_wide = LMRanker(**params, train_wide=True).fit(small)
    assert trained_wide.trainable_parameters()[0] == 384 + 1 + 4 + 1
    ranker.save(tmp_path / "wd")
    loaded = load_model(tmp_path / "wd")
    users = np.arange(3)
    cand = np.tile(np.arange(5), (3, 1))
    np.testing.assert_allclose(
        loaded.score_candidates(users, cand),
        ranker.score_candidates(users, cand),
        rtol=1e-5,
        atol=1e-5,
    )


def test_blend_weight_interpolates_retriever_and_ranker(pipeline, small):
    from lmrec.ranker.pipeline import RetrieveRerank

    users = np.arange(5)
    cand = pipeline.candidates(users)
    retriever_only = RetrieveRerank(**dict(pipeline.config.model_dump(), blend=1.0))
    retriever_only.__dict__.update({k: v for k, v in pipeline.__dict__.items() if k != "config"})
    top = retriever_only.recommend_indices(users, 5)[0]
    np.testing.assert_array_equal(top, cand[:, :5])  # blend 1 keeps the retriever's order
    rows = np.arange(small.n_users) < 30
    valid = small.subset(np.flatnonzero(rows[small.column("user_idx")]))
    best = pipeline.fit_blend(valid, grid=[0.0, 0.5, 1.0])
    assert best in (0.0, 0.5, 1.0) and set(pipeline.blend_curve_) == {0.0, 0.5, 1.0}
    assert pipeline.config.blend == best
    pipeline.config = pipeline.config.model_copy(update={"blend": 0.0})


def test_cli_finetune_then_recommend(small, tmp_path):
    from lmrec.cli import main

    data = tmp_path / "train.csv"
    small.to_frame().to_csv(data, index=False)
    code = main(
        [
            "finetune",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "m"),
            "--mode",
            "head",
            "--n-layers",
            "1",
            "--max-length",
            "48",
            "--steps",
            "3",
            "--batch-size",
            "8",
            "--max-examples",
            "64",
            "--pipeline",
            "--candidates",
            "10",
            "--int8",
            "--retriever-param",
            "l2=100",
        ]
    )
    assert code == 0
    out = tmp_path / "recs.csv"
    assert (
        main(
            ["recommend", "--model", str(tmp_path / "m"), "--all", "-k", "3", "--output", str(out)]
        )
        == 0
    )
    import pandas as pd

    recs = pd.read_csv(out)
    n_users = small.to_frame()["user"].nunique()  # the CSV holds only the 40 users
    assert len(recs) == 3 * n_users and recs["rank"].max() == 3
    assert (
        main(["finetune", "--data", str(data), "--out", str(tmp_path / "x"), "--int8"]) == 2
    )  # --int8 without --pipeline is a usage error


def test_cli_finetune_checkpoint_every_needs_a_directory(small, tmp_path, capsys):
    from lmrec.cli import main

    data = tmp_path / "train.csv"
    small.to_frame().to_csv(data, index=False)
    assert (
        main(
            [
                "finetune",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "m"),
                "--checkpoint-every",
                "5",
            ]
        )
        == 2
    )
    assert "--checkpoint-every needs --checkpoint-dir" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_device_cuda_without_a_gpu_is_a_clear_error(small, monkeypatch):
    import torch

    from lmrec.errors import ConfigError
    from lmrec.ranker.model import LMRanker

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        LMRanker(**dict(FAST, mode="head", max_steps=1, device="cuda")).fit(small)


@pytest.mark.gpu
def test_cuda_fine_tuning_matches_cpu(small, tmp_path):
    """The same steps on a GPU (prompts and sampling stay on the CPU): scores agree to
    float error, and the saved ranker loads and scores on the CPU as well."""
    import torch

    from lmrec.models import load_model
    from lmrec.ranker.model import LMRanker

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    params = dict(FAST, mode="lora", max_steps=3, lr=3e-3, side_features=True)
    cpu = LMRanker(**params).fit(small)
    gpu = LMRanker(**params, device="cuda").fit(small)
    users, cand = np.arange(4), np.tile(np.arange(6), (4, 1))
    np.testing.assert_allclose(
        gpu.score_candidates(users, cand), cpu.score_candidates(users, cand), rtol=1e-3, atol=1e-3
    )
    gpu.save(tmp_path / "g")
    np.testing.assert_allclose(
        load_model(tmp_path / "g").score_candidates(users, cand),
        cpu.score_candidates(users, cand),
        rtol=1e-3,
        atol=1e-3,
    )
