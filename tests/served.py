"""The real `policybot serve` command in a process of its own, Slack configured against the fake
Web API: its settings, a signed event for it, and waiting for it to answer /healthz."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.slack_api import BOT_USER, TEAM

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def slack_serve_env(secret: str, api_url: str, database: Path, **more: str) -> dict[str, str]:
    """This environment without any of policybot's, Slack's, Teams' or an LLM's settings, then
    Slack signed with `secret` against `api_url`, on `database`, lexical, no delivery loop."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POLICYBOT_", "Microsoft", "SLACK_", "OPENAI_", "DATABASE_"))
    }
    env.update(
        SLACK_SIGNING_SECRET=secret,
        SLACK_BOT_TOKEN="xoxb-served",
        SLACK_API_URL=api_url,
        POLICYBOT_DB=str(database),
        POLICYBOT_RETRIEVER="lexical",
        POLICYBOT_DELIVERY_INTERVAL="0",
        **more,
    )
    return env


def signed_mention(
    secret: str, question: str, *, event_id: str, channel: str, user: str, ts: str
) -> tuple[bytes, dict[str, str]]:
    """An `app_mention` event callback and the headers Slack signs it with."""
    payload: dict[str, Any] = {
        "token": "unused",
        "team_id": TEAM,
        "api_app_id": "ASERVED",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        "event": {
            "type": "app_mention",
            "channel": channel,
            "user": user,
            "text": f"<@{BOT_USER}> {question}",
            "ts": ts,
        },
    }
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(
        secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


async def wait_until_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until `process` answers /healthz with 200; the test fails if it ends first, or after a
    minute (a start-up limit, not a timing: a build that never listens fails here)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(600):
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("serve did not answer /healthz within 60 s")
