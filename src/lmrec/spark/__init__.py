"""Spark engine: fit models on a Spark cluster and get ordinary lmrec models back.

``pyspark`` is an optional extra (``pip install 'lmrec[spark]'``) and needs a Java
runtime; both are checked when a function here is called, never at import.
"""

from lmrec.spark.als import spark_train_als
from lmrec.spark.session import check_java
from lmrec.spark.split import spark_split

__all__ = ["check_java", "spark_split", "spark_train_als"]
