"""The fine-tuned LM ranker: prompts, training, LoRA, checkpoint resume, pipeline, int8."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SEED

pytest.importorskip("peft")

# A tiny, fast cross-encoder: 1 transformer layer of the bundled MiniLM, short prompts.
FAST = {"n_layers": 1, "max_length": 64, "batch_size": 8, "max_examples": 300,
        "warmup_steps": 1, "n_history": 5, "n_threads": 2, "seed": SEED}  # fmt: skip


@pytest.fixture(scope="module")
def small(ml100k):
    """40 users of real MovieLens-100K (all id maps kept)."""
    return ml100k.subset(ml100k.column("user_idx") < 40, name="ml-small")


@pytest.fixture(scope="module")
def pipeline(small):
    from lmrec.ranker.pipeline import RetrieveRerank

    params = dict(FAST, lr=3e-3, max_steps=12)
    return RetrieveRerank(n_candidates=20, retriever_params={"l2": 100.0},
                          ranker_params=params).fit(small)  # fmt: skip


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
    full = LMRanker(**params).fit(small, checkpoint_dir=tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["step-000002", "step-000004"]
    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a" / "step-000002", tmp_path / "b" / "step-000002")
    resumed = LMRanker(**params).fit(small, checkpoint_dir=tmp_path / "b")
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

    params = dict(FAST, mode="head", max_steps=6, eval_every=2, patience=1, bf16=True,
                  max_examples=80)  # fmt: skip
    ranker = LMRanker(**params).fit(small)
    evals = [r for r in ranker.train_log_ if "valid_auc" in r]
    assert evals and all(0 <= r["valid_auc"] <= 1 for r in evals)
    assert len(ranker.train_log_) <= 6
