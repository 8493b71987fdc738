"""Hostile uploads: compression bombs and huge documents are refused with a message naming the
limit, the active policy stays as it was, and the server keeps answering while an upload is
read, stored and compared (health checks and signed Slack events; latencies recorded, never
asserted).

The bombs are made by `bench/bombs.py`, the same shapes `python -m bench uploads` sends at full
size, here just past the limits (a few KB to a few hundred KB on disk)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import bombs
from bot.config import Settings
from bot.reading.shared import ReadLimits
from tests.conftest import RunCli
from tests.fakes.slack_harness import SlackHarness, slack_server
from tests.reliability import percentiles, record

TOKEN = "upload-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: A 1 MB upload limit: everything a DOCX or PDF unpacks to is capped at the 8 MB floor.
LIMIT = 2**20
UNPACKED = ReadLimits(upload_bytes=LIMIT).unpacked_bytes
PAST_UNPACKED = UNPACKED + 2**20


@dataclass(frozen=True)
class Bomb:
    kind: str
    filename: str
    make: Callable[[], bytes]
    #: What the refusal must say.
    says: str


BOMBS = [
    Bomb(
        "docx-paragraphs",
        "policy.docx",
        lambda: bombs.docx_paragraph_bomb(PAST_UNPACKED),
        "expands to more than 8 MB when decompressed",
    ),
    Bomb(
        "docx-text-node",
        "policy.docx",
        lambda: bombs.docx_text_node_bomb(PAST_UNPACKED),
        "expands to more than 8 MB when decompressed",
    ),
    Bomb(
        "docx-nesting",
        "policy.docx",
        lambda: bombs.docx_nesting_bomb(1_000),
        "nested more than 256 levels deep",
    ),
    Bomb(
        "pdf-stream",
        "policy.pdf",
        lambda: bombs.pdf_stream_bomb(PAST_UNPACKED),
        "The PDF expands to more than 8 MB when decompressed",
    ),
    Bomb(
        "markdown-sections",
        "policy.md",
        lambda: bombs.markdown_sections(5_000),  # and the title heading
        "has 5,001 sections; policybot reads at most 5,000 sections per document",
    ),
]


def active_ids(server: SlackHarness) -> list[int]:
    return sorted(v.id for v in server.bot.storage.active_versions())


@contextlib.asynccontextmanager
async def upload_server(settings: Settings, **options: Any) -> AsyncIterator[SlackHarness]:
    """The real server (admin API and Slack) on loopback, its database a file, as in `serve`."""
    options = {"admin_token": TOKEN, "max_upload_bytes": LIMIT, **options}
    async with slack_server(settings, on_disk=True, **options) as server:
        yield server


async def post_upload(
    http: httpx.AsyncClient, filename: str, data: bytes, *, activate: bool = True
) -> httpx.Response:
    return await http.post(
        f"/admin/policies?filename={filename}&activate={int(activate)}",
        content=data,
        headers=AUTH,
        timeout=120,
    )


@pytest.mark.parametrize("bomb", BOMBS, ids=[b.kind for b in BOMBS])
async def test_each_bomb_is_refused_through_the_server_and_the_active_policy_stays(
    settings: Settings, bomb: Bomb
) -> None:
    data = bomb.make()
    async with upload_server(settings) as server:
        before_active, before_versions = active_ids(server), server.bot.storage.versions()
        started = time.perf_counter()
        response = await post_upload(server.http, bomb.filename, data)
        seconds = time.perf_counter() - started
        assert response.status_code == 400, response.text
        message = response.json()["error"]
        assert bomb.says in message
        assert active_ids(server) == before_active
        assert server.bot.storage.versions() == before_versions
        health = await server.http.get("/healthz")
        assert health.status_code == 200
    record(
        "Bad input: compression bombs and huge documents uploaded to the server",
        "pytest tests/test_reliability_uploads.py -k through_the_server",
        bombs_refused=1,
        **{f"{bomb.kind}_kb_on_disk": round(len(data) / 1024, 1)},
        **{f"{bomb.kind}_refused_in_ms": round(seconds * 1000, 1)},
    )


@pytest.mark.parametrize("bomb", BOMBS, ids=[b.kind for b in BOMBS])
def test_each_bomb_is_refused_by_policy_load_and_the_active_policy_stays(
    run: RunCli, tmp_path: Path, bomb: Bomb
) -> None:
    env = {"POLICYBOT_MAX_UPLOAD_BYTES": str(LIMIT)}
    before = run("policy", "list", env=env)
    assert before.exit_code == 0, before.output
    path = tmp_path / bomb.filename
    path.write_bytes(bomb.make())
    result = run("policy", "load", str(path), env=env)
    assert result.exit_code != 0
    assert bomb.says in " ".join(result.output.split())
    assert run("policy", "list", env=env).output == before.output
    record(
        "Bad input: compression bombs and huge documents through `policybot policy load`",
        "pytest tests/test_reliability_uploads.py -k policy_load",
        bombs_refused=1,
    )


def test_a_text_node_past_lxmls_ceiling_is_refused_by_name() -> None:
    from bot.models import PolicyError
    from bot.reading.ingest import read_policy

    data = bombs.docx_text_node_bomb(11 * 2**20)  # within the 16 MB a 4 MB limit unpacks
    with pytest.raises(PolicyError, match="unbroken stretch of text longer than 10 MB"):
        read_policy("policy.docx", data, limits=ReadLimits(upload_bytes=4 * 2**20))


async def test_the_readers_deadline_and_memory_limit_stop_a_slow_or_greedy_file(
    settings: Settings,
) -> None:
    slow = bombs.docx_text_node_bomb(7 * 2**20)  # seconds of clause splitting, then refused
    async with upload_server(settings, upload_read_seconds=0.5) as server:
        before = active_ids(server)
        started = time.perf_counter()
        response = await post_upload(server.http, "policy.docx", slow)
        late_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 400
        assert "took longer than 0.5 seconds to read" in response.json()["error"]
        assert active_ids(server) == before
    greedy = bombs.docx_paragraph_bomb(6 * 2**20)  # 124,000 paragraphs parsed by lxml
    async with upload_server(settings, upload_read_memory_mb=64) as server:
        before = active_ids(server)
        response = await post_upload(server.http, "policy.docx", greedy)
        assert response.status_code == 400
        assert "needed more than 64 MB of memory" in response.json()["error"]
        assert active_ids(server) == before
    record(
        "Bad input: an upload's reader stopped at its deadline and memory limit",
        "pytest tests/test_reliability_uploads.py -k deadline",
        refused_at_deadline=1,
        refused_at_memory_limit=1,
        deadline_refusal_ms=round(late_ms, 1),
    )


@dataclass
class Watch:
    """Health checks and signed Slack events sent one after another while an upload runs."""

    health_ms: list[float]
    health_answered_at: list[float]
    acks_ms: list[float]
    acked_at: list[float]


async def watch_while(server: SlackHarness, upload: asyncio.Task[httpx.Response]) -> Watch:
    watch = Watch([], [], [], [])

    async def health() -> None:
        while not upload.done():
            started = time.perf_counter()
            response = await server.http.get("/healthz")
            if response.status_code == 200 and not upload.done():
                watch.health_answered_at.append(time.perf_counter())
                watch.health_ms.append((watch.health_answered_at[-1] - started) * 1000)
            await asyncio.sleep(0.02)

    async def slack() -> None:
        number = 0
        while not upload.done():
            number += 1
            started = time.perf_counter()
            response = await server.dm(f"may I post our roadmap? (ticket {number})")
            if response.status_code == 200 and not upload.done():
                watch.acked_at.append(time.perf_counter())
                watch.acks_ms.append((watch.acked_at[-1] - started) * 1000)
            await asyncio.sleep(0.1)

    await asyncio.gather(health(), slack())
    return watch


async def test_health_checks_and_slack_events_are_answered_while_an_upload_is_read(
    settings: Settings,
) -> None:
    slow = bombs.docx_text_node_bomb(7 * 2**20)  # seconds to read, refused at the end
    async with upload_server(settings) as server:
        started = time.perf_counter()
        upload = asyncio.create_task(post_upload(server.http, "policy.docx", slow))
        watch = await watch_while(server, upload)
        response = await upload
        upload_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 400 and "clauses" in response.json()["error"]
    # Answered while the file was still being read: nothing of it ran on the event loop.
    assert watch.health_ms and watch.acks_ms
    record(
        "Load: `/healthz` and Slack events while a slow upload is read",
        "pytest tests/test_reliability_uploads.py -k while_an_upload_is_read",
        upload_ms=round(upload_ms, 1),
        health_checks_answered=len(watch.health_ms),
        slack_events_acked=len(watch.acks_ms),
        **{f"healthz_{k}": v for k, v in percentiles(watch.health_ms).items()},
        **{f"slack_ack_{k}": v for k, v in percentiles(watch.acks_ms).items()},
    )


def reworded(sections: int, wording: str) -> bytes:
    lines = ["# Social media policy\n"]
    for number in range(1, sections + 1):
        lines.append(
            f"\n## {number}. Section {number}\n\nEmployees {wording} confidential details of "
            f"project {number} with journalists, forums or social media without approval.\n"
        )
    return "".join(lines).encode()


async def test_health_checks_are_answered_while_an_upload_is_stored_and_compared(
    settings: Settings,
) -> None:
    """Every clause reworded in 700 sections: 490,000 clause pairs to score, after the new
    version is stored. The test watches the database for the stored version, then counts the
    health checks answered before the upload's reply: the comparison's share of the work."""
    sections = 700
    async with upload_server(settings, max_upload_bytes=10 * 2**20) as server:
        first = await post_upload(server.http, "big.md", reworded(sections, "must not share"))
        assert first.status_code == 201, first.text
        assert settings.db_path
        stored_at: list[float] = []

        def versions_now() -> int:
            with contextlib.closing(
                sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
            ) as conn:
                return int(conn.execute("SELECT count(*) FROM versions").fetchone()[0])

        before = versions_now()
        upload = asyncio.create_task(
            post_upload(server.http, "big.md", reworded(sections, "may never share"))
        )

        async def notice_stored() -> None:
            while not upload.done() and not stored_at:
                if versions_now() > before:
                    stored_at.append(time.perf_counter())
                await asyncio.sleep(0.01)

        watch, _ = await asyncio.gather(watch_while(server, upload), notice_stored())
        response = await upload
        replied_at = time.perf_counter()
    assert response.status_code == 201, response.text
    assert len(response.json()["changes"]["changed"]) == sections
    assert stored_at, "the new version was stored only as the reply came"
    while_comparing = [t for t in watch.health_answered_at if stored_at[0] < t < replied_at]
    assert while_comparing  # the comparison did not hold the event loop
    record(
        "Load: `/healthz` and Slack events while a big upload is stored and compared",
        "pytest tests/test_reliability_uploads.py -k stored_and_compared",
        clause_pairs_scored=sections * sections,
        comparing_ms=round((replied_at - stored_at[0]) * 1000, 1),
        health_checks_answered_while_comparing=len(while_comparing),
        **{f"healthz_{k}": v for k, v in percentiles(watch.health_ms).items()},
        **{f"slack_ack_{k}": v for k, v in percentiles(watch.acks_ms).items()},
    )
