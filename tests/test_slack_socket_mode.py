"""`policybot slack`: Socket Mode against the fake API's WebSocket, and its start-up checks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
from typing import Any

from adapters.slack import blocks as render
from adapters.slack.app import serve_socket_mode
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.database import Storage
from tests.fakes.slack_api import BOT_USER, TEAM, FakeSlackApi, fake_slack_api


def socket_mode_bot(settings: Settings, api: FakeSlackApi, **options: Any) -> PolicyBot:
    """A core set up for `policybot slack` against the fake API, the bundled policy active."""
    configured = dataclasses.replace(
        settings,
        slack_bot_token="xoxb-test",
        slack_app_token="xapp-test",
        slack_api_url=api.url,
        **options,
    )
    bot = PolicyBot.create(configured, storage=Storage.memory())
    bot.ensure_policy()
    return bot


async def test_mention_over_socket_mode_is_acked_and_answered_in_thread(
    settings: Settings,
) -> None:
    async with fake_slack_api() as api:
        bot = socket_mode_bot(settings, api)
        running = asyncio.ensure_future(serve_socket_mode(bot))
        try:
            (opened,) = await api.wait_for("apps.connections.open")
            assert opened["_token"] == "xapp-test"
            event = {
                "type": "app_mention",
                "user": "U123",
                "channel": "C100",
                "text": f"<@{BOT_USER}> may I share our unreleased roadmap on LinkedIn?",
                "ts": "1700000001.000100",
            }
            await api.socket_send(
                {
                    "envelope_id": "env-1",
                    "type": "events_api",
                    "accepts_response_payload": False,
                    "retry_attempt": 0,
                    "payload": {
                        "type": "event_callback",
                        "team_id": TEAM,
                        "event_id": "EvSOCK1",
                        "event": event,
                        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
                    },
                }
            )
            await api.wait_for_ack("env-1")
            (post,) = await api.wait_for("chat.postMessage")
            assert post["thread_ts"] == "1700000001.000100" and "3.3" in json.dumps(post["blocks"])
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            bot.storage.close()


async def test_a_click_acknowledged_over_socket_mode_is_applied_before_it_stops(
    settings: Settings,
) -> None:
    async with fake_slack_api() as api:
        bot = socket_mode_bot(settings, api, slack_review_channel="CREVIEW")
        answer = await bot.ask(
            IncomingQuestion("may I share our unreleased roadmap on LinkedIn?", "slack", "U123")
        )
        assert answer.question_id is not None
        release = threading.Event()
        busy = asyncio.ensure_future(bot.worker.run(release.wait, 10))
        running = asyncio.ensure_future(serve_socket_mode(bot))
        try:
            await api.wait_for("apps.connections.open")
            await api.socket_send(
                {
                    "envelope_id": "env-click",
                    "type": "interactive",
                    "accepts_response_payload": False,
                    "payload": {
                        "type": "block_actions",
                        "team": {"id": TEAM},
                        "user": {"id": "U123", "username": "u123"},
                        "api_app_id": "A0001",
                        "channel": {"id": "C100"},
                        "response_url": api.response_url("click"),
                        "actions": [
                            {
                                "type": "button",
                                "action_id": render.ACTION_NOT_HELPFUL,
                                "value": str(answer.question_id),
                                "block_id": "b",
                            }
                        ],
                    },
                }
            )
            await api.wait_for_ack("env-click")
            assert api["response_url:click"] == []  # acknowledged, not applied yet
            threading.Timer(0.3, release.set).start()  # free within the stop's grace
        finally:
            running.cancel()  # the stop (Ctrl-C)
            await asyncio.gather(running, return_exceptions=True)
            applied = [p for p in api["chat.postMessage"] if p["channel"] == "CREVIEW"]
            told = len(api["response_url:click"])
            release.set()
            await busy
            bot.storage.close()
    assert len(applied) == 1 and told == 1


def test_slack_command_without_tokens_says_what_is_missing(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", str(tmp_path) + "/x.db", "slack"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
