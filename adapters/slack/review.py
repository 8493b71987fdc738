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
from adapters.slack.home import publish_home, team_group
from adapters.slack.listening import clicked_id, first_delivery, listening_in, tell, who_clicked
from adapters.slack.messages import form_not_opened

log = logging.getLogger(__name__)


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
    if not await first_delivery(context):
        return
    user = body["user"]
    chosen = await bot.group_to_answer(
        who_clicked(user),
        clicked_id(action),
        in_team_group=team_group(bot.settings, client, user["id"]),
    )
    if chosen.group is None:
        await tell(body, respond, client, chosen.text)
        return
    channel = (body.get("channel") or {}).get("id") or ""
    metadata = json.dumps({"group": chosen.group.id, "channel": channel})
    # trigger_id is valid for 3 seconds: open the modal before anything slow.
    try:
        await client.views_open(
            trigger_id=body["trigger_id"], view=render.answer_modal(chosen.group, metadata)
        )
    except SlackApiError as error:
        await tell(body, respond, client, form_not_opened(str(error.response.get("error"))))


def form_group(view: dict[str, Any]) -> tuple[int | None, str]:
    """The group an answer form is for and the channel it was opened from; None for a form
    whose metadata is not ours (forged, or from an older version of the form)."""
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
        return int(metadata["group"]), str(metadata.get("channel") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, ""


async def on_answer_submitted(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    bot = listening_in(context).bot
    user = body["user"]
    group_id, channel = form_group(view)
    values = (view.get("state") or {}).get("values") or {}
    text = str(
        ((values.get(render.ANSWER_BLOCK) or {}).get(render.ANSWER_INPUT) or {}).get("value") or ""
    )
    membership = team_group(bot.settings, client, user["id"])

    async def close_form() -> None:
        await ack()

    if not await first_delivery(context):
        await close_form()  # a replay: the form was handled once already
        return

    # The modal closes once the answer is stored, before it is sent to the askers (Slack
    # waits 3 seconds for it); a refusal or a mistake is shown in the modal itself.
    resolution = await bot.resolve_group(
        who_clicked(user),
        group_id,
        text,
        action="review answer submit",
        in_team_group=membership,
        recorded=close_form,
    )
    if not resolution.done:
        await ack(response_action="errors", errors={render.ANSWER_BLOCK: resolution.text})
        return
    await confirm_to(client, user["id"], channel, resolution.text)
    await publish_home(bot, client, user["id"], membership)


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
    if not await first_delivery(context):
        return
    user = body["user"]
    membership = team_group(bot.settings, client, user["id"])
    resolution = await bot.resolve_group(
        who_clicked(user), clicked_id(action), None, in_team_group=membership
    )
    if not resolution.done:
        await tell(body, respond, client, resolution.text)
        return
    channel = (body.get("channel") or {}).get("id") or ""
    await confirm_to(client, user["id"], channel, resolution.text)
    await publish_home(bot, client, user["id"], membership)
