"""List the figures of benchmarks/RESULTS.md whose measured code changed since they ran.

Every figure block in RESULTS.md is preceded by one stamp line::

    <!-- figure: id=<slug> commit=<sha12> date=<YYYY-MM-DD> sources=<path>[,<path>...] -->

``commit`` is the commit the benchmark ran on and ``sources`` the files, directories
or globs (``*``, ``?``, ``[...]``, ``**``; relative to the repository root) whose
change makes the figure stale: the code it measures and the benchmark script. A
figure is stale when any of its sources differs between ``commit`` and the working
tree: changed in a later commit, modified but not committed, or a new untracked file
matching a source. A Python file counts as changed only when its code changed: one whose
syntax tree is the same (a reformat, new comments) leaves its figures current. A stamp that cannot be checked (a malformed line, an unknown
commit, a source that matches no file then or now, an id used twice) is reported too.

Commits that change code but not what any benchmark measures (type annotations, a typed
accessor for fitted state) are listed, each with its reason, in
``benchmarks/stale-ignore-revs.txt`` (one ``<full sha> <reason>`` per line, like git's
``.git-blame-ignore-revs``). A changed file leaves its figures current when every commit
that changed it since the figure's commit is listed there and the working tree holds no
further change; a merge that combined changes to the file counts as a change of its own.

Command (from anywhere inside the repository)::

    python benchmarks/stale.py                 # prints nothing and exits 0 when all is current
    python benchmarks/stale.py --list          # every figure, current or not
    python benchmarks/stale.py --results other/RESULTS.md

Exit code 0 when every figure is current, 1 when at least one is stale or its stamp is
invalid (each is listed on stdout, one line per figure), 2 when the results file or the
git repository cannot be read.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

STAMP_PREFIX = "<!-- figure:"
STAMP = re.compile(
    r"^<!-- figure: id=(?P<id>[a-z0-9][a-z0-9_.-]*) commit=(?P<commit>[0-9a-f]{7,40}) "
    r"date=(?P<date>\d{4}-\d{2}-\d{2}) sources=(?P<sources>\S+) -->$"
)
#: How many changed files a report line names before it says "and N more".
SHOW_FILES = 5


@dataclass(frozen=True)
class Figure:
    """One stamp line of the results file."""

    id: str
    commit: str
    date: str
    sources: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Finding:
    """Why one figure needs attention."""

    figure_id: str
    line: int
    message: str


def parse_stamps(text: str) -> tuple[list[Figure], list[Finding]]:
    """The figures stamped in ``text``, and findings for stamp lines that do not parse.

    >>> figs, bad = parse_stamps(
    ...     "x\\n<!-- figure: id=pop commit=abcdef123456 date=2026-01-02 sources=a.py,b/ -->\\n"
    ... )
    >>> figs[0].id, figs[0].sources, figs[0].line, bad
    ('pop', ('a.py', 'b/'), 2, [])
    """
    figures: list[Figure] = []
    findings: list[Finding] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith(STAMP_PREFIX):
            continue
        m = STAMP.match(line)
        if m is None:
            findings.append(
                Finding(
                    "?",
                    number,
                    "malformed stamp; write <!-- figure: id=<slug> commit=<sha12> "
                    "date=<YYYY-MM-DD> sources=<path>[,<path>...] -->",
                )
            )
            continue
        sources = tuple(s for s in m["sources"].split(",") if s)
        figures.append(Figure(m["id"], m["commit"], m["date"], sources, number))
    return figures, findings


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def _pathspec(source: str) -> str:
    """A git pathspec for one source: globs get git's ``glob`` magic (``**`` spans dirs)."""
    source = source.rstrip("/") or "."
    return f":(glob){source}" if any(c in source for c in "*?[") else f":(literal){source}"


def _same_code(repo: Path, commit: str, path: str) -> bool:
    """Whether the Python file ``path`` has the same syntax tree at ``commit`` and now.

    Formatting and comments are not code: ``ruff format`` must not make every figure
    stale. Anything that is not Python, or does not parse on either side, has changed.
    """
    if not path.endswith(".py"):
        return False
    then = _git(repo, "show", f"{commit}:{path}")
    current = repo / path
    if then.returncode != 0 or not current.is_file():
        return False
    try:
        return ast.dump(ast.parse(then.stdout)) == ast.dump(ast.parse(current.read_text()))
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return False


IGNORE_REVS = Path("benchmarks") / "stale-ignore-revs.txt"


def read_ignore_revs(repo: Path) -> frozenset[str]:
    """Full SHAs listed in ``benchmarks/stale-ignore-revs.txt`` (``#`` starts a comment).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "benchmarks").mkdir()
    >>> _ = (d / IGNORE_REVS).write_text("# typing only\\n" + "a" * 40 + " annotations\\n")
    >>> sorted(read_ignore_revs(d)) == ["a" * 40]
    True
    """
    path = repo / IGNORE_REVS
    if not path.is_file():
        return frozenset()
    revs = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            revs.add(line.split()[0].lower())
    return frozenset(revs)


def _only_ignored_commits(repo: Path, commit: str, path: str, ignored: frozenset[str]) -> bool:
    """Whether every commit that changed ``path`` after ``commit`` is in ``ignored`` and the
    working tree holds the committed file (git's default history simplification lists a
    merge only when it differs from every parent, i.e. when it combined changes)."""
    if not ignored or _git(repo, "diff", "--quiet", "HEAD", "--", path).returncode != 0:
        return False
    log = _git(repo, "log", "--format=%H", f"{commit}..HEAD", "--", path)
    revs = log.stdout.split()
    return log.returncode == 0 and bool(revs) and all(r in ignored for r in revs)


def check_figure(repo: Path, fig: Figure, ignored: frozenset[str] = frozenset()) -> Finding | None:
    """``None`` when ``fig`` is current, else what changed (or why it cannot be checked)."""
    resolved = _git(repo, "rev-parse", "--verify", "--quiet", f"{fig.commit}^{{commit}}")
    if resolved.returncode != 0:
        return Finding(fig.id, fig.line, f"commit {fig.commit} is not in this repository")
    commit = resolved.stdout.strip()
    specs = [_pathspec(s) for s in fig.sources]
    missing = []
    for source, spec in zip(fig.sources, specs, strict=True):
        then = _git(repo, "ls-tree", "-r", "--name-only", commit, "--", spec).stdout
        now = _git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "--", spec)
        if not then.strip() and not now.stdout.strip():
            missing.append(source)
    if missing:
        return Finding(
            fig.id, fig.line, f"source(s) {', '.join(missing)} match no file at {fig.commit} or now"
        )
    diff = _git(repo, "diff", "--name-only", commit, "--", *specs)
    if diff.returncode != 0:
        return Finding(fig.id, fig.line, f"git diff failed: {diff.stderr.strip()}")
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "--", *specs)
    edited = [
        p
        for p in diff.stdout.split()
        if not _same_code(repo, commit, p) and not _only_ignored_commits(repo, commit, p, ignored)
    ]
    changed = sorted({*edited, *untracked.stdout.split()})
    if not changed:
        return None
    shown = ", ".join(changed[:SHOW_FILES])
    more = f" and {len(changed) - SHOW_FILES} more" if len(changed) > SHOW_FILES else ""
    return Finding(fig.id, fig.line, f"stale since {fig.commit} ({fig.date}): {shown}{more}")


def find_stale(repo: Path, results: Path) -> tuple[list[Figure], list[Finding]]:
    """All stamped figures of ``results`` and the findings (stale or invalid), in file order."""
    figures, findings = parse_stamps(results.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    ignored = read_ignore_revs(repo)
    for fig in figures:
        if fig.id in seen:
            findings.append(
                Finding(fig.id, fig.line, f"id {fig.id!r} is already used on line {seen[fig.id]}")
            )
            continue
        seen[fig.id] = fig.line
        finding = check_figure(repo, fig, ignored)
        if finding is not None:
            findings.append(finding)
    return figures, sorted(findings, key=lambda f: f.line)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results",
        help="results file to check (default: benchmarks/RESULTS.md of this repository)",
    )
    parser.add_argument(
        "--list", action="store_true", help="also print the figures that are current"
    )
    args = parser.parse_args(argv)
    here = Path(args.results).resolve().parent if args.results else Path(__file__).resolve().parent
    top = _git(here, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        print(f"stale.py: {here} is not inside a git repository", file=sys.stderr)
        return 2
    repo = Path(top.stdout.strip())
    results = Path(args.results) if args.results else repo / "benchmarks" / "RESULTS.md"
    if not results.is_file():
        print(f"stale.py: no results file at {results}", file=sys.stderr)
        return 2
    figures, findings = find_stale(repo, results)
    for f in findings:
        print(f"{results.name}:{f.line}: {f.figure_id}: {f.message}")
    if args.list:
        flagged = {f.line for f in findings}
        for fig in figures:
            if fig.line not in flagged:
                print(f"{results.name}:{fig.line}: {fig.id}: current ({fig.commit}, {fig.date})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
