"""The HTTP service: ``lmrec serve MODEL_DIR`` (needs ``pip install 'lmrec[serve]'``).

Importing this package is cheap and imports neither FastAPI nor SQLAlchemy; use
:func:`lmrec.serve.app.create_app` (or ``build_app``) to build the application.
"""

from __future__ import annotations

__all__: list[str] = []
