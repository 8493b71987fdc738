"""The admin HTTP API's database calls go through the bot's worker, as every other route's do:
over the real server on loopback, another connection holds SQLite's write lock while an admin
activates a version, and `/healthz` keeps answering until the lock goes; the activation then
completes. Before, `activate` ran on the event loop and waited there for the lock (SQLite's
busy timeout), so nothing else was served meanwhile."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.config import Settings
from tests.conftest import LIVESTREAM_POLICY
from tests.fakes.slack_api import fake_slack_api
from tests.fakes.slack_harness import slack_server
from tests.reliability import percentiles, record
from tests.test_loop_acks import WriteLock

TOKEN = "admin-token-for-the-loop-test-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCK_SECONDS = 2.0


async def test_healthz_answers_while_an_admin_activation_waits_for_a_write_lock(
    settings: Settings,
) -> None:
    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True, admin_token=TOKEN) as slack,
    ):
        staged = await slack.http.post(
            "/admin/policies?filename=devices.md",
            content=LIVESTREAM_POLICY.encode(),
            headers=AUTH,
        )
        assert staged.status_code == 201, staged.text
        version_id = staged.json()["version"]["id"]
        health: list[float] = []
        while_locked: list[bool] = []
        sent = asyncio.Event()

        async def activate() -> int:
            sent.set()
            response = await slack.http.post(
                f"/admin/policies/{version_id}/activate", headers=AUTH, timeout=60
            )
            return response.status_code

        async def poll_health() -> None:
            await sent.wait()
            while not lock.released.is_set():
                started = time.monotonic()
                response = await slack.http.get("/healthz", timeout=60)
                assert response.status_code == 200
                health.append((time.monotonic() - started) * 1000)
                while_locked.append(not lock.released.is_set())
                await asyncio.sleep(0.02)

        with WriteLock(Path(settings.db_path), LOCK_SECONDS) as lock:
            status, _ = await asyncio.gather(activate(), poll_health())
        assert status == 200
        # The loop kept serving while the activation waited for the lock in the worker.
        assert sum(while_locked) >= 3, (while_locked, health)
        active = {v.document: v.id for v in slack.bot.storage.active_versions()}
        assert active.get("devices") == version_id
    record(
        "Loop: /healthz while an admin API activation waits for another process's write lock",
        "pytest tests/test_loop_admin.py",
        lock_held_s=LOCK_SECONDS,
        health_checks_answered_while_locked=sum(while_locked),
        activation_status=status,
        **{f"healthz_{k}": v for k, v in percentiles(health).items()},
    )
