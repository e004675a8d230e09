"""Starting Spark and reading interaction files with it, shared by the Spark functions.

Everything here imports pyspark inside the function and checks for Java first, so
``import lmrec.spark`` stays light and a missing runtime fails with how to fix it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lmrec._optional import require
from lmrec.errors import ConfigError

#: Settings of every session lmrec starts (the caller's ``spark_conf`` wins).
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}


def check_java() -> str:
    """The path of the ``java`` executable Spark will start; raise if there is none.

    Looks in ``$JAVA_HOME/bin`` first, then on ``PATH`` (Spark's own order).

    Raises
    ------
    ConfigError
        Naming the requirement: a Java 17 or 21 runtime for pyspark 4.
    """
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ConfigError(
            "The Spark engine needs a Java runtime (Java 17 or 21 for pyspark 4), and no "
            "'java' was found on PATH or in $JAVA_HOME/bin. Install one (e.g. "
            "'apt-get install openjdk-17-jre-headless') or set JAVA_HOME."
        )
    return found


def start_session(app: str, master: str | None, conf: dict[str, str] | None = None) -> Any:
    """A SparkSession named ``app`` on ``master`` (``None``: as ``spark-submit`` set it).

    Checks Java and pyspark first (ConfigError / MissingExtraError with the fix).
    """
    check_java()
    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app)
    if master is not None:
        builder = builder.master(master)
    for key, value in {**DEFAULT_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def acquire_session(
    app: str, master: str | None, conf: dict[str, str] | None = None, spark: Any = None
) -> tuple[Any, bool]:
    """``spark`` if given, else the active SparkSession, else a new one; and whether it
    was started here.

    A caller stops only a session it started, so calling lmrec from inside a running
    Spark application (a notebook, ``spark-submit``) leaves that application's session
    alone (``master`` and ``conf`` then do not apply).
    """
    check_java()
    if spark is not None:
        return spark, False
    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    return start_session(app, master, conf), True


def read_table(spark: Any, data_path: str, sep: str | None, *, header: bool = True) -> Any:
    """A Spark DataFrame of a CSV/TSV file (all columns strings) or a Parquet file/directory.

    Without a header, CSV columns are named ``_c0, _c1, ...`` (Spark's names).
    """
    path = str(data_path)
    low = path.lower().rstrip("/")
    if low.endswith((".parquet", ".pq")) or (
        Path(path).is_dir() and any(Path(path).glob("*.parquet"))
    ):
        return spark.read.parquet(path)
    if sep is None:
        sep = "\t" if low.endswith((".tsv", ".inter")) else ","
    return spark.read.csv(path, header=header, sep=sep, inferSchema=False)
