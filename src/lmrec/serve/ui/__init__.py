"""The /ui page: static HTML, CSS and JavaScript served by :mod:`lmrec.serve.routes.ui`."""
