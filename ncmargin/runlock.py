"""One writer per output directory: an exclusive lock on ``DIR/.ncmargin.lock``.

    with RunLock(run_dir, purpose="train"):
        ...                                  # the only process writing run_dir

The lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the lock file, so the kernel releases it when its holder
dies, however it dies: a lock left by a killed process is never a stale obstacle. The file records the
holder (pid, host, start time, purpose); a second writer gets :class:`LockHeldError` (a ValueError) naming
the holder. A record left by a holder that is gone (SIGKILL, power loss) is reported and taken over.

The file is never deleted: unlinking a flock'ed file lets two processes lock two different inodes under
the same name. Releasing empties the record instead. ``flock`` is local to a host, and on NFS it is mapped
to POSIX locks by Linux (lockd); where neither works the record's pid/host still makes the second writer
see a live holder on the same host.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["LOCK_NAME", "LockHeldError", "RunLock", "pid_alive", "read_holder"]

LOCK_NAME = ".ncmargin.lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid/host record alone
    fcntl = None


class LockHeldError(ValueError):
    """Another process holds the directory's lock."""


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie counts as gone only once reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def read_holder(directory: str | os.PathLike) -> dict | None:
    """The holder record of ``directory``'s lock file, or None when there is none (or it is unreadable)."""
    p = Path(directory) / LOCK_NAME
    try:
        text = p.read_text()
    except OSError:
        return None
    try:
        rec = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def _describe(rec: dict | None) -> str:
    if not rec:
        return "another process (no holder record)"
    return (f"pid {rec.get('pid')} on host {rec.get('host')} ({rec.get('purpose') or 'ncmargin'}, started "
            f"{rec.get('started')})")


class RunLock:
    """Exclusive lock on ``directory`` (created if missing) for the life of the ``with`` block."""

    def __init__(self, directory: str | os.PathLike, purpose: str = "",
                 log: Callable[[str], None] | None = None):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.purpose = purpose
        self.log = log if log is not None else (lambda m: print(m, file=sys.stderr, flush=True))
        self._fd: int | None = None
        self.took_over: dict | None = None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this RunLock is already held")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise LockHeldError(
                        f"{self.directory} is in use by {_describe(read_holder(self.directory))}; one writer "
                        f"per directory: wait for it to finish, or use another output directory") from None
            prev = read_holder(self.directory)
            host = socket.gethostname()
            if prev and prev.get("pid") is not None:
                same_host = prev.get("host") == host
                if fcntl is None and same_host and pid_alive(int(prev["pid"])) and prev["pid"] != os.getpid():
                    raise LockHeldError(f"{self.directory} is in use by {_describe(prev)}; wait for it to "
                                        "finish, or use another output directory")
                # the kernel lock was free: the recorded holder ended without releasing (killed)
                gone = "is gone" if same_host and not pid_alive(int(prev["pid"])) else "no longer holds it"
                self.log(f"[lock] {self.directory}: taking over a stale lock of {_describe(prev)} (that process "
                         f"{gone})")
                self.took_over = prev
            rec = {"pid": os.getpid(), "host": host, "purpose": self.purpose,
                   "started": datetime.datetime.now(datetime.timezone.utc).isoformat(  # noqa: UP017
                       timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(rec) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # an empty record: released cleanly
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
