"""Language-model text features: item/user text, a cached sentence encoder, quantization.

Importing this package is cheap: torch and sentence-transformers are imported only
when a text has to be encoded (``pip install 'lmrec[lm]'``).

>>> from lmrec.text import item_texts
>>> item_texts(__import__("pandas").DataFrame({"title": ["Heat"], "genres": ["Crime"]}))
['Heat. Genres: Crime']

Stability: caller. .. versionadded:: 0.1.0
"""

from lmrec.text.encoder import (
    DEFAULT_MODEL,
    CacheStats,
    TextEncoder,
    default_model_path,
    resolve_model,
)
from lmrec.text.quantize import PRECISIONS, dequantize, neighbour_overlap, quantize, stored_nbytes
from lmrec.text.templates import (
    MOVIELENS_ITEM_TEMPLATE,
    MOVIELENS_USER_TEMPLATE,
    item_texts,
    render,
    user_texts,
)

__all__ = [
    "DEFAULT_MODEL",
    "MOVIELENS_ITEM_TEMPLATE",
    "MOVIELENS_USER_TEMPLATE",
    "PRECISIONS",
    "CacheStats",
    "TextEncoder",
    "default_model_path",
    "dequantize",
    "item_texts",
    "neighbour_overlap",
    "quantize",
    "render",
    "resolve_model",
    "stored_nbytes",
    "user_texts",
]
