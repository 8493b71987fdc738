"""Asking: a question in a personal chat or an @mention, the answer card's buttons (Helpful,
Not helpful, Ask the policy team), `help`, and the welcome when the bot is installed."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from microsoft_agents.activity import Activity, ChannelAccount
from microsoft_agents.hosting.core import MessageFactory, TurnContext

from adapters.teams import cards as teams_cards
from adapters.teams import citations
from adapters.teams.turns import (
    PLATFORM,
    HandlerContext,
    StreamedReply,
    TurnReply,
    card_activity,
    conversation_key,
    is_personal,
    parse_id,
    text_activity,
    turn_delivery,
)
from bot import messages
from bot.core import HELPFUL, NOT_HELPFUL, PolicyBot
from bot.models import Actor, Answer, IncomingQuestion

log = logging.getLogger(__name__)

#: The kind a Teams question is received as (`PolicyBot.take_delivery`): a message, in a
#: personal chat or @mentioning the bot.
MESSAGE = "message"

HELP = (
    "Ask me whether something is OK under our social media and electronic-communication "
    "policy, for example: *{example}* "
    "I answer by quoting the policy's own clauses with their section numbers.\n\n"
    "In a channel or group chat, @mention me with your question. Under each answer, "
    "**Helpful** / **Not helpful** tell the policy team how I did, and **Ask the policy team** "
    "sends your question to them. What the policy does not cover goes to them as well.\n\n"
    "Commands: `help` (this message); `review` (the open question groups, for the policy "
    "team). Policy admins can attach a policy file in a personal chat with me to upload a new "
    "version."
)
WELCOME = "Hi, I'm the policy bot. " + HELP


def help_text(bot: PolicyBot, template: str = HELP) -> str:
    """The help (or welcome), its example about a section of the active policy rather than
    the bundled example's offsites, which another organization's policy may not have."""
    return template.format(example=bot.example_question())


def conversation_reference_json(activity: Activity) -> str:
    """What the core stores to reply later (proactively) in the same conversation."""
    reference = activity.get_conversation_reference()
    # The Bot Framework's JSON, as botbuilder stored it: the id of this request is not kept.
    stored = reference.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"request_id"}
    )
    return json.dumps(stored, sort_keys=True)


def delivery_key(activity: Activity) -> str:
    """What a redelivery of this activity has in common with it: the Bot Framework sends the
    same activity again, id and all, when the bot's acknowledgement was slow. Teams' message
    ids are unique within their conversation only, so the conversation is part of the key,
    and both go in as a digest (the key is kept an hour; no platform id in it)."""
    conversation = activity.conversation.id if activity.conversation else ""
    if activity.id:
        named = json.dumps([conversation, activity.id])
        return "activity:" + hashlib.sha256(named.encode()).hexdigest()
    # No id to go by (a client that sends none): the activity itself, as a replay repeats it.
    whole = activity.model_dump_json(by_alias=True, exclude_none=True, exclude={"request_id"})
    return "payload:" + hashlib.sha256(whole.encode()).hexdigest()


def incoming_question(activity: Activity, text: str) -> IncomingQuestion:
    """The question a message asks (`handler.question_in`'s text), as the core takes it."""
    sender = activity.from_property or ChannelAccount()
    return IncomingQuestion(
        text=text,
        platform=PLATFORM,
        asker=sender.id or "",
        conversation=conversation_reference_json(activity),
        asker_name=sender.name or "",
        conversation_key=conversation_key(activity),
    )


def answer_activity(answer: Answer) -> Activity:
    """The answer card; for an answer with citations, the message text is the lead with
    Teams' numbered references to them and the Message entity holds their hover cards (and,
    for an answer a model wrote, the AI label)."""
    summary = teams_cards.answer_summary(answer)
    # An uncertain answer keeps its lead in the card, below the warning that it may not be
    # what was asked: Teams shows a message's text above its card, before that warning.
    cited = bool(answer.citations) and answer.answered
    reply = card_activity(teams_cards.answer_card(answer, lead_in_text=cited), summary)
    if cited:
        reply.text = f"{summary} {citations.markers(answer)}"
    entity = citations.message_entity(answer, cited=cited)
    if entity is not None:
        reply.entities = [entity]
    if rated(answer):
        # Teams' own thumbs up / down with a comment box, under the message.
        reply.channel_data = {"feedbackLoop": {"type": "default"}, "feedbackLoopEnabled": True}
    return reply


def rated(answer: Answer) -> bool:
    """Whether the asker may rate the answer: the card's Helpful / Not helpful rule."""
    return answer.question_id is not None and (answer.answered or answer.uncertain)


async def on_help(ctx: HandlerContext, turn_context: TurnContext) -> None:
    text = await ctx.policy_bot.worker.run(help_text, ctx.policy_bot)
    await turn_context.send_activity(MessageFactory.text(text))


async def on_question(ctx: HandlerContext, turn_context: TurnContext, text: str) -> None:
    activity = turn_context.activity
    incoming = incoming_question(activity, text)
    # Kept before the acknowledgement by the route, which says here whether this was the
    # first delivery to any process (another may have taken a redelivery first).
    delivery = await turn_delivery()
    if not delivery.first:
        log.info("dropping a Teams question another process took first")
        return
    received = delivery.received_id

    # Teams streams in personal chats only; an answer a model writes is slow enough to show
    # its progress there.
    streamed = is_personal(activity) and ctx.policy_bot.settings.llm_configured
    reply = StreamedReply(turn_context) if streamed else TurnReply(turn_context)
    work = (
        reply.follow(ctx.policy_bot.ask_streamed(incoming, received=received))
        if isinstance(reply, StreamedReply)
        else ctx.policy_bot.ask(incoming, received=received)
    )
    answer = await ctx.reply_when_ready(turn_context, work, answer_activity, reply)
    if answer is not None and answer.question_id is not None and reply.sent_id:
        conversation_id = activity.conversation.id if activity.conversation else ""
        await ctx.policy_bot.remember_answer_message(
            PLATFORM, conversation_id, reply.sent_id, answer.question_id
        )
    await ctx.policy_bot.after_reply(incoming, answer, received)


async def on_answer_action(
    ctx: HandlerContext, turn_context: TurnContext, value: dict[str, Any]
) -> None:
    """Helpful / Not helpful / Ask the policy team under an answer; the value carries its
    question id."""
    action = value.get(teams_cards.SUBMIT_KEY)
    if action not in teams_cards.ACTIONS:
        await turn_context.send_activity(text_activity(messages.STALE_QUESTION))
        return

    async def tell(text: str) -> None:
        await turn_context.send_activity(text_activity(text))

    sender = turn_context.activity.from_property or ChannelAccount()
    # The card's action ids are the core's REACTIONS.
    await ctx.policy_bot.react_to_answer(
        asker(sender), parse_id(value.get("question_id")), str(action), tell
    )


#: Teams' feedback reactions as the core's.
FEEDBACK_REACTIONS = {"like": HELPFUL, "dislike": NOT_HELPFUL}
FEEDBACK_ACTION = "feedback"


def feedback_of(value: object) -> tuple[str, str] | None:
    """The core's reaction and the comment from a `message/submitAction` invoke's value, or
    None when it is not a feedback submission Teams would send."""
    if not isinstance(value, dict) or value.get("actionName") != FEEDBACK_ACTION:
        return None
    action = value.get("actionValue")
    if not isinstance(action, dict) or action.get("reaction") not in FEEDBACK_REACTIONS:
        return None
    comment = ""
    form = action.get("feedback")
    # The form's fields arrive as a JSON string ({"feedbackText": "..."}); anything else is
    # read as no comment rather than refusing the rating.
    if isinstance(form, str) and form:
        try:
            fields = json.loads(form)
        except ValueError:
            fields = None
        if isinstance(fields, dict) and isinstance(fields.get("feedbackText"), str):
            comment = fields["feedbackText"]
    return FEEDBACK_REACTIONS[str(action["reaction"])], comment


async def on_feedback(ctx: HandlerContext, turn_context: TurnContext) -> bool:
    """Teams' feedback buttons under an answer: the rating and its comment to the core, for
    the question that message answered. False when the invoke is no feedback submission."""
    activity = turn_context.activity
    feedback = feedback_of(activity.value)
    if feedback is None:
        return False
    reaction, comment = feedback
    conversation_id = activity.conversation.id if activity.conversation else ""
    question_id = await ctx.policy_bot.answer_message(
        PLATFORM, conversation_id, activity.reply_to_id or ""
    )

    async def tell(text: str) -> None:
        await turn_context.send_activity(text_activity(text))

    sender = activity.from_property or ChannelAccount()
    await ctx.policy_bot.react_to_answer(asker(sender), question_id, reaction, tell, comment)
    return True


def asker(sender: ChannelAccount) -> Actor:
    """The person pressing an answer's button, by the Teams id their question was asked
    under (`IncomingQuestion.asker`), which the review channel names them by."""
    return Actor(PLATFORM, sender.id or "", sender.name or "")


async def on_members_added(
    ctx: HandlerContext, members_added: list[ChannelAccount], turn_context: TurnContext
) -> None:
    # One welcome per install: when the bot joins a conversation, or a person starts a
    # personal chat with it. New teammates joining a team are not greeted in the channel.
    activity = turn_context.activity
    recipient_id = activity.recipient.id if activity.recipient else None
    bot_added = any(member.id == recipient_id for member in members_added)
    people_added = any(member.id != recipient_id for member in members_added)
    if bot_added or (people_added and is_personal(activity)):
        text = await ctx.policy_bot.worker.run(help_text, ctx.policy_bot, WELCOME)
        await turn_context.send_activity(MessageFactory.text(text))
