"""Which processes on a database are still running, so that one starting up answers the
questions a dead process had acknowledged, and never those a live one is answering.

On SQLite each process that takes questions holds an exclusive `flock` on a file of its own
beside the database (`<db>.processes/<token>`). The kernel drops the lock when the process
ends, however it ends (SIGKILL included), so a lock that can be taken belongs to a process
that is gone. SQLite in WAL mode needs every process on one host, which is also what `flock`
needs.

On PostgreSQL the replicas share no disk, so the same test is made in the database: each
process holds a session-level advisory lock keyed by its token on a connection of its own.
The server drops it when that session ends (the process exited or was killed, or its
connection was lost), so a lock another session can take belongs to a process that is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bot.config import POSTGRES_SCHEMES, prepare_threshold_of

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

#: A token as `ProcessMark` makes them: 16 hex digits, the 64 bits of its advisory lock key.
_TOKEN = re.compile(r"[0-9a-f]{16}")


def lock_key(token: str) -> int:
    """The advisory lock key of a process token: its 64 bits as PostgreSQL's signed bigint."""
    value = int(token, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass
class ProcessMark:
    """This process's mark beside the database; `folder` None: an in-memory database, which
    no other process can share."""

    folder: Path | None
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    #: The PostgreSQL database (a URL) whose advisory locks mark processes, instead of files.
    database_url: str | None = field(default=None, repr=False)
    _held: IO[bytes] | None = field(default=None, init=False, repr=False)
    _tried: bool = field(default=False, init=False, repr=False)
    _session: psycopg.Connection[Any] | None = field(default=None, init=False, repr=False)

    @classmethod
    def beside(cls, database: Path | str | None) -> ProcessMark:
        """The mark for the database at `database` (a storage's `location`): a SQLite file,
        a PostgreSQL URL, or None for an in-memory database."""
        if database is None:
            return cls(None)
        if isinstance(database, str) and database.strip().lower().startswith(POSTGRES_SCHEMES):
            return cls(None, database_url=database.strip())
        database = Path(database)
        return cls(database.with_name(database.name + ".processes"))

    def hold(self) -> str:
        """Take this process's lock (once; before it writes anything taken by its token) and
        return the token. Without a lock file the token is still unique, and other processes
        take it for one that ended, the safe side for a question nobody else answers."""
        if self.database_url is not None:
            self._hold_session()
            return self.token
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

    def _hold_session(self) -> None:
        """Hold the advisory lock of this process's token on a session of its own; taken again
        on a new session when the last one was lost (the server restarted), since the server
        dropped the lock with it. A failure is said once and retried on the next call."""
        import psycopg

        session = self._session
        if session is not None and not session.closed and not session.broken:
            return
        if session is not None:
            log.warning("the session marking this process as running was lost; taking it again")
            session.close()
            self._session = None
        try:
            session = psycopg.connect(
                prepare_threshold_of(self.database_url or "")[0],
                autocommit=True,
                connect_timeout=10,
                application_name="policybot process mark",
            )
            taken = session.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(self.token)])
            row = taken.fetchone()
        except psycopg.Error as error:
            if not self._tried:
                log.warning(
                    "could not mark this process as running: %s", _reason(error, self.database_url)
                )
            self._tried = True
            return
        if not row or not row[0]:  # another live process drew the same 64 bits
            session.close()
            self.token = secrets.token_hex(8)
            self._hold_session()
            return
        self._session = session

    def _running_on_postgres(self, token: str) -> bool:
        import psycopg

        if not _TOKEN.fullmatch(token):
            return False  # no process marks itself so: none holds it
        self._hold_session()
        session = self._session
        if session is None:
            log.warning("could not tell whether process %s is running: no session", token)
            return True  # unsure: leave its questions to it rather than answer them twice
        key = lock_key(token)
        try:
            row = session.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
            if row and row[0]:
                session.execute("SELECT pg_advisory_unlock(%s)", [key])
                return False
        except psycopg.Error as error:
            log.warning(
                "could not tell whether process %s is running: %s",
                token,
                _reason(error, self.database_url),
            )
        return True

    def running(self, token: str) -> bool:
        """Whether the process with `token` is still running (this one is)."""
        if token == self.token:
            return True
        if self.database_url is not None:
            return self._running_on_postgres(token)
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
        if self._session is not None:
            session, self._session = self._session, None
            self._tried = False
            # Unlocked first: closing alone ends the session, but the server drops its locks
            # only when that backend exits, a moment later, and until then others see this
            # process running. A broken session's lock is gone with it already.
            import psycopg

            with contextlib.suppress(psycopg.Error):
                if not session.closed and not session.broken:
                    session.execute("SELECT pg_advisory_unlock(%s)", [lock_key(self.token)])
            session.close()
        if self._held is None:
            return
        held, self._held = self._held, None
        self._tried = False
        if self.folder is not None:
            (self.folder / self.token).unlink(missing_ok=True)
        held.close()


def _reason(error: Exception, url: str | None) -> str:
    """The driver's error as it may be logged: its first line, the URL's secrets scrubbed
    (libpq's messages name the server, not the password; scrubbed all the same)."""
    from bot.redaction import Redactor, database_url_secrets

    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return Redactor(database_url_secrets(url or "")).scrub(first)
