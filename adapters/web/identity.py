"""Who is signed in, as page modules see it: `web_user(request)` and `csrf_token(request)`.

The console's middleware (adapters/web/app.py) has found the session and re-read the roles
from the settings before any page handler runs; a handler behind it always has a user.
`WebUser.actor` is what the core's use cases take, so a page acts exactly as Slack or Teams
would for the same person (`policy_bot(request).resolve_group(user.actor, ...)`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from adapters.web.sessions import console_of, csrf_for
from bot import access
from bot.core import PolicyBot
from bot.models import Actor

#: The attribute `public` sets on a handler.
PUBLIC_MARK = "console_public"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def public(handler: Handler) -> Handler:
    """Mark a console handler as reachable without a session (the sign-in pages); every
    other console route needs one."""
    setattr(handler, PUBLIC_MARK, True)
    return handler


@dataclass(frozen=True)
class WebUser:
    """The signed-in person: the Actor the core's use cases take, the name to show, and the
    roles the settings give them now."""

    actor: Actor
    name: str
    admin: bool
    policy_team: bool


#: Where the middleware leaves the signed-in user and their session token on the request.
USER_KEY = web.RequestKey("policybot.web_user", WebUser)
TOKEN_KEY = web.RequestKey("policybot.web_session_token", str)


def signed_in(request: web.Request) -> WebUser | None:
    user = request.get(USER_KEY)
    return user if isinstance(user, WebUser) else None


def web_user(request: web.Request) -> WebUser:
    """The signed-in user. Only public pages (sign-in, the link, the providers' callbacks) run
    without one, and they do not call this."""
    user = signed_in(request)
    if user is None:
        raise web.HTTPSeeOther(location="/console/sign-in")
    return user


def admin_user(request: web.Request, action: str) -> WebUser:
    """The signed-in user if an admin; otherwise 403 with a plain page and the refusal in the
    security log (`action`: "console policies", say)."""
    user = web_user(request)
    if not user.admin:
        access.refused(
            action,
            platform=user.actor.platform,
            who=user.actor.user_id,
            reason=f"not in POLICYBOT_ADMINS for {user.actor.platform}",
        )
        from adapters.web.render import refusal

        raise refusal(request, "This page is for policy admins.", status=403)
    return user


def csrf_token(request: web.Request) -> str:
    """The token every form posted to the console carries (`{{ csrf_field() }}`)."""
    token = request.get(TOKEN_KEY)
    return csrf_for(token) if isinstance(token, str) and token else ""


def policy_bot(request: web.Request) -> PolicyBot:
    """The core every page calls; its storage only through `bot.worker.run`."""
    return console_of(request).bot
