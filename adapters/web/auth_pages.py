"""Signing in and out: the sign-in page, the one-time link, and sign-out."""

from __future__ import annotations

from aiohttp import web

from adapters.teams.loopback import arrived_on_loopback
from adapters.web.identity import public
from adapters.web.render import page, refusal
from adapters.web.sessions import (
    clear_session_cookie,
    console_of,
    end_session,
    set_session_cookie,
    start_session,
)
from bot import access
from bot.models import Actor

NOT_ALLOWED = (
    "You are signed in with your organization, but the console is for the policy team and "
    "policy admins only. Ask whoever runs policybot to add you if you should have access."
)


@public
async def sign_in_page(request: web.Request) -> web.Response:
    settings = console_of(request).settings
    return page(
        request,
        "sign_in.html",
        entra=settings.entra_signin,
        slack=settings.slack_signin,
    )


async def signed_in_response(request: web.Request, actor: Actor, *, via: str) -> web.Response:
    """A session for `actor` and a 303 to the console; a plain 403 page when they may not
    enter (start_session logs it)."""
    token = await start_session(request, actor, via=via)
    if token is None:
        raise refusal(request, NOT_ALLOWED)
    response = web.HTTPSeeOther(location="/console/")
    set_session_cookie(request, response, token)
    raise response


@public
async def follow_link(request: web.Request) -> web.Response:
    console = console_of(request)
    if not (console.listens_on_loopback and arrived_on_loopback(request)):
        access.refused(
            "console sign-in link",
            platform="web",
            who=request.remote or "",
            reason="the server does not listen on loopback only",
        )
        raise refusal(
            request,
            "Sign-in links work only while policybot serve listens on 127.0.0.1 (a laptop). "
            "Sign in with your organization's account instead.",
        )
    token = request.match_info["token"]
    link = await console.bot.console_sessions.use_link(token)
    if link is None:
        access.refused(
            "console sign-in link",
            platform="web",
            who=request.remote or "",
            reason="unknown, used or expired link",
        )
        raise refusal(
            request,
            "This sign-in link is unknown, already used or expired. Print a new one with "
            "policybot console link.",
        )
    actor = Actor(link.platform, link.user_id, link.name)
    if link.platform == access.OPERATOR.platform:
        actor = access.OPERATOR
    return await signed_in_response(request, actor, via="link")


async def sign_out(request: web.Request) -> web.Response:
    await end_session(request)
    response = web.HTTPSeeOther(location="/console/sign-in")
    clear_session_cookie(request, response)
    raise response


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(prefix + "/sign-in", sign_in_page)
    router.add_get(prefix + "/link/{token}", follow_link)
    router.add_post(prefix + "/sign-out", sign_out)
