"""Teams messages nobody's turn asked for: the `Notifier` that replies to an asker later via
the conversation reference stored with the question, and the digest and review channels'
posters, all sent proactively through botbuilder's `continue_conversation`."""

from __future__ import annotations

import json

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
)

from adapters.teams import cards as teams_cards
from adapters.teams.turns import card_activity
from bot.notify import DeliveryError, ReplyAddress, ReviewNotice


class TeamsNotifier:
    """Messages an asker later (a reviewed answer, say) via the stored conversation reference."""

    def __init__(self, adapter: CloudAdapter, app_id: str) -> None:
        self.adapter = adapter
        self.app_id = app_id

    async def send(self, address: ReplyAddress, text: str) -> None:
        try:
            reference = ConversationReference().deserialize(json.loads(address.conversation))
        except (ValueError, TypeError) as error:
            raise DeliveryError(f"no usable Teams conversation reference: {error}") from None
        if not reference.service_url or not reference.conversation:
            raise DeliveryError("the Teams conversation reference has no service URL")
        await send_proactive(self.adapter, reference, MessageFactory.text(text), self.app_id)


def channel_reference(conversation_id: str, service_url: str, app_id: str) -> ConversationReference:
    """A configured channel, for a proactive post: nobody wrote to the bot there, so no
    reference was stored, and the service URL is the configured one."""
    return ConversationReference(
        channel_id="msteams",
        service_url=service_url,
        conversation=ConversationAccount(
            id=conversation_id, is_group=True, conversation_type="channel"
        ),
        bot=ChannelAccount(id=app_id),
    )


class ConfiguredChannel:
    """A Teams channel the bot posts into as new messages, through the Teams service at
    POLICYBOT_TEAMS_SERVICE_URL, by a configured conversation id."""

    def __init__(
        self, adapter: CloudAdapter, app_id: str, conversation_id: str, service_url: str
    ) -> None:
        self.adapter = adapter
        self.app_id = app_id
        self.conversation_id = conversation_id
        self.service_url = service_url

    async def send(self, activity: Activity) -> None:
        reference = channel_reference(self.conversation_id, self.service_url, self.app_id)
        await send_proactive(self.adapter, reference, activity, self.app_id)


class TeamsChannelPoster(ConfiguredChannel):
    """Posts the weekly digest (POLICYBOT_DIGEST_TEAMS_CONVERSATION)."""

    async def post(self, text: str) -> None:
        summary = text.splitlines()[0] if text else "policybot digest"
        await self.send(card_activity(teams_cards.digest_card(text), summary))


class TeamsReviewPoster(ConfiguredChannel):
    """Posts each question that reaches the review list into the policy team's channel
    (POLICYBOT_TEAMS_REVIEW_CONVERSATION), as Slack's review channel."""

    async def post(self, notice: ReviewNotice) -> None:
        await self.send(
            card_activity(
                teams_cards.review_notice_card(notice), teams_cards.review_notice_summary(notice)
            )
        )


async def send_proactive(
    adapter: CloudAdapter, reference: ConversationReference, activity: Activity, app_id: str
) -> None:
    """Send one activity into an existing conversation; DeliveryError if Teams refuses it."""
    failures: list[Exception] = []

    async def deliver(turn_context: TurnContext) -> None:
        # A new message, not a reply to the continuation activity the adapter made up.
        turn_context.activity.id = None
        # Caught here: an error escaping the turn would go to the adapter's on_turn_error,
        # which tells the user "something went wrong" and hides the failure from the caller.
        try:
            await turn_context.send_activity(activity)
        except Exception as error:  # the connector raises many unrelated types
            failures.append(error)

    try:
        await adapter.continue_conversation(reference, deliver, app_id)
    except Exception as error:  # e.g. no credentials could be had for the service URL
        failures.append(error)
    if failures:
        raise DeliveryError(f"Teams did not take the message: {failures[0]}") from failures[0]
