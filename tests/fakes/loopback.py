"""Run an aiohttp application on 127.0.0.1, port chosen by the OS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

#: Where every test server listens; the app is told so (`build_app(bot, host=LOOPBACK)`), as
#: `policybot serve --host` tells it in production.
LOOPBACK = "127.0.0.1"


@asynccontextmanager
async def serving(app: web.Application, **runner_options: Any) -> AsyncIterator[str]:
    """Yield the base URL (no trailing slash) while `app` serves on loopback; `runner_options`
    go to aiohttp's AppRunner (the server's access log: `adapters.server.RUNNER_OPTIONS`)."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
