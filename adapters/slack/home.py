"""App Home: the active policy versions, and for the policy team the open question groups;
and who is on the policy team (POLICYBOT_SLACK_POLICY_TEAM, or the members of
POLICYBOT_SLACK_POLICY_TEAM_GROUP)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as render
from adapters.slack.listening import listening_in
from adapters.slack.messages import PLATFORM
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor
from bot.review.queue import may_review

log = logging.getLogger(__name__)


async def in_policy_team(
    settings: Settings, client: AsyncWebClient, user: str, action: str = ""
) -> bool:
    """Whether `user` may review; with `action`, a refusal goes to the security log."""

    async def in_user_group() -> bool:
        try:
            members = await client.usergroups_users_list(usergroup=settings.slack_policy_team_group)
        except SlackApiError:
            log.exception("could not read the policy team's user group")
            return False
        return user in (members.get("users") or [])

    return await may_review(
        Actor(PLATFORM, user),
        settings,
        action=action,
        in_team_group=in_user_group if settings.slack_policy_team_group else None,
    )


async def publish_home(
    bot: PolicyBot, client: AsyncWebClient, user: str, member: bool | None = None
) -> None:
    # Callers that have just checked membership pass it, saving a user-group look-up.
    if member is None:
        member = await in_policy_team(bot.settings, client, user)
    groups = bot.review.queue(status="open") if member else None
    view = render.home_view(bot.storage.active_versions(), groups)
    await client.views_publish(user_id=user, view=view)


async def on_home(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
    if event.get("tab", "home") != "home":
        return
    await publish_home(listening_in(context).bot, client, event["user"])
