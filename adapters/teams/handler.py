"""The Teams turn handler: which job a turn is for, and nothing else. Each job is in its own
module (asking, uploads, review) as functions handed the turn and a `HandlerContext`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, cast

from microsoft_agents.activity import (
    Activity,
    ChannelAccount,
    InvokeResponse,
    TurnContextProtocol,
)
from microsoft_agents.hosting.core import ActivityHandler, TurnContext

from adapters import replies
from adapters.downloads import DOWNLOAD_TIMEOUT
from adapters.teams import asking, review, uploads
from adapters.teams import cards as teams_cards
from adapters.teams.turns import (
    HandlerContext,
    addressed_to_bot,
    first_delivery,
    is_personal,
    question_text,
)
from bot.core import PolicyBot

log = logging.getLogger(__name__)

#: The invoke Teams sends for its feedback buttons' submission.
SUBMIT_ACTION = "message/submitAction"
#: Messages that are commands, not questions.
COMMANDS = ("", "help", "?", "review")


def is_card_action(activity: Activity) -> bool:
    return isinstance(activity.value, dict) and teams_cards.SUBMIT_KEY in activity.value


def question_in(activity: Activity) -> str | None:
    """The question a message activity asks, or None: a card's button, a file, a command, a
    message in a channel that does not @mention the bot. The one reading of it, for the turn
    and for the route that keeps a question before acknowledging it (`app.MessagesRoute`)."""
    if activity.type != "message" or is_card_action(activity):
        return None
    if not addressed_to_bot(activity):
        return None
    # Teams hands bots files in personal chats only; elsewhere the text is the question.
    if is_personal(activity) and uploads.attached_files(activity):
        return None
    text = question_text(activity)
    if text.lower().lstrip("/") in COMMANDS:
        return None
    return text


class TeamsBot(ActivityHandler):
    """Translates Teams turns into PolicyBot calls; one per app, built in `add_routes`."""

    def __init__(
        self,
        policy_bot: PolicyBot,
        *,
        placeholder_after: float | None = None,
        download_timeout: float = DOWNLOAD_TIMEOUT,
    ):
        self.ctx = HandlerContext(
            policy_bot,
            placeholder_after=(
                replies.THINKING_DELAY if placeholder_after is None else placeholder_after
            ),
            download_timeout=download_timeout,
        )

    async def on_message_activity(self, turn_context: TurnContextProtocol[Any]) -> None:
        # The SDK's adapters hand their handlers its TurnContext; the jobs use it as such.
        await self.on_message(cast(TurnContext, turn_context))

    async def on_message(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        question = question_in(activity)
        if question is not None:
            await asking.on_question(self.ctx, turn_context, question)
            return
        if not await first_delivery():
            log.info("dropping a Teams activity another process took first")
            return
        if isinstance(activity.value, dict) and is_card_action(activity):
            await self.on_card_action(turn_context, activity.value)
            return
        if not addressed_to_bot(activity):
            return  # channel chatter the bot was not asked about
        files = uploads.attached_files(activity) if is_personal(activity) else []
        if files:
            await uploads.on_upload(self.ctx, turn_context, files)
            return
        if question_text(activity).lower().lstrip("/") == "review":
            await review.on_review(self.ctx, turn_context)
        else:
            await asking.on_help(self.ctx, turn_context)

    async def on_card_action(self, turn_context: TurnContext, value: dict[str, Any]) -> None:
        action = value.get(teams_cards.SUBMIT_KEY)
        if action in teams_cards.VERSION_ACTIONS:
            await uploads.on_version_action(self.ctx, turn_context, str(action), value)
            return
        if action in teams_cards.GROUP_ACTIONS:
            await review.on_group_action(self.ctx, turn_context, str(action), value)
            return
        await asking.on_answer_action(self.ctx, turn_context, value)

    async def on_invoke_activity(
        self, turn_context: TurnContextProtocol[Any]
    ) -> InvokeResponse | None:
        context = cast(TurnContext, turn_context)
        if context.activity.name == SUBMIT_ACTION:
            if await asking.on_feedback(self.ctx, context):
                return InvokeResponse(status=HTTPStatus.OK, body={})
            return InvokeResponse(
                status=HTTPStatus.BAD_REQUEST,
                body={"error": "only Teams' feedback (actionName feedback) is taken here"},
            )
        return await super().on_invoke_activity(turn_context)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContextProtocol[Any]
    ) -> None:
        await asking.on_members_added(self.ctx, members_added, cast(TurnContext, turn_context))
