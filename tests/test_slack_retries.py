"""Slack's retries of an event (X-Slack-Retry-Num) are answered once: after a restart, by
several servers on one database, and, when the database refuses writes, answered rather
than dropped."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

import pytest

from bot.config import Settings
from bot.store.database import Storage, StorageError
from tests.conftest import BUNDLED_POLICY
from tests.fakes.slack_api import fake_slack_api
from tests.fakes.slack_harness import slack_server
from tests.test_reliability_faults import fill_disk, free_again, make_read_only
from tests.test_slack_http import ROADMAP, dm, mention
from tests.test_slack_upload import ADMIN, new_version

TWEET = "can I tweet about our quarterly revenue?"


def fill_disk_to_the_last_page(storage: Storage) -> None:
    """`fill_disk`, then the room SQLite's max_page_count leaves in pages that already exist:
    enough for a few event ids, where a disk that filled up has none."""
    fill_disk(storage)
    for n in itertools.count():
        try:
            storage.claim_delivery("filler", f"key-{n}")
        except StorageError:
            return


def channels(posts: list[dict[str, object]]) -> list[str]:
    return sorted(str(p["channel"]) for p in posts)


async def test_a_retry_after_a_restart_is_not_answered_again(settings: Settings) -> None:
    async with fake_slack_api() as api:
        async with slack_server(settings, api=api, on_disk=True) as before:
            await before.event(mention(ROADMAP), event_id="Ev0RESTART")
            await api.wait_for("chat.postMessage")
        # Slack saw no acknowledgement in time and retries, reaching the restarted server.
        async with slack_server(settings, api=api, on_disk=True) as after:
            retry = await after.event(mention(ROADMAP), event_id="Ev0RESTART", retry=1)
            assert retry.status_code == 200
            # A new event, taken after the retry: its answer comes after the retry's would.
            await after.event(dm(TWEET))
            posts = await api.wait_for("chat.postMessage", 2)
            assert channels(posts) == ["C100", "D123"]
            assert len(after.bot.storage.questions(status=None)) == 2


async def test_two_servers_on_one_database_answer_an_event_once(settings: Settings) -> None:
    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True) as one,
        slack_server(settings, api=api, on_disk=True) as two,
    ):
        # The retry reaches the other process while the first delivery is being handled.
        first, retry = await asyncio.gather(
            one.event(mention(ROADMAP), event_id="Ev0SHARED"),
            two.event(mention(ROADMAP), event_id="Ev0SHARED", retry=1),
        )
        assert first.status_code == retry.status_code == 200
        # New events on both, taken after the duplicate on each.
        await one.event(dm(TWEET))
        await two.event(dm(TWEET, channel="D456", user="U456"))
        posts = await api.wait_for("chat.postMessage", 3)
        assert channels(posts) == ["C100", "D123", "D456"]
        assert len(one.bot.storage.questions(status=None)) == 3


async def test_a_file_reaching_two_servers_as_event_and_message_is_uploaded_once(
    settings: Settings,
) -> None:
    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True, admins=(f"slack:{ADMIN}",)) as one,
        slack_server(settings, api=api, on_disk=True, admins=(f"slack:{ADMIN}",)) as two,
    ):
        file = api.add_file(BUNDLED_POLICY.name, new_version())
        shared = {"type": "file_shared", "file_id": file["id"], "user_id": ADMIN}
        await one.event({**shared, "channel_id": "DADMIN"})
        (summary,) = await api.wait_for("chat.postMessage")
        assert "1 added" in str(summary["blocks"])
        # Slack also sends the file as a file_share message (another event id), here to `two`.
        await two.share_files([file], user=ADMIN)
        await two.dm("help", user=ADMIN)  # a later message, so the file_share was handled
        posts = await api.wait_for("chat.postMessage", 2)
        assert len(api.downloads) == 1 and len(posts) == 2
        assert len(two.bot.storage.versions()) == 2  # the bundled policy and this upload


@pytest.mark.parametrize(
    "fault", [fill_disk_to_the_last_page, make_read_only], ids=["disk-full", "read-only"]
)
async def test_a_database_that_refuses_writes_still_answers_events(
    settings: Settings, fault: Callable[[Storage], None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.received")
    async with slack_server(settings, on_disk=True) as slack:
        fault(slack.bot.storage)
        await slack.event(mention(ROADMAP), event_id="Ev0REFUSED")
        (answer,) = await slack.api.wait_for("chat.postMessage")
        assert answer["channel"] == "C100" and "roadmap" in str(answer["text"]).lower()
        said = [r.getMessage() for r in caplog.records if r.name == "bot.received"]
        assert any("event:Ev0REFUSED as new" in message for message in said)

        # Writes taken again: a retry is dropped again.
        free_again(slack.bot.storage)
        await slack.event(mention(ROADMAP, ts="1700000003.000100"), event_id="Ev0AGAIN")
        await slack.event(mention(ROADMAP, ts="1700000003.000100"), event_id="Ev0AGAIN", retry=1)
        await slack.event(dm(TWEET))
        posts = await slack.api.wait_for("chat.postMessage", 3)
        assert channels(posts) == ["C100", "C100", "D123"]
