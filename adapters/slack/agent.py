"""Slack's agent surface: suggested prompts when someone opens their DM with the bot, the
thread's status ("Looking in the policy…") and title while a question is answered, and LLM
answers streamed into the thread (chat.startStream / appendStream / stopStream), ending with
the citations and the feedback buttons.

Every agent call is a nicety: a workspace without the agent view (or streaming) refuses it
(`not_allowed`, `unknown_method`…), and the answer goes out as it always has. With an LLM,
the core hands out the summary's draft as the model writes it (`PolicyBot.ask_streamed`):
in an agent thread the stream starts with the first draft and grows by what each later one
adds, at most one call per STREAM_INTERVAL; the finished answer stops it with the clauses and
buttons, or, when it is not the draft (the check refused the summary), replaces it whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.replies import reply_in_time
from adapters.slack import blocks as render
from adapters.slack.listening import NOT_AN_AGENT, AgentSurface, Listening, listening_in
from adapters.slack.messages import THINKING, Message, answer_message, text_message
from bot import messages
from bot.models import Answer, IncomingQuestion
from bot.streaming import AnswerStream, DraftText

log = logging.getLogger(__name__)

#: Suggested prompts Slack shows at most, and the length of a prompt's title.
MAX_PROMPTS = 4
MAX_PROMPT_TITLE = 75
#: A thread's title: the question, cut.
MAX_TITLE = 80
#: Characters the SDK's streamer gathers before each call: a long summary is a few calls,
#: far under chat.appendStream's rate limit (Tier 4), each far under its 12,000 characters.
STREAM_BATCH = 600
#: Seconds at least between two calls streaming a draft: chat.appendStream is rate limited
#: per workspace (Tier 4), shared by every answer being written at once.
STREAM_INTERVAL = 1.0


async def agent_call(what: str, call: Any, surface: AgentSurface | None = None) -> bool:
    """Await one agent-surface call; False (and one log line with Slack's error code) when the
    workspace refused it or it failed: nothing the answer depends on."""
    try:
        await call
    except SlackApiError as error:
        code = str(error.response.get("error", "?"))
        log.info("Slack refused %s (%s)", what, code)
        if surface is not None and code in NOT_AN_AGENT:
            surface.refused()
        return False
    except Exception as error:  # a lost connection must not cost the answer either
        log.warning("could not %s (%s)", what, type(error).__name__)
        return False
    return True


def suggested_prompts(questions: list[str]) -> list[dict[str, str]]:
    return [
        {"title": render.cut(q[:1].upper() + q[1:], MAX_PROMPT_TITLE), "message": q}
        for q in questions[:MAX_PROMPTS]
    ]


async def on_messages_tab(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The DM opened (agent view: `app_home_opened` with tab "messages"): a greeting naming
    the active policy, over suggested questions about its sections."""
    channel = event.get("channel")
    if not channel:
        return
    bot = listening_in(context).bot
    titles = [v.title or v.document for v in bot.active_versions()]
    await agent_call(
        "the suggested prompts",
        client.assistant_threads_setSuggestedPrompts(
            channel_id=channel,
            title=messages.greeting(titles),
            prompts=suggested_prompts(bot.example_questions(MAX_PROMPTS)),
        ),
        listening_in(context).agent,
    )


async def on_context_changed(event: dict[str, Any]) -> None:
    """What the user is viewing changed (`app_context_changed`): answers come from the policy
    alone, so it is acknowledged and neither used nor kept."""


@dataclass(frozen=True)
class Streamed:
    """An answer to stream: its lead as markdown, then the blocks that end the stream; `whole`
    is the same answer as one message, for when it cannot be streamed."""

    text: str
    blocks: list[dict[str, Any]]
    whole: Message


SlackMessage = Message | Streamed


def markdown_draft(text: str) -> str:
    """A draft as the stream writes it: escaped as the finished lead is, no longer than it."""
    return render.markdown_escape(render.cut(text, render.MAX_SECTION_TEXT))


def whole(message: SlackMessage) -> Message:
    return message.whole if isinstance(message, Streamed) else message


def text_reply(text: str) -> SlackMessage:
    return text_message(text)


def rendered(answer: Answer) -> SlackMessage:
    """An LLM's answer is streamed; an extractive or reviewed one is posted whole."""
    message = answer_message(answer)
    if answer.source != "llm":
        return message
    return Streamed(
        render.streamed_text(answer), render.cited_blocks(answer, shareable=False), message
    )


@dataclass
class ThreadReply:
    """An answer in a thread (or a DM): streamed when it is a `Streamed` one and `streams`;
    any stream that fails ends as the whole message (chat.update of what was streamed, or a
    new post)."""

    client: AsyncWebClient
    channel: str
    #: The thread to stream into and post in; None: top level (a DM without the agent view).
    thread_ts: str | None
    recipient_user: str
    recipient_team: str | None
    streams: bool
    ts: str | None = None
    interval: float = field(default_factory=lambda: STREAM_INTERVAL)
    #: The stream the drafts went into, and the markdown it holds so far.
    _live: AsyncChatStream | None = None
    _sent: str = ""
    _last_call: float | None = None
    _broken: bool = False

    async def follow(self, stream: AnswerStream) -> Answer:
        """The stream's answer; its drafts meanwhile streamed into the thread (once it is an
        agent thread that `streams`). A draft arriving sooner than `interval` after the last
        call waits for the next one, which carries its text too."""
        async for event in stream:
            if isinstance(event, DraftText):
                await self._draft(event.text)
            else:
                return event
        raise RuntimeError("the answer stream ended without its answer")

    async def _draft(self, text: str) -> None:
        if not (self.streams and self.thread_ts) or self._broken or self.ts is not None:
            # No stream where the placeholder was posted: the answer replaces that.
            return
        markdown = markdown_draft(text)
        now = time.monotonic()
        if not markdown.startswith(self._sent) or len(markdown) == len(self._sent):
            return
        if self._last_call is not None and now - self._last_call < self.interval:
            return
        self._last_call = now
        try:
            if self._live is None:
                # Each append is sent at once: the batching is this reply's, by time.
                self._live = await self.client.chat_stream(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    recipient_user_id=self.recipient_user or None,
                    recipient_team_id=self.recipient_team,
                    buffer_size=1,
                )
            await self._live.append(markdown_text=markdown[len(self._sent) :])
            self._sent = markdown
        except Exception as error:  # the finished answer still goes out, whole
            code = error.response.get("error", "?") if isinstance(error, SlackApiError) else ""
            log.warning("streaming a draft failed (%s %s)", type(error).__name__, code)
            self._broken = True

    async def post(self, message: SlackMessage) -> None:
        if self._live is not None:
            if message == THINKING:
                return  # the stream already shows the answer on its way
            await self._finish(self._live, message)
            return
        if isinstance(message, Streamed) and self.streams and self.thread_ts:
            await self._stream(message)
            return
        await self._post(whole(message))

    async def _finish(self, live: AsyncChatStream, message: SlackMessage) -> None:
        """End the stream the drafts went into: with the rest of the answer and its blocks
        when the answer is the draft finished; otherwise (or when that fails) what was
        streamed is replaced by the whole answer, or the answer follows as a new message."""
        continuing = isinstance(message, Streamed) and message.text.startswith(self._sent)
        if not self._broken:
            try:
                if isinstance(message, Streamed) and continuing:
                    rest = message.text[len(self._sent) :]
                    await live.stop(markdown_text=rest or None, blocks=message.blocks)
                    self.ts = live.ts
                    return
                await live.stop()
            except Exception as error:
                code = error.response.get("error", "?") if isinstance(error, SlackApiError) else ""
                log.warning("ending a streamed answer failed (%s %s)", type(error).__name__, code)
        text, blocks = whole(message)
        if live.ts is not None:
            try:
                await self.client.chat_update(
                    channel=self.channel, ts=live.ts, text=text, blocks=blocks
                )
                self.ts = live.ts
                return
            except SlackApiError as error:
                log.warning(
                    "could not complete the streamed answer (%s)", error.response.get("error")
                )
        await self._post(whole(message))

    async def replace(self, message: SlackMessage) -> None:
        if self.ts is None:
            await self.post(message)
            return
        text, blocks = whole(message)
        await self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)

    async def _post(self, message: Message) -> None:
        text, blocks = message
        kwargs: dict[str, Any] = {"thread_ts": self.thread_ts} if self.thread_ts else {}
        response = await self.client.chat_postMessage(
            channel=self.channel, text=text, blocks=blocks, **kwargs
        )
        self.ts = response.get("ts")

    async def _stream(self, message: Streamed) -> None:
        assert self.thread_ts is not None
        stream = await self.client.chat_stream(
            channel=self.channel,
            thread_ts=self.thread_ts,
            recipient_user_id=self.recipient_user or None,
            recipient_team_id=self.recipient_team,
            buffer_size=STREAM_BATCH,
        )
        try:
            for piece in render.stream_pieces(message.text):
                await stream.append(markdown_text=piece)
            await stream.stop(blocks=message.blocks)
            self.ts = stream.ts
            return
        except Exception as error:  # whatever broke the stream, the whole answer still goes out
            code = error.response.get("error", "?") if isinstance(error, SlackApiError) else ""
            log.warning("streaming an answer failed (%s %s)", type(error).__name__, code)
        text, blocks = message.whole
        if stream.ts is not None:
            try:
                await self.client.chat_update(
                    channel=self.channel, ts=stream.ts, text=text, blocks=blocks
                )
                self.ts = stream.ts
                return
            except SlackApiError as error:
                log.warning(
                    "could not complete the streamed answer (%s)", error.response.get("error")
                )
        await self._post(message.whole)


async def answer_in_thread(
    listening: Listening,
    incoming: IncomingQuestion,
    reply: ThreadReply,
    received: int | None,
    *,
    status_thread: str | None,
    title: bool,
) -> None:
    """Answer `incoming` into `reply`. With `status_thread` (an agent thread) the answer goes
    in that thread; with `title` (the thread's first question) the thread is named after the
    question first, and Slack's reply to that says whether this is an agent view at all. An
    answer not ready within the thinking delay (or any LLM's, which takes seconds) has the
    thread's status say the policy is being looked in, instead of the "Thinking…"
    placeholder; where Slack refuses the agent surface, the placeholder comes as before.
    Most answers are ready in milliseconds: a status for them would be one more Web API call
    per question for nobody to see."""
    bot = listening.bot
    # Only an LLM writes an answer worth watching grow; the others come whole.
    llm = bot.settings.llm_configured
    work = asyncio.ensure_future(
        reply.follow(bot.ask_streamed(incoming, received=received))
        if llm
        else bot.ask(incoming, received=received)
    )
    agent_thread = status_thread if listening.agent.available else None
    if agent_thread and title:
        named = await agent_call(
            "the thread's title",
            reply.client.assistant_threads_setTitle(
                channel_id=reply.channel,
                thread_ts=agent_thread,
                title=render.cut(incoming.text, MAX_TITLE),
            ),
            listening.agent,
        )
        agent_thread = agent_thread if named else None
    delay = listening.thinking_delay
    thinking: SlackMessage | None = THINKING
    if agent_thread:
        # The agent view: the conversation is the question's thread, streamed into.
        reply.thread_ts, reply.streams = agent_thread, True
        if not llm:
            await asyncio.wait({work}, timeout=delay)
            delay = 0.0  # waited already: a placeholder, if any, goes at once
        if work.done() or await agent_call(
            "the thread's status",
            reply.client.assistant_threads_setStatus(
                channel_id=reply.channel, thread_ts=agent_thread, status=messages.LOOKING
            ),
            listening.agent,
        ):
            thinking = None
    result = await reply_in_time(
        work,
        reply,
        render=rendered,
        text=text_reply,
        thinking=thinking,
        delay=delay,
    )
    await bot.after_reply(incoming, result, received)
