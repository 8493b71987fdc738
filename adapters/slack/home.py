"""App Home: the active policy versions, and for the policy team the open question groups;
and how Slack answers whether someone is in the policy team's user group
(POLICYBOT_SLACK_POLICY_TEAM_GROUP), which the core asks for anyone not listed in
POLICYBOT_SLACK_POLICY_TEAM."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as render
from adapters.slack.agent import on_messages_tab
from adapters.slack.listening import listening_in
from adapters.slack.messages import PLATFORM
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor
from bot.use_cases import TeamGroup

log = logging.getLogger(__name__)


class UserGroupMembership:
    """Whether one user is in the policy team's user group, asked of Slack at most once per
    listener: a review action and the App Home redrawn after it share the answer."""

    def __init__(self, settings: Settings, client: AsyncWebClient, user: str) -> None:
        self.usergroup = settings.slack_policy_team_group
        self.client = client
        self.user = user
        self.member: bool | None = None

    async def __call__(self) -> bool:
        if self.member is None:
            self.member = await self._look_up()
        return self.member

    async def _look_up(self) -> bool:
        try:
            members = await self.client.usergroups_users_list(usergroup=self.usergroup)
        except SlackApiError:
            log.exception("could not read the policy team's user group")
            return False
        return self.user in (members.get("users") or [])


def team_group(settings: Settings, client: AsyncWebClient, user: str) -> TeamGroup | None:
    """How the core learns whether `user` is in the policy team's user group; None when no
    group is configured."""
    if not settings.slack_policy_team_group:
        return None
    return UserGroupMembership(settings, client, user)


async def publish_home(
    bot: PolicyBot, client: AsyncWebClient, user: str, in_team_group: TeamGroup | None = None
) -> None:
    # Callers that have just asked about the user group pass its answer on (see
    # UserGroupMembership), saving a second look-up.
    if in_team_group is None:
        in_team_group = team_group(bot.settings, client, user)
    # Opening a tab is no attempt at anything: a refusal here is not for the security log.
    listed = await bot.review_list(Actor(PLATFORM, user), action="", in_team_group=in_team_group)
    view = render.home_view(await bot.worker.run(bot.active_versions), listed.groups)
    await client.views_publish(user_id=user, view=view)


async def on_home(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
    tab = event.get("tab", "home")
    if tab == "messages":
        await on_messages_tab(event, client, context)
        return
    if tab != "home":
        return
    await publish_home(listening_in(context).bot, client, event["user"])
