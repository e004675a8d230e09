"""Spark engine: fit models on a Spark cluster and get ordinary lmrec models back.

``pyspark`` is an optional extra (``pip install 'lmrec[spark]'``) and needs a Java
runtime; both are checked when a function here is called, never at import.
"""

from typing import Any

from lmrec.spark.als import spark_train_als
from lmrec.spark.session import check_java
from lmrec.spark.split import spark_split

__all__ = ["check_java", "spark_fit", "spark_split", "spark_train_als"]


def spark_fit(
    model_class: type, data_path: str, *, params: dict[str, Any] | None = None, **read: Any
) -> Any:
    """Fit a model class that declares
    :class:`~lmrec.models.capabilities.SparkEngineModel` with Spark; ``read`` holds the
    session and column arguments of the estimator's reader (``master``, ``user_col``,
    ``item_col``, ``weight_col``, ``sep``). Returns an ordinary fitted lmrec model."""
    from lmrec.errors import ConfigError
    from lmrec.models.capabilities import SparkEngineModel, supports

    if not supports(model_class, SparkEngineModel):
        raise ConfigError(f"{model_class.__name__} cannot be fitted with Spark.")
    estimators = {"als": spark_train_als}
    # A class attribute of SparkEngineModel, which supports() found among the bases; mypy
    # cannot narrow a class object to a protocol's class.
    fit = estimators[model_class.spark_estimator]  # type: ignore[attr-defined]
    return fit(data_path, params=params, **read)
