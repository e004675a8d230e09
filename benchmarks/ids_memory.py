"""Reliability check 8: sparse huge ids cost no more memory than contiguous ids.

Protocol: 1,000,000 interactions (``--rows``) between 100,000 users and 20,000 items,
written twice with the same pairs: once with contiguous ids (0..n-1) and once with
every id replaced by a distinct random integer in [0, 2**62). Each file (CSV and
Parquet) is read in a fresh child process by ``load_dataset`` and by ``ingest``; the
child reports its peak RSS (``ru_maxrss``) and the RSS it started with (after imports),
so the figure is the reading's own peak. Pass: peak(sparse) <= 1.5 x peak(contiguous)
for every reader and format, and the sparse data set equals the contiguous one up to
the id renaming (same matrix in the same id order is not expected: text order differs).

Run: ``flock /tmp/lmrec-bench.lock python benchmarks/ids_memory.py``; writes
``benchmarks/results/ids_memory.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = """
import json, resource, sys
from pathlib import Path
import numpy as np
from lmrec.data import load_dataset
from lmrec.data.ingest import ingest
def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
path, reader = sys.argv[1], sys.argv[2]
start = rss_mib()
ds = load_dataset(path)[0] if reader == "load_dataset" else ingest(path)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"start_mib": start, "peak_mib": peak, "n_users": ds.n_users,
                  "n_items": ds.n_items, "nnz": int(ds.matrix.nnz),
                  "max_user_id": int(np.max(ds.user_ids.ids)), "kind": ds.user_ids.kind}))
"""


def write_files(directory: Path, rows: int, seed: int) -> dict[str, Path]:
    """The same pairs with contiguous and with sparse (up to 2**62) ids, as CSV and Parquet."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 10, 10), max(rows // 50, 10)
    pairs = (
        pd.DataFrame(
            {
                "user": rng.integers(0, n_users, int(rows * 1.3)),
                "item": rng.integers(0, n_items, int(rows * 1.3)),
            }
        )
        .drop_duplicates()
        .iloc[:rows]
    )
    user_map = rng.choice(2**62, size=n_users, replace=False)
    item_map = rng.choice(2**62, size=n_items, replace=False)
    sparse = pd.DataFrame({"user": user_map[pairs["user"]], "item": item_map[pairs["item"]]})
    out = {}
    for label, frame in (("contiguous", pairs), ("sparse", sparse)):
        out[f"{label}.csv"] = directory / f"{label}.csv"
        frame.to_csv(out[f"{label}.csv"], index=False)
        out[f"{label}.parquet"] = directory / f"{label}.parquet"
        frame.to_parquet(out[f"{label}.parquet"], index=False)
    return out


def measure(path: Path, reader: str) -> dict[str, float]:
    """Peak RSS of reading ``path`` with ``reader`` in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), reader], check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["reading_mib"] = result["peak_mib"] - result["start_mib"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(Path(tmp), args.rows, args.seed)
        for fmt in ("csv", "parquet"):
            for reader in ("load_dataset", "ingest"):
                dense = measure(files[f"contiguous.{fmt}"], reader)
                sparse = measure(files[f"sparse.{fmt}"], reader)
                assert (dense["n_users"], dense["n_items"], dense["nnz"]) == (
                    sparse["n_users"],
                    sparse["n_items"],
                    sparse["nnz"],
                )
                assert sparse["kind"] == "int" and sparse["max_user_id"] > 2**61
                ratio = sparse["peak_mib"] / dense["peak_mib"]
                table.append(
                    {
                        "format": fmt,
                        "reader": reader,
                        "contiguous": dense,
                        "sparse": sparse,
                        "peak_ratio": ratio,
                    }
                )
                print(
                    f"{fmt:8s} {reader:13s} peak RSS contiguous {dense['peak_mib']:7.1f} MiB, "
                    f"sparse (ids < 2**62) {sparse['peak_mib']:7.1f} MiB: ratio {ratio:.3f} "
                    f"(reading alone {dense['reading_mib']:.1f} vs {sparse['reading_mib']:.1f} MiB)"
                )
    worst = max(r["peak_ratio"] for r in table)
    print(f"worst peak ratio {worst:.3f} (pass: <= 1.5)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ids_memory.json").write_text(
        json.dumps({"rows": args.rows, "runs": table}, indent=2)
    )
    lines = [
        "# Sparse huge ids (reliability check 8)",
        "",
        f"`python benchmarks/ids_memory.py` ({args.rows:,} interactions; each read in a fresh process)",
        "",
        "| format | reader | peak RSS contiguous MiB | peak RSS ids < 2^62 MiB | ratio |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['format']} | {r['reader']} | {r['contiguous']['peak_mib']:.1f} | "
            f"{r['sparse']['peak_mib']:.1f} | {r['peak_ratio']:.3f} |"
        )
    lines.append(f"\nWorst ratio {worst:.3f} (pass: <= 1.5).")
    (RESULTS / "ids_memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
