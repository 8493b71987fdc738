"""The console on the server: its routes under /console and the middleware every console
request passes, in this order:

1. the session from the cookie, and the roles from the settings as they are now: someone
   with neither role (taken off the lists since signing in) is refused and signed out;
2. a change (POST, PUT, PATCH, DELETE) must come from the console's own origin (the
   browser's Sec-Fetch-Site and Origin) and carry the session's CSRF token, compared in
   constant time; refusals are 403 with a plain page and one line in the security log;
3. a page that is not public needs a session (a GET is sent to the sign-in page);
4. every response carries the security headers: a CSP with no inline script but the page's
   nonce, no framing, nosniff, no Referer to another site, and no caching of anything but
   the stylesheet.

Page modules: each has `add_routes(router, prefix)`, adding its routes under `prefix`
("/console"), and is listed in PAGE_MODULES.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from types import ModuleType
from urllib.parse import urlsplit

from aiohttp import web

from adapters.web import auth_pages, home_pages, oidc, policy_pages, review_pages, trend_pages
from adapters.web.identity import PUBLIC_MARK, TOKEN_KEY, USER_KEY, WebUser
from adapters.web.render import NONCE_KEY, refusal
from adapters.web.sessions import (
    CONSOLE_KEY,
    CSRF_FIELD,
    CSRF_HEADER,
    PREFIX,
    Console,
    clear_session_cookie,
    console_of,
    csrf_for,
    current_session,
    roles_of,
)
from bot import access
from bot.core import PolicyBot
from bot.models import Actor

#: The console's pages, each module adding its routes under PREFIX.
PAGE_MODULES: list[ModuleType] = [
    auth_pages,
    oidc,
    home_pages,
    review_pages,
    policy_pages,
    trend_pages,
]
STATIC = PREFIX + "/static"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: What Sec-Fetch-Site may say of a change: from the console's own pages, or typed by the
#: person (no other site's page can send "none").
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def in_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _is_public(request: web.Request) -> bool:
    if request.path.startswith(STATIC + "/"):
        return True
    handler = getattr(request.match_info, "handler", None)
    return bool(getattr(handler, PUBLIC_MARK, False))


def console_origin(request: web.Request) -> str:
    """The one origin a change may come from: POLICYBOT_CONSOLE_URL's, else this request's own
    (a laptop on loopback)."""
    configured = console_of(request).settings.console_url
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{request.scheme}://{request.host}".lower()


def _refuse(request: web.Request, action: str, reason: str, text: str) -> web.HTTPException:
    user = request.get(USER_KEY)
    who = user.actor if isinstance(user, WebUser) else None
    access.refused(
        action,
        platform=who.platform if who else "web",
        who=who.user_id if who else (request.remote or ""),
        reason=reason,
    )
    return refusal(request, text, status=403)


async def _check_change(request: web.Request) -> None:
    """A change must come from the console's own pages and carry the session's token."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site and fetch_site not in SAME_SITE_FETCHES:
        raise _refuse(
            request,
            "console change",
            f"cross-site request (Sec-Fetch-Site: {fetch_site[:20]})",
            "This change did not come from the console's own page; nothing was changed.",
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != console_origin(request):
        raise _refuse(
            request,
            "console change",
            "request from another origin",
            "This change did not come from the console's own page; nothing was changed.",
        )
    token = request.get(TOKEN_KEY)
    if not isinstance(token, str) or not token:
        raise _refuse(
            request,
            "console change",
            "no console session",
            "Your console session has ended; sign in again. Nothing was changed.",
        )
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        field = form.get(CSRF_FIELD, "")
        given = field if isinstance(field, str) else ""
    if not hmac.compare_digest(given.encode(), csrf_for(token).encode()):
        raise _refuse(
            request,
            "console change",
            "missing or wrong CSRF token",
            "This form has expired or did not come from the console; reload the page and "
            "try again. Nothing was changed.",
        )


def _security_headers(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = (
        "default-src 'none'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    # Not "no-referrer": under it a browser sends `Origin: null` with the console's own form
    # posts, which the origin check above must refuse. "same-origin" still sends no Referer
    # (and a null Origin) to any other site.
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith(STATIC + "/"):
        headers["Cache-Control"] = "no-store"


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not in_console(request.path):
        return await handler(request)
    nonce = secrets.token_urlsafe(16)
    request[NONCE_KEY] = nonce
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as raised:
        _security_headers(request, raised, nonce)
        raise
    _security_headers(request, response, nonce)
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    found = await current_session(request)
    if found is not None:
        token, session = found
        console = console_of(request)
        actor = Actor(session.platform, session.user_id, session.name)
        if session.platform == access.OPERATOR.platform:
            actor = access.OPERATOR
        roles = await roles_of(console.bot, actor)
        if not roles.any:
            # Taken off both lists since signing in: this session is over.
            await console.bot.console_sessions.end(session.id)
            access.refused(
                "console",
                platform=actor.platform,
                who=actor.user_id,
                reason=f"no longer in POLICYBOT_ADMINS or the policy team for {actor.platform}",
            )
            refused = refusal(
                request,
                "You no longer have access to the console: you are neither a policy admin "
                "nor on the policy team. Ask whoever runs policybot if this is a mistake.",
            )
            clear_session_cookie(request, refused)
            raise refused
        request[TOKEN_KEY] = token
        request[USER_KEY] = WebUser(
            actor, session.name or actor.user_id, roles.admin, roles.policy_team
        )
    if request.method not in SAFE_METHODS:
        await _check_change(request)
    if request.get(USER_KEY) is None and not _is_public(request):
        if request.method in SAFE_METHODS:
            raise web.HTTPSeeOther(location=PREFIX + "/sign-in")
        raise _refuse(request, "console change", "no console session", "Sign in first.")
    return await handler(request)


def add_console(app: web.Application, bot: PolicyBot, *, listen_host: str | None) -> None:
    """Serve the console under /console on `app`."""
    app[CONSOLE_KEY] = Console(bot, listen_host)
    app[oidc.SIGN_INS_KEY] = oidc.SignIns.of(bot.settings)
    app.middlewares.append(console_middleware)
    app.router.add_get(PREFIX, _to_home)
    app.router.add_static(STATIC, home_pages.STATIC_FILES, append_version=False)
    for module in PAGE_MODULES:
        module.add_routes(app.router, PREFIX)


async def _to_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(location=PREFIX + "/")
