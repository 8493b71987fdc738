"""The console's landing page (what is active, how much waits for review) and, for admins,
the signed-in sessions, each of which they may end."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from adapters.web.identity import admin_user, policy_bot, web_user
from adapters.web.render import page, redirect

log = logging.getLogger(__name__)

STATIC_FILES = Path(__file__).resolve().parent / "static"


async def home(request: web.Request) -> web.Response:
    user = web_user(request)
    bot = policy_bot(request)
    active = await bot.worker.run(bot.active_versions)
    open_groups: int | None = None
    if user.policy_team:
        listed = await bot.review_list(user.actor, action="")
        open_groups = len(listed.groups) if listed.groups is not None else None
    return page(request, "home.html", active=active, open_groups=open_groups)


async def sessions(request: web.Request) -> web.Response:
    admin_user(request, "console sessions")
    bot = policy_bot(request)
    rows = await bot.console_sessions.listed()
    return page(request, "sessions.html", sessions=rows)


async def end_session(request: web.Request) -> web.Response:
    user = admin_user(request, "console session end")
    bot = policy_bot(request)
    form = await request.post()
    raw = form.get("session", "")
    if not isinstance(raw, str) or not raw.isdigit():
        raise redirect(request, "/console/sessions", "No session was named; nothing changed.")
    ended = await bot.console_sessions.end(int(raw))
    text = "The session was ended." if ended else "That session had already ended."
    if ended:
        log.info("console session %s ended by %s", raw, user.actor.recorded_as)
    raise redirect(request, "/console/sessions", text)


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(prefix + "/", home)
    router.add_get(prefix + "/sessions", sessions)
    router.add_post(prefix + "/sessions/end", end_session)
