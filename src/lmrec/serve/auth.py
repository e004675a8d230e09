"""API keys: stored hashed, one role per key, compared in constant time.

Roles are ordered ``read < write < admin``: a key may do what its role and every lower
role allow. ``read`` -- recommend, similar, explain, list models; ``write`` -- send
feedback; ``admin`` -- reload and roll back models.

The keys file is JSON (``.toml`` is accepted for reading)::

    {"keys": [{"id": "3f9c2a1b", "role": "write", "sha256": "<hex>", "created": "..."}]}

Keys are 256-bit random tokens, so a plain SHA-256 is a safe hash for them (slow hashes
protect low-entropy passwords, and would cost milliseconds per request). The raw key
is printed once by ``lmrec serve --create-key ROLE`` and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lmrec._atomic import atomic_file
from lmrec.errors import ConfigError

ROLES = ("read", "write", "admin")
_LEVEL = {role: i for i, role in enumerate(ROLES)}
KEY_PREFIX = "lmrec_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id and its role."""

    key_id: str
    role: str

    def allows(self, role: str) -> bool:
        return _LEVEL[self.role] >= _LEVEL[role]


ANONYMOUS_ADMIN = Principal("auth-disabled", "admin")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_role(role: str) -> str:
    if role not in _LEVEL:
        raise ConfigError(f"Unknown role {role!r}. Valid roles: {', '.join(ROLES)}.")
    return role


class KeyRing:
    """The hashed keys of a keys file."""

    def __init__(self, entries: list[dict[str, str]]) -> None:
        self._entries = [(e["sha256"], Principal(e["id"], _check_role(e["role"]))) for e in entries]

    @classmethod
    def load(cls, path: str | Path) -> KeyRing:
        """Read a keys file; a missing file is an empty ring (every request gets 401)."""
        path = Path(path)
        if not path.exists():
            return cls([])
        entries = _read(path)
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, key: str | None) -> Principal | None:
        """The principal owning ``key``, or None. Every stored hash is compared (no early exit)."""
        if not key:
            return None
        digest = _hash(key)
        found: Principal | None = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


def _read(path: Path) -> list[dict[str, str]]:
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as e:
        raise ConfigError(
            f"Keys file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {e}"
        ) from e
    keys = data.get("keys", []) if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(
        isinstance(k, dict) and {"id", "role", "sha256"} <= set(k) for k in keys
    ):
        raise ConfigError(
            f"Keys file {path} must hold {{'keys': [{{'id', 'role', 'sha256'}}, ...]}}."
        )
    for k in keys:
        _check_role(k["role"])
    return keys


def create_key(path: str | Path, role: str) -> tuple[str, str]:
    """Make a new key with ``role``, append its hash to ``path`` atomically; return (id, key).

    The raw key is returned once and never written anywhere.
    """
    _check_role(role)
    path = Path(path)
    if path.suffix == ".toml":
        raise ConfigError("--create-key writes JSON keys files; name the file *.json.")
    entries = _read(path) if path.exists() else []
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    digest = _hash(key)
    key_id = digest[:8]
    entries.append(
        {
            "id": key_id,
            "role": role,
            "sha256": digest,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    with atomic_file(path) as fh:
        json.dump({"keys": entries}, fh, indent=2)
    path.chmod(0o600)
    return key_id, key
