"""`policybot slack`: Socket Mode against the fake API's WebSocket, and its start-up checks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys

from adapters.slack.app import serve_socket_mode
from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage
from tests.fakes.slack_api import BOT_USER, TEAM, fake_slack_api


async def test_mention_over_socket_mode_is_acked_and_answered_in_thread(
    settings: Settings,
) -> None:
    async with fake_slack_api() as api:
        configured = dataclasses.replace(
            settings,
            slack_bot_token="xoxb-test",
            slack_app_token="xapp-test",
            slack_api_url=api.url,
        )
        bot = PolicyBot.create(configured, storage=Storage.memory())
        bot.ensure_policy()
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
