"""Data handling: reading and validating files, id maps, the Dataset, splits and sources."""

from lmrec.data.dataset import Dataset, datasets_with_shared_ids
from lmrec.data.idmap import IdMap
from lmrec.data.io import (
    LoadReport,
    check_coverage,
    load_dataset,
    read_interactions,
    read_items,
    read_users,
)
from lmrec.data.split import (
    PROTOCOLS,
    Split,
    cold_start_items_split,
    cold_start_users_split,
    global_temporal_split,
    leave_one_out_split,
    random_split,
    split_dataset,
    user_temporal_split,
)

__all__ = [
    "PROTOCOLS",
    "Dataset",
    "IdMap",
    "LoadReport",
    "Split",
    "check_coverage",
    "cold_start_items_split",
    "cold_start_users_split",
    "datasets_with_shared_ids",
    "global_temporal_split",
    "leave_one_out_split",
    "load_dataset",
    "random_split",
    "read_interactions",
    "read_items",
    "read_users",
    "split_dataset",
    "user_temporal_split",
]
