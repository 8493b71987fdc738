"""The HTTP server that hosts the platform endpoints (`policybot serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from adapters import admin_http, teams
from bot.core import PolicyBot
from bot.redaction import Redactor, redact_logs

log = logging.getLogger(__name__)

BOT_KEY = web.AppKey("bot", PolicyBot)


async def healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT_KEY]
    active = bot.storage.active_versions()
    status = 200 if active else 503
    return web.json_response(
        {
            "ok": bool(active),
            # Questions the database refused (disk full, read-only), kept to be logged later.
            "unlogged_questions": bot.unlogged.pending(),
            "policies": [
                {
                    "document": v.document,
                    "version": v.id,
                    "label": v.label,
                    "clauses": v.clause_count,
                }
                for v in active
            ],
        },
        status=status,
    )


#: Seconds shutdown waits for a delivery run under way before cutting it short.
DELIVERY_SHUTDOWN_GRACE = 10.0


async def deliver_until(bot: PolicyBot, interval: float, stop: asyncio.Event) -> None:
    """Send pending reviewed answers now and every `interval` seconds until `stop` is set:
    answers given from the CLI, and deliveries that failed, reach askers while serving."""
    while not stop.is_set():
        try:
            report = await bot.deliver_answers()
            if report.sent or report.failed:
                log.info("reviewed answers delivered: %s", report.describe())
        except Exception:  # one bad run (a locked database, say) must not end the loop
            log.exception("delivering reviewed answers failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def background_delivery(app: web.Application) -> AsyncIterator[None]:
    interval = app[BOT_KEY].settings.delivery_interval
    if interval <= 0:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(deliver_until(app[BOT_KEY], interval, stop))
    yield
    # Let a run under way finish: cut between sending and recording, an answer goes twice.
    stop.set()
    try:
        await asyncio.wait_for(task, DELIVERY_SHUTDOWN_GRACE)
    except TimeoutError:
        log.warning("a delivery run was cut short by shutdown; it is retried on the next start")


def build_app(bot: PolicyBot) -> web.Application:
    """One aiohttp application; each platform adds its routes here."""
    app = web.Application(client_max_size=bot.settings.max_upload_bytes + 1024 * 1024)
    app[BOT_KEY] = bot
    app.router.add_get("/healthz", healthz)
    settings = bot.settings
    if settings.slack_signing_secret and settings.slack_bot_token:
        from adapters import slack

        slack.add_routes(app, bot)
    teams.add_routes(app, bot)
    admin_http.register(app, bot)  # /admin/policies (needs POLICYBOT_ADMIN_TOKEN)

    async def close_bot(_: web.Application) -> None:
        await bot.aclose()  # the LLM client's connections

    app.on_cleanup.append(close_bot)
    # Cleanup contexts end before on_cleanup runs, so the task stops before the bot closes.
    app.cleanup_ctx.append(background_delivery)
    return app


def run(bot: PolicyBot, host: str, port: int) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_logs(Redactor.of(bot.settings))
    web.run_app(build_app(bot), host=host, port=port, print=None)
