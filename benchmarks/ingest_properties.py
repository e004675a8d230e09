"""Reliability check 7 at full size: 2,000+ generated files through load_dataset and ingest.

Runs ``tests/test_ingest_properties.py`` (the property and its oracle live in
``tests/ingest_properties.py``) with ``--examples`` Hypothesis examples (default
2,000) from a fixed seed, and records how many files gave a data set with exact ids
and how many a DataError naming the file (and the row and column where one row is at
fault). Any other outcome fails the run.

Run: ``python benchmarks/ingest_properties.py [--examples 2000] [--seed 2026]``;
writes ``benchmarks/results/ingest_properties.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "outcomes.json"
        env = {
            **os.environ,
            "LMREC_INGEST_EXAMPLES": str(args.examples),
            "LMREC_INGEST_RANDOM": "1",
            "LMREC_INGEST_REPORT": str(report),
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--hypothesis-seed={args.seed}",
                "tests/test_ingest_properties.py",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print(proc.stdout[-2000:])
        outcomes = json.loads(report.read_text()) if report.exists() else {}
    total = sum(outcomes.values())
    datasets = sum(v for k, v in outcomes.items() if k.endswith(":dataset"))
    result = {
        "examples_requested": args.examples,
        "examples_run": total,
        "seed": args.seed,
        "passed": proc.returncode == 0,
        "outcomes": outcomes,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_properties.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Ingest property test (reliability check 7)",
        "",
        f"`python benchmarks/ingest_properties.py --examples {args.examples} --seed {args.seed}`",
        "",
        f"{total:,} generated files, each read by `load_dataset` and by `ingest`: "
        f"{datasets:,} gave a data set whose ids round-trip exactly (duplicates summed), "
        f"{total - datasets:,} a DataError naming the file (and the first bad row and its "
        "column where one row is at fault); "
        f"{'0 other outcomes' if proc.returncode == 0 else 'FAILED'}.",
        "",
        "| format:outcome | files |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(outcomes.items())],
    ]
    (RESULTS / "ingest_properties.md").write_text("\n".join(lines) + "\n")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
