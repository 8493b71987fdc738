"""Signing in to the console with an organization's identity provider: OpenID Connect's
authorization code flow with PKCE, for Microsoft Entra ID and for Slack ("Sign in with Slack").

The flow, per provider:

1. `/console/auth/<provider>/start`: a random `state`, stored by its hash with the hash of a
   random browser binding set in a short-lived cookie; the PKCE verifier and the nonce are
   HMACs of that binding (so neither is ever stored); the browser is sent to the provider.
2. `/console/auth/<provider>/callback`: the `state` is taken (once) and must belong to this
   browser's binding; the code is exchanged at the token endpoint with the client secret,
   the redirect URI and the PKCE verifier; the id_token is verified against the provider's
   JWKS: RS256 only, signature, issuer (the provider metadata's, for the configured tenant),
   audience (our client id), expiry, the nonce, and the tenant (Entra `tid`) or workspace
   (Slack `https://slack.com/team_id`) configured. The user becomes an Actor on the platform
   whose ids the settings list: Entra's `oid` is Teams' AAD object id (`teams:`), Slack's
   user id is Slack's (`slack:`); then they enter only with a role.

Every refusal is a plain 403 page and one line in the security log, naming why, never a
code, token or secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from adapters.web.auth_pages import signed_in_response
from adapters.web.identity import public
from adapters.web.render import refusal, render
from adapters.web.sessions import (
    PREFIX,
    console_of,
    served_over_https,
)
from bot import access
from bot.config import Settings, https_or_loopback_http
from bot.models import Actor

if TYPE_CHECKING:
    from adapters.jwks import SigningKey

# httpx, PyJWT and cryptography (13 MiB) are imported by the functions that sign someone in,
# so a console with no identity provider configured, or a server nobody signs in to, never
# loads them.

log = logging.getLogger(__name__)

#: The only signature algorithm taken: Entra ID and Slack both sign id_tokens with RS256,
#: and an allow-list of one leaves no room for `none` or an HMAC keyed with the public key.
ALGORITHMS = ["RS256"]
#: Seconds a token's times may be off from ours.
CLOCK_SKEW = 120
#: Seconds the metadata, the JWKS or the token endpoint may take.
FETCH_TIMEOUT = 10.0
#: How long the metadata and keys are used before being fetched again; an unknown `kid`
#: fetches the keys sooner, at most once per UNKNOWN_KID_INTERVAL.
METADATA_MAX_AGE = 3600.0
UNKNOWN_KID_INTERVAL = 300.0
#: How long a sign-in may take between leaving for the provider and coming back.
SIGN_IN_WINDOW = timedelta(minutes=10)
BINDING_COOKIE = "policybot_sign_in"
SCOPES = "openid profile"


class SignInRefused(Exception):
    """The callback does not sign anyone in; `why` is for the security log."""

    def __init__(self, why: str, *, who: str = "") -> None:
        super().__init__(why)
        self.why = why
        self.who = who


@dataclass(frozen=True)
class Provider:
    """One identity provider as configured."""

    #: The path segment and the `via` of its sessions: "entra" or "slack".
    name: str
    #: What the sign-in button says.
    label: str
    #: The platform whose ids the settings list for its users.
    platform: str
    metadata_url: str
    client_id: str
    client_secret: str
    #: The claim holding the user's id on `platform`.
    user_claim: str
    #: The claim that must equal `tenant` (Entra's tenant, Slack's workspace).
    tenant_claim: str
    tenant: str
    #: Extra parameters of the authorization request.
    extra: tuple[tuple[str, str], ...] = ()

    def redirect_uri(self, settings: Settings) -> str:
        return f"{settings.console_url}{PREFIX}/auth/{self.name}/callback"

    def expected_issuer(self, metadata_issuer: str) -> str:
        # Entra's multi-tenant metadata writes `{tenantid}`; ours is tenant-specific, but
        # either way the issuer must be the configured tenant's.
        return metadata_issuer.replace("{tenantid}", self.tenant)


def providers_of(settings: Settings) -> dict[str, Provider]:
    configured: dict[str, Provider] = {}
    if settings.entra_signin:
        configured["entra"] = Provider(
            name="entra",
            label="Microsoft",
            platform="teams",
            metadata_url=settings.entra_metadata_url,
            client_id=settings.entra_client_id,
            client_secret=settings.entra_client_secret,
            user_claim="oid",
            tenant_claim="tid",
            tenant=settings.entra_tenant_id,
            extra=(("response_mode", "query"),),
        )
    if settings.slack_signin:
        configured["slack"] = Provider(
            name="slack",
            label="Slack",
            platform="slack",
            metadata_url=settings.slack_discovery_url,
            client_id=settings.slack_signin_client_id,
            client_secret=settings.slack_signin_client_secret,
            user_claim="https://slack.com/user_id",
            tenant_claim="https://slack.com/team_id",
            tenant=settings.slack_team_id,
            extra=(("team", settings.slack_team_id),),
        )
    return configured


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def derived(binding: str, purpose: str, state: str) -> str:
    """The PKCE verifier or the nonce of one sign-in: from the browser's binding, which only
    that browser's cookie holds, and the state."""
    return _b64(hmac.new(binding.encode(), f"{purpose}:{state}".encode(), "sha256").digest())


def code_challenge(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


@dataclass
class ProviderDocuments:
    """A provider's OpenID metadata and signing keys, fetched within a timeout and cached."""

    provider: Provider
    metadata: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    fetched_at: float | None = None
    keys_attempted_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def current(self) -> dict[str, Any]:
        async with self._lock:
            stale = self.fetched_at is None or time.monotonic() - self.fetched_at > METADATA_MAX_AGE
            if stale:
                await self._fetch()
        return self.metadata

    async def key(self, kid: str) -> SigningKey | None:
        await self.current()
        if kid not in self.keys:
            async with self._lock:
                if (
                    kid not in self.keys
                    and time.monotonic() - self.keys_attempted_at >= UNKNOWN_KID_INTERVAL
                ):
                    await self._fetch()
        return self.keys.get(kid)

    async def _fetch(self) -> None:
        import httpx

        from adapters.jwks import FetchFailed, get_json, parse_jwks

        self.keys_attempted_at = time.monotonic()
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
            metadata = await get_json(client, self.provider.metadata_url)
            for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
                value = metadata.get(name)
                if not isinstance(value, str) or not https_or_loopback_http(value):
                    raise FetchFailed(f"the OpenID metadata has no HTTPS {name}")
            keys = parse_jwks(await get_json(client, metadata["jwks_uri"]))
        if not keys:
            raise FetchFailed("the provider's JWKS holds no RSA signing key")
        self.metadata, self.keys, self.fetched_at = metadata, keys, time.monotonic()


@dataclass
class SignIns:
    """The configured providers and their documents, kept on the application."""

    providers: dict[str, Provider]
    documents: dict[str, ProviderDocuments]

    @classmethod
    def of(cls, settings: Settings) -> SignIns:
        providers = providers_of(settings)
        return cls(providers, {name: ProviderDocuments(p) for name, p in providers.items()})


SIGN_INS_KEY = web.AppKey("console_sign_ins", SignIns)


def _provider(request: web.Request) -> tuple[Provider, ProviderDocuments]:
    sign_ins = request.config_dict[SIGN_INS_KEY]
    name = request.match_info["provider"]
    if name not in sign_ins.providers:
        raise web.HTTPNotFound(text="No such sign-in.")
    return sign_ins.providers[name], sign_ins.documents[name]


def _binding_cookie_options(request: web.Request) -> dict[str, Any]:
    # SameSite=Lax is what lets it come back on the provider's top-level redirect to us.
    return {
        "path": f"{PREFIX}/auth",
        "httponly": True,
        "samesite": "Lax",
        "secure": served_over_https(request) or request.secure,
    }


async def start(request: web.Request) -> web.StreamResponse:

    provider, documents = _provider(request)
    console = console_of(request)
    try:
        metadata = await documents.current()
    except Exception as error:  # any failure to reach the provider is the same page
        log.error("cannot reach the %s sign-in metadata: %s", provider.name, type(error).__name__)
        raise _unavailable(request, provider) from None
    state, binding = await console.bot.console_sessions.start_sign_in(
        provider.name, expires_at=datetime.now(UTC) + SIGN_IN_WINDOW
    )
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": provider.redirect_uri(console.settings),
        "scope": SCOPES,
        "state": state,
        "nonce": derived(binding, "nonce", state),
        "code_challenge": code_challenge(derived(binding, "pkce", state)),
        "code_challenge_method": "S256",
        **dict(provider.extra),
    }
    endpoint = str(metadata["authorization_endpoint"])
    if urlsplit(endpoint).query:
        raise refusal(request, "The identity provider's sign-in address is not usable.")
    response = web.HTTPSeeOther(location=f"{endpoint}?{urlencode(query)}")
    response.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=int(SIGN_IN_WINDOW.total_seconds()),
        **_binding_cookie_options(request),
    )
    raise response


def _unavailable(request: web.Request, provider: Provider) -> web.HTTPException:

    return web.HTTPServiceUnavailable(
        text=render(
            request,
            "refused.html",
            reason=f"Signing in with {provider.label} is not possible right now: the identity "
            "provider could not be reached. Try again in a minute.",
        ),
        content_type="text/html",
    )


async def callback(request: web.Request) -> web.StreamResponse:
    import httpx

    from adapters.jwks import FetchFailed

    provider, documents = _provider(request)
    try:
        actor = await _verified_actor(request, provider, documents)
    except SignInRefused as refused:
        access.refused(
            f"console sign-in ({provider.name})",
            platform=provider.platform,
            who=refused.who or request.remote or "",
            reason=refused.why,
        )
        failed = refusal(
            request,
            f"Signing in with {provider.label} did not work ({refused.why}). Go back to the "
            "sign-in page and try again.",
        )
        failed.del_cookie(BINDING_COOKIE, path=f"{PREFIX}/auth")
        raise failed from None
    except (FetchFailed, httpx.HTTPError, TimeoutError) as error:
        log.error("cannot reach %s to finish a sign-in: %s", provider.name, type(error).__name__)
        raise _unavailable(request, provider) from None
    try:
        return await signed_in_response(request, actor, via=provider.name)
    except web.HTTPException as response:
        response.del_cookie(BINDING_COOKIE, path=f"{PREFIX}/auth")
        raise


async def _verified_actor(
    request: web.Request, provider: Provider, documents: ProviderDocuments
) -> Actor:
    import httpx

    query = request.query
    if "error" in query:
        raise SignInRefused(f"the provider said {query['error'][:40]!r}")
    state, code = query.get("state", ""), query.get("code", "")
    if not state or not code or len(code) > 4096:
        raise SignInRefused("no state or code")
    binding = request.cookies.get(BINDING_COOKIE, "")
    console = console_of(request)
    refused = await console.bot.console_sessions.finish_sign_in(state, binding, provider.name)
    if refused:
        raise SignInRefused(refused)
    metadata = await documents.current()
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
        answer = await client.post(
            str(metadata["token_endpoint"]),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": provider.redirect_uri(console.settings),
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "code_verifier": derived(binding, "pkce", state),
            },
            headers={"Accept": "application/json"},
        )
    if answer.status_code != 200:
        raise SignInRefused(f"the token endpoint answered HTTP {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        raise SignInRefused("the token endpoint did not answer JSON") from None
    id_token = body.get("id_token") if isinstance(body, dict) else None
    if not isinstance(id_token, str) or not id_token:
        raise SignInRefused("the token endpoint sent no id_token")
    claims = await _verify(id_token, provider, documents, metadata)
    if not hmac.compare_digest(
        str(claims.get("nonce", "")).encode(), derived(binding, "nonce", state).encode()
    ):
        raise SignInRefused("the id_token's nonce is not this sign-in's")
    user_id = claims.get(provider.user_claim)
    if not isinstance(user_id, str) or not user_id.strip():
        raise SignInRefused(f"the id_token has no {provider.user_claim} claim")
    tenant = claims.get(provider.tenant_claim)
    if not isinstance(tenant, str) or not hmac.compare_digest(
        tenant.lower().encode(), provider.tenant.lower().encode()
    ):
        place = "tenant" if provider.name == "entra" else "workspace"
        raise SignInRefused(f"the account is from another {place}", who=user_id)
    name = claims.get("name")
    return Actor(provider.platform, user_id.strip(), name.strip() if isinstance(name, str) else "")


async def _verify(
    id_token: str, provider: Provider, documents: ProviderDocuments, metadata: dict[str, Any]
) -> dict[str, Any]:
    import jwt

    from adapters.jwks import why_not_valid

    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise SignInRefused("the id_token is not a JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise SignInRefused(f"id_token algorithm {str(header.get('alg'))[:20]!r} is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignInRefused("the id_token names no signing key")
    signing_key = await documents.key(kid)
    if signing_key is None:
        raise SignInRefused("the id_token's signing key is not the provider's")
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            signing_key.key,
            algorithms=ALGORITHMS,
            audience=provider.client_id,
            issuer=provider.expected_issuer(str(metadata["issuer"])),
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as error:
        raise SignInRefused(why_not_valid(error, "the id_token", "the provider")) from None
    return claims


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:

    router.add_get(prefix + "/auth/{provider}/start", public(start))
    router.add_get(prefix + "/auth/{provider}/callback", public(callback))
