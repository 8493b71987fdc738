"""Microsoft Teams wiring: Bot Framework activities in at `POST /api/messages`, through the
Microsoft 365 Agents SDK's CloudAdapter (its tokens checked by `auth`) to the `TeamsBot` turn
handler; replies and proactive messages go out with tokens from the SDK's MSAL connection
manager (the SERVICE_CONNECTION: the Azure Bot registration's client id and secret).

A message in a personal chat, or one that @mentions the bot in a channel or group chat,
becomes an IncomingQuestion; the card's buttons come back as message activities whose `value`
carries the question id. A file attached in a personal chat is a policy upload (admins only);
`review` lists the open question groups for the policy team with answer boxes. Without a
client id (POLICYBOT_TEAMS_UNAUTHENTICATED, local testing) requests are taken on loopback
only, and only with a loopback serviceUrl.

A message carrying a question is kept on disk (`PolicyBot.take_delivery`) and acknowledged
before it is answered: the acknowledgement waits for neither the answer nor the database, so
the Bot Framework does not redeliver it for a slow reply, a redelivery is dropped by the
activity's id, and a process stopped before answering leaves it to the next start
(`TeamsLateReplier`). A card's button, a file or a command is kept likewise (by its key) and
acknowledged at once; its turn then acts only if this was its first delivery to any process
(`turns.first_delivery`). Invokes (Teams' feedback form) answer in their response, so they
are acknowledged once their turn has run, as the SDK does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from microsoft_agents.activity import Activity, DeliveryModes
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AgentAuthConfiguration,
    ClaimsIdentity,
    TurnContext,
)
from microsoft_agents.hosting.core.authorization import AuthTypes
from microsoft_agents.hosting.core.http import HttpResponse
from pydantic import ValidationError

from adapters.backlog import SHUTDOWN_GRACE, finish_within
from adapters.teams import asking
from adapters.teams import auth as teams_auth
from adapters.teams.handler import TeamsBot, is_card_action, question_in
from adapters.teams.loopback import arrived_on_loopback, is_loopback, is_loopback_host
from adapters.teams.outbound import (
    TeamsChannelPoster,
    TeamsLateReplier,
    TeamsNotifier,
    TeamsReviewPoster,
)
from adapters.teams.turns import PLATFORM, RECEIPT, addressed_to_bot
from bot import access, messages
from bot.config import TEAMS_CLIENT_ID, TEAMS_RENAMED, ConfigError, Settings
from bot.core import PolicyBot, Receipt

log = logging.getLogger(__name__)

ROUTE = "/api/messages"
#: The tenant a multi-tenant Azure Bot gets its tokens from (the Bot Framework's own).
MULTI_TENANT_AUTHORITY = "botframework.com"


def service_connection(settings: Settings) -> AgentAuthConfiguration:
    """The SDK's SERVICE_CONNECTION from our settings: who the bot is to the connector."""
    auth_type = (
        AuthTypes.user_managed_identity
        if settings.teams_auth_type == "UserManagedIdentity"
        else AuthTypes.client_secret
    )
    return AgentAuthConfiguration(
        auth_type=auth_type,
        client_id=settings.microsoft_app_id or None,
        client_secret=settings.microsoft_app_password or None,
        tenant_id=settings.microsoft_app_tenant_id or MULTI_TENANT_AUTHORITY,
        connection_name="SERVICE_CONNECTION",
    )


def warn_about_old_names(settings: Settings) -> None:
    """One start-up line per Bot Framework name still in use, saying what to rename it to."""
    for old_name in settings.teams_legacy_settings:
        new_name = TEAMS_RENAMED[old_name]
        if old_name == "MicrosoftAppType":
            advice = (
                f"unset it: the tenant comes from {TEAMS_RENAMED['MicrosoftAppTenantId']} and "
                f"a managed identity is {new_name}=UserManagedIdentity"
            )
        else:
            advice = f"rename it to {new_name}"
        log.warning(
            "%s is the Bot Framework SDK's setting name, still read for now; %s (the Microsoft "
            "365 Agents SDK's name)",
            old_name,
            advice,
        )


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    log.error("Teams turn failed", exc_info=error)
    try:
        await turn_context.send_activity(messages.APOLOGY)
    except Exception:  # the connector itself may be what failed; the log has the cause
        log.exception("could not tell the Teams user about the failure")


def create_adapter(settings: Settings) -> CloudAdapter:
    """The Agents SDK's CloudAdapter, its outbound tokens from the MSAL connection manager
    (none are asked for a turn that arrived unauthenticated)."""
    connections = MsalConnectionManager(
        connections_configurations={"SERVICE_CONNECTION": service_connection(settings)}
    )
    adapter = CloudAdapter(connection_manager=connections)
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
            f"and set {TEAMS_CLIENT_ID}."
        )


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def refuse_unauthenticated(request: web.Request, reason: str) -> None:
    access.refused("Teams activity", platform=PLATFORM, who=request.remote or "", reason=reason)


@dataclass(frozen=True)
class MessagesRoute:
    """`POST /api/messages`: a Bot Framework activity, checked, handed to the adapter; a
    message for the bot kept first and its turn run after the acknowledgement."""

    adapter: CloudAdapter
    teams_bot: TeamsBot
    #: Checks each request's token; None in the unauthenticated local-testing mode.
    validator: teams_auth.TokenValidator | None
    #: Turns of messages acknowledged and not yet done (most of them answering a question).
    answering: set[asyncio.Task[None]] = field(default_factory=set)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        if self.validator is None and not arrived_on_loopback(request):
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
        if self.validator is None and not is_loopback(body.get("serviceUrl")):
            # Without tokens anyone could make the bot call any URL; keep that to local tests.
            refuse_unauthenticated(request, "serviceUrl not on loopback in unauthenticated mode")
            return error(403, "unauthenticated mode only replies to a serviceUrl on loopback")
        identity = ClaimsIdentity()  # anonymous: its replies carry no token
        if self.validator is not None:
            try:
                claims = await self.validator.claims(
                    request.headers.get("Authorization", ""),
                    channel=str(body.get("channelId") or ""),
                    service_url=_text_or_none(body.get("serviceUrl")),
                )
            except (web.HTTPUnauthorized, jwt.PyJWTError) as refusal:
                access.refused(
                    "Teams activity",
                    platform=PLATFORM,
                    who=request.remote or "",
                    reason=teams_auth.refusal_reason(refusal),
                )
                return error(401, "a valid Bot Framework token is required")
            identity = ClaimsIdentity(claims, authentication_type="Bearer")
        # Checked before the SDK reads it, which would answer a malformed one with a 500.
        try:
            activity = Activity.model_validate(body)
        except ValidationError as invalid:
            return error(400, f"the body is not a Bot Framework activity ({describe(invalid)})")
        checked = CheckedRequest(request, body, identity)
        if taken_before_its_turn(activity):
            return await self.take(checked, activity, question_in(activity))
        return as_aiohttp(await self.adapter.process_request(checked, self.teams_bot))

    async def take(
        self, checked: CheckedRequest, activity: Activity, question: str | None
    ) -> web.Response:
        """Keep the delivery (a question fsynced to the spool; a button, file or command by
        its key only), never waiting for the database; run its turn in a task of its own,
        and acknowledge it now as the SDK would (202)."""
        bot = self.teams_bot.ctx.policy_bot
        key = asking.delivery_key(activity)
        if question is None:
            receipt = await bot.take_delivery(PLATFORM, key)
        else:
            incoming = asking.incoming_question(activity, question)
            receipt = await bot.take_delivery(PLATFORM, key, incoming, asking.MESSAGE)
        if receipt.repeat:
            log.info("dropping a redelivered Teams activity")
        else:
            task = asyncio.create_task(self.run_turn(checked, receipt))
            self.answering.add(task)
            task.add_done_callback(self.answering.discard)
        return web.Response(status=202)

    async def run_turn(self, checked: CheckedRequest, receipt: Receipt) -> None:
        RECEIPT.set(receipt)  # this task's own context: the turn's jobs read it
        try:
            response = await self.adapter.process_request(checked, self.teams_bot)
        except Exception:  # a question stays received: answered on the next start
            log.exception("the turn of an acknowledged Teams activity failed")
            return
        if response.status_code >= 400:
            log.warning("the Teams SDK refused an acknowledged activity (%s)", response.status_code)

    async def stop_answering(self, _: web.Application) -> None:
        """At shutdown: the turns under way get a little time; the rest are cut (a question
        left kept, for the next start to answer; a button or a command is not done again)."""
        cut = await finish_within(self.answering, SHUTDOWN_GRACE)
        if cut:
            log.warning("%d Teams turn(s) cut short by shutdown", cut)


def taken_before_its_turn(activity: Activity) -> bool:
    """A message for the bot (a question, a card's button, a file, a command), acknowledged
    before its turn runs. Invokes answer in their response, and a client that asked for the
    replies in the body (expectReplies) waits for them, so both keep the SDK's own order;
    channel chatter not addressed to the bot is nothing to keep."""
    return (
        activity.type == "message"
        and activity.conversation is not None
        and bool(activity.conversation.id)
        and activity.delivery_mode != DeliveryModes.expect_replies
        and (is_card_action(activity) or addressed_to_bot(activity))
    )


@dataclass(frozen=True)
class CheckedRequest:
    """The request as the SDK's HTTP adapter reads it (its `HttpRequestProtocol`), with the
    identity our token check vouched for in place of its JWT middleware's."""

    request: web.Request
    body: dict[str, Any]
    identity: ClaimsIdentity

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers

    async def json(self) -> dict[str, Any]:
        return self.body

    def get_claims_identity(self) -> ClaimsIdentity:
        return self.identity

    def get_path_param(self, name: str) -> str:
        return self.request.match_info[name]


def as_aiohttp(response: HttpResponse) -> web.Response:
    if response.body is not None:
        return web.json_response(
            response.body, status=response.status_code, headers=response.headers
        )
    return web.Response(
        status=response.status_code,
        headers=response.headers,
        content_type=response.content_type,
    )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def describe(invalid: ValidationError) -> str:
    """Where the activity is malformed, in a few words (never the value sent)."""
    first = invalid.errors()[0] if invalid.errors() else None
    if first is None:
        return "unreadable"
    where = ".".join(str(part) for part in first.get("loc", ())) or "the activity"
    return f"{where}: {first.get('msg', 'invalid')}"[:200]


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
            f"Teams is not configured: set {TEAMS_CLIENT_ID} (or, for local testing only, "
            "POLICYBOT_TEAMS_UNAUTHENTICATED=1)"
        )
    check_unauthenticated_host(settings, listen_host)
    warn_about_old_names(settings)
    validator = None
    if settings.microsoft_app_id:
        keys = teams_auth.SigningKeys(
            settings.teams_openid_metadata_url, timeout=teams_auth.FETCH_TIMEOUT
        )
        validator = teams_auth.TokenValidator(settings.microsoft_app_id, keys)
    adapter = register_outbound(bot)
    bot.late_repliers[PLATFORM] = TeamsLateReplier(adapter, settings.microsoft_app_id)
    teams_bot = TeamsBot(bot, placeholder_after=placeholder_after)
    if validator is None:
        log.warning(
            "POLICYBOT_TEAMS_UNAUTHENTICATED is set: %s accepts UNAUTHENTICATED requests, on "
            "loopback only, and replies only to service URLs on this machine. For local testing "
            "only; set %s for Teams.",
            ROUTE,
            TEAMS_CLIENT_ID,
        )
    route = MessagesRoute(adapter, teams_bot, validator)
    app.router.add_post(ROUTE, route.messages)
    app.on_shutdown.append(route.stop_answering)
