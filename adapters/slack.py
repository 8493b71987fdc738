"""Slack: bolt's AsyncApp listeners that parse an event, call the core and render the answer.

Every listener acknowledges first and answers after, so Slack gets its reply well inside
3 seconds whatever answering takes. Runs over HTTP (`/slack/events` on the shared aiohttp
server, see `add_routes`) or Socket Mode (`run_socket_mode`, `policybot slack`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters import slack_blocks as render
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import Answer, IncomingQuestion, QuestionError
from bot.notify import DeliveryError, ReplyAddress

log = logging.getLogger(__name__)

PLATFORM = "slack"
#: After this long without an answer, a "Thinking…" placeholder is posted and later replaced.
THINKING_DELAY = 1.0
#: How many recent event ids are remembered to drop Slack's retries of an event.
SEEN_EVENTS = 10_000
#: The message shortcut's callback id (see slack-manifest.yml).
CHECK_SHORTCUT = "policybot_check_post"
COMMAND = "/policy"

T = TypeVar("T")

Message = tuple[str, list[dict[str, Any]]]  # fallback text, blocks


class SeenEvents:
    """Recently handled event ids, so a retry of an event already taken is not answered again."""

    def __init__(self, size: int = SEEN_EVENTS) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class Reply(Protocol):
    """Where an answer goes: post once, then replace what was posted (the placeholder)."""

    async def post(self, message: Message) -> None: ...

    async def replace(self, message: Message) -> None: ...


@dataclass
class ChannelReply:
    """A message in a channel, DM or thread, replaced with chat.update."""

    client: AsyncWebClient
    channel: str
    thread_ts: str | None = None
    ts: str | None = None

    async def post(self, message: Message) -> None:
        text, blocks = message
        kwargs: dict[str, Any] = {"thread_ts": self.thread_ts} if self.thread_ts else {}
        response = await self.client.chat_postMessage(
            channel=self.channel, text=text, blocks=blocks, **kwargs
        )
        self.ts = response.get("ts")
        self.channel = response.get("channel") or self.channel

    async def replace(self, message: Message) -> None:
        if self.ts is None:
            await self.post(message)
            return
        text, blocks = message
        await self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)


@dataclass
class EphemeralReply:
    """A message only the user sees, through the request's response_url."""

    respond: AsyncRespond

    async def post(self, message: Message) -> None:
        text, blocks = message
        await self.respond(
            text=text, blocks=blocks, response_type="ephemeral", replace_original=False
        )

    async def replace(self, message: Message) -> None:
        text, blocks = message
        await self.respond(text=text, blocks=blocks, replace_original=True)


async def with_placeholder(
    work: Awaitable[T],
    reply: Reply,
    render_result: Callable[[T], Message],
    delay: float = THINKING_DELAY,
) -> T | None:
    """Post the result of `work`; if it takes longer than `delay`, show "Thinking…" meanwhile.

    A QuestionError becomes its message to the user; any other failure an apology (and a log
    line). Returns the result, or None when there is none.
    """
    task = asyncio.ensure_future(work)
    placeholder = False
    try:
        try:
            result = await asyncio.wait_for(asyncio.shield(task), timeout=delay)
        except TimeoutError:
            placeholder = True
            await reply.post((render.THINKING_TEXT, [render.context(render.THINKING_TEXT)]))
            result = await task
    except QuestionError as error:
        message: Message = (str(error), [render.plain(str(error))])
        await (reply.replace if placeholder else reply.post)(message)
        return None
    except Exception:
        log.exception("answering failed")
        sorry = "Sorry, something went wrong while answering. Please try again in a moment."
        await (reply.replace if placeholder else reply.post)((sorry, [render.plain(sorry)]))
        return None
    await (reply.replace if placeholder else reply.post)(render_result(result))
    return result


def answer_message(answer: Answer, *, shareable: bool = False) -> Message:
    return render.answer_text(answer), render.answer_blocks(answer, shareable=shareable)


def question_text(text: str, bot_user_id: str | None) -> str:
    """The question without the mention of the bot itself."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return " ".join(text.split())


class SlackNotifier:
    """Messages someone who asked: in their thread or DM, or a DM opened for the purpose."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send(self, address: ReplyAddress, text: str) -> None:
        channel, _, thread_ts = address.conversation.partition("/")
        try:
            if not channel:
                opened = await self.client.conversations_open(users=address.user_id)
                channel = opened["channel"]["id"]
            kwargs: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
            await self.client.chat_postMessage(
                channel=channel, text=render.cut(text, 39_000), **kwargs
            )
        except SlackApiError as error:
            raise DeliveryError(
                f"Slack did not take the message: {error.response.get('error')}"
            ) from error


class SlackChannelPoster:
    """Posts to one channel (the digest channel, POLICYBOT_DIGEST_SLACK_CHANNEL)."""

    def __init__(self, client: AsyncWebClient, channel: str) -> None:
        self.client = client
        self.channel = channel

    async def post(self, text: str) -> None:
        try:
            await self.client.chat_postMessage(channel=self.channel, text=render.cut(text, 39_000))
        except SlackApiError as error:
            reason = error.response.get("error")
            raise DeliveryError(f"Slack did not take the message: {reason}") from error


def make_client(settings: Settings) -> AsyncWebClient:
    base_url = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    return AsyncWebClient(token=settings.slack_bot_token, base_url=base_url)


def build_slack_app(bot: PolicyBot, *, thinking_delay: float | None = None) -> AsyncApp:
    """The bolt app with every listener; registers the Slack notifier on `bot`."""
    settings = bot.settings
    if thinking_delay is None:
        thinking_delay = THINKING_DELAY
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    app = AsyncApp(
        client=make_client(settings),
        signing_secret=settings.slack_signing_secret,
        name="policybot",
    )
    bot.notifiers[PLATFORM] = SlackNotifier(app.client)
    if settings.digest_slack_channel:
        bot.channel_posters[PLATFORM] = SlackChannelPoster(
            app.client, settings.digest_slack_channel
        )
    seen = SeenEvents()

    # -- plumbing ---------------------------------------------------------------------------
    @app.middleware
    async def once_per_event(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> Any:
        # Slack retries an event it thinks went unanswered; the first delivery is being handled.
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and event_id and not seen.first_time(event_id):
            log.info("dropping a repeated delivery of %s", event_id)
            return BoltResponse(status=200, body="")
        return await next()

    async def to_review_channel(
        client: AsyncWebClient, question: str, question_id: int | None, reason: str, user: str
    ) -> None:
        if not settings.slack_review_channel:
            return
        asker = user if settings.show_askers else ""
        blocks = render.review_blocks(question, question_id, reason, asker)
        try:
            await client.chat_postMessage(
                channel=settings.slack_review_channel,
                text=f"Question for the policy team: {render.cut(question, 2000)}",
                blocks=blocks,
            )
        except SlackApiError:
            log.exception("could not post to the review channel")

    async def answer(
        client: AsyncWebClient,
        incoming: IncomingQuestion,
        reply: Reply,
        *,
        shareable: bool = False,
    ) -> None:
        result = await with_placeholder(
            bot.ask(incoming),
            reply,
            lambda a: answer_message(a, shareable=shareable),
            delay=thinking_delay,
        )
        if result is not None and not result.answered:
            await to_review_channel(
                client, result.question, result.question_id, "not_covered", incoming.asker
            )

    async def help_in(reply: Reply) -> None:
        await reply.post((render.HELP_TEXT, render.help_blocks()))

    # -- asking -----------------------------------------------------------------------------
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        if event.get("bot_id") or event.get("subtype"):
            return
        thread_ts = event.get("thread_ts") or event["ts"]
        reply = ChannelReply(client, event["channel"], thread_ts)
        text = question_text(event.get("text", ""), context.bot_user_id)
        if not text or text.lower() == "help":
            await help_in(reply)
            return
        incoming = IncomingQuestion(
            text=text,
            platform=PLATFORM,
            asker=event.get("user", ""),
            conversation=f"{event['channel']}/{thread_ts}",
        )
        await answer(client, incoming, reply)

    @app.event("message")
    async def on_message(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        # Only new messages people send the bot directly: no edits, deletions, joins, bots.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        user = event.get("user")
        if not user or user == context.bot_user_id:
            return
        reply = ChannelReply(client, event["channel"])
        text = question_text(event.get("text", ""), context.bot_user_id)
        if text.lower() in {"help", "?"}:
            await help_in(reply)
            return
        incoming = IncomingQuestion(
            text=text, platform=PLATFORM, asker=user, conversation=event["channel"]
        )
        await answer(client, incoming, reply)

    @app.command(COMMAND)
    async def on_command(
        ack: Any, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        text = " ".join((command.get("text") or "").split())
        if text.lower() in {"", "help"}:
            await ack(text=render.HELP_TEXT, blocks=render.help_blocks())
            return
        await ack()
        # The answer is private; conversation stays empty so a later follow-up goes by DM.
        incoming = IncomingQuestion(text=text, platform=PLATFORM, asker=command["user_id"])
        await answer(client, incoming, EphemeralReply(respond), shareable=True)

    @app.shortcut(CHECK_SHORTCUT)
    async def on_check(ack: Any, shortcut: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        text = (shortcut.get("message") or {}).get("text") or ""
        try:
            check = bot.check_post(text)
        except QuestionError as error:
            await respond(text=str(error), response_type="ephemeral", replace_original=False)
            return
        await respond(
            text=check.lead,
            blocks=render.check_blocks(check),
            response_type="ephemeral",
            replace_original=False,
        )

    # -- answers' buttons -------------------------------------------------------------------
    async def tell(
        body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, text: str
    ) -> None:
        """A private note to whoever clicked, under the message they clicked on."""
        if body.get("response_url"):
            await respond(text=text, response_type="ephemeral", replace_original=False)
            return
        channel = (body.get("channel") or {}).get("id")
        if channel:
            await client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=text)

    def question_id(action: dict[str, Any]) -> int | None:
        try:
            return int(action.get("value", ""))
        except ValueError:
            return None

    async def on_feedback(
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        qid = question_id(action)
        user = body["user"]["id"]
        kind = action["action_id"]
        try:
            if qid is None:
                raise KeyError(action.get("value"))
            if kind == render.ACTION_HELPFUL:
                bot.feedback(qid, helpful=True)
                note = "Thanks for the feedback! 👍"
            elif kind == render.ACTION_NOT_HELPFUL:
                bot.feedback(qid, helpful=False)
                note = "Thanks. I've put your question on the policy team's review list."
            else:
                bot.escalate(qid)
                note = "Sent to the policy team. They'll follow up with you."
        except KeyError:
            await tell(body, respond, client, "I couldn't find that question any more.")
            return
        await tell(body, respond, client, note)
        if kind != render.ACTION_HELPFUL and qid is not None:
            question = bot.storage.question(qid)["text"]
            reason = "not_helpful" if kind == render.ACTION_NOT_HELPFUL else "ask_policy_team"
            await to_review_channel(client, question, qid, reason, user)

    for action_id in (render.ACTION_HELPFUL, render.ACTION_NOT_HELPFUL, render.ACTION_ESCALATE):
        app.action(action_id)(on_feedback)

    @app.action(render.ACTION_SHARE)
    async def on_share(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        qid = question_id(action)
        try:
            if qid is None:
                raise KeyError(action.get("value"))
            shared = bot.logged_answer(qid)
        except KeyError:
            await respond(text="I couldn't find that answer any more.", replace_original=False)
            return
        await respond(
            text=render.answer_text(shared),
            blocks=render.shared_answer_blocks(shared, body["user"]["id"]),
            response_type="in_channel",
            replace_original=False,
        )
        await respond(delete_original=True)

    # -- App Home ---------------------------------------------------------------------------
    async def in_policy_team(client: AsyncWebClient, user: str) -> bool:
        if user in settings.slack_policy_team:
            return True
        if not settings.slack_policy_team_group:
            return False
        try:
            members = await client.usergroups_users_list(usergroup=settings.slack_policy_team_group)
        except SlackApiError:
            log.exception("could not read the policy team's user group")
            return False
        return user in (members.get("users") or [])

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event["user"]
        open_questions = (
            bot.open_questions(limit=200) if await in_policy_team(client, user) else None
        )
        view = render.home_view(bot.storage.active_versions(), open_questions)
        await client.views_publish(user_id=user, view=view)

    return app


def add_routes(web_app: web.Application, bot: PolicyBot, **options: Any) -> AsyncApp:
    """`POST /slack/events`: the Events API, interactivity and the slash command, signed."""
    if not bot.settings.slack_signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set")
    slack = build_slack_app(bot, **options)

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await slack.async_dispatch(await to_bolt_request(request)))

    web_app.router.add_post("/slack/events", slack_events)
    return slack


async def serve_socket_mode(bot: PolicyBot, **options: Any) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    if not bot.settings.slack_app_token:
        raise ConfigError("SLACK_APP_TOKEN (an app-level token, xapp-…) is not set")
    app = build_slack_app(bot, **options)
    handler = AsyncSocketModeHandler(app, bot.settings.slack_app_token)
    try:
        await handler.start_async()
    finally:
        # Stops the client's own reconnecting loops, which would outlive a cancelled task.
        await handler.close_async()


def run_socket_mode(bot: PolicyBot) -> None:
    """`policybot slack`: connect to Slack over Socket Mode; no public URL needed."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_socket_mode(bot))
