"""benchmarks/stale.py: which figures of a results file are stale, on a throw-away git repo."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "stale.py"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _load():
    spec = importlib.util.spec_from_file_location("lmrec_bench_stale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


stale = _load()


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@x",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@x",
            "PATH": "/usr/bin:/bin",
            "HOME": str(repo),
        },
    )
    return out.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "--short=12", "HEAD")


def stamp(fid: str, commit: str, sources: str) -> str:
    return f"<!-- figure: id={fid} commit={commit} date=2026-11-24 sources={sources} -->"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "ease.py").write_text("l2 = 500\n")
    (tmp_path / "src" / "pkg" / "als.py").write_text("factors = 64\n")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "movielens.py").write_text("print(1)\n")
    (tmp_path / "benchmarks" / "serve_load.py").write_text("print(2)\n")
    (tmp_path / ".gitignore").write_text("*.log\n")
    return tmp_path


def write_results(repo: Path, *stamps: str) -> Path:
    body = "\n".join(f"{s}\n\n| a | b |\n|---|---|\n| 1 | 2 |\n" for s in stamps)
    path = repo / "benchmarks" / "RESULTS.md"
    path.write_text("# results\n\n" + body)
    return path


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    results = repo / "benchmarks" / "RESULTS.md"
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--results", str(results), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_all_current_prints_nothing_and_exits_0(repo: Path) -> None:
    c = commit_all(repo, "code")
    write_results(
        repo,
        stamp("ease", c, "src/pkg/ease.py,benchmarks/movielens.py"),
        stamp("serve", c, "benchmarks/serve_*.py"),
        stamp("pkg", c, "src/pkg/"),
    )
    commit_all(repo, "results")  # committing RESULTS.md itself changes no figure
    done = run(repo)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_committed_change_makes_only_that_figure_stale(repo: Path) -> None:
    c = commit_all(repo, "code")
    write_results(
        repo,
        stamp("ease", c, "src/pkg/ease.py,benchmarks/movielens.py"),
        stamp("als", c, "src/pkg/als.py"),
    )
    (repo / "src" / "pkg" / "ease.py").write_text("l2 = 400\n")
    commit_all(repo, "retune")
    done = run(repo)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("RESULTS.md:3: ease: stale since " + c)
    assert lines[0].endswith("src/pkg/ease.py")
    listed = run(repo, "--list").stdout
    assert "als: current" in listed and "ease: stale" in listed


def test_a_reformat_is_not_a_change_but_new_code_is(repo: Path) -> None:
    c = commit_all(repo, "code")
    write_results(repo, stamp("ease", c, "src/pkg/ease.py"), stamp("als", c, "src/pkg/als.py"))
    (repo / "src" / "pkg" / "ease.py").write_text("# tuned on valid\nl2 = (500)  # fmt: skip\n")
    (repo / "src" / "pkg" / "als.py").write_text("factors = 65\n")
    commit_all(repo, "reformat ease, retune als")
    lines = run(repo).stdout.splitlines()
    assert len(lines) == 1 and "als: stale" in lines[0]


def test_listed_commits_that_change_no_measured_code_are_ignored(repo: Path) -> None:
    c = commit_all(repo, "code")
    write_results(repo, stamp("ease", c, "src/pkg/ease.py"), stamp("als", c, "src/pkg/als.py"))
    (repo / "src" / "pkg" / "ease.py").write_text("l2: int = 500\n")
    (repo / "src" / "pkg" / "als.py").write_text("factors: int = 64\n")
    commit_all(repo, "annotations")
    typing = git(repo, "rev-parse", "HEAD")
    (repo / "benchmarks" / "stale-ignore-revs.txt").write_text(f"# typing only\n{typing} types\n")
    assert run(repo).stdout == ""
    # a later, unlisted change to one file makes its figure stale again
    (repo / "src" / "pkg" / "als.py").write_text("factors: int = 65\n")
    commit_all(repo, "retune als")
    lines = run(repo).stdout.splitlines()
    assert len(lines) == 1 and "als: stale" in lines[0]
    # and so does an uncommitted change on top of a listed commit
    (repo / "src" / "pkg" / "ease.py").write_text("l2: int = 400\n")
    lines = run(repo).stdout.splitlines()
    assert len(lines) == 2 and "ease: stale" in lines[0]
    (repo / "src" / "pkg" / "ease.py").write_text("l2: int = 500\n")
    # without the list, the annotations are a change like any other
    (repo / "benchmarks" / "stale-ignore-revs.txt").unlink()
    assert "ease: stale" in run(repo).stdout


def test_working_tree_changes_count(repo: Path) -> None:
    c = commit_all(repo, "code")
    write_results(
        repo,
        stamp("ease", c, "src/pkg/ease.py"),
        stamp("pkg", c, "src/pkg"),
        stamp("bench", c, "benchmarks/*.py"),
    )
    commit_all(repo, "results")
    (repo / "src" / "pkg" / "ease.py").write_text("l2 = 1\n")  # modified, not committed
    (repo / "benchmarks" / "new_bench.py").write_text("x = 1\n")  # untracked, matches the glob
    (repo / "benchmarks" / "run.log").write_text("ignored\n")  # ignored by .gitignore
    out = run(repo).stdout
    assert "ease: stale" in out and "pkg: stale" in out
    assert "bench: stale" in out and "new_bench.py" in out and "run.log" not in out


def test_directory_and_glob_sources(repo: Path) -> None:
    c = commit_all(repo, "code")
    write_results(
        repo,
        stamp("pkg", c, "src/pkg/"),
        stamp("deep", c, "src/**/als.py"),
        stamp("serve", c, "benchmarks/serve_*.py"),
    )
    (repo / "src" / "pkg" / "als.py").write_text("factors = 32\n")
    commit_all(repo, "als")
    out = run(repo).stdout
    assert "pkg: stale" in out and "deep: stale" in out and "serve" not in out


def test_deleted_source_is_stale(repo: Path) -> None:
    c = commit_all(repo, "code")
    write_results(repo, stamp("als", c, "src/pkg/als.py"))
    (repo / "src" / "pkg" / "als.py").unlink()
    commit_all(repo, "drop als")
    assert "als: stale" in run(repo).stdout


def test_invalid_stamps_are_reported(repo: Path) -> None:
    c = commit_all(repo, "code")
    path = write_results(
        repo,
        stamp("typo", c, "src/pkg/eas.py"),
        stamp("gone", "0123456789ab", "src/pkg/ease.py"),
        stamp("typo", c, "src/pkg/ease.py"),
    )
    path.write_text(path.read_text() + "\n<!-- figure: id=x commit=zz -->\n")
    done = run(repo)
    assert done.returncode == 1
    out = done.stdout
    assert "typo: source(s) src/pkg/eas.py match no file" in out
    assert "gone: commit 0123456789ab is not in this repository" in out
    assert "id 'typo' is already used" in out
    assert "malformed stamp" in out


def test_parse_stamps() -> None:
    figs, bad = stale.parse_stamps(
        "text\n  " + stamp("a-1", "abcdef123456", "x.py,y/,z/*.py") + "\n<!-- plain comment -->\n"
    )
    assert [(f.id, f.commit, f.date, f.sources, f.line) for f in figs] == [
        ("a-1", "abcdef123456", "2026-11-24", ("x.py", "y/", "z/*.py"), 2)
    ]
    assert bad == []


def test_repository_results_file_is_well_formed() -> None:
    """Every stamp of the real RESULTS.md parses, names a known commit and existing sources.

    Figures may be stale (that is what the script reports), but never unreadable.
    """
    results = ROOT / "benchmarks" / "RESULTS.md"
    figures, bad = stale.parse_stamps(results.read_text())
    assert bad == [] and len(figures) >= 10
    shallow = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shallow.returncode != 0 or shallow.stdout.strip() != "false":
        pytest.skip("needs a full git checkout (the stamps name past commits)")
    _, findings = stale.find_stale(ROOT, results)
    invalid = [f for f in findings if " stale since " not in f" {f.message}"]
    assert invalid == []
