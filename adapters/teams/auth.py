"""Checking the Bot Framework token on each Teams request, without blocking the server.

The Agents SDK's own check (its `jwt_authorization_middleware` and `JwtTokenValidator`) is not
used: it takes the JWKS address from a table keyed by the token's own (unverified) issuer, so it
cannot be pointed at other keys (the tests' keys on loopback, a sovereign cloud's metadata
through POLICYBOT_TEAMS_OPENID_METADATA_URL); it fetches them with PyJWT's blocking client in a
thread with no time limit of ours; it checks the issuer only when told to, ignores the keys'
channel endorsements, and only warns when the serviceUrl claim names another host. Here the keys
are fetched with httpx, within one time limit, cached, and every refusal is a `TokenRefused`
(401) naming why; what passes becomes the SDK's `ClaimsIdentity` for the turn.

The rules are the Bot Framework's for a channel's token: RS256, signed by a key of the JWKS
the OpenID metadata names (chosen by `kid`, endorsed for the activity's channel), issued by
`https://api.botframework.com` to our MicrosoftAppId, unexpired (five minutes' clock skew),
and carrying the activity's `serviceUrl`, which is where our reply and its token go.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from aiohttp import web

from adapters.jwks import (
    FetchFailed,
    SigningKey,
    get_json,
    parse_jwks,
    why_not_valid,
)
from bot.config import https_or_loopback_http

log = logging.getLogger(__name__)

ISSUER = "https://api.botframework.com"
#: The claim that names the service the reply (and its token) is sent to.
SERVICE_URL_CLAIM = "serviceurl"
ALGORITHM = "RS256"
#: Seconds a token's times may be off, as the Bot Framework allows.
CLOCK_SKEW = 300.0
#: Seconds the OpenID metadata and its JWKS may take to arrive, both together.
FETCH_TIMEOUT = 5.0
#: Seconds fetched keys are used before they are fetched again (Microsoft rotates them
#: rarely and announces new ones in advance; an unknown `kid` fetches sooner).
KEYS_MAX_AGE = 24 * 3600.0
#: Least seconds between two fetches caused by tokens naming a key we do not have, so a
#: flood of made-up key ids cannot make the bot fetch for each of them.
UNKNOWN_KID_REFRESH_INTERVAL = 300.0
#: Seconds after a failed fetch before another is tried: while the metadata host is down,
#: requests are answered at once instead of each waiting FETCH_TIMEOUT.
RETRY_AFTER_FAILURE = 10.0

GENERIC_REFUSAL = "no valid Bot Framework token"


class TokenRefused(web.HTTPUnauthorized):
    """A request whose token does not pass; `why` is for the security log, never a secret."""

    def __init__(self, why: str) -> None:
        super().__init__(
            text=json.dumps({"error": "a valid Bot Framework token is required"}),
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
        self.why = why


class KeysUnavailable(web.HTTPServiceUnavailable):
    """The signing keys could not be had, so no token can be checked: the request may well be
    genuine, so it is told to come back (503), not that it is unauthorized."""

    def __init__(self) -> None:
        super().__init__(
            text=json.dumps(
                {
                    "error": "cannot check Bot Framework tokens right now: the signing keys "
                    "could not be fetched; try again later"
                }
            ),
            content_type="application/json",
            headers={"Retry-After": str(int(RETRY_AFTER_FAILURE))},
        )


def refusal_reason(error: Exception) -> str:
    """What the security log says about a refused request."""
    # One wording for every token refusal, so an alert can match it; the cause after it.
    if isinstance(error, TokenRefused):
        return f"{GENERIC_REFUSAL} ({error.why})"
    return GENERIC_REFUSAL


class SigningKeys:
    """The Bot Framework's signing keys by `kid`, fetched from the JWKS that the OpenID
    metadata document names, cached, and never fetched by two requests at once."""

    def __init__(
        self,
        metadata_url: str,
        *,
        timeout: float = FETCH_TIMEOUT,
        max_age: float = KEYS_MAX_AGE,
        unknown_kid_interval: float = UNKNOWN_KID_REFRESH_INTERVAL,
        retry_after_failure: float = RETRY_AFTER_FAILURE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata_url = metadata_url
        self.timeout = timeout
        self.max_age = max_age
        self.unknown_kid_interval = unknown_kid_interval
        self.retry_after_failure = retry_after_failure
        self.clock = clock
        self.keys: dict[str, SigningKey] = {}
        self.fetched_at: float | None = None
        #: When the last fetch began, successful or not: what spaces fetches out.
        self.attempted_at: float | None = None
        self._fetching: asyncio.Task[None] | None = None

    async def get(self, kid: str) -> SigningKey | None:
        """The key named `kid`, or None when the JWKS has no such key.

        KeysUnavailable when there are no keys at all and none can be fetched; keys fetched
        before are kept in use while the metadata host is unreachable."""
        now = self.clock()
        stale = self.fetched_at is None or now - self.fetched_at >= self.max_age
        interval = self.retry_after_failure if stale else self.unknown_kid_interval
        if (stale or kid not in self.keys) and self._may_fetch(now, interval):
            await self._refresh()
        if not self.keys:
            raise KeysUnavailable()
        return self.keys.get(kid)

    def _may_fetch(self, now: float, interval: float) -> bool:
        if self._fetching is not None:
            return True  # wait for the fetch under way rather than refuse meanwhile
        return self.attempted_at is None or now - self.attempted_at >= interval

    async def _refresh(self) -> None:
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch())
        task = self._fetching
        # Shielded: a request that gives up (its client went away) does not cancel the fetch
        # the others are waiting for.
        await asyncio.shield(task)

    async def _fetch(self) -> None:
        self.attempted_at = self.clock()
        try:
            async with asyncio.timeout(self.timeout):
                keys = await self._download()
        except Exception as error:  # any failure to get keys is a 503, never a 500
            reason = "timed out" if isinstance(error, TimeoutError) else describe(error)
            log.error(
                "could not fetch the Bot Framework signing keys from %s (%s); %s",
                self.metadata_url,
                reason,
                "keeping the keys fetched before" if self.keys else "Teams requests get 503",
            )
        else:
            self.keys = keys
            self.fetched_at = self.clock()
        finally:
            self._fetching = None

    async def _download(self) -> dict[str, SigningKey]:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            metadata = await get_json(client, self.metadata_url)
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not https_or_loopback_http(jwks_uri):
                raise FetchFailed("the OpenID metadata names no HTTPS jwks_uri")
            jwks = await get_json(client, jwks_uri)
        keys = parse_jwks(jwks)
        if not keys:
            raise FetchFailed("the JWKS holds no RSA signing key")
        return keys


def describe(error: Exception) -> str:
    if isinstance(error, FetchFailed):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class TokenValidator:
    """Checks one request's Authorization header against the Bot Framework's rules."""

    def __init__(self, app_id: str, keys: SigningKeys) -> None:
        self.app_id = app_id
        self.keys = keys

    async def claims(
        self, auth_header: str, *, channel: str, service_url: str | None
    ) -> dict[str, Any]:
        """The token's claims; TokenRefused naming why it does not pass, KeysUnavailable when
        it cannot be checked now."""
        scheme, _, token = (auth_header or "").strip().partition(" ")
        if not scheme:
            raise TokenRefused("no Authorization header")
        if scheme.lower() != "bearer":
            raise TokenRefused("Authorization is not a Bearer token")
        token = token.strip()
        if not token:
            raise TokenRefused("empty Bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("the token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm != ALGORITHM:
            shown = str(algorithm)[:20]
            raise TokenRefused(f"token algorithm {shown!r} is not {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("the token names no signing key (kid)")
        signing_key = await self.keys.get(kid)
        if signing_key is None:
            raise TokenRefused("the token's signing key (kid) is not one of the Bot Framework's")
        if signing_key.endorsements and channel not in signing_key.endorsements:
            raise TokenRefused(f"the signing key is not endorsed for channel {channel!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=[ALGORITHM],
                audience=self.app_id,
                issuer=ISSUER,
                leeway=CLOCK_SKEW,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRefused(why_not_valid(error, "the token", "the Bot Framework")) from None
        # The reply, with our own token for the Bot Framework, goes to the activity's
        # serviceUrl: the token must vouch for that address.
        if service_url and claims.get(SERVICE_URL_CLAIM) != service_url:
            raise TokenRefused("the token's serviceUrl claim does not match the activity's")
        return claims
