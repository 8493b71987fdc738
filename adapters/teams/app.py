"""Microsoft Teams wiring: Bot Framework activities in at `POST /api/messages`, through a
botbuilder CloudAdapter (its tokens checked by `auth`) to the `TeamsBot` turn handler.

A message in a personal chat, or one that @mentions the bot in a channel or group chat,
becomes an IncomingQuestion; the card's buttons come back as message activities whose `value`
carries the question id. A file attached in a personal chat is a policy upload (admins only);
`review` lists the open question groups for the policy team with answer boxes. Without
MicrosoftAppId (POLICYBOT_TEAMS_UNAUTHENTICATED, local testing) requests are taken on loopback
only, and only with a loopback serviceUrl.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import jwt
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)

from adapters.teams import auth as teams_auth
from adapters.teams.handler import TeamsBot
from adapters.teams.loopback import arrived_on_loopback, is_loopback, is_loopback_host
from adapters.teams.outbound import TeamsChannelPoster, TeamsNotifier, TeamsReviewPoster
from adapters.teams.turns import PLATFORM
from bot import access, messages
from bot.config import ConfigError, Settings
from bot.core import PolicyBot

log = logging.getLogger(__name__)

ROUTE = "/api/messages"


@dataclass(frozen=True)
class BotFrameworkConfig:
    """Our settings under the attribute names the Bot Framework's configuration readers expect."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str


def bot_framework_config(settings: Settings) -> BotFrameworkConfig:
    return BotFrameworkConfig(
        APP_ID=settings.microsoft_app_id,
        APP_PASSWORD=settings.microsoft_app_password,
        APP_TYPE=settings.microsoft_app_type,
        APP_TENANTID=settings.microsoft_app_tenant_id,
    )


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    log.error("Teams turn failed", exc_info=error)
    try:
        await turn_context.send_activity(messages.APOLOGY)
    except Exception:  # the connector itself may be what failed; the log has the cause
        log.exception("could not tell the Teams user about the failure")


def create_adapter(settings: Settings) -> CloudAdapter:
    """A CloudAdapter whose incoming tokens `teams_auth` checks for MicrosoftAppId (none are
    checked when it is unset); replies get botbuilder's credentials from the app password."""
    keys = teams_auth.SigningKeys(
        settings.teams_openid_metadata_url, timeout=teams_auth.FETCH_TIMEOUT
    )
    auth = teams_auth.CheckedBotFrameworkAuthentication(
        settings.microsoft_app_id,
        ConfigurationBotFrameworkAuthentication(bot_framework_config(settings)),
        keys,
    )
    adapter = CloudAdapter(auth)
    adapter.on_turn_error = on_turn_error
    return adapter


def register_outbound(bot: PolicyBot, adapter: CloudAdapter | None = None) -> CloudAdapter:
    """Register the Teams notifier with the core, and the digest and review posters when their
    conversations are configured; also for commands that post without serving (`digest`)."""
    settings = bot.settings
    adapter = adapter or create_adapter(settings)
    app_id = settings.microsoft_app_id
    bot.notifiers[PLATFORM] = TeamsNotifier(adapter, app_id)
    if settings.digest_teams_conversation:
        bot.channel_posters[PLATFORM] = TeamsChannelPoster(
            adapter, app_id, settings.digest_teams_conversation, settings.teams_service_url
        )
    if settings.teams_review_conversation:
        bot.review_posters[PLATFORM] = TeamsReviewPoster(
            adapter, app_id, settings.teams_review_conversation, settings.teams_service_url
        )
    return adapter


# -- HTTP --------------------------------------------------------------------------------------
def check_unauthenticated_host(settings: Settings, listen_host: str | None) -> None:
    """POLICYBOT_TEAMS_UNAUTHENTICATED only while the server listens on loopback: a clear
    start-up error otherwise."""
    if not settings.teams_unauthenticated:
        return
    if listen_host is None or not is_loopback_host(listen_host):
        if listen_host is None:
            where = "a host it was not told"
        elif listen_host in ("", "0.0.0.0", "::"):
            where = "all interfaces"
        else:
            where = listen_host
        raise ConfigError(
            "POLICYBOT_TEAMS_UNAUTHENTICATED=1 serves /api/messages with no token check, so it "
            f"is only allowed on loopback, but the server would listen on {where}. For local "
            "testing run `policybot serve --host 127.0.0.1`; for real Teams traffic unset it "
            "and set MicrosoftAppId."
        )


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def refuse_unauthenticated(request: web.Request, reason: str) -> None:
    access.refused("Teams activity", platform=PLATFORM, who=request.remote or "", reason=reason)


@dataclass(frozen=True)
class MessagesRoute:
    """`POST /api/messages`: a Bot Framework activity, checked, handed to the adapter."""

    adapter: CloudAdapter
    teams_bot: TeamsBot
    authenticated: bool

    async def messages(self, request: web.Request) -> web.StreamResponse:
        if not self.authenticated and not arrived_on_loopback(request):
            refuse_unauthenticated(request, "unauthenticated mode reached off loopback")
            return error(403, "unauthenticated mode only takes requests on loopback")
        if request.content_type != "application/json":
            return error(415, "send the Bot Framework activity as application/json")
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body is not valid JSON")
        if not isinstance(body, dict) or not body.get("type"):
            return error(400, "the body is not a Bot Framework activity (no type)")
        if not self.authenticated and not is_loopback(body.get("serviceUrl")):
            # Without tokens anyone could make the bot call any URL; keep that to local tests.
            refuse_unauthenticated(request, "serviceUrl not on loopback in unauthenticated mode")
            return error(403, "unauthenticated mode only replies to a serviceUrl on loopback")
        try:
            response = await self.adapter.process(request, self.teams_bot)
        except (web.HTTPUnauthorized, jwt.PyJWTError) as refusal:
            access.refused(
                "Teams activity",
                platform=PLATFORM,
                who=request.remote or "",
                reason=teams_auth.refusal_reason(refusal),
            )
            return error(401, "a valid Bot Framework token is required")
        return response if response is not None else web.Response(status=201)


def add_routes(
    app: web.Application,
    bot: PolicyBot,
    *,
    listen_host: str | None = None,
    placeholder_after: float | None = None,
) -> None:
    """Mount `POST /api/messages`; register the Teams notifier and digest and review posters.
    Only for a configured Teams (`Settings.teams_configured`); unauthenticated, only on a
    loopback `listen_host` (ConfigError otherwise)."""
    settings = bot.settings
    if not settings.teams_configured:
        raise ConfigError(
            "Teams is not configured: set MicrosoftAppId (or, for local testing only, "
            "POLICYBOT_TEAMS_UNAUTHENTICATED=1)"
        )
    authenticated = bool(settings.microsoft_app_id)
    check_unauthenticated_host(settings, listen_host)
    adapter = register_outbound(bot)
    teams_bot = TeamsBot(bot, placeholder_after=placeholder_after)
    if not authenticated:
        log.warning(
            "POLICYBOT_TEAMS_UNAUTHENTICATED is set: %s accepts UNAUTHENTICATED requests, on "
            "loopback only, and replies only to service URLs on this machine. For local testing "
            "only; set MicrosoftAppId for Teams.",
            ROUTE,
        )
    app.router.add_post(ROUTE, MessagesRoute(adapter, teams_bot, authenticated).messages)
