"""The received spool (bot/received_spool.py) on a real disk: batches appended to one file a
process keeps open, that file emptied once all of it is in the database and nothing is being
written, a new one begun past its size limit and the old one deleted when drained, and what a
process left when it stopped (closed or killed) read back whole by the next."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bot import received_spool
from bot.received_spool import ReceivedSpool, Record
from tests.reliability import record as record_figures

TOKEN = "0123456789abcdef"
NEXT = "fedcba9876543210"


def delivery(n: int, text: str = "may I post our roadmap?") -> Record:
    return {
        "platform": "slack",
        "key": f"event:Ev{n}",
        "kind": "dm",
        "user_id": f"U{n}",
        "conversation": f"D{n}",
        "text": text,
        "received_at": "2026-12-01T10:00:00.000+00:00",
        "taken_by": TOKEN,
    }


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl"))


def keys_left(spool_folder: Path) -> list[str]:
    """What the next process to start would move into the database."""
    later = ReceivedSpool(spool_folder, NEXT)
    return [r["key"] for _, records in later.left_over(lambda token: False) for r in records]


async def test_batches_go_to_one_file_that_is_emptied_once_all_of_it_is_in_the_database(
    tmp_path: Path,
) -> None:
    spool = ReceivedSpool.beside(tmp_path / "policybot.db", TOKEN)
    assert spool.folder is not None
    kept = []
    for n in range(5):  # one at a time: five batches, five syncs
        kept.append(await spool.keep(delivery(n)))
    assert len(set(kept)) == 1 and files(spool.folder) == [kept[0]]
    # While this process runs its file is its own: another process leaves it alone.
    assert ReceivedSpool(spool.folder, NEXT).left_over(lambda token: token == TOKEN) == []
    for path in kept[:4]:
        spool.drained(path)
    await spool.aclose()  # waits for the disk thread; one record still not in the database
    assert keys_left(spool.folder) == [f"event:Ev{n}" for n in range(5)]

    spool = ReceivedSpool.beside(tmp_path / "policybot.db", TOKEN + "1")
    paths = [await spool.keep(delivery(n)) for n in range(3)]
    (path,) = set(paths)
    assert path is not None
    for each in paths:
        spool.drained(each)
    await spool.keep(delivery(3))  # after the file was emptied: it alone is in it
    assert [line.count("event:Ev") for line in path.read_text().splitlines()] == [1]
    assert '"event:Ev3"' in path.read_text()
    spool.drained(path)
    await spool.aclose()
    assert not path.exists()  # all of it in the database: nothing for the next start


async def test_a_full_file_is_followed_by_a_new_one_and_deleted_once_drained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(received_spool, "SEGMENT_BYTES", 1000)
    spool = ReceivedSpool.beside(tmp_path / "policybot.db", TOKEN)
    assert spool.folder is not None
    long = "may I post this? " * 40  # ~700 bytes a record
    first = await spool.keep(delivery(1, long))
    second = await spool.keep(delivery(2, long))  # the first file is not yet full
    third = await spool.keep(delivery(3, long))
    assert first is not None and third is not None
    assert first == second != third and files(spool.folder) == sorted([first, third])
    spool.drained(first)
    spool.drained(second)
    await spool.aclose()  # the first file, drained and full, is gone; the third's is kept
    assert files(spool.folder) == [third]
    assert keys_left(spool.folder) == ["event:Ev3"]


async def test_a_process_killed_after_keeping_leaves_every_acknowledged_record(
    tmp_path: Path,
) -> None:
    """No close: what a SIGKILL leaves. Records kept concurrently share syncs and all come
    back, in order; a line torn by the crash is skipped."""
    spool = ReceivedSpool.beside(tmp_path / "policybot.db", TOKEN)
    assert spool.folder is not None
    paths = await asyncio.gather(*(spool.keep(delivery(n)) for n in range(50)))
    for path in paths[:10]:
        spool.drained(path)  # drained while more are written: the file is not emptied
    (path,) = set(paths)
    assert path is not None
    with path.open("a", encoding="utf-8") as torn:
        torn.write('{"platform":"slack","key":"event:EvTORN","te')
    assert keys_left(spool.folder) == [f"event:Ev{n}" for n in range(50)]
    assert path.stat().st_mode & 0o777 == 0o600
    record_figures(
        "Slack: the received spool keeps every acknowledged record",
        "pytest tests/test_received_spool.py",
        records_kept=50,
        files=len(set(paths)),
        records_back_after_kill=len(keys_left(spool.folder)),
    )


async def test_a_failed_write_begins_a_new_file(tmp_path: Path) -> None:
    """A write that fails may leave a torn line: the next batch must not be glued to it."""
    spool = ReceivedSpool.beside(tmp_path / "policybot.db", TOKEN)
    first = await spool.keep(delivery(1))
    assert first is not None
    # The descriptor goes bad under the spool (as a disk error would make writes fail).
    segment = spool._segments[first]
    assert segment.fd is not None
    os.close(segment.fd)
    with pytest.raises(OSError):
        await spool.keep(delivery(2))
    segment.fd = None  # closed above: the spool must not close it again
    third = await spool.keep(delivery(3))
    assert third is not None and third != first
    assert sorted(keys_left(tmp_path / "policybot.db.received")) == ["event:Ev1", "event:Ev3"]


async def test_a_record_being_kept_as_the_spool_closes_stays_for_the_next_start(
    tmp_path: Path,
) -> None:
    """A delivery arriving during a stop is acknowledged once kept: closing must not delete
    the file its sync is writing it to."""
    spool = ReceivedSpool.beside(tmp_path / "policybot.db", TOKEN)
    first = await spool.keep(delivery(1))
    spool.drained(first)  # all of the file in the database: closing alone would delete it
    keeping = asyncio.create_task(spool.keep(delivery(2)))
    await asyncio.sleep(0)  # its sync under way
    await spool.aclose()
    assert await keeping == first
    assert keys_left(tmp_path / "policybot.db.received") == ["event:Ev2"]
