"""Questions a platform delivered, kept on disk before the delivery is acknowledged, without
waiting for the database.

An acknowledgement must not wait for a write lock another process holds (`policybot policy
load`, a backup, a second server): Slack retries after 3 seconds. So a delivery carrying a
question is appended to a spool file beside the database and fsynced, then acknowledged; the
core moves spooled deliveries into the database (`received_questions`, de-duplicated by their
key) from its worker and deletes the file once all of it is there. Deliveries arriving while
one fsync runs share the next one (group commit): a burst costs a few fsyncs, not one each.

Each process writes files of its own (`<db>.received/<token>.<n>.jsonl`, the token of its
`ProcessMark`); on start, a process moves what a stopped process left in its files into the
database first, and those questions are answered as `received_questions` left over are.
Moving a file twice is harmless: the database drops a key it already has.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: One spooled delivery: platform, key, kind, user_id, conversation, text, conversation_key
#: (the conversation it continues, as the platform names it), received_at (ISO 8601),
#: taken_by (the token of the process that acknowledged it).
Record = dict[str, str]


class ReceivedSpool:
    """This process's spool files; `folder` None: an in-memory database, nothing to keep."""

    def __init__(self, folder: Path | None, token: str) -> None:
        self.folder = folder
        self.token = token
        self._numbers = itertools.count(1)
        self._waiting: list[tuple[str, asyncio.Future[Path | None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        #: spool file -> how many of its records are not yet in the database
        self._undrained: dict[Path, int] = {}

    @classmethod
    def beside(cls, database: Path | None, token: str) -> ReceivedSpool:
        if database is None:
            return cls(None, token)
        return cls(database.with_name(database.name + ".received"), token)

    async def keep(self, record: Record) -> Path | None:
        """Once `record` is on disk (fsynced): the file it is in (None without a folder).
        OSError when it cannot be written."""
        if self.folder is None:
            return None
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        kept: asyncio.Future[Path | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((line, kept))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await kept

    async def _flush(self) -> None:
        assert self.folder is not None
        while self._waiting:
            batch, self._waiting = self._waiting, []
            path = self.folder / f"{self.token}.{next(self._numbers):08d}.jsonl"
            try:
                await asyncio.to_thread(_write_durably, path, [line for line, _ in batch])
            except OSError as error:
                for _, kept in batch:
                    if not kept.done():
                        kept.set_exception(error)
                continue
            self._undrained[path] = len(batch)
            for _, kept in batch:
                if not kept.done():
                    kept.set_result(path)

    def drained(self, path: Path | None) -> Path | None:
        """One record of `path` is in the database: `path` once that was its last, to
        `delete` (off the event loop: a busy disk can take a while to unlink)."""
        if path is None or path not in self._undrained:
            return None
        self._undrained[path] -= 1
        if self._undrained[path] > 0:
            return None
        del self._undrained[path]
        return path

    @staticmethod
    def delete(paths: list[Path]) -> None:
        """Remove spool files whose every record is in the database."""
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:  # moved again on the next start: the database drops it
                log.warning("could not delete the drained spool file %s: %s", path.name, error)

    def left_over(self, running: Callable[[str], bool]) -> list[tuple[Path, list[Record]]]:
        """The files of processes no longer running, oldest first, with their records (a line
        cut short by a crash was never acknowledged, and is skipped)."""
        if self.folder is None or not self.folder.is_dir():
            return []
        found: list[tuple[Path, list[Record]]] = []
        verdicts: dict[str, bool] = {}
        for path in sorted(self.folder.glob("*.jsonl")):
            token = path.name.partition(".")[0]
            if token == self.token:
                continue
            if token not in verdicts:
                verdicts[token] = running(token)
            if verdicts[token]:
                continue
            found.append((path, _read_records(path)))
        return found


def _write_durably(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    # The questions' text is in it: readable by this user only, like the database should be.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        data = memoryview(("\n".join(lines) + "\n").encode("utf-8"))
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the new file's name is durable too, not only its bytes
    finally:
        os.close(folder)


def _read_records(path: Path) -> list[Record]:
    records: list[Record] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        log.warning("could not read the spool file %s: %s", path.name, error)
        return records
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and all(isinstance(v, str) for v in record.values()):
            records.append(record)
    return records
