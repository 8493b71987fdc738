"""The Slack Web API as a loopback fake answers it: reading a call, Slack's answers to the calls
the bot needs answered a certain way, and serving on 127.0.0.1 (port 0).

Shared by the load bench's fake (bench/slack_load.py: counts and timestamps only) and the tests'
(tests/fakes/slack_api.py: records every call), so both answer as Slack does. It imports
nothing from either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

BOT_USER = "UBOT"
BOT_ID = "BBOT"


async def read_call(request: web.Request) -> dict[str, Any]:
    """A Web API call's arguments (query, JSON or form body), Block Kit and views decoded;
    `_token` is the bearer token it came with."""
    payload: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        payload.update(await request.json())
    elif request.can_read_body:
        payload.update(await request.post())
    for key in ("blocks", "view", "attachments"):
        if isinstance(payload.get(key), str):
            payload[key] = json.loads(payload[key])
    payload["_token"] = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return payload


def answer(method: str, payload: dict[str, Any], ts: Iterator[str], team: str) -> dict[str, Any]:
    """Slack's answer to auth.test (who the bot is) and chat.postMessage / chat.update (the
    message's ts, a new one from `ts` for a new message); `{"ok": true}` to anything else."""
    if method == "auth.test":
        return {
            "ok": True,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "team_id": team,
            "user": "policybot",
            "team": "Test",
            "url": "https://test.slack.com/",
        }
    if method in {"chat.postMessage", "chat.update"}:
        posted = str(payload.get("ts") or next(ts))
        return {
            "ok": True,
            "channel": payload.get("channel"),
            "ts": posted,
            "message": {"text": payload.get("text", ""), "ts": posted},
        }
    return {"ok": True}


@asynccontextmanager
async def on_loopback(app: web.Application) -> AsyncIterator[int]:
    """Serve `app` on 127.0.0.1 without an access log; yields the port the OS chose."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
