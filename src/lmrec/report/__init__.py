"""Self-contained HTML evaluation reports: ``lmrec evaluate|compare ... --report report.html``.

- :mod:`lmrec.report.inputs` -- what a report is built from (lists, truth, context);
- :mod:`lmrec.report.page` -- the sections and the page;
- :mod:`lmrec.report.svg` -- the dependency-free inline SVG charts.

The page opens offline: CSS and charts are inline, and it loads no script, font or image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmrec._atomic import atomic_file
from lmrec.report.inputs import (
    ReportInputs,
    fingerprint_frames,
    inputs_from_models,
    inputs_from_recommendations,
)
from lmrec.report.page import SECTIONS, check_groups, render_report

__all__ = [
    "SECTIONS",
    "ReportInputs",
    "check_groups",
    "fingerprint_frames",
    "inputs_from_models",
    "inputs_from_recommendations",
    "render_report",
    "write_report",
]


def write_report(path: str | Path, inputs: ReportInputs, **options: Any) -> Path:
    """Render the report (options as :func:`render_report`) and write it atomically to ``path``."""
    html = render_report(inputs, **options)
    target = Path(path)
    with atomic_file(target, "w", encoding="utf-8") as fh:
        fh.write(html)
    return target
