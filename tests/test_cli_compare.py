"""lmrec compare's output (issue 15.6) and help text on every flag of every command."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pandas as pd
import pytest

from lmrec.cli import build_parser, main


@pytest.fixture()
def split_files(tmp_path):
    rng = np.random.default_rng(5)
    rows = [(f"u{u}", f"i{i}") for u in range(40) for i in rng.choice(30, 10, replace=False)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    frame.iloc[::4].to_csv(tmp_path / "test.csv", index=False)
    frame.drop(frame.index[::4]).to_csv(tmp_path / "train.csv", index=False)
    return tmp_path


def compare(capsys, split_files, *extra):
    argv = [
        "compare",
        "--train",
        split_files / "train.csv",
        "--test",
        split_files / "test.csv",
        "--models",
        "popularity,ease,itemknn",
        *extra,
    ]
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_default_table_fits_100_columns_with_a_dash_for_the_baseline(split_files, capsys):
    out = compare(capsys, split_files)  # default -k 10 20: 15 metrics
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "difference to popularity [95% CI]" in lines[0]
    rows = [line for line in lines if re.match(r"^\S+@\d+\s+popularity\s", line)]
    assert rows and all(line.rstrip().endswith("-") for line in rows if "[" in line)
    assert "nan" not in out.lower()
    ndcg = [line for line in lines if line.startswith("ndcg@10")][0]
    assert re.search(r"popularity\s+0\.\d{4}\s+\[0\.\d{4}, 0\.\d{4}\]\s+-$", ndcg)
    ease = lines[lines.index(ndcg) + 1].split()
    assert ease[0] == "ease" and re.fullmatch(r"[+-]0\.\d{4}", ease[4])


def test_markdown_is_a_real_rounded_table(split_files, capsys):
    out = compare(
        capsys,
        split_files,
        "--metrics",
        "ndcg@10,recall@10,coverage@10",
        "--format",
        "markdown",
        "--baseline",
        "ease",
    )
    tables = [block.strip().splitlines() for block in out.split("\n\n") if block.startswith("|")]
    assert len(tables) == 2
    values, diffs = tables
    assert values[0] == (
        "| model | users | ndcg@10 [95% CI] | recall@10 [95% CI] | coverage@10 | fit_seconds |"
    )
    assert re.fullmatch(r"\|(---:?\|)+", values[1])
    for table in (values, diffs):
        assert all(row.count("|") == table[0].count("|") for row in table)
        assert all(row.startswith("| ") and row.endswith(" |") for row in table[2:])
    numbers = re.findall(r"\d+\.\d+", "\n".join(values[2:]))
    assert numbers and all(len(n.split(".")[1]) in (2, 4) for n in numbers)  # rounded
    assert "Paired difference to ease" in out
    assert [r.split(" | ")[0] for r in diffs[2:]] == ["| popularity", "| ease", "| itemknn"]
    assert diffs[3] == "| ease | - | - |"


def test_unknown_baseline_is_refused(split_files, capsys):
    code = main(
        [
            "compare",
            "--train",
            str(split_files / "train.csv"),
            "--test",
            str(split_files / "test.csv"),
            "--models",
            "popularity",
            "--baseline",
            "ease",
        ]
    )
    assert code == 2 and "--baseline 'ease'" in capsys.readouterr().err


def _actions(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*prefix, name))
        elif not isinstance(action, argparse._HelpAction):
            yield " ".join(prefix), action


def test_every_flag_of_every_command_has_help():
    missing = [
        f"{cmd} {a.option_strings or a.dest}" for cmd, a in _actions(build_parser()) if not a.help
    ]
    assert missing == []
