"""Which processes on a database are still running, so that one starting up answers the
questions a dead process had acknowledged, and never those a live one is answering.

Each process that takes questions holds an exclusive `flock` on a file of its own beside the
database (`<db>.processes/<token>`). The kernel drops the lock when the process ends, however
it ends (SIGKILL included), so a lock that can be taken belongs to a process that is gone.
SQLite in WAL mode needs every process on one host, which is also what `flock` needs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


@dataclass
class ProcessMark:
    """This process's mark beside the database; `folder` None: an in-memory database, which
    no other process can share."""

    folder: Path | None
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    _held: IO[bytes] | None = field(default=None, init=False, repr=False)
    _tried: bool = field(default=False, init=False, repr=False)

    @classmethod
    def beside(cls, database: Path | None) -> ProcessMark:
        if database is None:
            return cls(None)
        return cls(database.with_name(database.name + ".processes"))

    def hold(self) -> str:
        """Take this process's lock (once; before it writes anything taken by its token) and
        return the token. Without a lock file the token is still unique, and other processes
        take it for one that ended, the safe side for a question nobody else answers."""
        if not self._tried and self.folder is not None:
            self._tried = True  # once: a folder that cannot be written is said so once
            try:
                self.folder.mkdir(exist_ok=True)
                held = (self.folder / self.token).open("wb")
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._held = held
            except OSError as error:
                log.warning("could not mark this process as running: %s", error)
        return self.token

    def running(self, token: str) -> bool:
        """Whether the process with `token` is still running (this one is)."""
        if token == self.token:
            return True
        if self.folder is None or not token or os.sep in token:
            return False
        path = self.folder / token
        try:
            with path.open("rb") as other:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)  # it ended: its file is clutter now
        except FileNotFoundError:
            return False
        except BlockingIOError:
            return True
        except OSError as error:
            log.warning("could not tell whether process %s is running: %s", token, error)
            return True  # unsure: leave its questions to it rather than answer them twice
        return False

    def release(self) -> None:
        if self._held is None:
            return
        held, self._held = self._held, None
        self._tried = False
        if self.folder is not None:
            (self.folder / self.token).unlink(missing_ok=True)
        held.close()
