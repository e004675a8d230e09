"""lmrec: recommender systems that join collaborative filtering and language models.

Importing :mod:`lmrec` is cheap: it loads no torch, no model and no data. The
public entry points live in the sub-packages:

- :mod:`lmrec.data` -- reading, validating and splitting interaction logs;
- :mod:`lmrec.models` -- recommenders behind one protocol, and their registry;
- :mod:`lmrec.eval` -- metrics and the strict evaluation protocol;
- :mod:`lmrec.cli` -- the ``lmrec`` command line.
"""

from lmrec._version import __version__

__all__ = ["__version__"]
