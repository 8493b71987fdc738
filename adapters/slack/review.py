"""Slack listeners for the policy team's review list: *Answer* (a modal, its submission
delivered to every asker in the group) and *Dismiss* on a question group, from the review
channel or App Home."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as render
from adapters.slack.home import in_policy_team, publish_home
from adapters.slack.listening import clicked_id, listening_in, tell, who_clicked
from bot.review.queue import ReviewError

log = logging.getLogger(__name__)

NOT_POLICY_TEAM = (
    "Sorry, only members of the policy team can answer or dismiss questions on the review "
    "list. Nothing was changed."
)


async def confirm_to(client: AsyncWebClient, user: str, channel: str, text: str) -> None:
    """A note for the reviewer: in the review channel only they see it, or in their DM."""
    try:
        if channel:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            await client.chat_postMessage(channel=user, text=text)
    except SlackApiError:
        log.exception("could not confirm a review action to %s", user)


async def on_answer_clicked(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    bot = listening_in(context).bot
    await ack()
    user = body["user"]["id"]
    if not await in_policy_team(bot.settings, client, user, "review answer"):
        await tell(body, respond, client, NOT_POLICY_TEAM)
        return
    group_id = clicked_id(action)
    try:
        if group_id is None:
            raise ReviewError("That button no longer points at a question group.")
        group = bot.review.group(group_id)
    except ReviewError as error:
        await tell(body, respond, client, str(error))
        return
    channel = (body.get("channel") or {}).get("id") or ""
    metadata = json.dumps({"group": group.id, "channel": channel})
    # trigger_id is valid for 3 seconds: open the modal before anything slow.
    try:
        await client.views_open(
            trigger_id=body["trigger_id"], view=render.answer_modal(group, metadata)
        )
    except SlackApiError as error:
        reason = error.response.get("error")
        await tell(body, respond, client, f"Slack did not open the form ({reason}); try again.")


async def on_answer_submitted(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    bot = listening_in(context).bot
    user = body["user"]
    if not await in_policy_team(bot.settings, client, user["id"], "review answer submit"):
        await ack(response_action="errors", errors={render.ANSWER_BLOCK: NOT_POLICY_TEAM})
        return
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
        group_id = int(metadata["group"])
    except (ValueError, KeyError, TypeError):
        await ack(
            response_action="errors",
            errors={render.ANSWER_BLOCK: "This form is out of date; open it again."},
        )
        return
    values = (view.get("state") or {}).get("values") or {}
    text = str(
        ((values.get(render.ANSWER_BLOCK) or {}).get(render.ANSWER_INPUT) or {}).get("value") or ""
    )
    reviewer = who_clicked(user).recorded_as
    try:
        # Stored before the modal closes, so a mistake is shown in the modal itself.
        bot.review.answer(group_id, text, reviewer)
    except ReviewError as error:
        await ack(response_action="errors", errors={render.ANSWER_BLOCK: str(error)})
        return
    await ack()
    # Everyone who asked in the group is sent the answer, on the platform they asked on.
    report = await bot.deliver_answers(group_id)
    note = (
        f"Group #{group_id} answered; the bot now gives your answer to similar questions. "
        f"Askers: {report.describe()}."
    )
    await confirm_to(client, user["id"], str(metadata.get("channel") or ""), note)
    await publish_home(bot, client, user["id"], member=True)


async def on_dismiss_clicked(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    bot = listening_in(context).bot
    await ack()
    user = body["user"]
    if not await in_policy_team(bot.settings, client, user["id"], "review dismiss"):
        await tell(body, respond, client, NOT_POLICY_TEAM)
        return
    group_id = clicked_id(action)
    try:
        if group_id is None:
            raise ReviewError("That button no longer points at a question group.")
        group = bot.dismiss_group(group_id, by=who_clicked(user).recorded_as)
    except ReviewError as error:
        await tell(body, respond, client, str(error))
        return
    note = f"Group #{group.id} dismissed ({group.count} questions); nobody is notified."
    channel = (body.get("channel") or {}).get("id") or ""
    await confirm_to(client, user["id"], channel, note)
    await publish_home(bot, client, user["id"], member=True)
