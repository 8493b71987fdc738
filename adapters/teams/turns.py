"""What every Teams job shares: reading a turn's activity, replying in its conversation (with
"Thinking…" for slow work), and `HandlerContext`, the core and timings a job is handed."""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from microsoft_agents.activity import Activity, ChannelAccount, Entity, StreamInfo
from microsoft_agents.hosting.core import CardFactory, MessageFactory, TurnContext

from adapters.replies import reply_in_time
from bot import messages
from bot.core import Delivery, PolicyBot, Receipt
from bot.models import Actor, Answer
from bot.streaming import AnswerStream, DraftText

log = logging.getLogger(__name__)

PLATFORM = "teams"

_AT_TAG = re.compile(r"</?at>", re.IGNORECASE)

T = TypeVar("T")

#: The receipt of the message the turn under way acts on (a question, a button, a file, a
#: command), when the route kept it before the acknowledgement (`app.MessagesRoute`); None
#: for a turn run without one, handled as new.
RECEIPT: ContextVar[Receipt | None] = ContextVar("teams_receipt", default=None)


async def turn_delivery() -> Delivery:
    """What the database made of the message this turn acts on, once it knows: `first`
    False when the Bot Framework sent it again and another process (or this one before a
    restart) took it; a question's `received_id`. A turn run without a receipt is a first."""
    receipt = RECEIPT.get()
    return Delivery(True) if receipt is None else await receipt.delivery()


async def first_delivery() -> bool:
    """For a turn acting on a message that carries no question (a button, a file, a
    command), acknowledged before it ran: whether this is its first delivery to any process."""
    return (await turn_delivery()).first


# -- reading activities ------------------------------------------------------------------------
def is_personal(activity: Activity) -> bool:
    conversation = activity.conversation
    kind = getattr(conversation, "conversation_type", None) if conversation else None
    return kind in (None, "", "personal")


def conversation_key(activity: Activity) -> str:
    """The conversation a question continues: Teams' conversation id, which names the reply
    chain in a channel (";messageid=<its root>") and is the chat itself in a personal or group
    chat."""
    conversation = activity.conversation
    return str(getattr(conversation, "id", "") or "") if conversation else ""


def mentions_recipient(activity: Activity) -> list[dict[str, Any]]:
    """The mention entities that name this bot."""
    recipient_id = activity.recipient.id if activity.recipient else None
    found = []
    for entity in activity.entities or []:
        if (entity.type or "").lower() != "mention":
            continue
        # As sent on the wire: the SDK reads a mention into its own model, other entities not.
        properties: dict[str, Any] = entity.model_dump(by_alias=True, exclude_none=True)
        mentioned = properties.get("mentioned")
        if recipient_id and isinstance(mentioned, dict) and mentioned.get("id") == recipient_id:
            found.append(properties)
    return found


def addressed_to_bot(activity: Activity) -> bool:
    """Personal chat always; channels and group chats only when the bot is @mentioned."""
    return is_personal(activity) or bool(mentions_recipient(activity))


def question_text(activity: Activity) -> str:
    """The message without the bot's @mention; other people's mentions keep their names."""
    text = activity.text or ""
    for mention in mentions_recipient(activity):
        mention_text = mention.get("text") or ""
        if mention_text:
            text = text.replace(mention_text, " ")
    return " ".join(html.unescape(_AT_TAG.sub("", text)).split())


def actor(sender: ChannelAccount) -> Actor:
    """An admin or reviewer: known to the core by their AAD object id, recorded with the name."""
    return Actor(PLATFORM, sender.aad_object_id or "", sender.name or "")


def parse_id(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw > 0 else None
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    return None


# -- replying ----------------------------------------------------------------------------------
def card_activity(content: dict[str, Any], summary: str) -> Activity:
    reply: Activity = MessageFactory.attachment(CardFactory.adaptive_card(content))
    reply.summary = summary
    return reply


def text_activity(text: str) -> Activity:
    reply: Activity = MessageFactory.text(text)
    return reply


#: The informative update that opens a streamed answer (Teams shows it in its progress line).
LOOKING_IN_POLICY = "Looking in the policy…"
STREAM_INFO = "streaminfo"
#: Seconds at least between two streaming updates: Teams takes about one a second per stream
#: and throttles a bot that sends more (read when a reply is made, so a test can change it).
STREAM_INTERVAL = 1.0


def stream_info(kind: str, *, stream_id: str | None = None, sequence: int | None = None) -> Entity:
    fields: dict[str, Any] = {"type": STREAM_INFO, "stream_type": kind}
    if stream_id is not None:
        fields["stream_id"] = stream_id
    if sequence is not None:
        fields["stream_sequence"] = sequence
    return StreamInfo(**fields)


def informative_activity(text: str = LOOKING_IN_POLICY) -> Activity:
    """The first activity of a stream: a typing activity with Teams' informative update."""
    return Activity(type="typing", text=text, entities=[stream_info("informative", sequence=1)])


@dataclass
class TurnReply:
    """A reply in the turn's conversation; replacing it edits the message (update_activity)."""

    turn_context: TurnContext
    sent_id: str | None = None

    async def post(self, activity: Activity) -> None:
        sent = await self.turn_context.send_activity(activity)
        self.sent_id = sent.id if sent is not None else None

    async def replace(self, activity: Activity) -> None:
        if not self.sent_id:
            await self.post(activity)
            return
        activity.id = self.sent_id
        await self.turn_context.update_activity(activity)


@dataclass
class StreamedReply(TurnReply):
    """A reply streamed as Teams streams in a personal chat: posting the informative update
    starts the stream, and the answer replacing it is the stream's final message. When the
    stream cannot start or end (Teams refuses it), `replies.reply_in_time` falls back to
    posting the answer as one plain message, which `post` sends without stream marks."""

    stream_id: str | None = None
    #: The last streamSequence sent (the informative update is 1).
    sequence: int = 1
    interval: float = field(default_factory=lambda: STREAM_INTERVAL)
    #: Streaming updates sent, and drafts not sent because the last update was too recent.
    updates: int = 0
    skipped: int = 0
    _last_update: float | None = None
    _updating: bool = True

    async def follow(self, stream: AnswerStream) -> Answer:
        """The stream's answer; its drafts meanwhile as streaming updates, each the whole text
        so far, at most one per `interval`. A draft arriving sooner is skipped (a later one
        or the final message carries its text). An update Teams refuses ends the updates,
        not the answer."""
        async for event in stream:
            if isinstance(event, DraftText):
                await self.update(event.text)
            else:
                return event
        raise RuntimeError("the answer stream ended without its answer")

    async def update(self, text: str) -> None:
        if self.stream_id is None or not self._updating:
            return
        now = time.monotonic()
        if self._last_update is not None and now - self._last_update < self.interval:
            self.skipped += 1
            return
        self._last_update = now
        self.sequence += 1
        update = Activity(
            type="typing",
            text=text,
            entities=[stream_info("streaming", stream_id=self.stream_id, sequence=self.sequence)],
        )
        try:
            await self.turn_context.send_activity(update)
            self.updates += 1
        except Exception as error:
            log.warning("Teams refused a streaming update (%s); the final message follows", error)
            self._updating = False

    async def post(self, activity: Activity) -> None:
        if activity.type == "typing" and _stream_of(activity) is not None:
            sent = await self.turn_context.send_activity(activity)
            if sent is None or not sent.id:
                raise RuntimeError("Teams gave the stream no id")
            self.stream_id = sent.id
            return
        await super().post(_without_stream(activity))

    async def replace(self, activity: Activity) -> None:
        if self.stream_id is None:
            await self.post(activity)
            return
        final = activity.model_copy(deep=True)
        final.entities = [*(final.entities or []), stream_info("final", stream_id=self.stream_id)]
        sent = await self.turn_context.send_activity(final)
        # The stream becomes the message: its id is the one Teams' feedback names.
        self.sent_id = (sent.id if sent is not None else None) or self.stream_id


def _stream_of(activity: Activity) -> Entity | None:
    return next((e for e in activity.entities or [] if e.type == STREAM_INFO), None)


def _without_stream(activity: Activity) -> Activity:
    if _stream_of(activity) is None:
        return activity
    plain = activity.model_copy(deep=True)
    plain.entities = [e for e in plain.entities or [] if e.type != STREAM_INFO]
    return plain


@dataclass(frozen=True)
class HandlerContext:
    """What the turn handler's jobs are handed besides the turn: the core, how long an answer
    may take before "Thinking…" is shown, and how long a file download may take."""

    policy_bot: PolicyBot
    placeholder_after: float
    download_timeout: float

    async def reply_when_ready(
        self,
        turn_context: TurnContext,
        work: Awaitable[T],
        render: Callable[[T], Activity],
        reply: TurnReply | None = None,
    ) -> T | None:
        if isinstance(reply, StreamedReply):
            # A stream opens at once with its informative update, in place of "Thinking…".
            thinking, delay = informative_activity(), 0.0
        else:
            thinking, delay = text_activity(messages.THINKING), self.placeholder_after
        return await reply_in_time(
            work,
            reply or TurnReply(turn_context),
            render=render,
            text=text_activity,
            thinking=thinking,
            delay=delay,
        )
