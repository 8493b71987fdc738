"""The review loop (POLICYBOT_TEAMS_POLICY_TEAM): `review` lists the open question groups as
cards, and a group card's Answer / Dismiss, from that list or from a review-channel post, is
handled here; a review-channel card is then updated to say how its group was settled."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import ChannelAccount

from adapters.teams import cards as teams_cards
from adapters.teams.turns import (
    HandlerContext,
    actor,
    card_activity,
    is_personal,
    parse_id,
    text_activity,
)
from bot.review.queue import Group, ReviewError, may_review

log = logging.getLogger(__name__)

NOT_POLICY_TEAM = (
    "Sorry, `review` is for the policy team. If you think you should have it, ask your "
    "administrator to add you to POLICYBOT_TEAMS_POLICY_TEAM."
)
NOT_POLICY_TEAM_ACTION = (
    "Sorry, answering and dismissing questions is for the policy team; nothing was changed. "
    "If you think you should be able to, ask your administrator to add you to "
    "POLICYBOT_TEAMS_POLICY_TEAM."
)
REVIEW_IN_PERSONAL_CHAT = (
    "The review list is for the policy team's eyes only; ask me `review` in a personal chat."
)
STALE_GROUP = "That card no longer matches a question group. Send `review` for the current list."


async def is_policy_team(ctx: HandlerContext, sender: ChannelAccount, action: str) -> bool:
    """Whether the sender may review; a refusal goes to the security log."""
    return await may_review(actor(sender), ctx.policy_bot.settings, action=action)


async def on_review(ctx: HandlerContext, turn_context: TurnContext) -> None:
    activity = turn_context.activity
    sender = activity.from_property or ChannelAccount()
    if not await is_policy_team(ctx, sender, "review"):
        await turn_context.send_activity(MessageFactory.text(NOT_POLICY_TEAM))
        return
    if not is_personal(activity):
        await turn_context.send_activity(MessageFactory.text(REVIEW_IN_PERSONAL_CHAT))
        return
    groups = ctx.policy_bot.review.queue(status="open")
    shown = groups[: teams_cards.REVIEW_LIMIT]
    heading = teams_cards.review_heading(len(groups), len(shown))
    if not shown:
        await turn_context.send_activity(text_activity(heading))
        return
    cards = [CardFactory.adaptive_card(teams_cards.group_card(g)) for g in shown]
    await turn_context.send_activity(MessageFactory.list(cards, text=heading))


async def on_group_action(
    ctx: HandlerContext, turn_context: TurnContext, action: str, value: dict[str, Any]
) -> None:
    """Answer / Dismiss on a group's card (from `review`, or a review-channel post); the
    answer goes to every asker at once. In a channel, the reply is threaded under the card."""
    sender = turn_context.activity.from_property or ChannelAccount()
    if not await is_policy_team(ctx, sender, f"review {action}"):
        await turn_context.send_activity(MessageFactory.text(NOT_POLICY_TEAM_ACTION))
        return
    reviewer = actor(sender).recorded_as
    group_id = parse_id(value.get("group_id"))
    if group_id is None:
        await turn_context.send_activity(text_activity(STALE_GROUP))
        return
    try:
        if action == teams_cards.ANSWER_GROUP:
            answer = value.get(teams_cards.ANSWER_INPUT)
            report = await ctx.policy_bot.answer_group(
                group_id, answer if isinstance(answer, str) else "", by=reviewer
            )
            group = ctx.policy_bot.review.group(group_id)
            reply = (
                f"Group #{group.id} answered ({group.count} asked); similar questions now "
                f"get this answer. Askers: {report.describe()}."
            )
            if report.pending:
                reply += " Pending answers are retried while the bot runs."
        else:
            group = ctx.policy_bot.dismiss_group(group_id, by=reviewer)
            reply = f"Group #{group.id} dismissed ({group.count} asked); nobody is notified."
    except ReviewError as error:  # an empty answer, no such group
        await turn_context.send_activity(text_activity(str(error)))
        return
    notice_question = parse_id(value.get(teams_cards.NOTICE_QUESTION))
    if notice_question is not None:
        await settle_notice(ctx, turn_context, notice_question, group)
    await turn_context.send_activity(text_activity(reply))


async def settle_notice(
    ctx: HandlerContext, turn_context: TurnContext, question_id: int, group: Group
) -> None:
    """Replace the review-channel card pressed with one saying how its group was handled,
    so nobody answers it twice. The threaded reply says so as well, so a card that cannot
    be edited (deleted, or a client without edits) is only logged."""
    card_id = turn_context.activity.reply_to_id
    if not card_id:
        return
    try:
        notice = ctx.policy_bot.review_notice(question_id)
    except KeyError:  # purged since
        return
    settled = card_activity(
        teams_cards.review_notice_card(notice, settled=group),
        teams_cards.review_notice_summary(notice),
    )
    settled.id = card_id
    try:
        await turn_context.update_activity(settled)
    except Exception:  # the connector raises many unrelated types; the reply still tells
        log.warning("could not update the review card %s", card_id, exc_info=True)
