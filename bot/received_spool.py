"""Questions a platform delivered, kept on disk before the delivery is acknowledged, without
waiting for the database.

An acknowledgement must not wait for a write lock another process holds (`policybot policy
load`, a backup, a second server): Slack retries after 3 seconds. So a delivery carrying a
question is appended to a spool file beside the database and synced, then acknowledged; the
core moves spooled deliveries into the database (`received_questions`, de-duplicated by their
key) from its worker. Deliveries arriving while one sync runs share the next one (group
commit): a burst costs a few syncs, not one each.

Each process appends to one file of its own (`<db>.received/<token>.<n>.jsonl`, the token of
its `ProcessMark`), kept open: a batch costs one write and one `fdatasync`. A new file would
also cost its own fsync and the folder's, and beside a busy disk (a policy upload's
commits) those were most of an acknowledgement's wait. The file is emptied once all of it is
in the database and nothing is being written, and a new one begun past `SEGMENT_BYTES` (the
old one deleted once drained), so it stays small. On start, a process moves what a stopped
process left in its files into the database first, and those questions are answered as
`received_questions` left over are. Moving a record twice is harmless: the database drops a
key it already has.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: One spooled delivery: platform, key, kind, user_id, conversation, text, conversation_key
#: (the conversation it continues, as the platform names it), received_at (ISO 8601),
#: taken_by (the token of the process that acknowledged it).
Record = dict[str, str]

#: Past this size the next batch begins a new file: under a load that never lets the file
#: drain, it would otherwise grow without end (and be read whole after a crash).
SEGMENT_BYTES = 4 * 1024 * 1024


@dataclass(eq=False)
class _Segment:
    """One spool file and what of it is not yet in the database. Its descriptor is used on
    the spool's disk thread only, its counts on the event loop only."""

    path: Path
    fd: int | None = None
    size: int = 0
    #: records written and not yet in the database
    undrained: int = 0
    #: no more appends: full, or a write to it failed (a torn line must not join the next)
    retired: bool = False

    def append(self, data: bytes) -> None:
        """On the disk thread: `data` at the end of the file, synced."""
        if self.fd is None:
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            # The questions' text is in it: readable by this user only, like the database.
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            _write_all(self.fd, data)
            os.fsync(self.fd)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the new file's name is durable too, not only its bytes
            finally:
                os.close(folder)
        else:
            _write_all(self.fd, data)
            # Only the bytes and the size: no new name, so no folder sync and no fsync of
            # the timestamps.
            os.fdatasync(self.fd)

    def empty(self) -> None:
        """On the disk thread: every record is in the database; the next batch starts the
        file again. Not synced: after a crash the old lines may be back, and moving them
        again is harmless."""
        if self.fd is not None:
            os.ftruncate(self.fd, 0)

    def delete(self) -> None:
        """On the disk thread: closed and removed (its records are all in the database)."""
        self.close()
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:  # moved again on the next start: the database drops it
            log.warning("could not delete the drained spool file %s: %s", self.path.name, error)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class ReceivedSpool:
    """This process's spool file; `folder` None: an in-memory database, nothing to keep."""

    def __init__(self, folder: Path | None, token: str) -> None:
        self.folder = folder
        self.token = token
        self._numbers = itertools.count(1)
        self._waiting: list[tuple[str, asyncio.Future[Path | None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        #: the file batches are appended to (None until the first, or after it was retired)
        self._current: _Segment | None = None
        #: every file with records not yet in the database, by path (the current one too)
        self._segments: dict[Path, _Segment] = {}
        # One thread does every file operation, in the order asked: emptying the file must
        # not overtake an append asked for after it, nor an append another.
        self._disk = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spool")

    @classmethod
    def beside(cls, database: Path | None, token: str) -> ReceivedSpool:
        if database is None:
            return cls(None, token)
        return cls(database.with_name(database.name + ".received"), token)

    async def keep(self, record: Record) -> Path | None:
        """Once `record` is on disk (synced): the file it is in (None without a folder).
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
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            segment = self._segment_for_next()
            data = ("\n".join(line for line, _ in batch) + "\n").encode("utf-8")
            try:
                await loop.run_in_executor(self._disk, segment.append, data)
            except OSError as error:
                segment.retired = True  # a line may be torn at its end: begin a new file
                self._forget_if_drained(segment)
                for _, kept in batch:
                    if not kept.done():
                        kept.set_exception(error)
                continue
            segment.size += len(data)
            segment.undrained += len(batch)
            for _, kept in batch:
                if not kept.done():
                    kept.set_result(segment.path)

    def _segment_for_next(self) -> _Segment:
        current = self._current
        if current is not None and not current.retired and current.size < SEGMENT_BYTES:
            return current
        if current is not None:
            current.retired = True
            self._forget_if_drained(current)
        assert self.folder is not None
        path = self.folder / f"{self.token}.{next(self._numbers):08d}.jsonl"
        self._current = self._segments[path] = _Segment(path)
        return self._current

    def _forget_if_drained(self, segment: _Segment) -> None:
        if segment.undrained == 0:
            self._segments.pop(segment.path, None)
            self._disk.submit(segment.delete)

    def drained(self, path: Path | None) -> None:
        """One record of `path` is in the database."""
        segment = self._segments.get(path) if path is not None else None
        if segment is None:
            return
        segment.undrained -= 1
        if segment.undrained > 0:
            return
        if segment.retired:
            self._forget_if_drained(segment)
        elif (
            segment.size and not self._waiting and (self._flushing is None or self._flushing.done())
        ):
            # Nothing is being appended (this loop would be the one to ask): empty it now,
            # before the next append, on the same thread.
            segment.size = 0
            self._disk.submit(segment.empty)

    async def aclose(self) -> None:
        """At a stop: the file deleted if all of it is in the database, else left (closed)
        for the next start to move."""
        if self._flushing is not None and not self._flushing.done():
            # A delivery being kept now is acknowledged after: its file must stay.
            await asyncio.shield(self._flushing)
        if self._current is not None:
            self._current.retired = True
            self._forget_if_drained(self._current)
        for segment in self._segments.values():
            self._disk.submit(segment.close)
        self._segments.clear()
        self._current = None
        # Its thread stays (idle): a bot closed and used again, as tests do, spools again.
        await asyncio.get_running_loop().run_in_executor(self._disk, _nothing)

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


def _nothing() -> None:
    """Run on the disk thread to wait for what was asked of it before."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
