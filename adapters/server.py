"""The HTTP server that hosts the platform endpoints (`policybot serve`)."""

from __future__ import annotations

import logging

from aiohttp import web

from adapters import admin_http, teams
from bot.core import PolicyBot

log = logging.getLogger(__name__)

BOT_KEY = web.AppKey("bot", PolicyBot)


async def healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT_KEY]
    active = bot.storage.active_versions()
    status = 200 if active else 503
    return web.json_response(
        {
            "ok": bool(active),
            "policies": [
                {
                    "document": v.document,
                    "version": v.id,
                    "label": v.label,
                    "clauses": v.clause_count,
                }
                for v in active
            ],
        },
        status=status,
    )


def build_app(bot: PolicyBot) -> web.Application:
    """One aiohttp application; each platform adds its routes here."""
    app = web.Application(client_max_size=bot.settings.max_upload_bytes + 1024 * 1024)
    app[BOT_KEY] = bot
    app.router.add_get("/healthz", healthz)
    settings = bot.settings
    if settings.slack_signing_secret and settings.slack_bot_token:
        from adapters import slack

        slack.add_routes(app, bot)
    teams.add_routes(app, bot)
    admin_http.register(app, bot)  # /admin/policies (needs POLICYBOT_ADMIN_TOKEN)

    async def close_bot(_: web.Application) -> None:
        await bot.aclose()  # the LLM client's connections

    app.on_cleanup.append(close_bot)
    return app


def run(bot: PolicyBot, host: str, port: int) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    web.run_app(build_app(bot), host=host, port=port, print=None)
