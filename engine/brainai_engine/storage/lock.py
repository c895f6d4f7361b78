"""One writer per embedded store: an exclusive lock on a file next to the database.

Two processes writing one SQLite file each assign memory ids from their own counter and never see
the other's writes in their index, so a second opener is refused, with the holder named. The lock
is `flock(2)` on ``<database>.lock``: the kernel drops it when the holder exits, even on kill -9,
so there is never a stale lock to clean up. The file's text is only a description of the holder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import IO


class StoreLocked(RuntimeError):
    """The store is open in another process."""


class StoreLock:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> StoreLock:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read()
            handle.close()
            raise StoreLocked(self._refusal(holder)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_this_process()))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None

    def _refusal(self, holder: str) -> str:
        store = self.path.with_suffix("")
        try:
            who = json.loads(holder)
            named = f"process {who['pid']} on {who['host']} ({who['command']}, since {who['since']})"
        except (ValueError, KeyError, TypeError):
            named = "another process"
        return (
            f"the store {store} is open in {named}; one process at a time may use it. "
            "Talk to a running server with --url (or BRAIN_AI_URL), or stop that process first"
        )


def _this_process() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200],
        "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
