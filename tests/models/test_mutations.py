"""Reliability plan check 4 in CI: hundreds of seeded mutations of saved models, every one
refused with a ModelFileError or loaded into a model that answers sanely (the benchmark
benchmarks/model_mutations.py runs thousands, including the language-model rankers)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lmrec.models.registry import builtin_models
from lmrec.testing import checkerboard
from lmrec.testing.mutations import check_loads, mutate
from lmrec.testing.zoo import SLOW_MODELS, small_model

PER_MODEL = 12  # x 13 fast built-in models = 156 mutations in the default run


@pytest.mark.parametrize("name", sorted(set(builtin_models()) - SLOW_MODELS))
def test_mutated_model_directories_are_refused_or_sane(name, tmp_path):
    base = small_model(name).fit(checkerboard()).save(tmp_path / "base")
    rng = np.random.default_rng(sum(map(ord, name)))
    verdicts = []
    for i in range(PER_MODEL):
        work = tmp_path / f"m{i}"
        shutil.copytree(base, work)
        verdicts.append(check_loads(work, mutate(work, rng)))
    failures = [v for v in verdicts if v.outcome in ("traceback", "wrong")]
    assert not failures, "\n".join(f"{v.mutation}: {v.outcome} {v.detail}" for v in failures)
    assert all(v.seconds < 5 for v in verdicts if v.outcome == "refused")
    assert sum(v.outcome == "refused" for v in verdicts) >= PER_MODEL // 2
