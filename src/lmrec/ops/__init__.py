"""Numerical building blocks with no knowledge of data sets or models (the bottom layer).

- :mod:`lmrec.ops.topk` -- top-k selection over score blocks, exclusion masks, fused
  dot-product top-k.
- :mod:`lmrec.ops.sparse` -- small sparse-matrix constructors (``empty_csr``).
"""
