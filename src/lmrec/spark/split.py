"""Evaluation splits of interaction logs too large for pandas, computed by Spark.

:func:`spark_split` is the engine behind ``lmrec split --engine spark``: it reads a CSV
or Parquet log with Spark, applies the same duplicate policy and split rules as
:mod:`lmrec.data.split`, and writes the same files as the local ``lmrec split``
(``train.csv``, ``test.csv``, optionally ``valid.csv``, with columns
``user,item,weight[,rating][,timestamp]`` sorted by user then item, plus
``split.json``), atomically: into a temporary sibling directory renamed into place.

Protocols
---------
``random``
    Per user with ``n`` interactions: ``floor(n * test)`` test and ``floor(n * valid)``
    valid rows, the rest train; a user whose held-out rows would leave no train row
    keeps all rows in train. The rows are drawn by ranking each user's pairs by a seeded
    64-bit hash of ``(seed, user, item)``, so one seed gives one split of the same
    interactions whatever the file order or the number of partitions -- but **not the
    same draw** as the local engine's numpy generator (same shares, other rows).
``global_temporal``
    Exactly as locally: the test cut is the timestamp of the ``n - floor(n * test)``-th
    oldest row (0-based, found by a distributed sort), rows tied at a cut go to the
    later part. The result is identical to the local engine's.

Differences from the local engine: the other protocols (user_temporal, loo,
cold_items, cold_users) are local only; ``--duplicates first|last`` are refused (a
distributed read does not keep the file order); the output is written through the
driver's file system, so on a cluster ``--out`` must be a path every executor can write
(a shared mount), and the notes of ``split.json`` hold the counts and cuts but not the
local engine's cold-user/item notes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmrec.errors import ConfigError, DataError
from lmrec.spark.session import acquire_session, read_table

#: Protocols the Spark engine computes (the others are local only).
SPARK_PROTOCOLS = ("random", "global_temporal")
#: Duplicate policies the Spark engine applies ('first'/'last' need the file order).
SPARK_DUPLICATES = ("raise", "sum", "max")

_TRAIN, _VALID, _TEST = 0, 1, 2
_NAMES = {_TRAIN: "train", _VALID: "valid", _TEST: "test"}


def _floor_share(n: Any, ratio: float) -> Any:
    """``floor(n * ratio)`` with the local engine's float tolerance (``lmrec.data.split``)."""
    from pyspark.sql import functions as F

    x = n.cast("double") * ratio
    return F.floor(x + F.greatest(x, F.lit(1.0)) * 1e-12)


def _as_number(col: Any) -> Any:
    """A string column as seconds/values: numbers as they are, date-times as epoch seconds."""
    from pyspark.sql import functions as F

    return F.coalesce(col.cast("double"), F.unix_timestamp(col.cast("timestamp")).cast("double"))


def _number_text(col: Any) -> Any:
    """A double as the text pandas writes: ``874965758.0``, not Java's ``8.74965758E8``."""
    from pyspark.sql import functions as F

    integral = (col == F.floor(col)) & (F.abs(col) < 1e15)
    return F.when(integral, F.concat(col.cast("long").cast("string"), F.lit(".0"))).otherwise(
        col.cast("string")
    )


def _columns(raw: Any, names: dict[str, str | int | None], header: bool, path: str) -> dict:
    """Map lmrec's roles (user, item, ...) to the Spark column names of ``raw``."""
    out = {}
    for role, name in names.items():
        if name is None:
            continue
        col = f"_c{int(name)}" if not header and str(name).isdigit() else str(name)
        if col not in raw.columns:
            raise ConfigError(
                f"{path} has no {role} column {name!r}; its columns are {raw.columns}. "
                f"Name it with --{role}-col."
            )
        out[role] = col
    return out


def _interactions(raw: Any, cols: dict, *, duplicates: str, drop_invalid: bool, path: str) -> Any:
    """The (user, item, weight[, rating][, timestamp]) frame after validation and merging."""
    from pyspark.sql import functions as F

    exprs = [
        F.col(cols["user"]).cast("string").alias("user"),
        F.col(cols["item"]).cast("string").alias("item"),
    ]
    exprs.append(
        F.col(cols["weight"]).cast("double").alias("weight")
        if "weight" in cols
        else F.lit(1.0).alias("weight")
    )
    if "rating" in cols:
        exprs.append(F.col(cols["rating"]).cast("double").alias("rating"))
    if "timestamp" in cols:
        exprs.append(_as_number(F.col(cols["timestamp"]).cast("string")).alias("timestamp"))
    df = raw.select(*exprs)
    names = df.columns
    bad = F.lit(False)
    for c in names:
        bad = bad | F.col(c).isNull() | (F.isnan(c) if c not in ("user", "item") else F.lit(False))
    if drop_invalid:
        df = df.filter(~bad)
    else:
        n_bad = df.filter(bad).count()
        if n_bad:
            raise DataError(
                f"{path}: {n_bad} row(s) have a missing or non-numeric value in "
                f"{', '.join(names)}. Fix them, or pass --drop-invalid to skip them."
            )
    keys = ["user", "item"]
    if duplicates == "raise":
        n_dup = df.groupBy(*keys).count().filter("count > 1").agg(F.sum(F.col("count") - 1))
        n_dup = n_dup.first()[0] or 0
        if n_dup:
            raise DataError(
                f"{path}: {n_dup} row(s) repeat an earlier (user, item) pair. Choose "
                "--duplicates sum or max to merge them (first/last need the local engine)."
            )
        return df
    agg = [(F.sum if duplicates == "sum" else F.max)("weight").alias("weight")]
    if "rating" in names:  # 'sum' keeps the last rating locally; file order is gone here
        agg.append(F.max("rating").alias("rating"))
    if "timestamp" in names:
        agg.append(F.max("timestamp").alias("timestamp"))
    return df.groupBy(*keys).agg(*agg)


def _random_parts(df: Any, r_valid: float, r_test: float, seed: int, min_train: int) -> Any:
    """Add the ``part`` column of the per-user random split."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = Window.partitionBy("user")
    ranked = Window.partitionBy("user").orderBy("_h", "item")
    df = (
        df.withColumn("_h", F.xxhash64(F.lit(int(seed)), "user", "item"))
        .withColumn("_n", F.count(F.lit(1)).over(by_user))
        .withColumn("_pos", F.row_number().over(ranked))
    )
    n_test, n_valid = _floor_share(F.col("_n"), r_test), _floor_share(F.col("_n"), r_valid)
    held = n_test + n_valid
    kept = (held > 0) & (F.col("_n") - held < min_train)
    part = (
        F.when(kept, F.lit(_TRAIN))
        .when(F.col("_pos") <= n_test, F.lit(_TEST))
        .when(F.col("_pos") <= held, F.lit(_VALID))
        .otherwise(F.lit(_TRAIN))
    )
    return df.withColumn("part", part).drop("_h", "_n", "_pos")


def _temporal_cuts(df: Any, n: int, n_test: int, n_valid: int) -> tuple[float, float]:
    """Timestamps of the ``n - n_test``-th and ``n - n_test - n_valid``-th oldest rows."""
    wanted = {n - n_test: "test", n - n_test - n_valid: "valid"}
    ts = df.select("timestamp").orderBy("timestamp").rdd.map(lambda row: row[0])
    found = dict(
        ts.zipWithIndex().filter(lambda p: p[1] in wanted).map(lambda p: (p[1], p[0])).collect()
    )
    return float(found[n - n_test]), float(found[n - n_test - n_valid])


def _write_part(frame: Any, tmp: Path, name: str) -> None:
    """One part as a single ``name.csv`` with a header, sorted by user then item."""
    from pyspark.sql import functions as F

    cols = [F.col("user"), F.col("item")] + [
        _number_text(F.col(c)).alias(c)
        for c in ("weight", "rating", "timestamp")
        if c in frame.columns
    ]
    target = tmp / f"_{name}"
    (
        frame.select(*cols)
        .coalesce(1)
        .sortWithinPartitions("user", "item")
        .write.csv(str(target), header=True, quote='"', escape='"')
    )
    (csv,) = target.glob("part-*.csv")
    csv.rename(tmp / f"{name}.csv")
    shutil.rmtree(target)


def spark_split(
    data_path: str | Path,
    out: str | Path,
    *,
    protocol: str = "random",
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 2026,
    min_train: int = 1,
    master: str | None = "local[2]",
    user_col: str | int = "user",
    item_col: str | int = "item",
    weight_col: str | int | None = None,
    rating_col: str | int | None = None,
    timestamp_col: str | int | None = None,
    sep: str | None = None,
    header: bool = True,
    duplicates: str = "raise",
    drop_invalid: bool = False,
    overwrite: bool = False,
    spark: Any = None,
    spark_conf: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Split an interaction log with Spark and write it like ``lmrec split`` does.

    Parameters
    ----------
    data_path : str or Path
        CSV/TSV or Parquet (file or directory); any path Spark can read.
    out : str or Path
        Output directory (replaced atomically; see the module docstring).
    protocol : {"random", "global_temporal"}
        See the module docstring.
    ratios : sequence of 2 or 3 float
        ``(train, test)`` or ``(train, valid, test)``, summing to 1.
    seed : int
        Seed of the random split (recorded in ``split.json``).
    min_train : int
        The fewest train rows a user with held-out rows keeps (random).
    master : str or None
        Spark master URL; ``None`` leaves it to ``spark-submit``. Ignored with ``spark`` or
        when a session is already active (which is used and left running).
    user_col, item_col, weight_col, rating_col, timestamp_col : str or int
        Column names (0-based positions when ``header=False``).
    sep, header
        CSV delimiter (default ``,``, tab for ``.tsv``) and whether there is a header row.
    duplicates : {"raise", "sum", "max"}
        Repeated (user, item) pairs: error, or merge as ``lmrec.data`` does (``sum`` adds
        weights; the latest timestamp and, here, the largest rating are kept).
    drop_invalid : bool
        Skip rows with a missing or non-numeric value instead of raising.
    overwrite : bool
        Replace an existing ``out``.
    spark : SparkSession, optional
        Use this session (left running) instead of starting one.
    spark_conf : dict, optional
        Extra settings for a session started here.

    Returns
    -------
    dict
        The content of ``split.json``: protocol, seed, counts, notes.

    Raises
    ------
    ConfigError
        No Java, an unsupported protocol or duplicate policy, bad ratios or columns.
    DataError
        Invalid rows, duplicates under ``"raise"``, no timestamps, or an empty part.
    """
    from lmrec._atomic import atomic_dir
    from lmrec.data.split import _check_ratios, _ratio_label, _time_label

    if protocol not in SPARK_PROTOCOLS:
        raise ConfigError(
            f"The Spark engine splits with {', '.join(SPARK_PROTOCOLS)}; got protocol "
            f"{protocol!r}. Use the local engine (lmrec split without --engine spark) for it."
        )
    if duplicates not in SPARK_DUPLICATES:
        raise ConfigError(
            f"The Spark engine merges duplicates with {', '.join(SPARK_DUPLICATES)}; got "
            f"{duplicates!r} (first/last follow the file order, which a distributed read "
            "does not keep)."
        )
    if protocol == "global_temporal" and timestamp_col is None:
        raise DataError("global_temporal orders interactions by time; pass --timestamp-col.")
    func = f"{protocol}_split"
    r_train, r_valid, r_test, with_valid = _check_ratios(tuple(ratios), func)
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; pass --force to replace it.")
    spark, own = acquire_session("lmrec-split", master, spark_conf, spark)
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    cached: list[Any] = []  # persisted frames, released however the split ends
    try:
        path = str(data_path)
        raw = read_table(spark, path, sep, header=header)
        names = {
            "user": user_col,
            "item": item_col,
            "weight": weight_col,
            "rating": rating_col,
            "timestamp": timestamp_col,
        }
        cols = _columns(raw, names, header, path)
        df = _interactions(raw, cols, duplicates=duplicates, drop_invalid=drop_invalid, path=path)
        notes: list[str] = ["engine: spark"]
        if protocol == "random":
            labelled = _random_parts(df, r_valid, r_test, seed, min_train)
            label = f"random({_ratio_label(r_train, r_valid, r_test)})"
            recorded: int | None = int(seed)
        else:
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(df)
            n = df.count()
            n_test = int(n * r_test + 1e-12 * max(n * r_test, 1.0))
            n_valid = int(n * r_valid + 1e-12 * max(n * r_valid, 1.0))
            label = f"global_temporal({_ratio_label(r_train, r_valid, r_test)})"
            if n_test == 0 or (with_valid and n_valid == 0):
                raise DataError(
                    f"The {label} split of {path} leaves a part empty: "
                    f"floor({n} * ratio) is 0. Use larger ratios or more data."
                )
            t_test, t_valid = _temporal_cuts(df, n, n_test, n_valid)
            part = F.when(F.col("timestamp") >= t_test, F.lit(_TEST))
            if with_valid:
                part = part.when(F.col("timestamp") >= t_valid, F.lit(_VALID))
            labelled = df.withColumn("part", part.otherwise(F.lit(_TRAIN)))
            if with_valid:
                notes.append(
                    f"valid: interactions at or after t={_time_label(t_valid)}, before test"
                )
            notes.append(f"test: interactions at or after t={_time_label(t_test)}")
            recorded = None
        labelled = labelled.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(labelled)
        sizes = {
            int(r["part"]): int(r["count"]) for r in labelled.groupBy("part").count().collect()
        }
        wanted = [_TRAIN, _TEST] + ([_VALID] if with_valid else [])
        for code in wanted:
            if not sizes.get(code):
                raise DataError(
                    f"The {label} split of {path} ({sum(sizes.values())} interactions) leaves "
                    f"the {_NAMES[code]} part empty. Use larger ratios or more data."
                )
        counts = {_NAMES[c]: sizes[c] for c in (_TRAIN, _VALID, _TEST) if c in wanted}
        meta = {"protocol": label, "seed": recorded, "counts": counts, "notes": notes}
        with atomic_dir(out) as tmp:
            for code in (_TRAIN, _VALID, _TEST):
                if code in wanted:
                    part_frame = labelled.filter(F.col("part") == code).drop("part")
                    _write_part(part_frame, tmp, _NAMES[code])
            (tmp / "split.json").write_text(json.dumps(meta, indent=2))
    finally:
        for frame in cached:
            frame.unpersist()
        if own:
            spark.stop()
    return meta
