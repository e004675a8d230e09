"""Top-k retrieval over item vectors: exact blocked search and approximate (faiss) indexes.

``faiss`` is imported only when a :class:`FaissIndex` is built or loaded (extra ``ann``).
"""

from lmrec.retrieval.index import ExactIndex, FaissIndex, item_user_vectors

__all__ = ["ExactIndex", "FaissIndex", "item_user_vectors"]
