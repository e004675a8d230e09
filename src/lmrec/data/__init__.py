"""Data handling: reading and validating files, id maps, the Dataset, splits and sources."""

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap

__all__ = ["Dataset", "IdMap"]
