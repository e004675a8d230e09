"""Atomic, durable writes: build in a temporary sibling, fsync, then swap into place.

A crash (or ``kill -9``) at any instant leaves either the previous or the new version at
the target path, never a partial one:

- files: written to a temporary sibling, fsynced, renamed over the target, and the
  parent directory fsynced (so the rename itself survives a power cut);
- directories: built in a temporary sibling whose files and the directory itself are
  fsynced, then *exchanged* with the existing directory in one atomic step
  (``renameat2(RENAME_EXCHANGE)``, Linux 3.15+); where the file system cannot exchange,
  the old directory is first renamed aside and :func:`recover_dir` restores it if the
  process dies before the new one is in place.

Temporaries carry the writer's process id; the next write to the same path removes
those left by processes that no longer run. A write that fails for lack of space (or
any other OS error) raises :class:`~lmrec.errors.StorageError` and leaves the previous
version in place.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lmrec.errors import StorageError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (directories: so renames inside them are durable)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (same file system); False where the OS cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temporaries(path: Path) -> Iterator[tuple[Path, int, str]]:
    """Siblings ``.{name}.{pid}.*.tmp`` and ``.{name}.old-{pid}`` of ``path``."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)\..*\.tmp|old-(\d+))$")
    if not path.parent.is_dir():
        return
    for entry in path.parent.iterdir():
        m = pattern.match(entry.name)
        if m:
            pid = int(m.group(1) or m.group(2))
            yield entry, pid, "tmp" if m.group(1) else "old"


def recover_dir(path: str | Path) -> None:
    """Restore ``path`` from the aside copy of an interrupted replacement, if any.

    Only needed where directories cannot be exchanged atomically: a writer that died
    between moving the old version aside and moving the new one in left no directory at
    ``path`` but a complete ``.{name}.old-{pid}``; it is moved back.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        return
    for entry, pid, kind in _temporaries(path):
        if kind == "old" and not _alive(pid):
            os.replace(entry, path)
            fsync_path(path.parent)
            return


def clean_temporaries(path: str | Path) -> int:
    """Remove temporaries of ``path`` left by writers that no longer run; returns how many."""
    path = Path(path)
    recover_dir(path)
    removed = 0
    for entry, pid, _ in _temporaries(path):
        if not _alive(pid):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed


def _storage_error(path: Path, e: OSError) -> StorageError:
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file is larger than this process may write",
    }
    reason = reasons.get(e.errno or 0, e.strerror or str(e))
    return StorageError(
        f"Could not write {path}: {reason}. Nothing was replaced: the previous version "
        "(if any) is still in place. Free space or choose another location and try again."
    )


@contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    A crash or exception leaves any previous ``path`` untouched and no partial
    directory at ``path``. An existing directory is replaced only when ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_temporaries(path)
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        )
    except OSError as e:
        raise _storage_error(path, e) from e
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.exists() and not path.is_symlink() and _exchange(tmp, path):
            fsync_path(path.parent)
            shutil.rmtree(tmp, ignore_errors=True)  # now the previous version
        elif path.exists() or path.is_symlink():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            fsync_path(path.parent)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            os.replace(tmp, path)
            fsync_path(path.parent)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_dir(path)
        raise _storage_error(path, e) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the block succeeds (fsynced)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        os.close(fd)
    except OSError as e:
        raise _storage_error(path, e) from e
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _storage_error(path, e) from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
