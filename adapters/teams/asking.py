"""Asking: a question in a personal chat or an @mention, the answer card's buttons (Helpful,
Not helpful, Ask the policy team), `help`, and the welcome when the bot is installed."""

from __future__ import annotations

import json
from typing import Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.schema import Activity, ChannelAccount

from adapters.teams import cards as teams_cards
from adapters.teams.turns import (
    PLATFORM,
    HandlerContext,
    card_activity,
    is_personal,
    parse_id,
    text_activity,
)
from bot import messages
from bot.core import PolicyBot
from bot.models import Actor, Answer, IncomingQuestion

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
    reference = TurnContext.get_conversation_reference(activity)
    return json.dumps(reference.serialize(), sort_keys=True)


def answer_activity(answer: Answer) -> Activity:
    return card_activity(teams_cards.answer_card(answer), teams_cards.answer_summary(answer))


async def on_help(ctx: HandlerContext, turn_context: TurnContext) -> None:
    text = await ctx.policy_bot.worker.run(help_text, ctx.policy_bot)
    await turn_context.send_activity(MessageFactory.text(text))


async def on_question(ctx: HandlerContext, turn_context: TurnContext, text: str) -> None:
    activity = turn_context.activity
    sender = activity.from_property or ChannelAccount()
    incoming = IncomingQuestion(
        text=text,
        platform=PLATFORM,
        asker=sender.id or "",
        conversation=conversation_reference_json(activity),
        asker_name=sender.name or "",
    )

    answer = await ctx.reply_when_ready(turn_context, ctx.policy_bot.ask(incoming), answer_activity)
    await ctx.policy_bot.after_reply(incoming, answer)


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
