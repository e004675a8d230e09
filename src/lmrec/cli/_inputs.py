"""Input files shared by several subcommands: item/user catalogs and repeated ``--data``.

A catalog (``--items``, ``--users``) has its own id column flag (``--items-item-col``,
``--users-user-col``), because the interaction file's ``--item-col`` names a column of
the interaction file, not of the catalog. Without the flag the id column is found: the
interaction file's column name when the catalog has it (``movieId`` in both files), else
``item`` / ``user``, else the error names the flag to pass.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmrec.cli._common import check_input, info, read_kwargs
from lmrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

#: Catalog role -> (catalog file flag dest, id column flag).
CATALOG_FLAGS = {"item": ("items", "--items-item-col"), "user": ("users_file", "--users-user-col")}
_RECBOLE_SUFFIXES = (".item", ".user")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def add_catalog_flags(p: argparse.ArgumentParser) -> None:
    """``--items-item-col`` and ``--users-user-col`` (the id columns of the catalogs), unless
    another flag group of the command added them already."""
    if any("--items-item-col" in a.option_strings for a in p._actions):
        return
    g = p.add_argument_group("reading catalogs (--items, --users)")
    g.add_argument(
        "--items-item-col",
        metavar="COLUMN",
        help="item id column of the --items file (default: the --item-col name if "
        "the catalog has that column, else 'item')",
    )
    g.add_argument(
        "--users-user-col",
        metavar="COLUMN",
        help="user id column of the --users file (default: the --user-col name if "
        "the catalog has that column, else 'user')",
    )


def _header(path: Path, sep: str | None) -> list[str] | None:
    """Column names of a catalog file, or None where the reader finds the id itself."""
    name = path.name.lower()
    if name.endswith(_RECBOLE_SUFFIXES):
        return None  # RecBole atomic files: the reader knows their item_id / user_id columns
    if name.endswith(_PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    import pandas as pd

    try:
        frame = pd.read_csv(path, nrows=0, sep=sep, engine="python" if sep is None else "c")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: cannot read the header row of the catalog: {e}") from e
    return [str(c).strip() for c in frame.columns]


def catalog_id_col(args: argparse.Namespace, role: str, path: str | None = None) -> str | None:
    """The id column of the ``role`` catalog ('item' or 'user'); None when there is none.

    ``path`` defaults to the ``--items`` / ``--users`` file. Raises :class:`ConfigError`
    naming ``--items-item-col`` / ``--users-user-col`` when neither the interaction
    file's column name nor ``item`` / ``user`` is in the file.
    """
    dest, flag = CATALOG_FLAGS[role]
    path = path or getattr(args, dest, None)
    if not path:
        return None
    explicit = getattr(args, flag.lstrip("-").replace("-", "_"), None)
    if explicit:
        return str(explicit)
    columns = _header(Path(path), getattr(args, "sep", None))
    if columns is None:
        return None
    interaction_col = getattr(args, f"{role}_col", None)
    looked = [c for c in (interaction_col, role) if isinstance(c, str) and c]
    looked = list(dict.fromkeys(looked))
    for col in looked:
        if col in columns:
            return col
    shown = ", ".join(repr(c) for c in columns[:12]) + (" ..." if len(columns) > 12 else "")
    raise ConfigError(
        f"{path} has no {role} id column: looked for {' and '.join(repr(c) for c in looked)}; "
        f"its columns are {shown}. Name the id column with {flag} COLUMN."
    )


def catalog_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``item_kwargs`` / ``user_kwargs`` for :func:`lmrec.data.load_dataset` from the flags."""
    out: dict[str, Any] = {}
    for role in CATALOG_FLAGS:
        col = catalog_id_col(args, role)
        if col is not None:
            out[f"{role}_kwargs"] = {"id_col": col}
    return out


def read_catalogs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The ``--items`` and ``--users`` tables (None when not given), by their id columns."""
    from lmrec.data import read_items, read_users

    tables: list[pd.DataFrame | None] = []
    for role, reader in (("item", read_items), ("user", read_users)):
        path = getattr(args, CATALOG_FLAGS[role][0], None)
        if not path:
            tables.append(None)
            continue
        check_input(path, f"{role.title()} file")
        col = catalog_id_col(args, role)
        tables.append(reader(path) if col is None else reader(path, id_col=col))
    return tables[0], tables[1]


def load_data_files(args: argparse.Namespace, paths: list[str]):
    """One Dataset from several interaction files (e.g. train and valid), read alike.

    Every file is read with the same read flags; the files must not share a
    ``(user, item)`` pair (repeated pairs within a file follow ``--duplicates``).
    """
    from lmrec.data import read_interactions
    from lmrec.data.dataset import datasets_with_shared_ids

    frames = []
    for path in paths:
        check_input(path, "Interaction file")
        if (Path(path) / "dataset.json").is_file():
            raise ConfigError(
                f"--data {path} is a saved data set directory; repeated --data takes "
                "interaction files only."
            )
        frame, report = read_interactions(path, **read_kwargs(args))
        info(f"{path}: {report.summary()}")
        frames.append(frame)
    _check_disjoint(frames, paths)
    items, users = read_catalogs(args)
    parts = datasets_with_shared_ids(frames, items=items, users=users, names=list(paths))
    name = "+".join(Path(p).name.split(".")[0] for p in paths)
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concat(part, name=name)
    info(f"loaded {dataset}")
    return dataset


def _check_disjoint(frames: list[Any], paths: list[str]) -> None:
    """Fail when two --data files hold the same (user, item) pair, naming one example."""
    import pandas as pd

    keys = pd.concat(
        [
            pd.DataFrame({"user": f["user"].astype(str), "item": f["item"].astype(str), "file": i})
            for i, f in enumerate(frames)
        ],
        ignore_index=True,
    )
    dup = keys.duplicated(["user", "item"], keep=False)
    if not dup.any():
        return
    first = keys[dup].iloc[0]
    same = keys[dup & (keys["user"] == first["user"]) & (keys["item"] == first["item"])]
    owners = [paths[i] for i in same["file"].unique()]
    n_pairs = len(keys[dup].drop_duplicates(["user", "item"]))
    raise ConfigError(
        f"--data files {' and '.join(owners)} share {n_pairs} (user, item) pair(s), "
        f"e.g. user {first['user']!r}, item {first['item']!r}. Each pair may appear in one "
        "file only (the files are parts of one split)."
    )


def read_titles(args: argparse.Namespace, path: str) -> Any:
    """The title of each item (a Series indexed by item id) from a catalog file.

    The title column is ``--title-col`` or, by default, ``title``; the id column as for
    ``--items`` (``--items-item-col``, else the catalog's ``item`` column).
    """
    from lmrec.data import read_items

    check_input(path, "Title catalog")
    id_col = catalog_id_col(args, "item", path)
    columns = _header(Path(path), None)
    title = args.title_col or "title"
    if columns is not None and title not in columns:
        shown = ", ".join(repr(c) for c in columns[:12])
        raise ConfigError(
            f"{path} has no title column {title!r}; its columns are {shown}. Name the "
            "title column with --title-col COLUMN."
        )
    if id_col:
        table = read_items(path, text_cols=[title], id_col=id_col)
    else:
        table = read_items(path, text_cols=[title])
    return table[title]


def read_pairs(paths: list[str], what: str, **read_kw: Any) -> Any:
    """The distinct ``user, item`` pairs of one or more interaction files, or None for no
    file: training or validation files to exclude or to define a catalog. ``read_kw`` goes
    to :func:`lmrec.data.read_interactions` (repeated pairs are kept once)."""
    import pandas as pd

    from lmrec.data import read_interactions

    if not paths:
        return None
    frames = []
    for path in paths:
        frame, _ = read_interactions(check_input(path, what), **{**read_kw, "duplicates": "first"})
        frames.append(frame[["user", "item"]])
    return pd.concat(frames, ignore_index=True).drop_duplicates()
