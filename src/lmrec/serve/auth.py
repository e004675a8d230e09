"""API keys: stored hashed, one role and an optional scope per key, compared in constant time.

Roles are ordered ``read < write < admin``: a key may do what its role and every lower
role allow. ``read`` -- recommend, similar, explain, list models; ``write`` -- send
feedback; ``admin`` -- reload and roll back models.

Object-level scope (optional, per key):

- ``users``: the user ids the key may act for (recommend for, explain to, send
  feedback about); ``tenants``: tenants whose users it may act for, where a user id
  ``acme:42`` belongs to tenant ``acme`` (the separator is the server's
  ``tenant_separator``). A key with neither acts for every user; a key with either is
  refused (403) for any other user.
- ``history``: whether the key may read a user's history, which explanations of a
  user reveal (``/v1/explain`` with ``user``). Default true; explaining an anonymous
  session (``items``) never needs it.
- ``erase``: whether the key may delete users (``DELETE /v1/users/{id}``, the right to
  erasure). Default false, for every role: a deletion cannot be undone, so it is granted
  to a key explicitly (``lmrec serve --create-key write --key-erase``), never implied by
  ``admin``. Only ``write`` and ``admin`` keys can hold it; ``users``/``tenants`` limit
  whom the key may delete.

The keys file is JSON (``.toml`` is accepted for reading)::

    {"keys": [{"id": "3f9c2a1b", "role": "write", "sha256": "<hex>", "created": "...",
               "users": ["u1", "u2"], "tenants": ["acme"], "history": false,
               "erase": false}]}

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmrec._atomic import atomic_file
from lmrec._config_files import read_config_file
from lmrec.errors import ConfigError

ROLES = ("read", "write", "admin")
_LEVEL = {role: i for i, role in enumerate(ROLES)}
KEY_PREFIX = "lmrec_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id, its role and its scope (None: every user)."""

    key_id: str
    role: str
    users: frozenset[str] | None = None
    tenants: frozenset[str] | None = None
    history: bool = True
    erase: bool = False

    def allows(self, role: str) -> bool:
        """Whether the key's role is ``role`` or higher."""
        return _LEVEL[self.role] >= _LEVEL[role]

    @property
    def scoped(self) -> bool:
        """Whether the key is limited to some users or tenants."""
        return self.users is not None or self.tenants is not None

    def may_act_for(self, user: str, tenant_separator: str) -> bool:
        """Whether the key may recommend for, explain to, or record feedback of ``user``."""
        if not self.scoped:
            return True
        if self.users is not None and user in self.users:
            return True
        if self.tenants is not None and tenant_separator in user:
            return user.split(tenant_separator, 1)[0] in self.tenants
        return False


ANONYMOUS_ADMIN = Principal("auth-disabled", "admin", erase=True)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_role(role: str) -> str:
    if role not in _LEVEL:
        raise ConfigError(f"Unknown role {role!r}. Valid roles: {', '.join(ROLES)}.")
    return role


class KeyRing:
    """The hashed keys of a keys file."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._entries = [(e["sha256"], _principal(e)) for e in entries]

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


def _principal(entry: dict[str, Any]) -> Principal:
    users, tenants = entry.get("users"), entry.get("tenants")
    return Principal(
        entry["id"],
        _check_role(entry["role"]),
        None if users is None else frozenset(users),
        None if tenants is None else frozenset(tenants),
        bool(entry.get("history", True)),
        bool(entry.get("erase", False)),
    )


def _check_scope(entry: dict[str, Any], path: Path) -> None:
    for name in ("users", "tenants"):
        value = entry.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        ):
            raise ConfigError(
                f"Keys file {path}: key {entry['id']!r} has {name!r} = {value!r}; "
                "it must be a list of non-empty strings."
            )
    if not isinstance(entry.get("history", True), bool):
        raise ConfigError(
            f"Keys file {path}: key {entry['id']!r} has 'history' = {entry['history']!r}; "
            "it must be true or false."
        )
    if not isinstance(entry.get("erase", False), bool):
        raise ConfigError(
            f"Keys file {path}: key {entry['id']!r} has 'erase' = {entry['erase']!r}; "
            "it must be true or false."
        )
    if entry.get("erase", False) and _LEVEL.get(entry["role"], 0) < _LEVEL["write"]:
        raise ConfigError(
            f"Keys file {path}: key {entry['id']!r} has role {entry['role']!r} and 'erase'; "
            "deleting users is a write: give the key role 'write' or 'admin'."
        )


def _read(path: Path) -> list[dict[str, Any]]:
    data = read_config_file(path, "Keys file")
    keys = data.get("keys", [])
    if not isinstance(keys, list) or not all(
        isinstance(k, dict) and {"id", "role", "sha256"} <= set(k) for k in keys
    ):
        raise ConfigError(
            f"Keys file {path} must hold {{'keys': [{{'id', 'role', 'sha256'}}, ...]}}."
        )
    for k in keys:
        _check_role(k["role"])
        _check_scope(k, path)
    return keys


def create_key(
    path: str | Path,
    role: str,
    *,
    users: list[str] | None = None,
    tenants: list[str] | None = None,
    history: bool = True,
    erase: bool = False,
) -> tuple[str, str]:
    """Make a new key with ``role``, append its hash to ``path`` atomically; return (id, key).

    ``users`` / ``tenants`` limit the key to those users (see the module docstring);
    ``history=False`` refuses it explanations of a user; ``erase=True`` lets it delete
    users (``DELETE /v1/users/{id}``; role write or admin). The raw key is returned once
    and never written anywhere.
    """
    _check_role(role)
    path = Path(path)
    if path.suffix == ".toml":
        raise ConfigError("--create-key writes JSON keys files; name the file *.json.")
    entries = _read(path) if path.exists() else []
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    digest = _hash(key)
    key_id = digest[:8]
    entry: dict[str, Any] = {
        "id": key_id,
        "role": role,
        "sha256": digest,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if users is not None:
        entry["users"] = list(users)
    if tenants is not None:
        entry["tenants"] = list(tenants)
    if not history:
        entry["history"] = False
    if erase:
        entry["erase"] = True
    _check_scope(entry, path)
    entries.append(entry)
    with atomic_file(path) as fh:
        json.dump({"keys": entries}, fh, indent=2)
    path.chmod(0o600)
    return key_id, key
