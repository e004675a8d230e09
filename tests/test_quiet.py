"""Quiet and visible (issue 15.9): no Hugging Face loading noise, a bar while text encodes."""

from __future__ import annotations

import pytest

pytest.importorskip("sentence_transformers")


def test_loading_models_prints_nothing_and_restores_transformers_settings(capfd, tmp_path):
    import transformers

    from lmrec.ranker.model import LMRanker
    from lmrec.text.encoder import TextEncoder

    hf_logging = transformers.utils.logging
    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    TextEncoder(cache_dir=tmp_path).load()
    LMRanker(mode="lora", n_layers=1)._build("cpu")
    out, err = capfd.readouterr()
    assert "Loading weights" not in err + out
    assert "FutureWarning" not in err
    assert (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()) == (bars, level)


def test_encoding_shows_a_progress_bar_only_when_asked(capfd, tmp_path):
    from lmrec.text.encoder import TextEncoder

    texts = [f"Movie number {i} (1995)" for i in range(70)]
    TextEncoder(cache_dir=tmp_path, show_progress=True, use_cache=False).encode(texts)
    assert "encode texts" in capfd.readouterr().err
    TextEncoder(cache_dir=tmp_path, use_cache=False).encode(texts)  # not a TTY: silent
    assert capfd.readouterr().err == ""
