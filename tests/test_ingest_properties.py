"""Reliability check 7 in the default run: generated CSV/Parquet files read by load_dataset
and ingest give a clear DataError or a data set whose ids round-trip exactly.

The default run draws ``LMREC_INGEST_EXAMPLES`` examples (200);
``benchmarks/ingest_properties.py`` runs 2,000 or more and records the count.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.ingest_properties import Case, cases, check_case

EXAMPLES = int(os.environ.get("LMREC_INGEST_EXAMPLES", "200"))
OUTCOMES: Counter[str] = Counter()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="LMREC_INGEST_RANDOM" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_reading_generated_files_gives_an_error_or_exact_ids(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outcome = check_case(case, Path(tmp))
    OUTCOMES[f"{case.name}:{outcome}"] += 1
    report = os.environ.get("LMREC_INGEST_REPORT")
    if report:
        Path(report).write_text(json.dumps(dict(OUTCOMES), indent=2, sort_keys=True))
