"""Rendering console pages: one Jinja2 environment (autoescaped), the base layout's context,
flash messages and the plain refusal page."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from aiohttp import web
from markupsafe import Markup

from adapters.web.identity import csrf_token, signed_in
from adapters.web.sessions import CSRF_FIELD, PREFIX

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: A one-line message carried to the next page (after a POST's redirect) in a short cookie.
FLASH_COOKIE = "policybot_flash"
FLASH_MAX_CHARS = 300
#: Where the middleware leaves the nonce a page's own <script nonce> may carry.
NONCE_KEY = web.RequestKey("policybot.csp_nonce", str)


@functools.cache
def environment() -> jinja2.Environment:
    """The console's Jinja2 environment, made on the first page: a server whose console
    nobody opens never imports Jinja2."""
    import jinja2

    @jinja2.pass_context
    def csrf_field(context: jinja2.runtime.Context) -> Markup:
        """`{{ csrf_field() }}` inside every <form method="post">."""
        return Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, context.get("csrf_token", "")
        )

    made = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    made.globals["csrf_field"] = csrf_field
    made.globals["prefix"] = PREFIX
    return made


def render(request: web.Request, template: str, **context: Any) -> str:
    return (
        environment()
        .get_template(template)
        .render(
            user=signed_in(request),
            csrf_token=csrf_token(request),
            csp_nonce=request.get(NONCE_KEY, ""),
            flash=_flash_of(request),
            **context,
        )
    )


def page(request: web.Request, template: str, **context: Any) -> web.Response:
    """`template` rendered in the base layout with `user`, `csrf_token` and `flash`."""
    status = int(context.pop("status", 200))
    response = web.Response(
        text=render(request, template, **context), content_type="text/html", status=status
    )
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path=PREFIX)
    return response


def redirect(request: web.Request, location: str, flash: str = "") -> web.HTTPSeeOther:
    """A 303 to `location` (raise it), the `flash` line shown on the page it leads to."""
    response = web.HTTPSeeOther(location=location)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            quote(flash[:FLASH_MAX_CHARS]),
            path=PREFIX,
            max_age=60,
            httponly=True,
            samesite="Lax",
            secure=request.secure,
        )
    return response


def _flash_of(request: web.Request) -> str:
    return unquote(request.cookies.get(FLASH_COOKIE, ""))[:FLASH_MAX_CHARS]


def refusal(request: web.Request, text: str, *, status: int = 403) -> web.HTTPException:
    """A plain page saying why (raise it); whoever refuses logs the refusal."""
    body = render(request, "refused.html", reason=text)
    error_class = web.HTTPForbidden if status == 403 else web.HTTPBadRequest
    return error_class(text=body, content_type="text/html")
