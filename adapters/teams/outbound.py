"""Teams messages nobody's turn asked for: the `Notifier` that replies to an asker later via
the conversation reference stored with the question, the `LateReplier` that answers on start
what a stopped process acknowledged (through the reference kept with it), and the digest and
review channels' posters, all sent proactively through the Agents SDK's
`continue_conversation`."""

from __future__ import annotations

import json
from collections.abc import Sequence

from microsoft_agents.activity import (
    Activity,
    ChannelAccount,
    ChannelId,
    ConversationAccount,
    ConversationReference,
)
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AuthenticationConstants,
    ClaimsIdentity,
    MessageFactory,
    TurnContext,
)
from pydantic import ValidationError

from adapters.digest_chart import alt_text, weekly_png
from adapters.teams import cards as teams_cards
from adapters.teams.asking import answer_activity
from adapters.teams.loopback import is_loopback
from adapters.teams.turns import card_activity, text_activity
from bot import messages
from bot.notify import DeliveryError, LateReply, ReplyAddress, ReviewNotice
from bot.use_cases import WeekCounts


class TeamsNotifier:
    """Messages an asker later (a reviewed answer, say) via the stored conversation reference."""

    def __init__(self, adapter: CloudAdapter, app_id: str) -> None:
        self.adapter = adapter
        self.app_id = app_id

    async def send(self, address: ReplyAddress, text: str) -> None:
        reference = stored_reference(address)
        refuse_off_loopback_unauthenticated(reference, self.app_id)
        await send_proactive(self.adapter, reference, MessageFactory.text(text), self.app_id)


def refuse_off_loopback_unauthenticated(reference: ConversationReference, app_id: str) -> None:
    """DeliveryError for a reference off this machine when there is no client id: a reference
    kept by a process with one, found by one testing locally without, is left for a start
    that has one; as its turns, an unauthenticated process replies to this machine only."""
    if not app_id and not is_loopback(reference.service_url):
        raise DeliveryError("unauthenticated mode only replies to a serviceUrl on loopback")


def stored_reference(address: ReplyAddress) -> ConversationReference:
    """The conversation reference kept with a question (`asking.conversation_reference_json`);
    DeliveryError when it cannot be replied to."""
    try:
        stored = json.loads(address.conversation)
    except ValueError as error:
        raise DeliveryError(f"no usable Teams conversation reference: {error}") from None
    if not isinstance(stored, dict) or not stored.get("serviceUrl"):
        raise DeliveryError("the Teams conversation reference has no service URL")
    # The Bot Framework's JSON (as botbuilder stored it too), which the SDK's model reads.
    try:
        reference = ConversationReference.model_validate(stored)
    except ValidationError as error:
        problem = error.errors()[0].get("loc", ()) if error.errors() else ()
        where = ".".join(str(part) for part in problem) or "its fields"
        raise DeliveryError(f"no usable Teams conversation reference ({where})") from None
    if not reference.service_url or not reference.conversation:
        raise DeliveryError("the Teams conversation reference has no service URL")
    return reference


#: How much of the question a late answer repeats (the asker may have written since).
LATE_QUESTION_CHARS = 500


def late_activity(reply: LateReply) -> Activity:
    """A LateReply as Teams' message: the answer card, or why there is none, led by the
    apology and the question when it is late."""
    if reply.answer is not None:
        activity = answer_activity(reply.answer)
        # Teams' own feedback buttons find their question by the message the turn sent
        # (`remember_answer_message`), which a proactive send does not return; the card's
        # buttons carry the question id and stay.
        activity.channel_data = None
    elif reply.check is not None:
        activity = text_activity(reply.check.lead)
    else:
        activity = text_activity(reply.refusal or messages.APOLOGY)
    if reply.late:
        question = reply.question[:LATE_QUESTION_CHARS]
        asked = f"{messages.LATE}: you asked “{question}”" if question else messages.LATE
        activity.text = f"{asked}\n\n{activity.text}" if activity.text else asked
    return activity


class TeamsLateReplier:
    """Answers, on start, a question a stopped process acknowledged: in the conversation it
    was asked in, as a reply to its message, through the conversation reference kept with
    it (no token is kept: the adapter asks for its own, as for any proactive message)."""

    def __init__(self, adapter: CloudAdapter, app_id: str) -> None:
        self.adapter = adapter
        self.app_id = app_id

    async def send(self, reply: LateReply) -> None:
        reference = stored_reference(reply.address)
        refuse_off_loopback_unauthenticated(reference, self.app_id)
        activity = late_activity(reply)
        if reference.activity_id:  # the question's message: the answer is a reply to it
            activity.reply_to_id = reference.activity_id
        await send_proactive(self.adapter, reference, activity, self.app_id)


def channel_reference(conversation_id: str, service_url: str, app_id: str) -> ConversationReference:
    """A configured channel, for a proactive post: nobody wrote to the bot there, so no
    reference was stored, and the service URL is the configured one."""
    return ConversationReference(
        channel_id=ChannelId("msteams"),
        service_url=service_url,
        conversation=ConversationAccount(
            id=conversation_id, is_group=True, conversation_type="channel"
        ),
        agent=ChannelAccount(id=app_id or "policybot"),
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

    async def post(self, text: str, weeks: Sequence[WeekCounts] = ()) -> None:
        summary = text.splitlines()[0] if text else "policybot digest"
        # Compact: the picture travels inside the card, and Teams limits a message's size.
        chart = weekly_png(weeks, scale=1, compact=True) if weeks else b""
        card = teams_cards.digest_card(text, chart, alt_text(weeks) if weeks else "")
        await self.send(card_activity(card, summary))


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

    continuation = reference.get_continuation_activity()
    try:
        if app_id:
            await adapter.continue_conversation(app_id, continuation, deliver)
        else:
            # Unauthenticated local testing: no token to ask for, as for the turns.
            await adapter.continue_conversation_with_claims(
                ClaimsIdentity(), continuation, deliver, AuthenticationConstants.AGENTS_SDK_SCOPE
            )
    except Exception as error:  # e.g. no credentials could be had for the service URL
        failures.append(error)
    if failures:
        raise DeliveryError(f"Teams did not take the message: {failures[0]}") from failures[0]
