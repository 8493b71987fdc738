"""Questions the log could not take (disk full, read-only database), kept until it can.

The asker still gets the answer; the question is written to a JSON Lines file beside the
database (`<db>.unlogged.jsonl`), or held in memory when even that fails, and each one is
reported in the log at ERROR. The next question that is logged successfully first puts the
kept ones into the log, so the policy team loses none of them.

On PostgreSQL the replicas share no disk: each keeps its own file on its own disk, where a
SQLite database would be (`POLICYBOT_DB`'s path, `./policybot.db` by default, plus
`.unlogged.jsonl`), and drains it itself. On a platform whose disk does not survive a restart
the file goes with it, so a question kept there is lost if the replica restarts before the
database takes writes again (it is still reported at ERROR when kept).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: One kept question: the log row, where to reply, the asker's name and platform id (the
#: pseudonym is made when it is logged: the key may live in the database that refused).
Entry = dict[str, Any]


@dataclass
class UnloggedQuestions:
    path: Path | None  # None: an in-memory database, so memory only
    held: list[Entry] = field(default_factory=list)

    @classmethod
    def of(cls, location: Path | str | None, local_database: str) -> UnloggedQuestions:
        """The spool for the database at `location` (a storage's `location`): beside a SQLite
        file, in memory for an in-memory database, and for PostgreSQL (a URL) a local file
        beside `local_database` (the SQLite path this replica would have used)."""
        if isinstance(location, str):
            return cls.beside(Path(local_database))
        return cls.beside(location)

    @classmethod
    def beside(cls, database: Path | None) -> UnloggedQuestions:
        if database is None:
            return cls(None)
        return cls(database.with_name(database.name + ".unlogged.jsonl"))

    def keep(self, entry: Entry, error: Exception) -> None:
        """Keep a question the log refused, and say so."""
        if self.path is not None:
            try:
                with self.path.open("a", encoding="utf-8") as spool:
                    spool.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    spool.flush()
                    os.fsync(spool.fileno())
            except OSError as spool_error:
                log.error("could not keep the question in %s either: %s", self.path, spool_error)
            else:
                log.error(
                    "question NOT logged (%s); kept in %s and logged once the database takes "
                    "writes again (%d waiting)",
                    error,
                    self.path,
                    self.pending(),
                )
                return
        self.held.append(entry)
        log.error(
            "question NOT logged (%s); held in memory until the database takes writes again "
            "(%d waiting; lost if the bot stops first)",
            error,
            self.pending(),
        )

    def has_pending(self) -> bool:
        """Whether any question waits to be logged: asked before every question is logged, so
        it looks at the file's size instead of reading it."""
        if self.held:
            return True
        if self.path is None:
            return False
        try:
            return self.path.stat().st_size > 0
        except OSError:  # no file: nothing kept
            return False

    def pending(self) -> int:
        """How many questions wait to be logged."""
        return len(self.held) + self._file_count()

    def _file_count(self) -> int:
        if self.path is None or not self.path.exists():
            return 0
        try:
            with self.path.open(encoding="utf-8") as spool:
                return sum(1 for line in spool if line.strip())
        except OSError:
            return 0

    def replay(self, write: Callable[[list[Entry]], None]) -> int:
        """Hand every kept question to `write`, which logs them all in one transaction, and
        forget them once it returns. If `write` raises they stay kept for the next try.

        The file is claimed by renaming it, so two processes never log the same questions; a
        crash after `write` committed but before the claimed file is removed would log them
        again on the next start (a duplicate, never a loss).
        """
        claimed = self._claim()
        from_file = _read(claimed) if claimed else []
        entries = [*self.held, *from_file]
        if not entries:
            return 0
        try:
            write(entries)
        except Exception:
            if claimed:
                self._give_back(claimed, from_file)
            raise
        self.held = []
        if claimed:
            claimed.unlink(missing_ok=True)
        log.warning(
            "%d question(s) kept while the database refused writes are now logged", len(entries)
        )
        return len(entries)

    def _claim(self) -> Path | None:
        if self.path is None or not self.path.exists():
            return None
        claimed = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        try:
            os.replace(self.path, claimed)
        except OSError:
            return None  # another process claimed it first
        return claimed

    def _give_back(self, claimed: Path, entries: list[Entry]) -> None:
        assert self.path is not None
        try:
            with self.path.open("a", encoding="utf-8") as spool:
                spool.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        except OSError:
            self.held.extend(entries)  # the claimed file stays too, so nothing is lost
            return
        claimed.unlink(missing_ok=True)


def _read(path: Path) -> list[Entry]:
    entries = []
    with path.open(encoding="utf-8") as spool:
        for line in spool:
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except ValueError:  # a line cut short when the disk filled: say so, keep going
                    log.error("an unreadable line in %s was skipped: %r", path, line[:200])
    return entries
