"""Slack listeners that take a question: a DM, a mention, `/policy`, the message shortcut
(check a draft post), and the answer's buttons (feedback, escalation, sharing)."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.replies import Reply, reply_in_time
from adapters.slack import blocks as render
from adapters.slack.agent import ThreadReply, answer_in_thread
from adapters.slack.listening import (
    Listening,
    answer_once,
    clicked_id,
    first_delivery,
    listening_in,
    tell,
)
from adapters.slack.messages import (
    PLATFORM,
    SHARED_ANSWER_GONE,
    THINKING,
    ChannelReply,
    EphemeralReply,
    Message,
    answer_message,
    text_message,
)
from adapters.slack.uploads import on_files
from bot.core import ASK_POLICY_TEAM, CHECK, HELPFUL, NOT_HELPFUL
from bot.models import Actor, IncomingQuestion, QuestionError

log = logging.getLogger(__name__)

#: The message shortcut's callback id (see slack-manifest.yml).
CHECK_SHORTCUT = "policybot_check_post"
COMMAND = "/policy"
#: The message subtype of a file sent in a DM: an admin uploading a policy.
FILE_SHARE = "file_share"

log = logging.getLogger(__name__)

#: Slack's feedback buttons, by the value of the one pressed, as the core's reactions.
FEEDBACK_REACTIONS = {render.FEEDBACK_POSITIVE: HELPFUL, render.FEEDBACK_NEGATIVE: NOT_HELPFUL}

#: An answer's buttons, as the core's reactions (what the asker is told is the core's too);
#: Helpful / Not helpful are those of answers posted before the feedback buttons.
BUTTON_REACTIONS = {
    render.ACTION_HELPFUL: HELPFUL,
    render.ACTION_NOT_HELPFUL: NOT_HELPFUL,
    render.ACTION_ESCALATE: ASK_POLICY_TEAM,
}

#: Kinds of question (as `ReceivedQuestions.receive` keeps them until answered), besides CHECK: the
#: message shortcut's draft post.
DM, MENTION, SLASH = "dm", "mention", "command"


def question_text(text: str, bot_user_id: str | None) -> str:
    """The question without the mention of the bot itself."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return " ".join(text.split())


def thread_key(event: dict[str, Any]) -> str:
    """The Slack thread a message is in, as "channel/thread ts": a message that starts one
    (a channel @mention, a question in the agent view) names its own ts, which is the thread's,
    so the follow-ups in its thread find it."""
    return f"{event['channel']}/{event.get('thread_ts') or event['ts']}"


def mention_question(event: dict[str, Any], bot_user_id: str | None) -> IncomingQuestion | None:
    """The question of an app_mention event; None for a bot's or an edit, or for `help`."""
    if event.get("bot_id") or event.get("subtype"):
        return None
    text = question_text(event.get("text", ""), bot_user_id)
    if not text or text.lower() == "help":
        return None
    return IncomingQuestion(
        text=text,
        platform=PLATFORM,
        asker=event.get("user", ""),
        conversation=thread_key(event),
        conversation_key=thread_key(event),
    )


def dm_question(event: dict[str, Any], bot_user_id: str | None) -> IncomingQuestion | None:
    """The question of a message someone sent the bot directly; None for anything else (files,
    edits, bots, the bot itself) and for `help`."""
    if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
        return None
    user = event.get("user")
    if not user or user == bot_user_id:
        return None
    text = question_text(event.get("text", ""), bot_user_id)
    if text.lower() in {"help", "?"}:
        return None
    return IncomingQuestion(
        text=text,
        platform=PLATFORM,
        asker=user,
        conversation=event["channel"],
        conversation_key=thread_key(event),
    )


def command_question(command: dict[str, Any]) -> IncomingQuestion | None:
    """The question of `/policy …`; None for `/policy` alone or `/policy help`. The answer is
    private, so conversation stays empty: a later follow-up goes by DM."""
    text = " ".join((command.get("text") or "").split())
    if text.lower() in {"", "help"}:
        return None
    return IncomingQuestion(text=text, platform=PLATFORM, asker=str(command.get("user_id") or ""))


def question_in(
    body: dict[str, Any], bot_user_id: str | None
) -> tuple[str, IncomingQuestion] | None:
    """(its kind, the question) a delivery carries, as its listener will answer it; None when
    it carries none (a button, a file, `help`…)."""
    if body.get("type") == "event_callback":
        event = body.get("event") or {}
        if event.get("type") == "app_mention":
            asked = mention_question(event, bot_user_id)
            return (MENTION, asked) if asked else None
        if event.get("type") == "message":
            asked = dm_question(event, bot_user_id)
            return (DM, asked) if asked else None
        return None
    if body.get("command") == COMMAND:
        asked = command_question(body)
        return (SLASH, asked) if asked else None
    if body.get("type") == "message_action" and body.get("callback_id") == CHECK_SHORTCUT:
        draft = str((body.get("message") or {}).get("text") or "")
        user = str((body.get("user") or {}).get("id") or "")
        return CHECK, IncomingQuestion(text=draft, platform=PLATFORM, asker=user)
    return None


async def answer(
    listening: Listening,
    incoming: IncomingQuestion,
    reply: Reply[Message],
    context: AsyncBoltContext,
    *,
    shareable: bool = False,
) -> None:
    bot = listening.bot
    delivery = await answer_once(context)
    if not delivery.first:
        log.info("dropping a question another process took first")
        return
    received = delivery.received_id
    result = await reply_in_time(
        bot.ask(incoming, received=received),
        reply,
        render=lambda a: answer_message(a, shareable=shareable),
        text=text_message,
        thinking=THINKING,
        delay=listening.thinking_delay,
    )
    await bot.after_reply(incoming, result, received)


async def answer_agent_thread(
    listening: Listening,
    incoming: IncomingQuestion,
    reply: ThreadReply,
    context: AsyncBoltContext,
    *,
    status_thread: str | None,
    title: bool,
) -> None:
    """`answer_in_thread`, once across processes: a question another process took first (its
    spooled delivery recorded there) is dropped here."""
    delivery = await answer_once(context)
    if not delivery.first:
        log.info("dropping a question another process took first")
        return
    await answer_in_thread(
        listening,
        incoming,
        reply,
        delivery.received_id,
        status_thread=status_thread,
        title=title,
    )


async def help_in(reply: Reply[Message]) -> None:
    await reply.post((render.HELP_TEXT, render.help_blocks()))


async def on_mention(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    if event.get("bot_id") or event.get("subtype"):
        return
    thread_ts = event.get("thread_ts") or event["ts"]
    incoming = mention_question(event, context.bot_user_id)
    if incoming is None:
        await help_in(ChannelReply(client, event["channel"], thread_ts))
        return
    # A channel thread is no agent thread: no status there, the placeholder if slow; an LLM
    # answer streamed to the asker's thread.
    reply = ThreadReply(
        client,
        event["channel"],
        thread_ts,
        recipient_user=incoming.asker,
        recipient_team=context.team_id,
        streams=True,
    )
    await answer_agent_thread(
        listening_in(context),
        incoming,
        reply,
        context,
        status_thread=None,
        title=False,
    )


async def on_message(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    if event.get("channel_type") != "im" or event.get("bot_id"):
        return
    subtype = event.get("subtype")
    if subtype == FILE_SHARE and event.get("user") != context.bot_user_id:
        if not await first_delivery(context):
            return
        await on_files(
            listening_in(context).bot,
            client,
            event["channel"],
            event.get("user", ""),
            event.get("files"),
        )
        return
    # Only new messages people send the bot directly: no edits, deletions, joins, bots.
    if subtype:
        return
    user = event.get("user")
    if not user or user == context.bot_user_id:
        return
    incoming = dm_question(event, context.bot_user_id)
    thread_ts = event.get("thread_ts")
    if incoming is None:
        await help_in(ChannelReply(client, event["channel"], thread_ts))
        return
    # In the agent view a question starts a thread (its ts) or continues one; without it the
    # answer goes where it always has, unless the question was asked in a thread.
    reply = ThreadReply(
        client,
        event["channel"],
        thread_ts,
        recipient_user=user,
        recipient_team=context.team_id,
        streams=thread_ts is not None,
    )
    await answer_agent_thread(
        listening_in(context),
        incoming,
        reply,
        context,
        status_thread=thread_ts or event.get("ts"),
        title=thread_ts is None,
    )


async def on_command(
    ack: AsyncAck,
    command: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    incoming = command_question(command)
    if incoming is None:
        await ack(text=render.HELP_TEXT, blocks=render.help_blocks())
        return
    await ack()
    await answer(
        listening_in(context),
        incoming,
        EphemeralReply(respond),
        context,
        shareable=True,
    )


async def on_check(
    ack: AsyncAck, shortcut: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    bot = listening_in(context).bot
    await ack()
    delivery = await answer_once(context)
    if not delivery.first:
        return
    text = (shortcut.get("message") or {}).get("text") or ""
    try:
        check = await bot.worker.run(bot.check_post, text)
    except QuestionError as error:
        await respond(text=str(error), response_type="ephemeral", replace_original=False)
    else:
        await respond(
            text=check.lead,
            blocks=render.check_blocks(check),
            response_type="ephemeral",
            replace_original=False,
        )
    await bot.record_reply(delivery.received_id)


async def on_feedback(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    bot = listening_in(context).bot
    await ack()
    if not await first_delivery(context):
        return
    await bot.react_to_answer(
        Actor(PLATFORM, body["user"]["id"]),
        clicked_id(action),
        BUTTON_REACTIONS[action["action_id"]],
        lambda text: tell(body, respond, client, text),
    )


async def on_feedback_buttons(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Slack's 👍 / 👎 under an answer: the same reactions as the buttons they replace."""
    bot = listening_in(context).bot
    await ack()
    if not await first_delivery(context):
        return
    reaction = FEEDBACK_REACTIONS.get(str(action.get("value") or ""))
    if reaction is None:
        log.warning("a feedback button with an unknown value was pressed")
        return
    await bot.react_to_answer(
        Actor(PLATFORM, body["user"]["id"]),
        render.feedback_question(str(action.get("block_id") or "")),
        reaction,
        lambda text: tell(body, respond, client, text),
    )


async def on_share(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    context: AsyncBoltContext,
) -> None:
    bot = listening_in(context).bot
    await ack()
    if not await first_delivery(context):
        return
    qid = clicked_id(action)
    try:
        if qid is None:
            raise KeyError(action.get("value"))
        shared = await bot.worker.run(bot.logged_answer, qid)
    except KeyError:
        await respond(text=SHARED_ANSWER_GONE, replace_original=False)
        return
    await respond(
        text=render.answer_text(shared),
        blocks=render.shared_answer_blocks(shared, body["user"]["id"]),
        response_type="in_channel",
        replace_original=False,
    )
    await respond(delete_original=True)
