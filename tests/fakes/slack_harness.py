"""Drive the real `policybot serve` app (adapters.server.build_app) on loopback, as Slack does:
signed Events API callbacks, slash commands and interactivity payloads."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import web

from adapters.server import build_app
from bot.core import PolicyBot
from bot.storage import Storage
from tests.fakes.slack_api import BOT_USER, TEAM, FakeSlackApi, fake_slack_api

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signature(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclasses.dataclass
class SlackHarness:
    api: FakeSlackApi
    bot: PolicyBot
    http: httpx.AsyncClient
    _ids: Any = dataclasses.field(default_factory=lambda: itertools.count(1))

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        secret: str = SECRET,
        age: float = 0,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        timestamp = str(int(time.time() - age))
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(secret, timestamp, body),
            **(headers or {}),
        }
        return await self.http.post("/slack/events", content=body, headers=signed)

    async def event(
        self, event: dict[str, Any], *, event_id: str = "", retry: int = 0, **kwargs: Any
    ) -> httpx.Response:
        body = json.dumps(
            {
                "token": "unused",
                "team_id": TEAM,
                "api_app_id": "A0001",
                "type": "event_callback",
                "event_id": event_id or f"Ev{next(self._ids):08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
                "event": event,
            }
        )
        headers = kwargs.pop("headers", {})
        if retry:
            headers = {
                **headers,
                "X-Slack-Retry-Num": str(retry),
                "X-Slack-Retry-Reason": "http_timeout",
            }
        return await self.post(body, "application/json", headers=headers, **kwargs)

    async def command(
        self, text: str, *, user: str = "U123", channel: str = "C100"
    ) -> httpx.Response:
        form = {
            "token": "unused",
            "team_id": TEAM,
            "channel_id": channel,
            "user_id": user,
            "command": "/policy",
            "text": text,
            "response_url": self.api.response_url("command"),
            "trigger_id": "1.2.3",
        }
        return await self.post(urlencode(form), "application/x-www-form-urlencoded")

    async def interaction(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **kwargs)

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U123",
        channel: str = "C100",
        response_url: str | None = None,
    ) -> httpx.Response:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": user},
            "api_app_id": "A0001",
            "channel": {"id": channel},
            "container": {"type": "message", "channel_id": channel},
            "trigger_id": "1.2.3",
            "actions": [
                {"type": "button", "action_id": action_id, "value": value, "block_id": "b"}
            ],
        }
        if response_url is not None:
            payload["response_url"] = response_url
        return await self.interaction(payload)

    async def shortcut(self, text: str, *, user: str = "U123") -> httpx.Response:
        payload = {
            "type": "message_action",
            "callback_id": "policybot_check_post",
            "team": {"id": TEAM},
            "user": {"id": user},
            "channel": {"id": "C100"},
            "message": {"type": "message", "user": "U999", "text": text, "ts": "1.1"},
            "response_url": self.api.response_url("shortcut"),
            "trigger_id": "1.2.3",
        }
        return await self.interaction(payload)


@asynccontextmanager
async def slack_server(settings: Any, **slack_settings: Any) -> AsyncIterator[SlackHarness]:
    """The real server app with Slack configured against a fake Slack API, on loopback."""
    async with fake_slack_api() as api:
        configured = dataclasses.replace(
            settings,
            slack_signing_secret=SECRET,
            slack_bot_token="xoxb-test",
            slack_api_url=api.url,
            **slack_settings,
        )
        bot = PolicyBot.create(configured, storage=Storage.memory())
        bot.ensure_policy()
        runner = web.AppRunner(build_app(bot))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            try:
                yield SlackHarness(api, bot, http)
            finally:
                await runner.cleanup()
                bot.storage.close()
