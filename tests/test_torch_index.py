"""tools/torch_index.py: which torch build ``make setup`` installs, checked without internet.

The decision (:func:`choose`) is tested on pip reports; the whole script is run against
a throw-away package index on 127.0.0.1 and a local ``--find-links`` directory, each
holding a tiny fake ``torch`` wheel, with the machine's own pip configuration switched off.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "torch_index.py"
CPU = ["--index-url", "https://download.pytorch.org/whl/cpu"]


def _load():
    spec = importlib.util.spec_from_file_location("lmrec_tools_torch_index", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ti = _load()


def report(version: str, url: str, requires: list[str] | None = None) -> dict:
    meta = {"name": "torch", "version": version, "requires_dist": requires or ["filelock"]}
    return {"install": [{"metadata": meta, "download_info": {"url": url}}]}


PYPI = "https://files.pythonhosted.org/packages/torch-2.13.0-cp311-manylinux_2_28_x86_64.whl"


@pytest.mark.parametrize(
    ("rep", "kwargs", "expected"),
    [
        # a locally configured build is kept, even when it is a CUDA build
        (report("2.13.0+cpu", "file:///opt/wheels/torch-2.13.0+cpu.whl"), {}, []),
        (report("2.13.0", "file:///srv/simple/torch.whl", ["nvidia-cublas-cu12"]), {}, []),
        # PyPI's Linux wheel needs the nvidia-* packages: take the CPU index instead
        (
            report("2.13.0", PYPI, ["filelock", "nvidia-cublas-cu12 ; platform_system == 'Linux'"]),
            {},
            CPU,
        ),
        (report("2.13.0+cu126", "https://mirror.example/torch.whl"), {}, CPU),
        # an index that already serves a CPU build (ARM Linux, a CPU mirror) is fine
        (report("2.13.0", "https://mirror.example/torch.whl"), {}, []),
        # pip could not resolve (offline): on Linux, the CPU index is the safe choice
        (None, {}, CPU),
        ({"install": []}, {}, []),  # already installed
        (None, {"system": "Darwin"}, []),
        (None, {"system": "Windows"}, []),
        # the user's choice wins
        (report("2.13.0", PYPI, ["nvidia-cublas-cu12"]), {"override": "pypi"}, []),
        (
            None,
            {"override": "https://download.pytorch.org/whl/cu126"},
            ["--index-url", "https://download.pytorch.org/whl/cu126"],
        ),
    ],
)
def test_choose(rep, kwargs, expected) -> None:
    args, why = ti.choose(rep, **kwargs)
    assert args == expected
    assert why


def fake_wheel(directory: Path, version: str, requires: list[str]) -> Path:
    """A minimal valid wheel named torch (pure Python, any platform)."""
    directory.mkdir(parents=True, exist_ok=True)
    tag = version.replace("-", "_")
    path = directory / f"torch-{tag}-py3-none-any.whl"
    info = f"torch-{tag}.dist-info"
    metadata = "Metadata-Version: 2.1\nName: torch\nVersion: " + version + "\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("torch/__init__.py", "")
        zf.writestr(f"{info}/METADATA", metadata)
        zf.writestr(f"{info}/WHEEL", wheel)
        zf.writestr(f"{info}/RECORD", "")
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_index(tmp_path: Path) -> Iterator[str]:
    """A PEP 503 index on 127.0.0.1 serving a CUDA-like torch 2.13.0 wheel."""
    root = tmp_path / "index"
    wheel = fake_wheel(root / "files", "2.13.0", ["filelock", "nvidia-cublas-cu12==12.8"])
    (root / "simple" / "torch").mkdir(parents=True)
    (root / "simple" / "torch" / "index.html").write_text(
        f'<html><body><a href="/files/{wheel.name}">{wheel.name}</a></body></html>'
    )
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        thread.join()


def run_script(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU-index choice is made on Linux only")
def test_script_picks_cpu_index_when_the_index_serves_a_cuda_build(local_index: str) -> None:
    done = run_script({"PIP_INDEX_URL": local_index}, "torch==2.13.0", "")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == CPU
    assert "CUDA build" in done.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU-index choice is made on Linux only")
def test_script_keeps_a_local_build(tmp_path: Path, local_index: str) -> None:
    wheels = tmp_path / "wheels"
    fake_wheel(wheels, "2.13.0+cpu", ["filelock"])
    # The index still offers the CUDA build; the local 2.13.0+cpu wins and is kept.
    env = {"PIP_INDEX_URL": local_index, "PIP_FIND_LINKS": str(wheels)}
    done = run_script(env, "torch==2.13.0", "")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
    assert "local build torch 2.13.0+cpu" in done.stderr


def test_script_honours_the_override(local_index: str) -> None:
    cu = "https://download.pytorch.org/whl/cu126"
    done = run_script({"PIP_INDEX_URL": local_index}, "torch==2.13.0", cu)
    assert done.stdout.split() == ["--index-url", cu]
    done = run_script({"PIP_INDEX_URL": local_index}, "torch==2.13.0", "pypi")
    assert done.stdout.split() == []


def test_script_offline_on_linux_takes_the_cpu_index(tmp_path: Path) -> None:
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}  # nothing to find
    done = run_script(env, "torch==2.13.0", "")
    assert done.returncode == 0, done.stderr
    expected = CPU if sys.platform == "linux" else []
    assert done.stdout.split() == expected


def test_makefile_uses_the_script_and_test_all_covers_test() -> None:
    text = (ROOT / "Makefile").read_text()
    assert 'tools/torch_index.py "$(TORCH)" "$(TORCH_INDEX)"' in text
    recipes = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for target in ("test", "test-all"):
            if line.startswith(f"{target}:"):
                recipes[target] = (line, lines[i + 1].strip())
    assert recipes["test"][1] == '$(PYTEST) -m "not slow"'
    assert recipes["test-all"][1] == "$(PYTEST)"  # the same run, slow tests included
    assert "java" in recipes["test-all"][0]
    assert "--doctest-modules" in text.split("PYTEST :=")[1].splitlines()[0]
