"""Drive the real `policybot serve` app (adapters.server.build_app) on loopback, as Slack does:
signed Events API callbacks, slash commands and interactivity payloads."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import httpx
from aiohttp import web

from adapters.server import RUNNER_OPTIONS, build_app
from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage
from tests.fakes.loopback import LOOPBACK
from tests.fakes.slack_api import BOT_USER, TEAM, FakeSlackApi, fake_slack_api

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
#: Event ids, unique across harnesses as Slack's are: servers sharing a database (a restart,
#: several processes) drop an id one of them has handled.
_EVENT_IDS = itertools.count(1)


def all_text(blocks: list[dict[str, Any]]) -> str:
    """Block Kit as one string, to look for what a message says."""
    return json.dumps(blocks, ensure_ascii=False)


def action_ids(blocks: list[dict[str, Any]]) -> set[str]:
    """The action ids of a message's buttons: its actions blocks and its feedback buttons."""
    kinds = ("actions", "context_actions")
    return {e["action_id"] for b in blocks if b["type"] in kinds for e in b["elements"]}


def signature(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class Signing(TypedDict, total=False):
    """What a test may change in how `SlackHarness.post` signs a request."""

    secret: str
    age: float
    headers: dict[str, str]


@dataclasses.dataclass
class SlackHarness:
    api: FakeSlackApi
    bot: PolicyBot
    http: httpx.AsyncClient
    #: The server's aiohttp application (the bolt app is `web_app[adapters.slack.app.SLACK_APP]`).
    web_app: web.Application
    _ids: Iterator[int] = dataclasses.field(default_factory=lambda: itertools.count(1))
    #: The last request sent, exactly (body and headers), for `replay`.
    last_sent: tuple[str, dict[str, str]] = ("", {})

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
        self.last_sent = (body, signed)
        return await self.http.post("/slack/events", content=body, headers=signed)

    async def replay(self) -> httpx.Response:
        """The last request again, byte for byte: its signature and timestamp included, as
        someone who captured it would send it within the 5 minutes Slack's signature allows."""
        body, headers = self.last_sent
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str = "",
        retry: int = 0,
        **signing: Unpack[Signing],
    ) -> httpx.Response:
        body = json.dumps(
            {
                "token": "unused",
                "team_id": TEAM,
                "api_app_id": "A0001",
                "type": "event_callback",
                "event_id": event_id or f"Ev{next(_EVENT_IDS):08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
                "event": event,
            }
        )
        if retry:
            signing["headers"] = {
                **signing.get("headers", {}),
                "X-Slack-Retry-Num": str(retry),
                "X-Slack-Retry-Reason": "http_timeout",
            }
        return await self.post(body, "application/json", **signing)

    def _ts(self) -> str:
        return f"1700000100.{next(self._ids):06d}"

    async def dm(self, text: str, *, user: str = "U123") -> httpx.Response:
        """`user` writes to the bot in their DM with it (channel D + the user id's digits)."""
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": "D" + user.lstrip("U"),
            "user": user,
            "text": text,
            "ts": self._ts(),
        }
        return await self.event(event)

    async def mention(self, text: str, *, user: str = "U123", channel: str = "C100") -> str:
        """`user` @mentions the bot in a channel; returns the message's ts (the thread)."""
        ts = self._ts()
        event = {
            "type": "app_mention",
            "channel": channel,
            "user": user,
            "text": f"<@{BOT_USER}> {text}",
            "ts": ts,
        }
        await self.event(event)
        return ts

    async def share_files(
        self, files: list[dict[str, Any]], *, user: str = "U123", text: str = ""
    ) -> httpx.Response:
        """`user` sends files to the bot in their DM (a `file_share` message)."""
        event = {
            "type": "message",
            "subtype": "file_share",
            "channel_type": "im",
            "channel": "D" + user.lstrip("U"),
            "user": user,
            "text": text,
            "files": files,
            "ts": self._ts(),
        }
        return await self.event(event)

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

    async def interaction(
        self, payload: dict[str, Any], **signing: Unpack[Signing]
    ) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **signing)

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U123",
        channel: str | None = "C100",
        response_url: str | None = None,
        message: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """A button click on a message in `channel`, or in App Home when channel is None."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": user, "username": user.lower()},
            "api_app_id": "A0001",
            "trigger_id": f"trigger-{user}",
            "actions": [
                {"type": "button", "action_id": action_id, "value": value, "block_id": "b"}
            ],
        }
        if channel is None:
            payload["container"] = {"type": "view", "view_id": "VHOME"}
            payload["view"] = {"id": "VHOME", "type": "home"}
        else:
            payload["channel"] = {"id": channel}
            payload["container"] = {"type": "message", "channel_id": channel}
        if response_url is not None:
            payload["response_url"] = response_url
        if message is not None:
            payload["message"] = message
        return await self.interaction(payload)

    async def feedback(
        self,
        value: str,
        question_id: int | None,
        *,
        user: str = "U123",
        channel: str = "C100",
        response_url: str | None = None,
        block_id: str | None = None,
    ) -> httpx.Response:
        """`user` presses 👍 (`value` "positive") or 👎 ("negative") under an answer: Slack's
        feedback buttons, whose block's id names the question."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": user, "username": user.lower()},
            "api_app_id": "A0001",
            "trigger_id": f"trigger-{user}",
            "channel": {"id": channel},
            "container": {"type": "message", "channel_id": channel, "message_ts": "1.2"},
            "actions": [
                {
                    "type": "feedback_buttons",
                    "action_id": "policybot_feedback",
                    "block_id": block_id or f"policybot_feedback_{question_id}",
                    "value": value,
                    "action_ts": "1.3",
                }
            ],
        }
        if response_url is not None:
            payload["response_url"] = response_url
        return await self.interaction(payload)

    async def submit_view(
        self, view: dict[str, Any], values: dict[str, Any], *, user: str = "U123"
    ) -> httpx.Response:
        """`user` submits a modal the bot opened (`view` as given to views.open)."""
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM},
            "user": {"id": user, "username": user.lower()},
            "api_app_id": "A0001",
            "trigger_id": "1.2.4",
            "view": {**view, "id": "V0001", "state": {"values": values}},
        }
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
async def slack_server(
    settings: Settings,
    *,
    api: FakeSlackApi | None = None,
    on_disk: bool = False,
    **slack_settings: Any,
) -> AsyncIterator[SlackHarness]:
    """The real server app with Slack configured against a fake Slack API, on loopback.

    `api`: a fake Slack already running, so that servers started one after another (a restart)
    or side by side (several processes) talk to the same one. `on_disk`: the database is the
    file `settings.db_path`, so several servers can share it, instead of one in memory.
    """
    async with contextlib.AsyncExitStack() as stack:
        if api is None:
            api = await stack.enter_async_context(fake_slack_api())
        configured = dataclasses.replace(
            settings,
            slack_signing_secret=SECRET,
            slack_bot_token="xoxb-test",
            slack_api_url=api.url,
            **slack_settings,
        )
        bot = PolicyBot.create(configured, storage=None if on_disk else Storage.memory())
        bot.ensure_policy()
        web_app = build_app(bot, host=LOOPBACK)
        runner = web.AppRunner(web_app, **RUNNER_OPTIONS)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        port = runner.addresses[0][1]
        async with httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{port}") as http:
            try:
                yield SlackHarness(api, bot, http, web_app)
            finally:
                await runner.cleanup()
                bot.storage.close()
