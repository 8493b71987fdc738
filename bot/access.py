"""Who may do what, per platform, and the security log of every refusal.

Two roles: a policy admin (POLICYBOT_ADMINS: upload, activate, discard, roll back) and the
policy team (POLICYBOT_<PLATFORM>_POLICY_TEAM, or the platform's team group: see and resolve
the review list). An id counts on the platform it is listed for only: a Slack id never makes
a Teams sender an admin, nor the reverse.

Every refused attempt is one WARNING line on the `policybot.security` logger, so it can be
routed and alerted on apart from the rest. Lines name the action, the platform and who tried
(a platform user id or a network address, which the people investigating need), never a
token, secret or the request's body.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot import messages
from bot.config import Settings, platform_id
from bot.models import Actor, PolicyError

security_log = logging.getLogger("policybot.security")

#: Who the web console signs in with a one-time link printed by `policybot console link`
#: without `--as`: the person at that command line, who already holds the database and the
#: settings, so both roles. No platform adapter makes an Actor on this platform.
OPERATOR = Actor("operator", "local", "Local operator")


class NotAuthorized(PolicyError):
    """Someone who is not a policy admin tried to change the policy."""

    def __init__(self, message: str = messages.ADMIN_ONLY) -> None:
        super().__init__(message)


def refused(action: str, *, platform: str, who: str, reason: str) -> None:
    """Record one refusal: `action` ("policy upload", "review"), whose, and why."""
    security_log.warning(
        "refused %s: platform=%s who=%s reason=%s",
        action,
        platform,
        _printable(who) or "unknown",
        reason,
    )


def _printable(value: str) -> str:
    # A user id comes from the request: keep it to one short line in the log.
    return "".join(c if c.isprintable() else "?" for c in value)[:120]


# -- policy admins ------------------------------------------------------------------------------
def is_admin(admins: Sequence[str], actor: Actor) -> bool:
    """Whether `actor` is in POLICYBOT_ADMINS on its own platform (`slack:U123`,
    `teams:<AAD object id>`, any case)."""
    if not actor.platform.strip() or not actor.user_id.strip():
        return False
    if actor.platform == OPERATOR.platform:
        return actor.user_id == OPERATOR.user_id
    wanted = platform_id(actor.platform, actor.user_id).lower().encode()
    # Every entry is compared, in constant time, so timing says nothing about the list.
    matches = [hmac.compare_digest(wanted, entry.strip().lower().encode()) for entry in admins]
    return any(matches)


def authorize(admins: Sequence[str], actor: Actor, *, action: str = "policy change") -> None:
    """Raise NotAuthorized (with a polite message) unless `actor` is a policy admin on the
    platform they act from; a refusal goes to the security log."""
    if not is_admin(admins, actor):
        refused(
            action,
            platform=actor.platform,
            who=actor.user_id,
            reason=f"not in POLICYBOT_ADMINS for {actor.platform}",
        )
        raise NotAuthorized()


# -- the policy team ----------------------------------------------------------------------------
async def may_review(
    actor: Actor,
    settings: Settings,
    *,
    action: str = "",
    in_team_group: Callable[[], Awaitable[bool]] | None = None,
) -> bool:
    """Whether `actor` may see and resolve the review list, on any platform: listed in the
    policy team of the platform they act from (POLICYBOT_<PLATFORM>_POLICY_TEAM; an id listed
    for another platform counts for nothing here) or a member of the platform's policy-team
    group (`in_team_group`, Slack's user group: asked only for someone not listed). With
    `action`, a refusal goes to the security log."""
    member = bool(actor.user_id) and actor.user_id in settings.policy_team(actor.platform)
    if actor.platform == OPERATOR.platform:
        member = actor.user_id == OPERATOR.user_id
    if not member and in_team_group is not None:
        member = await in_team_group()
    if action and not member:
        refused(action, platform=actor.platform, who=actor.user_id, reason="not in the policy team")
    return member
