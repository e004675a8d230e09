"""Pseudonymous ids: keyed HMAC-SHA256 of user (and item) ids.

``pseudonym(id) = HMAC-SHA256(key, str(id))``, hex, first 32 characters (128 bits: the
chance of two ids colliding among a billion is below 1e-20). Without the key nobody can
compute a pseudonym from an id, so -- unlike a plain hash -- guessing ids and hashing
them does not reverse the pseudonyms. The same key gives the same pseudonym everywhere,
so logs from several sources still join, and a model trained on pseudonymised data
serves pseudonymised ids.

The key lives in its own file, outside the data and with owner-only permissions; the
re-identification map (pseudonym -> original id) is written only when asked for and
stays with the data owner. Pseudonymised data is still personal data under the GDPR:
histories themselves can re-identify people (Narayanan & Shmatikov 2008).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable
from hashlib import sha256
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.errors import ConfigError

__all__ = ["KEY_BYTES", "anonymize_frame", "new_key", "pseudonyms", "read_key"]

#: Length of a generated key, and the shortest key accepted.
KEY_BYTES = 32
#: Hex characters kept of each HMAC (128 bits).
PSEUDONYM_CHARS = 32


def new_key(path: str | Path) -> bytes:
    """Write a fresh random key (32 bytes, hex) to ``path`` with mode 0600; refuses to
    overwrite an existing key (that would orphan every pseudonym made with it)."""
    path = Path(path)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ConfigError(
            f"{path} exists; a key is never overwritten (its pseudonyms would become "
            "unlinkable). Use it with --key-file, or choose another path for a new key."
        ) from e
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def read_key(path: str | Path) -> bytes:
    """The key in ``path`` (hex, as :func:`new_key` writes it); at least 32 bytes."""
    path = Path(path)
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError as e:
        raise ConfigError(f"{path} does not hold a hex key (make one with --new-key).") from e
    if len(key) < KEY_BYTES:
        raise ConfigError(f"{path} holds a {len(key)}-byte key; at least {KEY_BYTES} are needed.")
    return key


def pseudonyms(ids: Iterable[object], key: bytes) -> np.ndarray:
    """Pseudonyms (object array of 32-char hex strings) of ``ids``, each as ``str(id)``.

    >>> pseudonyms(["42"], bytes(32))[0] == pseudonyms([42], bytes(32))[0]
    True
    """
    uniq, inverse = np.unique(np.asarray([str(i) for i in ids], dtype=object), return_inverse=True)
    out = np.array(
        [hmac.new(key, u.encode(), sha256).hexdigest()[:PSEUDONYM_CHARS] for u in uniq],
        dtype=object,
    )
    return out[inverse] if len(uniq) else np.empty(0, dtype=object)


def anonymize_frame(
    frame: pd.DataFrame, key: bytes, columns: Iterable[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with ``columns`` replaced by pseudonyms, and the re-identification map
    (columns ``column, pseudonym, original``, one row per distinct id)."""
    out = frame.copy()
    maps = []
    for col in columns:
        if col not in frame.columns:
            raise ConfigError(f"No column {col!r} to pseudonymise; columns: {list(frame.columns)}.")
        original = frame[col].astype(str).to_numpy(dtype=object)
        pseud = pseudonyms(original, key)
        out[col] = pseud
        pairs = pd.DataFrame({"column": col, "pseudonym": pseud, "original": original})
        maps.append(pairs.drop_duplicates("original"))
    return out, pd.concat(maps, ignore_index=True)
