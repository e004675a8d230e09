"""Thread settings that behave on a shared machine (issue 18.1).

OpenMP runtimes (the ``libgomp`` inside torch's wheels, implicit's and numba's
parallel loops) keep their idle worker threads spinning on a core for a while after
each parallel region. Alone on a machine that saves microseconds; beside any other
busy process (a service, a notebook, CI, another training job) the spinning workers
and the other process fight for the same cores, and a 2-thread torch encoder ran 4x
slower than with 1 thread. The runtimes read their settings once, when they load, so
lmrec sets them just before it first imports torch, numba, implicit or
sentence-transformers -- in :func:`lmrec._optional.require`, the one door every such
import goes through, and at the start of the ``lmrec`` command -- never at
``import lmrec``:

- ``OMP_WAIT_POLICY=PASSIVE`` (idle workers sleep) unless ``OMP_WAIT_POLICY`` is
  already set: the user's own choice wins;
- ``OMP_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` from :func:`num_threads` where they are
  not set: ``LMREC_NUM_THREADS`` when given (it also replaces a set
  ``OMP_NUM_THREADS``/``NUMBA_NUM_THREADS``: it is the one setting meant for lmrec),
  else ``OMP_NUM_THREADS`` when given, else the CPUs this process may actually use
  (:func:`usable_cpus`: its scheduler affinity, capped by a cgroup CPU quota, the way
  containers and CI runners limit CPUs without hiding them from ``os.cpu_count()``).

Nothing changes when torch (or numba) was imported before lmrec could set these: the
runtime has already read its environment, and the caller owns its settings.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from lmrec.errors import ConfigError

__all__ = ["ENV_VAR", "after_import", "configure", "loads_threads", "num_threads", "usable_cpus"]

#: The one setting that overrides lmrec's thread count.
ENV_VAR = "LMREC_NUM_THREADS"
#: Thread-count variables lmrec fills in before the runtimes that read them load.
_COUNT_VARS = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")
#: Modules whose import loads a threaded runtime that reads the variables above.
_THREADED = ("torch", "numba", "implicit", "sentence_transformers", "transformers", "peft")

_configured: int | None = None
_torch_done = False


def _quota_v2(root: Path, path: str) -> float | None:
    """The tightest ``cpu.max`` quota (in CPUs) on the cgroup-v2 path and its ancestors."""
    best: float | None = None
    base = root / "sys/fs/cgroup"
    parts = [p for p in path.strip("/").split("/") if p]
    for depth in range(len(parts), -1, -1):
        f = base.joinpath(*parts[:depth], "cpu.max")
        try:
            quota, period = f.read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and float(period) > 0:
            cpus = float(quota) / float(period)
            best = cpus if best is None else min(best, cpus)
    return best


def _quota_v1(root: Path, path: str) -> float | None:
    """The ``cpu.cfs_quota_us / cpu.cfs_period_us`` quota (in CPUs) of a cgroup-v1 CPU controller."""
    for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        base = root / "sys/fs/cgroup" / mount
        for d in (base / path.strip("/"), base):  # inside a container the path is the root
            try:
                quota = float((d / "cpu.cfs_quota_us").read_text())
                period = float((d / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            return quota / period if quota > 0 and period > 0 else None
    return None


def cgroup_cpu_quota(root: Path | str = "/") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None without one.

    Reads ``/proc/self/cgroup`` and the cgroup-v2 ``cpu.max`` files up the hierarchy (the
    tightest wins), or the cgroup-v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``. ``root``
    replaces ``/`` (for tests).
    """
    root = Path(root)
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            quota = _quota_v2(root, path)
            if quota is not None:
                return quota
        elif "cpu" in controllers.split(","):
            quota = _quota_v1(root, path)
            if quota is not None:
                return quota
    return None


def usable_cpus(root: Path | str = "/") -> int:
    """CPUs this process may actually use: its affinity, capped by its cgroup CPU quota.

    A fractional quota is rounded down (a 1.5-CPU quota gives 1 thread, which then never
    waits for the throttled second one), and the result is at least 1.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def _positive_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(
            f"The environment variable {name} must be a whole number of threads >= 1. "
            f"Got {value!r} instead; unset it to let lmrec use the CPUs it may run on."
        )
    return n


def num_threads() -> int:
    """Threads lmrec's parallel work uses: ``LMREC_NUM_THREADS``, else ``OMP_NUM_THREADS``,
    else :func:`usable_cpus`.

    Raises
    ------
    ConfigError
        ``LMREC_NUM_THREADS`` is set but is not a whole number >= 1.
    """
    n = _positive_int(ENV_VAR)
    if n is not None:
        return n
    try:
        n = _positive_int("OMP_NUM_THREADS")
    except ConfigError:  # OpenMP's own syntax (e.g. "4,2") is the runtime's business
        n = None
    return n if n is not None else usable_cpus()


def configure() -> int:
    """Set the OpenMP wait policy and thread counts before a threaded runtime loads.

    Idempotent and cheap after the first call; returns :func:`num_threads`. See the
    module docstring for what is set and what the user's own settings override. A
    runtime already loaded has read its environment and is not affected (but child
    processes are, as they would be by the user's own ``export``).
    """
    global _configured
    if _configured is not None:
        return _configured
    n = num_threads()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    explicit = os.environ.get(ENV_VAR, "").strip() != ""
    for var in _COUNT_VARS:
        if explicit or not os.environ.get(var, "").strip():
            os.environ[var] = str(n)
    _configured = n
    return n


def after_import(module: str) -> None:
    """Apply an explicit ``LMREC_NUM_THREADS`` to torch when it was loaded before lmrec.

    torch reads ``OMP_NUM_THREADS`` when it loads; when the caller imported it earlier,
    only ``torch.set_num_threads`` reaches it, and lmrec calls that only for the
    setting meant for it (``LMREC_NUM_THREADS``), never on its own guess.
    """
    global _torch_done
    torch = sys.modules.get("torch")
    if _torch_done or torch is None or not loads_threads(module):
        return
    _torch_done = True  # once: later changes (e.g. a fit's own n_threads) are the caller's
    if os.environ.get(ENV_VAR, "").strip():
        n = configure()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def loads_threads(module: str) -> bool:
    """Whether importing ``module`` may load a threaded runtime (so :func:`configure` first)."""
    return module.split(".")[0] in _THREADED
