"""Console sessions: who may enter, the session cookie, its CSRF token, and refusals.

A session is a row in the database found by the SHA-256 of the random token the browser's
cookie holds; the token itself is never stored, so a copy of the database signs nobody in.
The row says who signed in (platform, id, name), never what they may do: the roles are read
from the settings on every request, so someone taken off POLICYBOT_ADMINS or the policy team
loses access at the next request. The CSRF token is an HMAC of the session token, so it is
never stored either and changes with every sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from adapters.teams.loopback import arrived_on_loopback, is_loopback_host
from bot import access
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor
from bot.store.database import ConsoleSession

PREFIX = "/console"
#: The cookie over HTTPS: `__Host-` makes the browser refuse it unless Secure, from this very
#: host and for Path=/ (the prefix requires that path), so no sibling subdomain can set it.
HOST_COOKIE = "__Host-policybot_console"
#: The cookie on plain loopback HTTP (a laptop), where `__Host-` cannot be had.
PLAIN_COOKIE = "policybot_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Console:
    """What the console's handlers share: the core and where the server listens."""

    bot: PolicyBot
    #: The host `serve --host` listens on; None when unknown (then nothing counts as loopback).
    listen_host: str | None

    @property
    def settings(self) -> Settings:
        return self.bot.settings

    @property
    def listens_on_loopback(self) -> bool:
        return self.listen_host is not None and is_loopback_host(self.listen_host)


CONSOLE_KEY = web.AppKey("console", Console)


def console_of(request: web.Request) -> Console:
    return request.config_dict[CONSOLE_KEY]


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"policybot console csrf", hashlib.sha256).hexdigest()


# -- who may enter ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Roles:
    admin: bool
    policy_team: bool

    @property
    def any(self) -> bool:
        return self.admin or self.policy_team


async def roles_of(bot: PolicyBot, actor: Actor) -> Roles:
    """The actor's roles from the settings as they are now (bot.access's rules: an id counts
    on its own platform only)."""
    return Roles(bot.is_admin(actor), await bot.may_review(actor))


def refuse_entry(actor: Actor, how: str) -> None:
    access.refused(
        f"console sign-in ({how})",
        platform=actor.platform,
        who=actor.user_id,
        reason=f"neither in POLICYBOT_ADMINS nor in the policy team for {actor.platform}",
    )


# -- the cookie ---------------------------------------------------------------------------------
def served_over_https(request: web.Request) -> bool:
    console_url = console_of(request).settings.console_url
    return console_url.startswith("https://") or request.secure


def cookie_name(request: web.Request) -> str:
    return HOST_COOKIE if served_over_https(request) else PLAIN_COOKIE


def session_token_of(request: web.Request) -> str:
    return request.cookies.get(cookie_name(request), "")


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    https = served_over_https(request)
    # Plain HTTP only to a loopback socket may go without Secure; anywhere else the browser
    # is told to send it over HTTPS only (and so, on plain HTTP, not at all).
    secure = https or not arrived_on_loopback(request)
    response.set_cookie(
        cookie_name(request),
        token,
        path="/" if https else PREFIX,
        secure=secure,
        httponly=True,
        samesite="Lax",
        max_age=int(console_of(request).bot.console_sessions.lifetime.total_seconds()),
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    https = served_over_https(request)
    response.del_cookie(
        cookie_name(request),
        path="/" if https else PREFIX,
        secure=https or not arrived_on_loopback(request),
        httponly=True,
        samesite="Lax",
    )


# -- signing in and out -------------------------------------------------------------------------
async def start_session(
    request: web.Request, actor: Actor, *, via: str, now: datetime | None = None
) -> str | None:
    """A new session for `actor` (any session the browser had ends first, so a token set
    before sign-in is never carried into it); its token, or None when `actor` may not enter
    (refused in the security log)."""
    console = console_of(request)
    roles = await roles_of(console.bot, actor)
    if not roles.any:
        refuse_entry(actor, via)
        return None
    await end_session(request)
    return await console.bot.console_sessions.start(actor, via=via, now=now)


async def current_session(request: web.Request) -> tuple[str, ConsoleSession] | None:
    """The browser's live session and its token, or None."""
    token = session_token_of(request)
    session = await console_of(request).bot.console_sessions.find(token)
    return (token, session) if session is not None else None


async def end_session(request: web.Request) -> bool:
    """Delete the browser's session row, if it has one."""
    found = await current_session(request)
    if found is None:
        return False
    return await console_of(request).bot.console_sessions.end(found[1].id)
