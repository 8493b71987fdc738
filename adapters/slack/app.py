"""Slack: the bolt AsyncApp, its middleware and the one place every listener is registered;
`/slack/events` on the shared aiohttp server (`add_routes`) and Socket Mode
(`run_socket_mode`, `policybot slack`).

The listeners live by job in `asking`, `uploads`, `review` and `home`. Every listener
acknowledges first and answers after, so Slack gets its reply well inside 3 seconds whatever
answering takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters import replies
from adapters.backlog import SHUTDOWN_GRACE
from adapters.slack import agent, asking, home, review, uploads
from adapters.slack import blocks as render
from adapters.slack.answering import SlackAnswering
from adapters.slack.asking import question_in
from adapters.slack.listening import (
    LISTENING,
    RECEIVED,
    Listening,
    finish_acting,
    listening_in,
)
from adapters.slack.messages import PLATFORM
from adapters.slack.outbound import SlackLateReplier, make_client, register_outbound, shared_session
from bot import access
from bot.config import ConfigError
from bot.core import PolicyBot, Receipt
from bot.redaction import Redactor, redact_logs

log = logging.getLogger(__name__)

#: The bolt app on the server's web app, when Slack is configured.
SLACK_APP = web.AppKey("slack", AsyncApp)
#: Where acknowledged Events API questions are answered (their loop, bolt app and backlog).
SLACK_ANSWERING = web.AppKey("slack_answering", SlackAnswering)


def delivery_key(request: AsyncBoltRequest, body: dict[str, Any]) -> str:
    """What a repeat of this delivery has in common with it: an event's id (Slack's retries
    keep it); otherwise the signature, unique to a signed body at its timestamp, so a replay
    of the same signed request within the 5 minutes bolt accepts it is known (a digest:
    nothing derived from the signing secret is stored); in Socket Mode, which is unsigned,
    the payload itself (each carries its own trigger_id or action_ts)."""
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and event_id:
        return f"event:{event_id}"
    signature = (request.headers.get("x-slack-signature") or [""])[0]
    if signature:
        return "signed:" + hashlib.sha256(signature.encode()).hexdigest()
    payload = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return "payload:" + hashlib.sha256(payload.encode()).hexdigest()


async def once_per_delivery(
    req: AsyncBoltRequest,
    body: dict[str, Any],
    context: AsyncBoltContext,
    next: Callable[[], Awaitable[None]],
) -> Any:
    # After the signature check, before any acknowledgement. Slack retries an event it
    # thinks went unanswered (X-Slack-Retry-Num), perhaps to another process or after a
    # restart, and anyone holding a signed request can replay it within 5 minutes: the
    # first delivery is being handled. The delivery (and the question it carries) is kept on
    # disk first (bot.received_spool), so a question acknowledged is answered even if this
    # process dies before answering, and the acknowledgement never waits for the database
    # or the worker; whether another process took it first is known after, before anything
    # acts on it (`answer_once` for a question, `first_delivery` for a click or a file).
    if context.get(RECEIVED) is not None:  # taken before its acknowledgement (`slack_events`)
        return await next()
    bot = listening_in(context).bot
    key = delivery_key(req, body)
    asked = question_in(body, context.bot_user_id)
    kind, question = asked if asked else ("", None)
    receipt: Receipt = await bot.take_delivery(PLATFORM, key, question, kind)
    if receipt.repeat:
        log.info("dropping a repeated delivery (%s)", key.partition(":")[0])
        return BoltResponse(status=200, body="")
    context[RECEIVED] = receipt
    return await next()


def build_slack_app(
    bot: PolicyBot, listening: Listening | None = None, *, outbound: bool = True
) -> AsyncApp:
    """The bolt app with every listener, handing them `listening` (made here if not given);
    registers the Slack notifier and posters on `bot` with its client (unless `outbound` is
    False: a second app of the same process, answering on another loop)."""
    settings = bot.settings
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    app = AsyncApp(
        client=make_client(settings),
        signing_secret=settings.slack_signing_secret,
        name="policybot",
        # `slack_events` checks every request's signature on its raw bytes before bolt sees
        # it, and Socket Mode is not signed: bolt's own check would only be the same HMAC again.
        request_verification_enabled=False,
    )
    if outbound:
        register_outbound(bot, app.client)
        bot.late_repliers[PLATFORM] = SlackLateReplier(app.client)
    known = listening or Listening(bot, replies.THINKING_DELAY)

    async def with_listening(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> Any:
        context[LISTENING] = known
        if context.bot_user_id:
            known.bot_user.id = context.bot_user_id
        return await next()

    app.middleware(with_listening)
    app.middleware(once_per_delivery)

    app.event("app_mention")(asking.on_mention)
    app.event("message")(asking.on_message)
    app.command(asking.COMMAND)(asking.on_command)
    app.shortcut(asking.CHECK_SHORTCUT)(asking.on_check)
    for action_id in asking.BUTTON_REACTIONS:
        app.action(action_id)(asking.on_feedback)
    app.action(render.ACTION_FEEDBACK)(asking.on_feedback_buttons)
    app.action(render.ACTION_SHARE)(asking.on_share)

    app.event("file_shared")(uploads.on_file_shared)
    for action_id in uploads.VERSION_ACTIONS:
        app.action(action_id)(uploads.on_version_action)

    app.action(render.ACTION_ANSWER_GROUP)(review.on_answer_clicked)
    app.view(render.ANSWER_VIEW)(review.on_answer_submitted)
    app.action(render.ACTION_DISMISS_GROUP)(review.on_dismiss_clicked)

    app.event("app_home_opened")(home.on_home)
    app.event("app_context_changed")(agent.on_context_changed)
    return app


#: The largest body `/slack/events` reads. Slack's payloads are a few kilobytes (a modal's
#: state some tens); the server's larger limit is for policy uploads, not for Slack.
SLACK_MAX_BODY = 1024 * 1024
#: How old a signed request may be (Slack's rule, as bolt applies it): older is a replay.
SLACK_MAX_AGE = 5 * 60
NOT_SLACK_PAYLOAD = "the body is not a Slack payload (a JSON object or a form)"

#: The fields bolt reads into before any listener runs, and the JSON types Slack sends them as:
#: a signed body with one of them of another type made bolt's middleware fail with a 500.
SLACK_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "event": (dict,),
    "actions": (list,),
    "view": (dict,),
    "container": (dict,),
    "message": (dict,),
    "channel": (dict, str),
    "user": (dict, str),
    "team": (dict, str, type(None)),
    "enterprise": (dict, str, type(None)),
}


def has_slack_shape(payload: dict[str, Any]) -> bool:
    """Whether the fields bolt reads before dispatching have the types Slack sends."""
    for name, types in SLACK_FIELD_TYPES.items():
        if name in payload and not isinstance(payload[name], types):
            return False
    event = payload.get("event")
    if payload.get("type") == "event_callback" and not (
        isinstance(event, dict) and isinstance(event.get("type"), str)
    ):
        return False
    actions = payload.get("actions", [])
    return all(isinstance(action, dict) for action in actions)


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None once it is past `limit` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def signed_by_slack(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's request signature (v0, HMAC-SHA256 over the raw bytes), checked before the body
    is parsed; a timestamp that is not a number, or older than SLACK_MAX_AGE, fails."""
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
        return False
    if abs(time.time() - int(timestamp)) > SLACK_MAX_AGE:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def is_ssl_check(body: bytes) -> bool:
    """Slack's `ssl_check=1` form, which bolt answers 200 before any signature check: it
    reaches no listener and says nothing."""
    if len(body) > 1024 or not body.isascii():
        return False
    return parse_qs(body.decode()).get("ssl_check") == ["1"]


async def acknowledged_first(
    bot: PolicyBot, listening: Listening, request: AsyncBoltRequest
) -> Receipt | None:
    """When `request` is an Events API delivery of a question, which is acknowledged before
    bolt runs: its `Receipt` once taken (`once_per_delivery`'s work; left in the request's
    context for the listener unless it repeats one taken before). None for everything else,
    which goes through bolt as it comes: the first event, before bolt has asked Slack who the
    bot is; commands, buttons and views, whose acknowledgement may carry their answer; events
    carrying no question (a file, the DM opened)."""
    body = request.body
    if body.get("type") != "event_callback" or not listening.bot_user.id:
        return None
    asked = question_in(body, listening.bot_user.id)
    if asked is None:
        return None
    kind, question = asked
    key = delivery_key(request, body)
    receipt = await bot.take_delivery(PLATFORM, key, question, kind)
    if receipt.repeat:
        log.info("dropping a repeated delivery (%s)", key.partition(":")[0])
    else:
        request.context[RECEIVED] = receipt
    return receipt


def add_routes(web_app: web.Application, bot: PolicyBot) -> AsyncApp:
    """`POST /slack/events`: the Events API, interactivity and the slash command, signed; the
    Web API client's session lives as long as the server (`SLACK_APP` on the web app)."""
    secret = bot.settings.slack_signing_secret
    if not secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set")
    listening = Listening(bot, replies.THINKING_DELAY)
    slack = build_slack_app(bot, listening)
    web_app[SLACK_APP] = slack
    answering = web_app[SLACK_ANSWERING] = SlackAnswering(
        bot, build_slack_app(bot, listening, outbound=False)
    )

    async def session_while_serving(_: web.Application) -> AsyncIterator[None]:
        async with shared_session(slack.client):
            await answering.start()
            yield
            # Before the sessions close: what was started may still post its answer, and a
            # click acknowledged may still be applied.
            await asyncio.gather(answering.stop(), finish_acting(listening, SHUTDOWN_GRACE))

    web_app.cleanup_ctx.append(session_while_serving)

    def refused(request: web.Request, reason: str) -> None:
        access.refused("Slack request", platform=PLATFORM, who=request.remote or "", reason=reason)

    async def slack_events(request: web.Request) -> web.Response:
        # The signature is checked here, on the raw bytes, before anything parses them: bolt
        # parses the body first (a malformed one raised) and logs a refused one whole.
        body = await read_bounded(request, SLACK_MAX_BODY)
        if body is None:
            refused(request, f"body over {SLACK_MAX_BODY} bytes")
            return web.json_response({"error": "request body too large"}, status=413)
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not signed_by_slack(secret, body, timestamp, signature):
            if is_ssl_check(body):  # Slack's check of the URL's certificate: 200, as bolt does
                return web.Response(status=200)
            # forged, replayed or stale
            refused(request, "bad or expired X-Slack-Signature")
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(
                body=body.decode("utf-8"),
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            # Not UTF-8, not JSON, or JSON that is not an object (bolt reads fields of it):
            # signed, so Slack's (or the secret's holder's) mistake, not an attack to log.
            log.warning("a signed Slack request was not a Slack payload (%d bytes)", len(body))
            return web.json_response({"error": NOT_SLACK_PAYLOAD}, status=400)
        if not has_slack_shape(bolt_request.body):
            log.warning("a signed Slack request had fields of the wrong type (%d bytes)", len(body))
            return web.json_response({"error": NOT_SLACK_PAYLOAD}, status=400)
        receipt = await acknowledged_first(bot, listening, bolt_request)
        if receipt is not None:
            if not receipt.repeat:
                answering.answer(bolt_request, receipt.delivery())
            return web.Response(status=200)
        response = await slack.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    web_app.router.add_post("/slack/events", slack_events)
    return slack


class SocketModeConnection(Protocol):
    """What serve_socket_mode uses of bolt's AsyncSocketModeHandler, whose methods bolt leaves
    unannotated: typed here so the calls are checked."""

    async def start_async(self) -> None: ...

    async def close_async(self) -> None: ...


async def serve_socket_mode(bot: PolicyBot) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    if not bot.settings.slack_app_token:
        raise ConfigError("SLACK_APP_TOKEN (an app-level token, xapp-…) is not set")
    listening = Listening(bot, replies.THINKING_DELAY)
    app = build_slack_app(bot, listening)
    async with shared_session(app.client):
        handler: SocketModeConnection = AsyncSocketModeHandler(app, bot.settings.slack_app_token)
        # What a stopped process acknowledged and did not answer, beside new questions.
        left_over = asyncio.create_task(bot.answer_left_over())
        try:
            await handler.start_async()
        finally:
            left_over.cancel()
            # Stops the client's own reconnecting loops, which would outlive a cancelled task.
            await handler.close_async()
            # A click acknowledged is not sent again: it is applied before the session goes.
            await finish_acting(listening, SHUTDOWN_GRACE)


def run_socket_mode(bot: PolicyBot) -> None:
    """`policybot slack`: connect to Slack over Socket Mode; no public URL needed."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_logs(Redactor.of(bot.settings))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_socket_mode(bot))
