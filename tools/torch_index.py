"""Choose where ``make setup`` installs torch from; prints the extra pip arguments.

On Linux, PyPI's torch wheels are CUDA builds that pull several GB of ``nvidia-*``
packages; PyTorch publishes CPU-only wheels on its own index. This script asks pip,
without installing anything, which build the current pip configuration would pick
(``pip install --dry-run --no-deps --report``), then prints:

- nothing, when that build is a local file (a ``--find-links`` directory or a
  ``file://`` index: a locally configured build is kept), or is not a CUDA build
  (macOS, Windows, Linux on ARM, or a mirror that already serves CPU wheels);
- ``--index-url https://download.pytorch.org/whl/cpu`` when it is a CUDA build
  (it needs ``nvidia-*`` packages or carries a ``+cu`` version label), or when pip
  cannot tell (no network to the index yet), on Linux;
- ``--index-url URL`` when the user names an index (``make setup TORCH_INDEX=URL``,
  e.g. a CUDA index such as https://download.pytorch.org/whl/cu126), and nothing
  for ``TORCH_INDEX=pypi``, which takes PyPI's default build (CUDA on Linux).

Usage (what the Makefile runs)::

    python tools/torch_index.py "torch==2.13.0" "$TORCH_INDEX"

The decision itself is :func:`choose`, a pure function of pip's report, so it is
tested without a network; :func:`probe` is the one call to pip.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: ``TORCH_INDEX`` values that mean "plain pip, no index flag".
PLAIN = ("pypi", "default", "none")
PROBE_TIMEOUT_S = 300


def probe(spec: str, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any] | None:
    """pip's installation report for ``spec`` under the current configuration, or None.

    ``None`` when pip cannot resolve it (no network, no matching build) or does not
    support ``--dry-run --report`` (pip < 22.2). Nothing is downloaded but metadata.
    """
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
               "--ignore-installed", "--quiet", "--report", str(report), spec]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0 or not report.is_file():
            return None
        return json.loads(report.read_text())


def _is_cuda_build(item: dict[str, Any]) -> bool:
    meta = item.get("metadata", {})
    version = str(meta.get("version", ""))
    requires = [str(r).lower() for r in meta.get("requires_dist") or []]
    return "+cu" in version or any(r.startswith("nvidia-") for r in requires)


def choose(
    report: dict[str, Any] | None, *, override: str = "", system: str = "Linux"
) -> tuple[list[str], str]:
    """The extra pip arguments for installing torch, and a one-line reason.

    >>> choose(None, system="Darwin")
    ([], 'not Linux: the default build has no CUDA')
    >>> choose(None, override="https://download.pytorch.org/whl/cu126")[0]
    ['--index-url', 'https://download.pytorch.org/whl/cu126']
    >>> choose(None)[0]
    ['--index-url', 'https://download.pytorch.org/whl/cpu']
    """
    override = override.strip()
    if override:
        if override.lower() in PLAIN:
            return [], f"TORCH_INDEX={override}: pip's configured indexes"
        return ["--index-url", override], f"TORCH_INDEX={override}"
    if system != "Linux":
        return [], "not Linux: the default build has no CUDA"
    if report is None:
        return ["--index-url", CPU_INDEX], "pip could not resolve torch; trying the CPU index"
    items = [i for i in report.get("install", []) if _name(i) == "torch"]
    if not items:
        return [], "torch is already installed"
    item = items[0]
    url = str(item.get("download_info", {}).get("url", ""))
    version = item.get("metadata", {}).get("version", "?")
    if url.startswith("file:"):
        return [], f"local build torch {version} ({url})"
    if _is_cuda_build(item):
        return ["--index-url", CPU_INDEX], f"the index offers a CUDA build (torch {version})"
    return [], f"the index offers a CPU build (torch {version})"


def _name(item: dict[str, Any]) -> str:
    return str(item.get("metadata", {}).get("name", "")).lower().replace("_", "-")


def main(argv: list[str]) -> int:
    """Print the pip arguments on stdout and the reason on stderr."""
    if not 1 <= len(argv) <= 2:
        print("usage: torch_index.py TORCH_SPEC [TORCH_INDEX]", file=sys.stderr)
        return 2
    spec, override = argv[0], argv[1] if len(argv) == 2 else ""
    system = platform.system()
    report = probe(spec) if not override.strip() and system == "Linux" else None
    args, why = choose(report, override=override, system=system)
    where = " ".join(args) or "pip's configured indexes"
    print(f"torch: {spec} from {where} ({why})", file=sys.stderr)
    print(" ".join(args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(main(sys.argv[1:]))
