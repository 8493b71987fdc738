"""The peer for the Slack load test: a bolt app that answers every mention and DM with an echo.

It runs the same stack as `policybot serve` (aiohttp, bolt's AsyncApp, `/slack/events`, the
access log) with a handler that does no work, written as bolt's documentation writes one, so
its throughput is the ceiling that HTTP and bolt put on any bot.

    python -m bench.echo_app --port 8081   # SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def build_echo_app() -> web.Application:
    api_url = os.environ["SLACK_API_URL"].rstrip("/") + "/"
    slack = AsyncApp(
        client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=api_url),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        name="echo",
    )

    @slack.event("app_mention")
    async def on_mention(event: dict[str, Any], client: AsyncWebClient) -> None:
        thread = event.get("thread_ts") or event["ts"]
        await client.chat_postMessage(
            channel=event["channel"], thread_ts=thread, text=event.get("text", "")
        )

    @slack.event("message")
    async def on_message(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("channel_type") == "im" and not event.get("subtype"):
            await client.chat_postMessage(channel=event["channel"], text=event.get("text", ""))

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await slack.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same logging as `policybot serve`, so both pay for the access log.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    web.run_app(build_echo_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
