"""Read a settings file a person wrote: TOML (``.toml``) or JSON (anything else).

Search spaces (``lmrec tune --space``), model parameters (``lmrec train --config``),
serve settings and API key files are all such files; they share one reader, so they
accept the same formats and fail with the same kind of message.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from lmrec.errors import ConfigError

__all__ = ["read_config_file"]


def read_config_file(path: str | Path, what: str) -> dict[str, Any]:
    """The table in ``path`` (TOML when it ends in ``.toml``, else JSON).

    ``what`` names the file in messages ("Search space file", "Keys file"). Raises
    ConfigError when the file cannot be read, does not parse, or does not hold a table.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "space.toml")
    >>> _ = open(p, "w").write('l2 = ["float_log", 10, 5000]')
    >>> read_config_file(p, "Search space file")
    {'l2': ['float_log', 10, 5000]}
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read {what} {path}: {e}") from e
    fmt = "TOML" if path.suffix.lower() == ".toml" else "JSON"
    try:
        data = tomllib.loads(text) if fmt == "TOML" else json.loads(text)
    except ValueError as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(f"{what} {path} is not valid {fmt}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a table; got {type(data).__name__}.")
    return data
