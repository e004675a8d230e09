"""The README's MovieLens-100K commands reproduce the README's table (issue 15.3).

The commands are read from the README itself (the bash block of its MovieLens-100K
section) and run by bash in a temporary directory, with this checkout's ``lmrec`` first
on the PATH. The default run covers popularity and EASE; the whole table (item-kNN,
PureSVD and text_ease, which encodes the item texts) is marked slow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## MovieLens-100K"
TOLERANCE = 1e-4 + 1e-9  # printed to 4 decimals; 1e-9 absorbs the float parsing


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end > 0 else None]


def readme_commands() -> list[str]:
    """The bash block of the section, one logical line per entry (continuations joined)."""
    block = re.search(r"```bash\n(.*?)```", readme_section(), re.S)
    assert block, "the MovieLens-100K section has no bash block"
    return block.group(1).replace("\\\n", " ").strip().splitlines()


def readme_table() -> dict[str, tuple[float, float, float, float]]:
    """model -> (NDCG@10, CI low, CI high, Recall@20) from the section's table."""
    rows = {}
    pattern = r"^\| `(\w+)`[^|]*\| ([\d.]+) \[([\d.]+), ([\d.]+)\] \| ([\d.]+) \|$"
    for m in re.finditer(pattern, readme_section(), re.M):
        rows[m.group(1)] = tuple(float(m.group(i)) for i in range(2, 6))
    return rows


def script_for(models: list[str]) -> str:
    """The README's commands restricted to ``models`` (other train lines and loop items cut)."""
    lines = []
    for line in readme_commands():
        trained = re.search(r"--model (\w+)", line)
        if line.startswith("lmrec train") and trained and trained.group(1) not in models:
            continue
        if line.startswith("for m in "):
            line = re.sub(r"for m in [\w ]+;", f"for m in {' '.join(models)};", line)
        lines.append(line)
    return "\n".join(lines)


def parse_evaluations(out: str) -> dict[str, dict[str, tuple[float, ...]]]:
    """``lmrec evaluate`` tables (one per model) -> model -> metric -> (value[, low, high])."""
    result: dict[str, dict[str, tuple[float, ...]]] = {}
    current = None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "model":
            current = result.setdefault(parts[1], {})
        elif current is not None and len(parts) >= 2 and "@" in parts[0]:
            current[parts[0]] = tuple(float(p.strip("[],")) for p in parts[1:])
    return result


def run_readme(tmp_path: Path, models: list[str]) -> dict[str, dict[str, tuple[float, ...]]]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script_for(models)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return parse_evaluations(done.stdout)


def check_rows(measured: dict, models: list[str]) -> None:
    table = readme_table()
    for model in models:
        ndcg, low, high, recall = table[model]
        got = measured[model]
        assert got["ndcg@10"][0] == pytest.approx(ndcg, abs=TOLERANCE), model
        assert got["ndcg@10"][1] == pytest.approx(low, abs=TOLERANCE), model
        assert got["ndcg@10"][2] == pytest.approx(high, abs=TOLERANCE), model
        assert got["recall@20"][0] == pytest.approx(recall, abs=TOLERANCE), model


def test_readme_block_and_table_agree() -> None:
    """Every table row has a train command and a place in the evaluation loop."""
    commands = "\n".join(readme_commands())
    table = readme_table()
    assert list(table) == ["popularity", "itemknn", "svd", "ease", "text_ease"]
    loop = re.search(r"for m in ([\w ]+);", commands)
    assert loop and loop.group(1).split() == list(table)
    for model in table:
        assert f"--model {model} " in commands


@pytest.mark.realdata
def test_readme_commands_reproduce_popularity_and_ease(tmp_path: Path) -> None:
    models = ["popularity", "ease"]
    check_rows(run_readme(tmp_path, models), models)


@pytest.mark.slow
@pytest.mark.realdata
def test_readme_commands_reproduce_the_whole_table(tmp_path: Path) -> None:
    models = list(readme_table())
    check_rows(run_readme(tmp_path, models), models)


def test_readme_words_on_slow_tests_hold() -> None:
    """The README says `make test` leaves out tests marked slow: some are, and test-all runs them."""
    readme = (ROOT / "README.md").read_text()
    assert "marked\n`slow`" in readme or "marked `slow`" in readme
    marked = [
        p for p in (ROOT / "tests").rglob("test_*.py") if "@pytest.mark.slow" in p.read_text()
    ]
    assert marked, "the README promises slow tests; none is marked"
    makefile = (ROOT / "Makefile").read_text()
    assert '$(PYTEST) -m "not slow"' in makefile and "\n\t$(PYTEST)\n" in makefile
