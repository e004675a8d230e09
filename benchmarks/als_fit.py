"""Fit ALS on a saved data set and report load time, per-iteration time and peak memory.

The fit step of the 100M run (``benchmarks/results/scale_100m.md``)::

    python benchmarks/als_fit.py /tmp/scale/100M-ds --iterations 3

Loads the directory written by ``lmrec datasets ingest`` (:meth:`Dataset.load`), then
fits :class:`lmrec.models.als.ALS` (64 factors, ``--solver``). Per-iteration times
come from the fit (``ALS.iteration_seconds_``: one sweep, users then items, without
the setup before the first; with the numba solver the first sweep includes loading
its compiled kernel). Peak
RSS is the process's ``VmHWM``, reset before the fit (``/proc/self/clear_refs``).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def status_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux only)."""
    Path("/proc/self/clear_refs").write_text("5")


def fit_als(
    dataset, factors: int, iterations: int, seed: int = 2026, solver: str = "auto"
) -> tuple[object, list[float]]:
    """Fit ALS and return (model, seconds of each iteration, from the fit itself)."""
    from lmrec.models.als import ALS

    model = ALS(factors=factors, iterations=iterations, seed=seed, solver=solver).fit(dataset)
    return model, list(model.iteration_seconds_)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="data set directory from 'lmrec datasets ingest'")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--solver", default="auto", choices=["auto", "implicit", "numba"])
    args = ap.parse_args()
    import numpy  # noqa: F401 - imports before the memory baseline
    import pyarrow.parquet  # noqa: F401

    from lmrec.data import Dataset

    rss0 = status_mib("VmRSS")
    t = time.perf_counter()
    ds = Dataset.load(args.dataset)
    out = {"n": ds.n_interactions, "users": ds.n_users, "items": ds.n_items}
    out["load_s"] = time.perf_counter() - t
    out["load_peak_mib"] = status_mib("VmHWM")
    out["rss_before_fit_mib"] = status_mib("VmRSS")
    reset_peak()
    t = time.perf_counter()
    _, iters = fit_als(ds, args.factors, args.iterations, solver=args.solver)
    out["fit_s"] = time.perf_counter() - t
    out["iter_s"] = iters
    out["fit_peak_mib"] = status_mib("VmHWM")
    out["rss_baseline_mib"] = rss0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
