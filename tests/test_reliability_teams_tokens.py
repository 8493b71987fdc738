"""Access and faults: Bot Framework tokens on `POST /api/messages`, checked against signing
keys served on loopback by tests/fakes/bot_framework_keys.py (keys this test generates).

A valid token gets the activity processed and the reply to the connector stub; every bad
one is 401 with a short message and one security-log line, never a 500 or a traceback. The
keys are fetched once and cached, a flood of unknown key ids does not make the bot fetch
again, and a metadata host that takes the request and never answers neither stalls the
server (`/healthz` answers meanwhile) nor the Teams request beyond the fetch timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from microsoft_agents.authentication.msal import MsalAuth

from adapters.server import build_app
from adapters.teams import auth as teams_auth
from bot.core import PolicyBot
from tests.fakes.bot_connector import ConnectorStub
from tests.fakes.bot_framework_keys import (
    KeyServer,
    SigningKey,
    claims,
    forge,
    key_server,
    sign,
)
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import message
from tests.fakes.teams_harness import post
from tests.reliability import percentiles, record

SECURITY = "policybot.security"
APP_ID = "00000000-0000-0000-0000-0000000000b0"
APP_PASSWORD = "teams-app-password-for-token-tests-9d2f"
#: What the patched Microsoft login hands out for the bot's own replies.
OUTGOING_TOKEN = "outgoing-token-from-the-stand-in-login"
ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
COMMAND = "pytest tests/test_reliability_teams_tokens.py"


@pytest.fixture
async def keys() -> AsyncIterator[KeyServer]:
    async with key_server() as server:
        yield server


@pytest.fixture
def outgoing_logins(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The bot's replies need a token from Microsoft's login (msal, over HTTPS to
    login.microsoftonline.com, which tests never reach): stand in for that one call and
    record which credentials asked."""
    logins: list[tuple[str, str]] = []

    async def login(
        self: MsalAuth, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        settings = self.configuration
        logins.append((settings.CLIENT_ID or "", settings.CLIENT_SECRET or ""))
        return OUTGOING_TOKEN

    monkeypatch.setattr(MsalAuth, "get_access_token", login)
    return logins


@pytest.fixture
def secured(
    bot_with: Callable[..., PolicyBot], keys: KeyServer, outgoing_logins: list[Any]
) -> PolicyBot:
    return bot_with(
        microsoft_app_id=APP_ID,
        microsoft_app_password=APP_PASSWORD,
        teams_openid_metadata_url=keys.metadata_url,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def security_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SECURITY]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_valid_token_gets_the_activity_answered_and_the_reply_to_the_connector(
    secured: PolicyBot,
    keys: KeyServer,
    stub: ConnectorStub,
    outgoing_logins: list[tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    token = sign(keys.keys[0], claims(APP_ID, stub.url))
    async with serving(build_app(secured)) as base:
        status, _ = await post(base, message(ROADMAP, stub.url), headers=bearer(token))
        assert status in (200, 201, 202)
        (reply,) = await stub.received(1)
    assert reply.card is not None
    # The reply went out with the bot's own token, from MicrosoftAppId + MicrosoftAppPassword.
    assert reply.authorization == f"Bearer {OUTGOING_TOKEN}"
    assert set(outgoing_logins) == {(APP_ID, APP_PASSWORD)}
    assert [q.text for q in secured.storage.questions(status=None)] == [ROADMAP]
    assert security_lines(caplog) == []


def bad_tokens(keys: KeyServer, service_url: str) -> list[tuple[str, dict[str, str], str]]:
    """(what, headers, what the security line says) for every way a token is refused."""
    published = keys.keys[0]
    stranger = SigningKey("key-1")  # a key of our own that Microsoft never published
    good = claims(APP_ID, service_url)
    hour_ago = int(time.time()) - 3600
    pem = published.public_pem()
    return [
        ("no Authorization header", {}, "no Authorization header"),
        ("wrong scheme", {"Authorization": f"Basic {sign(published, good)}"}, "not a Bearer"),
        ("empty bearer", {"Authorization": "Bearer "}, "empty Bearer"),
        ("garbage", bearer("not-a-real-jwt"), "not a JWT"),
        (
            "expired",
            bearer(sign(published, claims(APP_ID, service_url, exp=hour_ago, nbf=hour_ago - 60))),
            "expired",
        ),
        (
            "wrong audience",
            bearer(sign(published, claims("another-bots-app-id", service_url))),
            "audience",
        ),
        (
            "wrong issuer",
            bearer(sign(published, claims(APP_ID, service_url, iss="https://sts.example/"))),
            "issuer",
        ),
        (
            "unsigned (alg none)",
            bearer(forge({"alg": "none", "typ": "JWT", "kid": "key-1"}, good, None)),
            "'none' is not RS256",
        ),
        (
            "HS256 signed with the public key's PEM",
            bearer(forge({"alg": "HS256", "typ": "JWT", "kid": "key-1"}, good, pem)),
            "'HS256' is not RS256",
        ),
        (
            "unknown kid",
            bearer(sign(SigningKey("key-nobody-published"), good)),
            "signing key (kid) is not one",
        ),
        ("no kid", bearer(forge({"alg": "RS256", "typ": "JWT"}, good, None)), "no signing key"),
        ("signed by another key under a known kid", bearer(sign(stranger, good)), "signature"),
        ("no expiry", bearer(sign(published, claims(APP_ID, service_url, exp=None))), "no exp"),
        (
            "serviceUrl claim for another host",
            bearer(sign(published, claims(APP_ID, "https://attacker.example.com/"))),
            "serviceUrl claim does not match",
        ),
        (
            "no serviceUrl claim",
            bearer(sign(published, claims(APP_ID, service_url, serviceurl=None))),
            "serviceUrl claim does not match",
        ),
    ]


async def test_every_bad_token_is_a_401_with_one_security_line_and_no_traceback(
    secured: PolicyBot, keys: KeyServer, stub: ConnectorStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    attempts = bad_tokens(keys, stub.url)
    refused = 0
    async with serving(build_app(secured)) as base:
        for what, headers, why in attempts:
            caplog.clear()
            status, body = await post(base, message(ROADMAP, stub.url), headers=headers)
            assert status == 401, what
            assert json.loads(body) == {"error": "a valid Bot Framework token is required"}
            (line,) = security_lines(caplog)
            assert "refused Teams activity" in line and "no valid Bot Framework token" in line
            assert why in line, (what, line)
            assert tracebacks(caplog) == [], what
            secrets = [v.partition(" ")[2] for v in headers.values()] + [APP_PASSWORD]
            for secret in (s for s in secrets if len(s) > 20):  # a token, not a word
                assert not any(secret in r.getMessage() for r in caplog.records), what
            refused += 1
        # A good token whose key is not endorsed for the activity's channel.
        caplog.clear()
        webchat = {**message(ROADMAP, stub.url), "channelId": "webchat"}
        token = sign(keys.keys[0], claims(APP_ID, stub.url))
        status, _ = await post(base, webchat, headers=bearer(token))
        assert status == 401
        (line,) = security_lines(caplog)
        assert "not endorsed for channel 'webchat'" in line
        refused += 1
    assert stub.calls == []
    assert secured.storage.questions(status=None) == []
    record(
        "Access: Teams tokens (expired, wrong audience or issuer, unsigned, HS256 with the "
        "public key, unknown kid, wrong key, garbage, no header, wrong scheme, serviceUrl)",
        COMMAND + " -k bad_token",
        tokens_tried=refused,
        refused_401=refused,
        security_lines=refused,
        server_errors=0,
        key_fetches=keys.jwks_requests,
    )


async def test_keys_are_cached_and_a_flood_of_unknown_kids_fetches_nothing(
    secured: PolicyBot, keys: KeyServer, stub: ConnectorStub
) -> None:
    valid = 5
    flood = 30
    async with serving(build_app(secured)) as base:
        for n in range(valid):
            token = sign(keys.keys[0], claims(APP_ID, stub.url))
            status, _ = await post(
                base, message(f"{ROADMAP} ({n})", stub.url), headers=bearer(token)
            )
            assert status in (200, 201, 202)
        await stub.received(valid)
        statuses = await asyncio.gather(
            *(
                post(
                    base,
                    message(ROADMAP, stub.url),
                    headers=bearer(sign(keys.keys[0], claims(APP_ID, stub.url), kid=f"made-{n}")),
                )
                for n in range(flood)
            )
        )
    assert [status for status, _ in statuses] == [401] * flood
    assert (keys.metadata_requests, keys.jwks_requests) == (1, 1)
    record(
        "Access: Teams signing keys cached; unknown key ids rate-limited",
        COMMAND + " -k cached",
        valid_requests=valid,
        unknown_kid_requests=flood,
        metadata_fetches=keys.metadata_requests,
        jwks_fetches=keys.jwks_requests,
    )


async def test_a_metadata_host_that_never_answers_stalls_neither_the_server_nor_the_request(
    secured: PolicyBot,
    keys: KeyServer,
    stub: ConnectorStub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    timeout = 1.0
    monkeypatch.setattr(teams_auth, "FETCH_TIMEOUT", timeout)
    keys.hang = True
    token = sign(keys.keys[0], claims(APP_ID, stub.url))
    health_ms: list[float] = []
    answered_while_waiting = 0
    async with serving(build_app(secured)) as base, aiohttp.ClientSession() as session:
        async with asyncio.timeout(30):  # only stops a hung test; nothing timed is asserted
            started = time.perf_counter()
            teams = asyncio.create_task(
                post(base, message(ROADMAP, stub.url), headers=bearer(token))
            )
            while keys.metadata_requests == 0:
                await asyncio.sleep(0.01)
            while not teams.done():
                sent = time.perf_counter()
                async with session.get(base + "/healthz") as response:
                    assert response.status == 200
                health_ms.append((time.perf_counter() - sent) * 1000)
                answered_while_waiting += not teams.done()
                await asyncio.sleep(0.05)
            status, body = await teams
            teams_ms = (time.perf_counter() - started) * 1000
            assert status == 503
            assert "signing keys could not be fetched" in json.loads(body)["error"]
            # Right after a failed fetch, the next request is answered at once, no new fetch.
            again = time.perf_counter()
            status, _ = await post(base, message(ROADMAP, stub.url), headers=bearer(token))
            again_ms = (time.perf_counter() - again) * 1000
            assert status == 503
    assert answered_while_waiting >= 1
    assert keys.metadata_requests == 1 and keys.jwks_requests == 0
    assert stub.calls == [] and secured.storage.questions(status=None) == []
    errors = [r for r in caplog.records if r.name == teams_auth.__name__]
    assert [r.levelno for r in errors] == [logging.ERROR] and errors[0].exc_info is None
    assert "timed out" in errors[0].getMessage() and keys.metadata_url in errors[0].getMessage()
    record(
        "Faults: Teams signing-key host takes the request and never answers",
        COMMAND + " -k never_answers",
        fetch_timeout_s=timeout,
        healthz_answered_while_waiting=answered_while_waiting,
        **{f"healthz_{k}": v for k, v in percentiles(health_ms).items()},
        teams_status=503,
        teams_ms=round(teams_ms, 1),
        next_request_ms=round(again_ms, 1),
        metadata_fetches=keys.metadata_requests,
    )


async def test_unauthenticated_mode_fetches_no_keys_whatever_the_header(
    bot_with: Callable[..., PolicyBot], keys: KeyServer, stub: ConnectorStub
) -> None:
    bot = bot_with(teams_openid_metadata_url=keys.metadata_url, teams_unauthenticated=True)
    token = sign(keys.keys[0], claims(APP_ID, stub.url))
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        status, _ = await post(base, message(ROADMAP, stub.url), headers=bearer(token))
        assert status in (200, 201, 202)
        await stub.received(1)
    assert keys.metadata_requests == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_signing_keys_refresh_once_per_interval_for_unknown_kids_and_when_old(
    keys: KeyServer,
) -> None:
    clock = Clock()
    cache = teams_auth.SigningKeys(
        keys.metadata_url, max_age=3600, unknown_kid_interval=300, clock=clock
    )
    # Requests arriving together share one fetch.
    found = await asyncio.gather(*(cache.get("key-1") for _ in range(10)))
    assert all(key is not None for key in found)
    assert (keys.metadata_requests, keys.jwks_requests) == (1, 1)

    keys.keys.append(SigningKey("key-2"))  # Microsoft rotates
    assert await cache.get("key-2") is None  # too soon after the last fetch
    assert keys.jwks_requests == 1
    clock.now += 300
    assert await cache.get("key-2") is not None
    assert await cache.get("key-3") is None
    assert keys.jwks_requests == 2

    clock.now += 3600  # old keys are fetched again even for a known kid
    assert await cache.get("key-1") is not None
    assert keys.jwks_requests == 3


async def test_a_request_arriving_during_a_fetch_waits_for_it(keys: KeyServer) -> None:
    cache = teams_auth.SigningKeys(keys.metadata_url)
    keys.hang = True
    first = asyncio.create_task(cache.get("key-1"))
    async with asyncio.timeout(10):  # only stops a hung test
        while keys.metadata_requests == 0:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(cache.get("key-1"))
        await asyncio.sleep(0.05)
        keys.release_stalled()
        found = await asyncio.gather(first, second)
    assert all(key is not None for key in found)
    assert (keys.metadata_requests, keys.jwks_requests) == (1, 1)


async def test_signing_keys_fetched_before_stay_in_use_while_the_host_is_down(
    keys: KeyServer,
) -> None:
    clock = Clock()
    cache = teams_auth.SigningKeys(keys.metadata_url, timeout=0.5, max_age=3600, clock=clock)
    assert await cache.get("key-1") is not None
    keys.hang = True
    clock.now += 3600
    assert await cache.get("key-1") is not None  # the fetch timed out; the old keys still do
    assert keys.metadata_requests == 2
    clock.now += 1  # within RETRY_AFTER_FAILURE: no new attempt
    assert await cache.get("key-1") is not None
    assert keys.metadata_requests == 2


async def test_signing_keys_from_a_broken_host_are_unavailable_not_an_error(
    keys: KeyServer,
) -> None:
    keys.keys = []  # a JWKS with nothing usable
    cache = teams_auth.SigningKeys(keys.metadata_url)
    with pytest.raises(teams_auth.KeysUnavailable):
        await cache.get("key-1")
