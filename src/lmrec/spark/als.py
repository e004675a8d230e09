"""Implicit ALS fitted by Spark MLlib, returned as an :class:`lmrec.models.als.ALS`.

:func:`spark_train_als` reads the interactions with Spark (CSV or Parquet, local or on
a cluster file system), maps external ids to dense indices with a ``StringIndexer`` in
alphabetical order -- the same sorted-string maps :class:`~lmrec.data.idmap.IdMap`
builds, so the model is interchangeable with one fitted by lmrec -- fits
``pyspark.ml.recommendation.ALS(implicitPrefs=True)``, and collects the factors and the
binary training pattern to the driver. The returned model saves, loads, recommends,
evaluates and serves exactly like ``lmrec.models.ALS``.

Spark scales each user's (item's) L2 penalty by that user's number of interactions
("ALS-WR", Zhou et al. 2008); the returned model says so in its config
(``l2_scaling="count"``), which is also how ``lmrec.models.ALS`` fits that
exact objective locally. The default local ALS (``"none"``, implicit's objective) uses
one penalty for all rows, so the same ``regularization`` is a weaker penalty there;
``benchmarks/results/spark.md`` compares the two engines on MovieLens-100K.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec.data.idmap import IdMap
from lmrec.errors import ConfigError, DataError
from lmrec.spark.session import acquire_session, read_table

logger = logging.getLogger(__name__)


def spark_train_als(
    data_path: str | Path,
    *,
    params: Mapping[str, Any] | None = None,
    master: str | None = "local[2]",
    user_col: str = "user",
    item_col: str = "item",
    weight_col: str | None = None,
    sep: str | None = None,
    spark: Any = None,
    spark_conf: dict[str, str] | None = None,
    num_blocks: int | None = None,
) -> Any:
    """Fit implicit ALS with Spark MLlib and return it as an lmrec ``ALS`` model.

    Parameters
    ----------
    data_path : str or Path
        CSV/TSV (with a header row) or Parquet; any path Spark can read (``hdfs://``,
        ``s3a://``, ...).
    params : mapping, optional
        Hyperparameters of :class:`lmrec.models.als.ALSConfig` (its defaults for the
        rest); Spark's settings come from :meth:`ALS.spark_params
        <lmrec.models.als.ALS.spark_params>`. Spark scales ``regParam`` by each row's
        interaction count, so the model's config has ``l2_scaling="count"``
        (any other value is refused).
    master : str or None
        Spark master URL, default ``local[2]``; ``None`` leaves it to ``spark-submit``.
        Ignored when ``spark`` is given or a session is already active (then used, left running).
    user_col, item_col : str
        Id columns (read as strings).
    weight_col : str, optional
        Interaction strength ``r`` (summed over duplicate pairs); default: every pair is
        ``r = 1`` and duplicates count once, as in lmrec's ``implicit=True``.
    sep : str, optional
        CSV delimiter (default ``,``; tab for ``.tsv``/``.inter``).
    spark : SparkSession, optional
        An existing session to use (it is left running); otherwise one is started and
        stopped.
    spark_conf : dict, optional
        Extra Spark settings for a session started here.
    num_blocks : int, optional
        Spark's ``numUserBlocks`` and ``numItemBlocks`` (its default, 10, when ``None``);
        about the number of executor cores is a good value (a small data set on
        ``local[2]`` fits several times faster with 2).

    Returns
    -------
    lmrec.models.als.ALS
        Fitted: ``user_ids_``/``item_ids_`` (sorted strings), ``seen_`` (binary CSR of the
        training pairs), float32 ``user_factors_``/``item_factors_``.

    Raises
    ------
    MissingExtraError
        pyspark is not installed (``pip install 'lmrec[spark]'``).
    ConfigError
        No Java runtime, or a column is missing.
    DataError
        The data hold no interactions.
    """
    from lmrec.models.als import ALS

    model = ALS(**{"l2_scaling": "count", "implicit": weight_col is None, **dict(params or {})})
    settings = ALS.spark_params(model.config)
    factors = settings["rank"]
    spark, own = acquire_session("lmrec-als", master, spark_conf, spark)
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS as SparkALS
    from pyspark.sql import functions as F

    try:
        raw = read_table(spark, str(data_path), sep)
        missing = [c for c in (user_col, item_col, weight_col) if c and c not in raw.columns]
        if missing:
            raise ConfigError(
                f"{data_path} has no column(s) {missing}; its columns are {raw.columns}."
            )
        weight = F.col(weight_col).cast("double") if weight_col else F.lit(1.0)
        df = raw.select(
            F.col(user_col).cast("string").alias("user"),
            F.col(item_col).cast("string").alias("item"),
            weight.alias("r"),
        ).dropna()
        agg = F.sum("r") if weight_col else F.lit(1.0)
        df = df.groupBy("user", "item").agg(agg.alias("r"))
        # alphabetAsc = sorted strings, lmrec's canonical IdMap order (checked below).
        indexer = StringIndexer(
            inputCols=["user", "item"], outputCols=["u", "i"], stringOrderType="alphabetAsc"
        ).fit(df)
        pairs = (
            indexer.transform(df)
            .select(F.col("u").cast("int").alias("u"), F.col("i").cast("int").alias("i"), "r")
            .cache()
        )
        als = SparkALS(
            **settings,
            implicitPrefs=True,
            userCol="u",
            itemCol="i",
            ratingCol="r",
            coldStartStrategy="drop",
        )
        if num_blocks is not None:
            als = als.setNumUserBlocks(num_blocks).setNumItemBlocks(num_blocks)
        fitted = als.fit(pairs)
        user_labels, item_labels = (np.asarray(a, dtype=object) for a in indexer.labelsArray)
        if len(user_labels) == 0:
            raise DataError(f"{data_path} holds no interactions.")
        user_ids, item_ids = IdMap.from_values(user_labels), IdMap.from_values(item_labels)
        # Spark index -> lmrec index (the identity unless Spark's string order differs).
        u_perm = user_ids.index(user_labels)
        i_perm = item_ids.index(item_labels)
        uf = _factors(fitted.userFactors, len(user_ids), factors, u_perm)
        vf = _factors(fitted.itemFactors, len(item_ids), factors, i_perm)
        seen = pairs.select("u", "i").toPandas()
        pairs.unpersist()
    finally:
        if own:
            spark.stop()
    rows, cols = u_perm[seen["u"].to_numpy()], i_perm[seen["i"].to_numpy()]
    model.user_ids_, model.item_ids_ = user_ids, item_ids
    model.seen_ = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    model.user_factors_, model.item_factors_ = uf, vf
    logger.info("Spark ALS: %d users, %d items, %d pairs", len(user_ids), len(item_ids), len(rows))
    return model


def _factors(frame: Any, n: int, factors: int, perm: np.ndarray) -> np.ndarray:
    """Collect a Spark factor table ``(id, features)`` into a float32 (n, factors) array."""
    out = np.zeros((n, factors), np.float32)
    table = frame.toPandas()
    if len(table):
        out[perm[table["id"].to_numpy()]] = np.stack(table["features"].to_numpy()).astype(
            np.float32
        )
    return out
