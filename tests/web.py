"""Helpers for tests of the web console: a real `policybot serve` app on 127.0.0.1, and
signing in to it through the real one-time link flow.

    async with console_server(settings, admins=("slack:U1",)) as server:
        async with sign_in(server) as client:          # the local operator
            page = await client.get("/console/")
        async with sign_in(server, as_="slack:U1") as client:
            ...
        token = csrf_of(page.text)                            # for a POST's csrf_token
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
from aiohttp import web

from adapters.server import RUNNER_OPTIONS, build_app
from bot import access
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor
from tests.fakes.loopback import LOOPBACK

_CSRF_INPUT = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@dataclass(frozen=True)
class ConsoleServer:
    bot: PolicyBot
    base_url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def console_server(
    settings: Settings, *, host: str = LOOPBACK, public_url: bool = False, **options: Any
) -> AsyncIterator[ConsoleServer]:
    """`policybot serve`'s app on 127.0.0.1 with `settings` (changed by `options`), on its
    SQLite file with the bundled policy active; `host` is what the app is told it listens
    on (as `serve --host` tells it); `public_url` sets POLICYBOT_CONSOLE_URL to where it
    serves (what the identity providers' redirect URIs need)."""
    port = free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    if public_url:
        options["console_url"] = base_url
    bot = PolicyBot.create(replace(settings, delivery_interval=0, **options))
    bot.ensure_policy()
    runner = web.AppRunner(build_app(bot, host=host), **RUNNER_OPTIONS)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield ConsoleServer(bot, base_url)
    finally:
        await runner.cleanup()


async def new_link(server: ConsoleServer, *, as_: str | None = None, minutes: int = 10) -> str:
    """A one-time link's path (`/console/link/<token>`), as `policybot console link` makes it."""
    actor = access.OPERATOR
    if as_ is not None:
        platform, _, user_id = as_.partition(":")
        actor = Actor(platform, user_id)
    token = await server.bot.worker.run(
        server.bot.console_sessions.create_link, actor, minutes=minutes
    )
    return f"/console/link/{token}"


@asynccontextmanager
async def sign_in(
    server: ConsoleServer, *, as_: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client signed in to the console through a fresh one-time link: the local
    operator (both roles), or `as_` ("slack:U123") with the roles the settings give it.
    AssertionError when the link does not sign in."""
    async with httpx.AsyncClient(
        base_url=server.base_url, follow_redirects=False, timeout=30
    ) as client:
        response = await client.get(await new_link(server, as_=as_))
        if response.status_code != 303:
            raise AssertionError(f"the sign-in link answered {response.status_code}")
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token a console page's forms carry."""
    found = _CSRF_INPUT.search(html)
    assert found is not None, "no csrf_token field on the page"
    return found.group(1)


async def sign_in_with(client: httpx.AsyncClient, provider: str) -> httpx.Response:
    """Go through an identity provider's sign-in as a browser would (the console's start, the
    provider's authorize endpoint, back to the console's callback) and return the callback's
    response: 303 to /console/ when signed in, 403 when refused."""
    response = await client.get(f"/console/auth/{provider}/start")
    assert response.status_code == 303, response.text
    at_provider = await client.get(response.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    return await client.get(at_provider.headers["location"])
