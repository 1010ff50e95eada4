"""Staging directories: where a run writes before its output replaces ``--out``, and how a later run tells that
one was left behind by a run that is gone.

A run keeps every file it writes -- label rows, the manifest, nothing else anywhere -- in one staging directory
beside the target, ``.<out>.predport-<pid>-<token>``, created with the permissions a plain ``mkdir`` gets (the
user's umask) and locked (``flock``) for as long as the run lives; its worker processes inherit the lock.
The commit swaps the staging directory and the target in one atomic ``renameat2(RENAME_EXCHANGE)``, so
``--out`` holds either the old content or the complete new one at every instant, whatever kills the run; the
old content, now at the staging name, is removed after. Where the swap is not available (not Linux, or a file
system without it) the old target is first renamed to ``<staging>-old``; a run killed between the two renames
leaves no ``--out`` until the next run into it restores it (:func:`sweep`).

A later run into the same ``--out`` removes the staging directories whose lock is free and whose process has
ended, and says so. Directories of a process that is still running are never touched.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predport.core.problems import PredportError

try:
    import fcntl
except ImportError:  # (not on Windows: no locks; stale directories are then recognised by their process only)
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Any:
    import ctypes  # (only when a commit replaces an existing output)

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    except OSError:
        return None


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False when the platform or the file system cannot (nothing happened then)."""
    import ctypes

    call = _renameat2()
    if call is None:
        return False
    r = call(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if r == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(target.name)}\.predport-(\d+)-[0-9a-f]+(-old)?")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _locked(path: Path) -> bool:
    """Whether a live process holds the directory's lock."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # (and with it the lock, if we took it)
    return False


@dataclass(frozen=True)
class Removed:
    """A stale staging directory a sweep removed (or, ``restored``, renamed back to the target)."""

    path: Path
    pid: int
    restored: bool = False


def sweep(target: Path) -> list[Removed]:
    """Remove the staging directories of ``target`` left by runs whose process is gone; restore ``target``
    from the directory an interrupted commit (without the atomic swap) moved it to."""
    parent = target.parent
    if not parent.is_dir():
        return []
    pattern = _pattern(target)
    stale: list[tuple[Path, int]] = []
    for p in parent.iterdir():
        m = pattern.fullmatch(p.name)
        if m and not _alive(int(m[1])) and not _locked(p):
            stale.append((p, int(m[1])))
    out: list[Removed] = []
    if not target.exists() and not target.is_symlink():
        # an interrupted fallback commit: its new content is complete (it has the manifest) -> finish the commit;
        # else the old content goes back
        olds = {p.name[:-4]: (p, pid) for p, pid in stale if p.name.endswith("-old")}
        for p, pid in stale:
            if p.name in olds and (p / MANIFEST).is_file():
                os.rename(p, target)
                out.append(Removed(p, pid, restored=True))
                break
        else:
            if olds:
                p, pid = next(iter(olds.values()))
                os.rename(p, target)
                out.append(Removed(p, pid, restored=True))
    restored = {r.path for r in out}
    for p, pid in stale:
        if p not in restored and p.exists():
            shutil.rmtree(p, ignore_errors=True)
            out.append(Removed(p, pid))
    return out


class Staging:
    """The run's staging directory for ``target`` (see the module's documentation). Created by the
    constructor (after sweeping stale ones: :attr:`removed`); :meth:`commit` puts it in place of the target,
    :meth:`discard` removes it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.removed = sweep(target)
        while True:
            self.path = target.parent / f".{target.name}.predport-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                os.mkdir(self.path)  # (mode 0777 less the umask, as any mkdir; mkdtemp would give 0700)
                break
            except FileExistsError:
                continue
        self._fd = os.open(self.path, os.O_RDONLY)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until the run ends, in any way

    def commit(self) -> Path:
        """Replace the target with the staging directory, atomically where the platform can."""
        from predport.core import faults

        faults.point("commit")
        if not self.target.exists():
            os.rename(self.path, self.target)
        elif exchange(self.path, self.target):
            faults.point("swapped")
            shutil.rmtree(self.path, ignore_errors=True)  # (the old content, now here)
        else:
            old = self.path.with_name(self.path.name + "-old")
            os.rename(self.target, old)
            faults.point("moved-old")
            os.rename(self.path, self.target)
            shutil.rmtree(old, ignore_errors=True)
        self._release()
        return self.target

    def discard(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


@contextlib.contextmanager
def disk_errors(what: str) -> Iterator[None]:
    """An OSError while writing the output (a full disk, a read-only file system, no permission) is the run's
    end, said as such: a PredportError naming what could not be written. The caller's abort then removes
    the staging directory, as after any failed run."""
    try:
        yield
    except OSError as e:
        raise disk_error(e, what) from e


def disk_error(e: OSError, what: str) -> PredportError:
    """:func:`disk_errors`' error, for a caller on a hot path that catches the OSError itself (and so formats
    ``what`` only when it fails)."""
    where = f" ({e.filename})" if e.filename and str(e.filename) not in what else ""
    return PredportError(f"cannot write {what}: {e.strerror or e}{where}")
