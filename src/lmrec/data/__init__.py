"""Data handling: reading and validating files, id maps, the Dataset, splits and sources."""

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap
from lmrec.data.io import (
    LoadReport,
    check_coverage,
    load_dataset,
    read_interactions,
    read_items,
    read_users,
)

__all__ = [
    "Dataset",
    "IdMap",
    "LoadReport",
    "check_coverage",
    "load_dataset",
    "read_interactions",
    "read_items",
    "read_users",
]
