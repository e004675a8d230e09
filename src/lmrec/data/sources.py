"""Built-in data sets, fetched once into a cache and verified by sha256.

``ml-100k`` (MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings) has two
real sources, each checked against published checksums:

- ``pypi``: the ``recbole==1.2.1`` wheel on PyPI carries the data set as RecBole
  atomic files; ``pip download --no-deps`` fetches it through the user's own pip
  configuration (so it works wherever ``pip install`` works, mirrors included);
- ``grouplens``: the official archive from files.grouplens.org.

Both are normalised into the same cached Parquet files, so the rest of lmrec does not
care where the data came from. The cache lives in ``$LMREC_HOME/datasets`` (default
``~/.cache/lmrec/datasets``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec._atomic import atomic_dir
from lmrec.data.dataset import Dataset
from lmrec.data.export import SourceColumns
from lmrec.errors import DataError

GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


@dataclass(frozen=True)
class BuiltinDataset:
    """Description of a built-in data set: what it is and where it comes from."""

    name: str
    description: str
    n_users: int
    n_items: int
    n_interactions: int
    sources: tuple[str, ...]
    license: str


ML100K = BuiltinDataset(
    name="ml-100k",
    description=(
        "MovieLens 100K: 100,000 ratings (1-5) with timestamps from 943 users on 1,682 movies; "
        "titles, release years, genres; user age, gender, occupation, zip code."
    ),
    n_users=943,
    n_items=1682,
    n_interactions=100_000,
    sources=("pypi", "grouplens"),
    license="GroupLens research license: cite Harper & Konstan (2015); no redistribution.",
)
BUILTINS = {ML100K.name: ML100K}

RECBOLE_WHEEL = "recbole==1.2.1"
RECBOLE_FILES = {
    "recbole/dataset_example/ml-100k/ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "recbole/dataset_example/ml-100k/ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "recbole/dataset_example/ml-100k/ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
CACHE_FORMAT = 1


def cache_dir() -> Path:
    """Root of lmrec's cache: ``$LMREC_HOME`` or ``~/.cache/lmrec``."""
    root = os.environ.get("LMREC_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "lmrec"


def dataset_dir(name: str) -> Path:
    """Where built-in data set ``name`` is cached."""
    return cache_dir() / "datasets" / _check_name(name).name


def _check_name(name: str) -> BuiltinDataset:
    if name not in BUILTINS:
        raise DataError(f"Unknown built-in data set {name!r}. Available: {', '.join(BUILTINS)}.")
    return BUILTINS[name]


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verify(data: bytes, expected: str, what: str) -> bytes:
    got = _sha256_bytes(data)
    if got != expected:
        raise DataError(
            f"Checksum mismatch for {what}: expected sha256 {expected}, got {got}. The download "
            "is corrupt or the source changed; nothing was written to the cache."
        )
    return data


# ---------------------------------------------------------------------- sources
def _from_pypi() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fetch the recbole wheel with pip (no install, no dependencies) and read ml-100k from it."""
    with tempfile.TemporaryDirectory(prefix="lmrec-pypi-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            tmp,
            RECBOLE_WHEEL,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("recbole-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DataError(
                f"Could not download {RECBOLE_WHEEL} from PyPI with pip: "
                f"{(proc.stderr or proc.stdout).strip()[-400:]}"
            )
        with zipfile.ZipFile(wheels[0]) as zf:
            raw = {
                name: _verify(zf.read(name), digest, name) for name, digest in RECBOLE_FILES.items()
            }
    inter, item, user = (raw[n] for n in RECBOLE_FILES)
    ratings = pd.read_csv(io.BytesIO(inter), sep="\t", dtype=str)
    ratings.columns = [c.split(":")[0] for c in ratings.columns]
    ratings = pd.DataFrame(
        {
            "user": ratings["user_id"],
            "item": ratings["item_id"],
            "rating": ratings["rating"].astype(np.float32),
            "timestamp": ratings["timestamp"].astype(np.float64),
        }
    )
    items = pd.read_csv(io.BytesIO(item), sep="\t", dtype=str, keep_default_na=False)
    items.columns = [c.split(":")[0] for c in items.columns]
    year = pd.to_numeric(items["release_year"], errors="coerce")
    items = pd.DataFrame(
        {
            "title": items["movie_title"].replace("unkonwn", "unknown"),
            "year": year.astype("Int64"),
            "genres": items["class"].str.split().str.join("|"),
        }
    ).set_axis(pd.Index(items["item_id"].to_numpy(), name="item"))
    users = pd.read_csv(io.BytesIO(user), sep="\t", dtype=str, keep_default_na=False)
    users.columns = [c.split(":")[0] for c in users.columns]
    users = users.set_index("user_id").rename_axis("user")
    users = users.rename(columns={"zip_code": "zip"})
    users["age"] = users["age"].astype(int)
    return ratings, items, users


def _from_grouplens() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Download the official GroupLens archive and read u.data, u.item and u.user."""
    try:
        with urllib.request.urlopen(GROUPLENS_URL, timeout=60) as resp:  # noqa: S310 (fixed https URL)
            data = resp.read()
    except OSError as e:
        raise DataError(f"Could not download {GROUPLENS_URL}: {e}") from e
    return parse_grouplens_zip(_verify(data, GROUPLENS_SHA256, GROUPLENS_URL))


def parse_grouplens_zip(data: bytes) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read ratings, items and users from the bytes of the GroupLens ``ml-100k.zip``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        u_data = zf.read("ml-100k/u.data")
        u_item = zf.read("ml-100k/u.item")
        u_user = zf.read("ml-100k/u.user")
    return parse_grouplens_files(u_data, u_item, u_user)


def parse_grouplens_files(
    u_data: bytes, u_item: bytes, u_user: bytes
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read the three GroupLens ml-100k files (tab- and pipe-separated, latin-1) into frames."""
    r = pd.read_csv(
        io.BytesIO(u_data),
        sep="\t",
        header=None,
        dtype=str,
        names=["user", "item", "rating", "timestamp"],
    )
    ratings = r.assign(
        rating=r["rating"].astype(np.float32), timestamp=r["timestamp"].astype(np.float64)
    )
    cols = ["item", "title", "release_date", "video_release_date", "url", *GENRES]
    it = pd.read_csv(
        io.BytesIO(u_item),
        sep="|",
        header=None,
        names=cols,
        dtype=str,
        encoding="latin-1",
        keep_default_na=False,
    )
    flags = it[list(GENRES)].to_numpy() == "1"
    genres = ["|".join(g for g, f in zip(GENRES, row, strict=True) if f) for row in flags]
    title = it["title"].str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True)
    year = pd.to_datetime(it["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    items = pd.DataFrame(
        {"title": title.replace("", "unknown"), "year": year.astype("Int64"), "genres": genres}
    ).set_axis(pd.Index(it["item"].to_numpy(), name="item"))
    users = pd.read_csv(
        io.BytesIO(u_user),
        sep="|",
        header=None,
        dtype=str,
        names=["user", "age", "gender", "occupation", "zip"],
    ).set_index("user")
    users["age"] = users["age"].astype(int)
    return ratings, items, users


_SOURCES = {"pypi": _from_pypi, "grouplens": _from_grouplens}


# ---------------------------------------------------------------------- public API
def fetch(name: str = "ml-100k", *, source: str = "auto", force: bool = False) -> Path:
    """Download (once) and cache built-in data set ``name``; return its cache directory.

    ``source`` is ``"pypi"``, ``"grouplens"`` or ``"auto"`` (PyPI first, then
    GroupLens). Every download is verified by sha256 before anything is cached.
    """
    info = _check_name(name)
    target = dataset_dir(name)
    if not force and (target / "SOURCE.json").is_file():
        return target
    order = info.sources if source == "auto" else (source,)
    for s in order:
        if s not in _SOURCES:
            raise DataError(
                f"Unknown source {s!r} for {name}; choose from {', '.join(info.sources)}."
            )
    errors = []
    for s in order:
        try:
            ratings, items, users = _SOURCES[s]()
        except DataError as e:
            errors.append(f"{s}: {e}")
            continue
        _check_counts(info, ratings, items, users)
        with atomic_dir(target) as tmp:
            ratings.to_parquet(tmp / "interactions.parquet", index=False)
            items.to_parquet(tmp / "items.parquet")
            users.to_parquet(tmp / "users.parquet")
            meta = {
                "name": name,
                "source": s,
                "cache_format": CACHE_FORMAT,
                "checksums": RECBOLE_FILES if s == "pypi" else {GROUPLENS_URL: GROUPLENS_SHA256},
            }
            (tmp / "SOURCE.json").write_text(json.dumps(meta, indent=2))
        return target
    raise DataError(f"Could not fetch {name} from any source:\n  " + "\n  ".join(errors))


def _check_counts(
    info: BuiltinDataset, ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame
) -> None:
    got = (ratings["user"].nunique(), len(items), len(ratings))
    if got != (info.n_users, info.n_items, info.n_interactions):
        raise DataError(f"{info.name}: unexpected sizes (users, items, interactions) {got}.")


def load_builtin(name: str = "ml-100k", *, source: str = "auto") -> Dataset:
    """The built-in data set as a :class:`Dataset` (fetched on first use).

    Interactions keep the 1-5 ``rating`` and the ``timestamp``; ``weight`` is 1.0
    (every rating is a positive implicit interaction). Items carry ``title``,
    ``year`` and ``genres`` (``|``-separated); users ``age``, ``gender``,
    ``occupation`` and ``zip``.
    """
    path = fetch(name, source=source)
    ratings = pd.read_parquet(path / "interactions.parquet")
    items = pd.read_parquet(path / "items.parquet")
    users = pd.read_parquet(path / "users.parquet")
    ds = Dataset.from_frame(ratings, items=items, users=users, name=name)
    # Ratings are whole stars and timestamps whole epoch seconds in every source file.
    ds.source = SourceColumns(
        {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"},
        {"rating": True, "timestamp": True},
        "s",
    )
    return ds


def info(name: str = "ml-100k") -> dict[str, object]:
    """Description and cache status of a built-in data set."""
    d = _check_name(name)
    path = dataset_dir(name)
    status: dict[str, object] = {
        "name": d.name,
        "description": d.description,
        "users": d.n_users,
        "items": d.n_items,
        "interactions": d.n_interactions,
        "sources": ", ".join(d.sources),
        "license": d.license,
        "cached": (path / "SOURCE.json").is_file(),
        "path": str(path),
    }
    if status["cached"]:
        status["fetched_from"] = json.loads((path / "SOURCE.json").read_text())["source"]
    return status
