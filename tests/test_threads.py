"""Thread settings on a shared machine (issue 18.1): who wins, and what the runtimes see."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmrec import _threads
from lmrec.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "lmrec"
_VARS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", _threads.ENV_VAR)

# The child loads torch through lmrec and reports what torch and OpenMP ended up with.
# OMP_DISPLAY_ENV makes libgomp (inside torch's wheel) print the settings it read at
# load time, so the check is on what the runtime saw, not on os.environ alone.
_CHILD = """
import json, os, sys
import lmrec, lmrec.data, lmrec.models, lmrec.cli
before = {v: os.environ.get(v) for v in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
from lmrec._optional import require
from lmrec._threads import usable_cpus
torch = require("torch", "torch")
torch.ones(64, 64) @ torch.ones(64, 64)
print(json.dumps({"before": before, "policy": os.environ.get("OMP_WAIT_POLICY"),
                  "threads": torch.get_num_threads(), "usable": usable_cpus()}))
"""


def _child(**env: str) -> tuple[dict, str]:
    base = {k: v for k, v in os.environ.items() if k not in _VARS}
    base["OMP_DISPLAY_ENV"] = "TRUE"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    seen = re.findall(r"OMP_WAIT_POLICY = '(\w+)'", out.stderr)
    return report, seen[0] if seen else ""


def test_passive_by_default_and_the_users_own_policy_wins():
    pytest.importorskip("torch")
    report, runtime = _child()
    assert report["before"] == {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None}  # import is clean
    assert report["policy"] == "PASSIVE" and runtime == "PASSIVE"
    assert report["threads"] == report["usable"]
    report, runtime = _child(OMP_WAIT_POLICY="ACTIVE")
    assert report["policy"] == "ACTIVE" and runtime == "ACTIVE"


def test_lmrec_num_threads_overrides_omp_num_threads():
    pytest.importorskip("torch")
    report, _ = _child(OMP_NUM_THREADS="1")
    assert report["threads"] == 1  # the user's OpenMP setting is kept
    if report["usable"] < 2:
        pytest.skip("needs 2 usable CPUs (torch caps its threads at the cores it finds)")
    report, _ = _child(OMP_NUM_THREADS="1", LMREC_NUM_THREADS="2")
    assert report["threads"] == 2  # the one setting meant for lmrec wins


def test_lmrec_num_threads_reaches_a_torch_imported_first():
    pytest.importorskip("torch")
    code = (
        "import torch; torch.set_num_threads(2); from lmrec._optional import require;"
        "require('torch', 'torch'); print(torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k not in _VARS}

    def run(**extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert run(LMREC_NUM_THREADS="1") == "1"
    assert run() == "2"  # without it, lmrec leaves the caller's torch alone


def test_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv(_threads.ENV_VAR, "two")
    with pytest.raises(ConfigError, match="LMREC_NUM_THREADS"):
        _threads.num_threads()
    monkeypatch.setenv(_threads.ENV_VAR, "2")
    assert _threads.num_threads() == 2


def _fake_root(tmp_path: Path, cgroup: str, files: dict[str, str]) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    for rel, text in files.items():
        f = tmp_path / "sys/fs/cgroup" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def test_cgroup_v2_quota_takes_the_tightest_level(tmp_path):
    root = _fake_root(
        tmp_path,
        "0::/ci/job\n",
        {
            "cpu.max": "max 100000\n",
            "ci/cpu.max": "150000 100000\n",
            "ci/job/cpu.max": "max 100000\n",
        },
    )
    assert _threads.cgroup_cpu_quota(root) == pytest.approx(1.5)
    assert _threads.usable_cpus(root) == 1  # 1.5 CPUs round down, never below 1
    assert _threads.usable_cpus(
        _fake_root(tmp_path / "n", "0::/\n", {"cpu.max": "max 100000"})
    ) == len(os.sched_getaffinity(0))


def test_cgroup_v1_quota(tmp_path):
    root = _fake_root(
        tmp_path,
        "4:cpu,cpuacct:/docker/abc\n2:memory:/docker/abc\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    assert _threads.cgroup_cpu_quota(root) == pytest.approx(1.0)
    assert _threads.usable_cpus(root) == 1
    (root / "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us").write_text("-1\n")
    assert _threads.cgroup_cpu_quota(root) is None


THREADED = {"torch", "numba", "implicit", "transformers", "peft", "sentence_transformers"}


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree`` that runs, i.e. not under
    ``if TYPE_CHECKING:`` (annotations only: nothing is loaded)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_every_threaded_import_goes_through_require():
    # torch, numba, implicit and the Hugging Face stacks load OpenMP runtimes that read
    # their settings once; an import that bypasses lmrec._optional.require would load
    # them before lmrec._threads.configure has set the wait policy and thread counts.
    allowed = {"_als_cg_kernel.py"}  # imported only after require("numba", ...)
    offenders = [
        f"{p.relative_to(SRC)}:{line}: {module}"
        for p in sorted(SRC.rglob("*.py"))
        if p.name not in allowed
        for line, module in _runtime_imports(ast.parse(p.read_text()))
        if module.split(".")[0] in THREADED
    ]
    assert offenders == []


def test_the_import_check_sees_what_runs():
    code = (
        "import torch.nn\nif TYPE_CHECKING:\n    import numba\nelse:\n    from peft import x\n"
        "def f():\n    import implicit\n"
    )
    assert [m for _, m in _runtime_imports(ast.parse(code))] == ["torch.nn", "peft", "implicit"]
