"""The HTTP server that hosts the platform endpoints (`policybot serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from adapters import admin_http
from adapters.web import app as web_console
from bot.core import PolicyBot
from bot.redaction import Redactor, redact_logs

log = logging.getLogger(__name__)

BOT_KEY = web.AppKey("bot", PolicyBot)


def _printable(value: str, limit: int) -> str:
    return "".join(c if c.isprintable() else "?" for c in value[:limit])


def route_of(request: BaseRequest) -> str:
    """The pattern of the route a request matched (`/admin/policies/{version}/diff`), never its
    path: a path that matches no route may be anything at all, a pasted token included."""
    try:
        match_info = request.match_info if isinstance(request, web.Request) else None
    except AssertionError:  # refused before routing (a malformed request): no match info
        match_info = None
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "(no route)"


class AccessLog(AbstractAccessLogger):
    """One access-log line per request, with nothing in it that can carry a secret: the route's
    pattern instead of the path, no query string (`?token=…`: only whether there was one), no
    header but a cut User-Agent (no Authorization, no Referer)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s%s" %d %d %.3fs "%s"',
            request.remote or "-",
            _printable(request.method, 16),
            route_of(request),
            "?..." if request.query_string else "",
            response.status,
            response.body_length,
            time,
            _printable(request.headers.get("User-Agent", ""), 120),
        )


#: How the server's runner is made, by `run` and by tests on loopback alike.
RUNNER_OPTIONS: dict[str, Any] = {"access_log_class": AccessLog}


class MalformedRequestLine(logging.Filter):
    """aiohttp logs a request it cannot parse (a header over 8 KiB, a bad header line) with a
    traceback, and the error's text quotes the raw bytes, an Authorization header among them:
    one short line saying what kind of error instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
            record.msg = "malformed HTTP request from %s refused: %s (%s)"
            record.args = (remote, type(error).__name__, error.code)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestLine) for f in server_log.filters):
        server_log.addFilter(MalformedRequestLine())


async def healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT_KEY]
    active, schema_version = await bot.health()
    status = 200 if active else 503
    return web.json_response(
        {
            "ok": bool(active),
            # Which database this process is on, and the schema it migrated it to.
            "database": {
                "engine": bot.storage.engine,
                "schema_version": schema_version,
            },
            # Questions the database refused (disk full, read-only), kept to be logged later.
            "unlogged_questions": bot.unlogged.pending(),
            # The latest re-check of open questions after an activation, done in the background.
            "recheck": bot.recheck.as_json() if bot.recheck is not None else None,
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


async def answer_left_over(app: web.Application) -> AsyncIterator[None]:
    """Once serving: answer what a stopped process acknowledged and did not answer (on the
    platforms that acknowledge before answering), beside the new questions coming in."""
    task = asyncio.create_task(app[BOT_KEY].answer_left_over())
    yield
    if not task.done():
        # Cut short, a question is answered on the next start: the one under way perhaps
        # twice, none lost.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def prepare_vectors(app: web.Application) -> AsyncIterator[None]:
    """Once serving: the active policy's clause vectors computed beside the questions, so
    the first question does not wait for them."""
    task = asyncio.create_task(app[BOT_KEY].prepare_vectors())
    yield
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def build_app(bot: PolicyBot, *, host: str | None = None) -> web.Application:
    """One aiohttp application; each configured platform adds its routes here. `host` is
    where it will listen (`serve --host`): unauthenticated Teams needs it given and on
    loopback (ConfigError otherwise)."""
    quiet_malformed_requests()
    app = web.Application(client_max_size=bot.settings.max_upload_bytes + 1024 * 1024)
    app[BOT_KEY] = bot
    app.router.add_get("/healthz", healthz)
    settings = bot.settings
    if settings.slack_signing_secret and settings.slack_bot_token:
        from adapters.slack import app as slack

        slack.add_routes(app, bot)
    if settings.teams_configured:
        settings.check_teams_secret()
        # Here, not at the top: the Agents SDK (pydantic, msal, cryptography...) is 35 MiB
        # that a server without Teams never needs.
        from adapters.teams import app as teams_app

        # No MicrosoftAppId and no explicit local-testing switch: no /api/messages at all,
        # so nobody can speak for a Teams user on a deployment that has no Teams.
        teams_app.add_routes(app, bot, listen_host=host)
    admin_http.register(app, bot)  # /admin/policies (needs POLICYBOT_ADMIN_TOKEN)
    # /console: its sign-in links only while `host` is loopback.
    web_console.add_console(app, bot, listen_host=host)

    async def close_bot(_: web.Application) -> None:
        await bot.aclose()  # the LLM client's connections

    app.on_cleanup.append(close_bot)
    # Cleanup contexts end before on_cleanup runs, so the task stops before the bot closes.
    app.cleanup_ctx.append(background_delivery)
    # After the platforms' own contexts (Slack's Web API session), so it ends before them.
    app.cleanup_ctx.append(answer_left_over)
    app.cleanup_ctx.append(prepare_vectors)
    return app


#: Python's cyclic garbage collector, as `serve` sets it: collections of the youngest objects
#: after this many more allocations than frees (Python's default: 700), of the middle ones
#: after this many of those (10), of everything after this many of those (10). A collection
#: stops every thread, and a full one over all that imports and the policy left on the heap
#: took 80-160 ms in a loaded bench run: `run` moves what exists at start out of the
#: collector's reach (gc.freeze), so a full collection goes over what serving made since.
#: Under load nearly everything a young collection walks is a request in flight (it collects
#: next to nothing), so a collection's pause is the number of objects made since the last of
#: its generation: the youngest at 5,000 stalled acknowledgements for tens of milliseconds in
#: the contention bench (timed with a `gc.callbacks` hook), and middle ones after 20 young
#: walked 20,000-48,000 objects, 30-40 ms each, a dozen per run. After 2 young ones they
#: took at most 14-28 ms, a few per run; full collections come after as many young ones as
#: before (2 x 1,000 = 20 x 100).
GC_THRESHOLDS = (1_000, 2, 1_000)

#: How long a thread holding the GIL keeps it while another waits (Python's default: 5 ms).
#: The event loop waits that long for the worker thread at each wake-up, several per
#: acknowledgement; a shorter slice costs the worker a few more switches.
GIL_SWITCH_SECONDS = 0.001


def run(
    bot: PolicyBot,
    host: str,
    port: int,
    *,
    ready: Callable[[], None] | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve until stopped; `ready` is called once the port is bound (the "listening on" line
    people and scripts wait for)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_logs(Redactor.of(bot.settings))
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    app = build_app(bot, host=host)  # before listening: a refused setting never binds the port
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    announce = (lambda _aiohttp_banner: ready()) if ready is not None else None
    # reuse_port: one of `serve --processes N`, each binding the port (bot/cli/processes.py).
    web.run_app(
        app, host=host, port=port, print=announce, reuse_port=reuse_port or None, **RUNNER_OPTIONS
    )
