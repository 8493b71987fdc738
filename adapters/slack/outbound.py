"""What the bot sends to Slack outside a listener: the Web API client and its shared session,
the `Notifier` (askers), the digest `ChannelPoster`, the review-channel `ReviewPoster` and the
`LateReplier` (questions a stopped process acknowledged), registered on the core by
`register_outbound` (also by the CLI's `digest` and `questions answer`).

Their calls run on the loop of their client's shared session (`on_session_loop`): the core may
call them from the loop answering Slack's questions (adapters.slack.answering), and a
session's pooled connections belong to the loop that opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.digest_chart import alt_text, weekly_png
from adapters.loops import on_loop
from adapters.slack import blocks as render
from adapters.slack.messages import PLATFORM, ChannelReply, Message, answer_message, text_message
from bot import messages
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.notify import DeliveryError, LateReply, ReplyAddress, ReviewNotice
from bot.use_cases import WeekCounts

log = logging.getLogger(__name__)

#: Further attempts at a Slack Web API call after a 429 (Retry-After honoured), a 500/503 or a
#: dropped connection.
SLACK_RETRIES = 2

#: The loop each client's shared session was opened on (`shared_session`).
_SESSION_LOOPS: weakref.WeakKeyDictionary[AsyncWebClient, asyncio.AbstractEventLoop] = (
    weakref.WeakKeyDictionary()
)


class _Sending(Protocol):
    client: AsyncWebClient


S = TypeVar("S", bound=_Sending)
P = ParamSpec("P")
T = TypeVar("T")


def on_session_loop(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """`method` run on the loop its object's client session was opened on, whichever loop
    calls it (here, when the client has no shared session)."""

    async def on_its_loop(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await on_loop(_SESSION_LOOPS.get(self.client), method(self, *args, **kwargs))

    functools.update_wrapper(on_its_loop, method)
    return on_its_loop


def late_message(reply: LateReply) -> Message:
    """A LateReply as Slack's message: the answer, the check or why neither, with the
    apology first when it is late."""
    message: Message
    if reply.answer is not None:
        message = answer_message(reply.answer)
    elif reply.check is not None:
        message = reply.check.lead, render.check_blocks(reply.check)
    else:
        message = text_message(reply.refusal or messages.APOLOGY)
    if not reply.late:
        return message
    text, blocks = message
    return f"{messages.LATE}: {text}", render.late_blocks(reply.question, blocks)


class SlackLateReplier:
    """Answers, on start, what a stopped process acknowledged: in the mention's thread or the
    DM it was asked in, and by DM for `/policy` and the shortcut (their response_url is not
    kept: it is a credential for the conversation)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    @on_session_loop
    async def send(self, reply: LateReply) -> None:
        channel, _, thread_ts = reply.address.conversation.partition("/")
        with refusal_as_delivery_error():
            if not channel:
                opened = await self.client.conversations_open(users=reply.address.user_id)
                channel = opened["channel"]["id"]
            await ChannelReply(self.client, channel, thread_ts or None).post(late_message(reply))


@contextlib.contextmanager
def refusal_as_delivery_error() -> Iterator[None]:
    """Slack refusing an outbound message, as the core's DeliveryError (kept for a retry)."""
    try:
        yield
    except SlackApiError as error:
        reason = error.response.get("error")
        raise DeliveryError(f"Slack did not take the message: {reason}") from error


class SlackNotifier:
    """Messages someone who asked: in their thread or DM, or a DM opened for the purpose."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    @on_session_loop
    async def send(self, address: ReplyAddress, text: str) -> None:
        channel, _, thread_ts = address.conversation.partition("/")
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        with refusal_as_delivery_error():
            if not channel:
                opened = await self.client.conversations_open(users=address.user_id)
                channel = opened["channel"]["id"]
            await self.client.chat_postMessage(
                channel=channel, text=render.cut(text, 39_000), **extra
            )


#: The digest chart's file name and title in Slack.
CHART_FILE = "policybot-questions-per-week.png"
CHART_TITLE = "Questions per week, by how they were answered"


class SlackChannelPoster:
    """Posts to one channel (the digest channel, POLICYBOT_DIGEST_SLACK_CHANNEL); the
    digest's chart follows its text as an image in the channel (files.getUploadURLExternal,
    the upload, files.completeUploadExternal: the `files:write` scope)."""

    def __init__(self, client: AsyncWebClient, channel: str) -> None:
        self.client = client
        self.channel = channel

    @on_session_loop
    async def post(self, text: str, weeks: Sequence[WeekCounts] = ()) -> None:
        with refusal_as_delivery_error():
            await self.client.chat_postMessage(channel=self.channel, text=render.cut(text, 39_000))
        if weeks:
            await self._post_chart(weeks)

    async def _post_chart(self, weeks: Sequence[WeekCounts]) -> None:
        # The digest is posted: a chart Slack refuses (no files:write, say) is logged, not
        # raised, or the digest would be given up and posted a second time by the next run.
        try:
            await self.client.files_upload_v2(
                channel=self.channel,
                content=weekly_png(weeks),
                filename=CHART_FILE,
                title=CHART_TITLE,
                alt_txt=alt_text(weeks)[:1000],
            )
        except SlackApiError as error:
            log.warning(
                "the digest's chart was not posted to Slack: %s", error.response.get("error")
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("the digest's chart was not posted to Slack: %s", type(error).__name__)


class SlackReviewPoster:
    """Posts questions that reach the review list to the policy team's channel
    (POLICYBOT_SLACK_REVIEW_CHANNEL), with *Answer* / *Dismiss* for their group."""

    def __init__(self, client: AsyncWebClient, channel: str) -> None:
        self.client = client
        self.channel = channel

    @on_session_loop
    async def post(self, notice: ReviewNotice) -> None:
        blocks = render.review_blocks(
            notice.question, notice.question_id, notice.reason, notice.asker, notice.group_id
        )
        text = f"Question for the policy team: {render.escaped_cut(notice.question, 2000)}"
        with refusal_as_delivery_error():
            await self.client.chat_postMessage(channel=self.channel, text=text, blocks=blocks)


def register_outbound(bot: PolicyBot, client: AsyncWebClient | None = None) -> AsyncWebClient:
    """Register the Slack notifier with the core, and the digest and review posters when their
    channels are configured; also for commands that send without running the app (`digest`,
    `questions answer`)."""
    settings = bot.settings
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    client = client or make_client(settings)
    bot.notifiers[PLATFORM] = SlackNotifier(client)
    if settings.digest_slack_channel:
        bot.channel_posters[PLATFORM] = SlackChannelPoster(client, settings.digest_slack_channel)
    if settings.slack_review_channel:
        bot.review_posters[PLATFORM] = SlackReviewPoster(client, settings.slack_review_channel)
    return client


def make_client(settings: Settings) -> AsyncWebClient:
    base_url = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=base_url,
        # Slack answers 429 with Retry-After when rate limited, and 500/503 in a bad moment:
        # wait as told (or back off) and try again, a bounded number of times.
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=SLACK_RETRIES),
            AsyncRateLimitErrorRetryHandler(max_retry_count=SLACK_RETRIES),
            AsyncServerErrorRetryHandler(max_retry_count=SLACK_RETRIES),
        ],
    )


@contextlib.asynccontextmanager
async def shared_session(client: AsyncWebClient) -> AsyncIterator[None]:
    """One HTTP session for every Web API call `client` (and bolt's per-request copies of it)
    makes while the app runs, so calls reuse pooled connections; without it slack_sdk opens and
    closes a session, and a connection, per call. Closed on the way out."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout))
    client.session = session
    _SESSION_LOOPS[client] = asyncio.get_running_loop()
    try:
        yield
    finally:
        # A call still under way after this makes a session of its own, as without one.
        client.session = None
        _SESSION_LOOPS.pop(client, None)
        await session.close()
