"""Spark engine: fit models on a Spark cluster and get ordinary lmrec models back.

``pyspark`` is an optional extra (``pip install 'lmrec[spark]'``) and needs a Java
runtime; both are checked when a function here is called, never at import.
"""

from lmrec.spark.als import check_java, spark_train_als

__all__ = ["check_java", "spark_train_als"]
