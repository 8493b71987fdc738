"""The review loop (POLICYBOT_TEAMS_POLICY_TEAM): `review` lists the open question groups as
cards, and a group card's Answer / Dismiss, from that list or from a review-channel post, is
handled here; a review-channel card is then updated to say how its group was settled."""

from __future__ import annotations

import logging
from typing import Any

from microsoft_agents.activity import ChannelAccount
from microsoft_agents.hosting.core import CardFactory, MessageFactory, TurnContext

from adapters.teams import cards as teams_cards
from adapters.teams.turns import (
    HandlerContext,
    actor,
    card_activity,
    is_personal,
    parse_id,
    text_activity,
)
from bot.use_cases import Group

log = logging.getLogger(__name__)


async def on_review(ctx: HandlerContext, turn_context: TurnContext) -> None:
    activity = turn_context.activity
    sender = activity.from_property or ChannelAccount()
    listed = await ctx.policy_bot.review_list(actor(sender), private=is_personal(activity))
    if listed.groups is None:
        await turn_context.send_activity(text_activity(listed.refusal))
        return
    shown = listed.groups[: teams_cards.REVIEW_LIMIT]
    heading = teams_cards.review_heading(len(listed.groups), len(shown))
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
    answer: str | None = None
    if action == teams_cards.ANSWER_GROUP:
        typed = value.get(teams_cards.ANSWER_INPUT)
        # Not text (a tampered submit) reads as empty: refused as an empty answer, never
        # taken for a dismissal.
        answer = typed if isinstance(typed, str) else ""
    resolution = await ctx.policy_bot.resolve_group(
        actor(sender), parse_id(value.get("group_id")), answer, action=f"review {action}"
    )
    notice_question = parse_id(value.get(teams_cards.NOTICE_QUESTION))
    if resolution.group is not None and notice_question is not None:
        await settle_notice(ctx, turn_context, notice_question, resolution.group)
    await turn_context.send_activity(text_activity(resolution.text))


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
        notice = await ctx.policy_bot.worker.run(ctx.policy_bot.review_notice, question_id)
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
