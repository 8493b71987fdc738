"""Signing in to the web console, over the real server on 127.0.0.1: through a loopback fake
OpenID provider in Entra ID's and Slack's flavours (keys the test makes), and through the
one-time link `policybot console link` prints; who is let in, what is refused (and logged),
CSRF on every change, the session cookie, sign-out, roles re-read on every request, and no
token or secret in any log line or database row.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import ConfigError, Settings
from bot.console_sessions import token_hash
from bot.store.database import ConsoleLink, Storage
from tests.conftest import RunCli
from tests.fakes.oidc import FakeProvider, fake_provider
from tests.reliability import percentiles, record
from tests.web import ConsoleServer, console_server, csrf_of, new_link, sign_in, sign_in_with

SECURITY = "policybot.security"
TENANT = "8d1f2c4e-5b6a-4c3d-9e8f-0a1b2c3d4e5f"
ENTRA_CLIENT = "c0a51e00-1111-4222-8333-944455556666"
ENTRA_SECRET = "entra~Secret.For-Tests_7Qx"
WORKSPACE = "T0WORKSPACE"
SLACK_CLIENT = "1234567890.0987654321"
SLACK_SECRET = "slacksigninsecretfortests0123456"
#: A Teams policy-team member and admin, by Entra object id (Teams' aadObjectId).
PAT_OID = "0f8fad5b-d9cb-469f-a165-70867728950e"
#: Someone in the organization who is on neither list.
OUTSIDER_OID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
SLACK_ADMIN = "U0ADMIN7"


def security_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SECURITY]


@pytest.fixture(autouse=True)
def capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


@pytest.fixture
async def entra() -> AsyncIterator[FakeProvider]:
    async with fake_provider(
        "entra", client_id=ENTRA_CLIENT, client_secret=ENTRA_SECRET, tenant=TENANT
    ) as provider:
        provider.user = {"oid": PAT_OID, "name": "Pat Policy"}
        yield provider


@pytest.fixture
async def slack_idp() -> AsyncIterator[FakeProvider]:
    async with fake_provider(
        "slack", client_id=SLACK_CLIENT, client_secret=SLACK_SECRET, tenant=WORKSPACE
    ) as provider:
        provider.user = {"https://slack.com/user_id": SLACK_ADMIN, "name": "Sam Admin"}
        yield provider


def with_providers(settings: Settings, entra: FakeProvider, slack: FakeProvider) -> Settings:
    return replace(
        settings,
        entra_tenant_id=TENANT,
        entra_client_id=ENTRA_CLIENT,
        entra_client_secret=ENTRA_SECRET,
        entra_discovery_url=entra.metadata_url,
        slack_team_id=WORKSPACE,
        slack_signin_client_id=SLACK_CLIENT,
        slack_signin_client_secret=SLACK_SECRET,
        slack_discovery_url=slack.metadata_url,
        teams_policy_team=(PAT_OID,),
        admins=(f"teams:{PAT_OID}", f"slack:{SLACK_ADMIN}"),
    )


def browser(server: ConsoleServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, follow_redirects=False, timeout=30)


async def sessions_in(server: ConsoleServer) -> list[tuple[str, str, str]]:
    rows = await server.bot.worker.run(server.bot.storage.console_sessions)
    return [(row.platform, row.user_id, row.via) for row in rows]


# -- 1. signing in through each identity provider ------------------------------------------
async def test_signing_in_with_entra_id_and_with_slack_lands_on_the_console(
    settings: Settings, entra: FakeProvider, slack_idp: FakeProvider
) -> None:
    """Entra's `oid` becomes the Teams id the settings list, Slack's user id the Slack one;
    each lands on the console with its roles, the PKCE challenge and nonce sent."""
    latencies: list[float] = []
    async with console_server(
        with_providers(settings, entra, slack_idp), public_url=True
    ) as server:
        for provider, idp, name in (("entra", entra, "Pat Policy"), ("slack", slack_idp, "Sam")):
            async with browser(server) as client:
                started = time.perf_counter()
                back = await sign_in_with(client, provider)
                latencies.append((time.perf_counter() - started) * 1000)
                assert back.status_code == 303 and back.headers["location"] == "/console/"
                assert idp.last_authorize["code_challenge_method"] == "S256"
                assert idp.last_authorize["nonce"] and idp.last_authorize["state"]
                assert idp.last_authorize["redirect_uri"] == (
                    f"{server.base_url}/console/auth/{provider}/callback"
                )
                home = await client.get("/console/")
                assert home.status_code == 200, home.text
                assert name in home.text and "Sign out" in home.text
                assert "Sessions" in home.text  # both are admins
        assert sorted(await sessions_in(server)) == [
            ("slack", SLACK_ADMIN, "slack"),
            ("teams", PAT_OID, "entra"),
        ]
        assert entra.token_refusals == [] and slack_idp.token_refusals == []
    record(
        "Console sign-in through Entra ID and Slack (loopback fake OpenID providers)",
        "pytest tests/test_web_auth.py -k signing_in_with",
        sign_ins=len(latencies),
        landed_on_console=len(latencies),
        **percentiles(latencies),
    )


async def test_someone_on_neither_list_is_refused_with_a_page_and_logged(
    settings: Settings,
    entra: FakeProvider,
    slack_idp: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entra.user = {"oid": OUTSIDER_OID, "name": "Olive Outsider"}
    async with console_server(
        with_providers(settings, entra, slack_idp), public_url=True
    ) as server:
        async with browser(server) as client:
            back = await sign_in_with(client, "entra")
            assert back.status_code == 403
            assert "policy team and policy admins only" in back.text
            assert (await client.get("/console/")).status_code == 303  # still signed out
        assert await sessions_in(server) == []
    lines = security_lines(caplog)
    assert any(OUTSIDER_OID in line and "console sign-in (entra)" in line for line in lines)
    record(
        "Console sign-in: someone on neither list refused",
        "pytest tests/test_web_auth.py -k neither_list",
        sign_ins_tried=1,
        refused=1,
        sessions_made=0,
    )


# -- 2. every id_token that is wrong in one way is refused -----------------------------------
FORGERIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("entra", "wrong issuer", {"iss": "https://login.example.net/other/v2.0"}, "issuer"),
    ("entra", "wrong audience", {"aud": "another-app"}, "audience"),
    (
        "entra",
        "expired",
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        "expired",
    ),
    ("entra", "wrong nonce", {"nonce": "not-this-sign-ins"}, "nonce"),
    ("entra", "other tenant", {"tid": "11111111-2222-3333-4444-555555555555"}, "another tenant"),
    ("entra", "no oid", {"oid": None}, "no oid claim"),
    ("entra", "tampered signature", {}, "signature"),
    ("entra", "signed by another key", {}, "signature"),
    ("entra", "HS256 keyed with the public key", {}, "algorithm"),
    ("entra", "alg none", {}, "algorithm"),
    ("slack", "other workspace", {"https://slack.com/team_id": "T0ELSEWHERE"}, "another workspace"),
    ("slack", "wrong issuer", {"iss": "https://slack.example.net"}, "issuer"),
    ("slack", "wrong nonce", {"nonce": "x"}, "nonce"),
]
FORGE = {
    "tampered signature": "signature",
    "signed by another key": "other-key",
    "HS256 keyed with the public key": "hs256",
    "alg none": "none",
}


@pytest.mark.parametrize(
    "provider, case, claims, why", FORGERIES, ids=[f"{p}: {c}" for p, c, _, _ in FORGERIES]
)
async def test_an_id_token_wrong_in_one_way_signs_nobody_in(
    settings: Settings,
    entra: FakeProvider,
    slack_idp: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    case: str,
    claims: dict[str, Any],
    why: str,
) -> None:
    idp = entra if provider == "entra" else slack_idp
    idp.claims = claims
    idp.forge = FORGE.get(case, "")
    async with console_server(
        with_providers(settings, entra, slack_idp), public_url=True
    ) as server:
        async with browser(server) as client:
            back = await sign_in_with(client, provider)
            assert back.status_code == 403, back.text
            assert "did not work" in back.text
            assert (await client.get("/console/")).status_code == 303
        assert await sessions_in(server) == []
    assert idp.tokens_issued == 1  # the code exchange itself was right
    lines = [line for line in security_lines(caplog) if f"console sign-in ({provider})" in line]
    assert len(lines) == 1 and why in lines[0], lines
    record(
        "Console sign-in: forged or mismatched id_tokens refused",
        "pytest tests/test_web_auth.py -k wrong_in_one_way",
        tokens_tried=1,
        refused=1,
        sessions_made=0,
    )


async def test_a_wrong_replayed_or_foreign_state_signs_nobody_in(
    settings: Settings,
    entra: FakeProvider,
    slack_idp: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The state is taken once and belongs to the browser that started the sign-in: a made-up
    state, a callback replayed, or a callback URL carried into another browser (login CSRF:
    signing a victim in as the attacker) are refused before any code is exchanged."""
    async with console_server(
        with_providers(settings, entra, slack_idp), public_url=True
    ) as server:
        async with browser(server) as client:
            start = await client.get("/console/auth/entra/start")
            at_provider = await client.get(start.headers["location"])
            callback = at_provider.headers["location"]
            wrong = re.sub(r"state=[^&]+", "state=made-up-state", callback)
            assert (await client.get(wrong)).status_code == 403
        async with browser(server) as client:
            start = await client.get("/console/auth/entra/start")
            at_provider = await client.get(start.headers["location"])
            callback = at_provider.headers["location"]
            assert (await client.get(callback)).status_code == 303
        async with browser(server) as client:
            # A callback works once, in the browser that started it, never again.
            assert (await client.get(callback)).status_code == 403
        async with browser(server) as victim, browser(server) as attacker:
            start = await attacker.get("/console/auth/entra/start")
            at_provider = await attacker.get(start.headers["location"])
            foreign = await victim.get(at_provider.headers["location"])
            assert foreign.status_code == 403
            assert (await victim.get("/console/")).status_code == 303
        assert await sessions_in(server) == [("teams", PAT_OID, "entra")]
    assert entra.tokens_issued == 1  # no refused callback got as far as the code exchange
    reasons = [line for line in security_lines(caplog) if "console sign-in (entra)" in line]
    assert len(reasons) == 3
    assert "unknown, used or expired state" in reasons[0]
    assert "unknown, used or expired state" in reasons[1]
    assert "another browser" in reasons[2]
    record(
        "Console sign-in: wrong, replayed and foreign state refused",
        "pytest tests/test_web_auth.py -k foreign_state",
        callbacks_tried=4,
        refused=3,
        codes_exchanged=1,
    )


# -- 3. CSRF on every change ------------------------------------------------------------------
async def test_a_change_without_the_csrf_token_or_from_another_origin_is_refused(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Ending a session (an admin's form) and signing out, each without the token, with a
    wrong one, from another origin or cross-site: 403, a plain page, a security line, and
    nothing changed; with the token from the page they work."""
    async with (
        console_server(settings, admins=(f"slack:{SLACK_ADMIN}",)) as server,
        sign_in(server, as_=f"slack:{SLACK_ADMIN}") as admin,
        sign_in(server) as operator,
    ):
        page = await admin.get("/console/sessions")
        token = csrf_of(page.text)
        victim_id = max(
            s.id for s in await server.bot.worker.run(server.bot.storage.console_sessions)
        )
        attempts: list[tuple[str, dict[str, str], dict[str, str]]] = [
            ("no token", {"session": str(victim_id)}, {}),
            ("wrong token", {"session": str(victim_id), "csrf_token": "0" * 64}, {}),
            (
                "other origin",
                {"session": str(victim_id), "csrf_token": token},
                {"Origin": "https://evil.example"},
            ),
            (
                "cross-site",
                {"session": str(victim_id), "csrf_token": token},
                {"Sec-Fetch-Site": "cross-site"},
            ),
        ]
        refused = 0
        for _, form, headers in attempts:
            response = await admin.post("/console/sessions/end", data=form, headers=headers)
            assert response.status_code == 403
            assert "Nothing was changed" in response.text or "nothing was changed" in response.text
            refused += 1
        assert len(await sessions_in(server)) == 2
        assert (await operator.get("/console/")).status_code == 200
        assert (await admin.post("/console/sign-out", data={})).status_code == 403
        assert (await admin.get("/console/")).status_code == 200  # still signed in
        refused += 1
        ended = await admin.post(
            "/console/sessions/end",
            data={"session": str(victim_id), "csrf_token": token},
            headers={"Origin": server.base_url, "Sec-Fetch-Site": "same-origin"},
        )
        assert ended.status_code == 303
        assert (await operator.get("/console/")).status_code == 303  # that session is over
    lines = [line for line in security_lines(caplog) if "console change" in line]
    assert len(lines) == refused
    assert all(f"who={SLACK_ADMIN}" in line for line in lines)
    record(
        "Console CSRF: changes without the token, or from another origin, refused",
        "pytest tests/test_web_auth.py -k csrf_token",
        changes_tried=refused + 1,
        refused=refused,
        rows_changed_by_refused=0,
    )


# -- 4. the session cookie -----------------------------------------------------------------
def cookie_attributes(response: httpx.Response) -> tuple[str, set[str], dict[str, str]]:
    header = next(v for k, v in response.headers.multi_items() if k.lower() == "set-cookie")
    name, _, rest = header.partition("=")
    flags: set[str] = set()
    values: dict[str, str] = {}
    for part in rest.split(";")[1:]:
        key, equals, value = part.strip().partition("=")
        if equals:
            values[key.lower()] = value
        else:
            flags.add(key.lower())
    return name, flags, values


async def test_the_session_cookie_is_httponly_lax_and_host_only_over_https(
    settings: Settings,
) -> None:
    async with console_server(settings) as server, browser(server) as client:
        response = await client.get(await new_link(server))
        name, flags, values = cookie_attributes(response)
        assert name == "policybot_console"
        assert {"httponly"} <= flags and "secure" not in flags  # plain http on loopback
        assert values["samesite"] == "Lax" and values["path"] == "/console"
    https = replace(settings, console_url="https://policybot.example.com")
    async with console_server(https) as server, browser(server) as client:
        response = await client.get(await new_link(server))
        name, flags, values = cookie_attributes(response)
        # `__Host-` requires Secure and Path=/, and no Domain: the browser enforces all three.
        assert name == "__Host-policybot_console"
        assert {"httponly", "secure"} <= flags and "domain" not in values
        assert values["samesite"] == "Lax" and values["path"] == "/"
    record(
        "Console session cookie attributes",
        "pytest tests/test_web_auth.py -k session_cookie",
        cookies_checked=2,
    )


async def test_console_responses_carry_the_security_headers(settings: Settings) -> None:
    async with console_server(settings) as server, sign_in(server) as client:
        for path in ("/console/", "/console/sign-in"):
            headers = (await client.get(path)).headers
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
            assert "script-src 'self' 'nonce-" in csp
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "same-origin"
            assert headers["cache-control"] == "no-store"


# -- 5. one-time links ---------------------------------------------------------------------
async def test_a_link_works_once_expires_and_only_on_loopback(
    settings: Settings, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    async with console_server(settings) as server:
        link = await new_link(server)
        async with browser(server) as first, browser(server) as second:
            assert (await first.get(link)).status_code == 303
            again = await second.get(link)
            assert again.status_code == 403 and "already used or expired" in again.text
        token = "expired-" + "x" * 40
        past = datetime.now(UTC) - timedelta(minutes=11)
        await server.bot.worker.run(
            server.bot.storage.create_console_link,
            token_hash(token),
            platform="operator",
            user_id="local",
            name="",
            expires_at=past + timedelta(minutes=10),
            now=past,
        )
        async with browser(server) as client:
            assert (await client.get(f"/console/link/{token}")).status_code == 403
            assert (await client.get("/console/")).status_code == 303
    # The same server told it listens on every interface: no link signs in, however fresh.
    elsewhere = replace(settings, db_path=str(tmp_path / "elsewhere.db"))
    async with console_server(elsewhere, host="0.0.0.0") as server, browser(server) as client:
        refused = await client.get(await new_link(server))
        assert refused.status_code == 403 and "127.0.0.1" in refused.text
        assert await sessions_in(server) == []
    lines = [line for line in security_lines(caplog) if "console sign-in link" in line]
    assert [("used or expired" in line, "loopback" in line) for line in lines] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    record(
        "Console one-time links: used twice, expired, off loopback",
        "pytest tests/test_web_auth.py -k link_works_once",
        links_tried=4,
        signed_in=1,
        refused=3,
    )


async def test_the_cli_prints_a_link_that_signs_in_once(
    settings: Settings, run: RunCli, tmp_path: Path
) -> None:
    db = str(tmp_path / "cli.db")
    printed = run(
        "console", "link", "--as", f"slack:{SLACK_ADMIN}", "--minutes", "5", "--port", "9"
    )
    assert printed.exit_code == 0, printed.output
    url = printed.stdout.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:9/console/link/[A-Za-z0-9_-]{40,}", url)
    wrong = run("console", "link", "--as", "U123")
    assert wrong.exit_code == 2 and "platform:id" in wrong.output
    async with (
        console_server(replace(settings, db_path=db), admins=(f"slack:{SLACK_ADMIN}",)) as server,
        browser(server) as client,
    ):
        path = url.split(":9", 1)[1]
        assert (await client.get(path)).status_code == 303
        assert "Sessions" in (await client.get("/console/")).text
        assert await sessions_in(server) == [("slack", SLACK_ADMIN, "link")]


# -- 6. sign-out and roles re-read on every request ----------------------------------------
async def test_sign_out_deletes_the_session(settings: Settings) -> None:
    async with console_server(settings) as server, sign_in(server) as client:
        home = await client.get("/console/")
        cookie = dict(client.cookies)
        out = await client.post("/console/sign-out", data={"csrf_token": csrf_of(home.text)})
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
        assert await sessions_in(server) == []
        async with browser(server) as replay:
            # The old cookie, kept by someone who copied it, opens nothing.
            replay.cookies.update(cookie)
            assert (await replay.get("/console/")).status_code == 303


async def test_a_removed_admin_loses_the_admin_pages_on_the_next_request(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Roles are read from the settings on every request, not kept with the session: the
    same session on a restarted server without the admin entry has no admin page, and
    without the policy-team entry either it is over."""
    member = f"slack:{SLACK_ADMIN}"
    both: dict[str, Any] = {"admins": (member,), "slack_policy_team": (SLACK_ADMIN,)}
    async with console_server(settings, **both) as server, sign_in(server, as_=member) as client:
        assert (await client.get("/console/sessions")).status_code == 200
        cookies = dict(client.cookies)
    async with (
        console_server(settings, slack_policy_team=(SLACK_ADMIN,)) as server,
        browser(server) as client,
    ):
        client.cookies.update(cookies)
        home = await client.get("/console/")
        assert home.status_code == 200 and "Sessions" not in home.text
        assert (await client.get("/console/sessions")).status_code == 403
    async with console_server(settings) as server, browser(server) as client:
        client.cookies.update(cookies)
        gone = await client.get("/console/")
        assert gone.status_code == 403 and "no longer have access" in gone.text
        assert await sessions_in(server) == []
    lines = security_lines(caplog)
    assert any("console sessions" in line and "not in POLICYBOT_ADMINS" in line for line in lines)
    assert any("refused console:" in line and "no longer" in line for line in lines)
    record(
        "Console roles re-read on every request (admin removed, then policy team)",
        "pytest tests/test_web_auth.py -k removed_admin",
        requests_after_removal=3,
        refused=2,
    )


# -- 7. no secret or token in logs or rows ------------------------------------------------
async def test_no_token_or_secret_reaches_a_log_line_or_a_database_row(
    settings: Settings,
    entra: FakeProvider,
    slack_idp: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets: list[str] = [ENTRA_SECRET, SLACK_SECRET]
    async with console_server(
        with_providers(settings, entra, slack_idp), public_url=True
    ) as server:
        async with browser(server) as client:
            assert (await sign_in_with(client, "entra")).status_code == 303
            secrets += [v for v in client.cookies.values()]
        async with browser(server) as client:
            link = await new_link(server)
            secrets.append(link.rsplit("/", 1)[1])
            assert (await client.get(link)).status_code == 303
            secrets += [v for v in client.cookies.values()]
            home = await client.get("/console/")
            secrets.append(csrf_of(home.text))
            await client.post("/console/sign-out", data={})  # refused: no token
        entra.forge = "signature"
        async with browser(server) as client:
            assert (await sign_in_with(client, "entra")).status_code == 403
        secrets += entra.handed_out
        storage: Storage = server.bot.storage
        rows = [
            repr(storage.db.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("console_sessions", "console_links", "console_sign_ins")
        ]
    # The test's own browser logs its requests (httpx at INFO, httpcore's traces at DEBUG,
    # the callback's code and the cookies among them): those lines are the browser's, not
    # the server's, so they are left out; the server's own httpx lines (metadata, keys, the
    # token request) are kept.
    ours = [
        r
        for r in caplog.records
        if not r.name.startswith("httpcore")
        and not (r.name == "httpx" and re.search(r"/console/|/authorize", r.getMessage()))
    ]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in ours)
    assert len(secrets) >= 9 and all(len(s) >= 16 for s in secrets)
    leaked_to_logs = [s[:8] for s in secrets if s in logged]
    leaked_to_rows = [s[:8] for s in secrets if any(s in row for row in rows)]
    assert leaked_to_logs == [] and leaked_to_rows == []
    record(
        "Console: no token or secret in logs or database rows",
        "pytest tests/test_web_auth.py -k no_token_or_secret",
        secrets_searched=len(secrets),
        log_lines_searched=len(ours),
        found=0,
    )


# -- 8. settings ----------------------------------------------------------------------------
def test_the_console_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="POLICYBOT_CONSOLE_URL must be an https"):
        Settings.from_env({"POLICYBOT_CONSOLE_URL": "http://policybot.example.com"})
    with pytest.raises(ConfigError, match="POLICYBOT_ENTRA_CLIENT_SECRET missing"):
        Settings.from_env(
            {
                "POLICYBOT_CONSOLE_URL": "https://policybot.example.com",
                "POLICYBOT_ENTRA_TENANT_ID": TENANT,
                "POLICYBOT_ENTRA_CLIENT_ID": ENTRA_CLIENT,
            }
        )
    with pytest.raises(ConfigError, match="needs POLICYBOT_CONSOLE_URL"):
        Settings.from_env(
            {
                "POLICYBOT_SLACK_TEAM_ID": WORKSPACE,
                "POLICYBOT_SLACK_SIGNIN_CLIENT_ID": SLACK_CLIENT,
                "POLICYBOT_SLACK_SIGNIN_CLIENT_SECRET": SLACK_SECRET,
            }
        )
    with pytest.raises(ConfigError, match="POLICYBOT_SLACK_DISCOVERY_URL must be"):
        Settings.from_env({"POLICYBOT_SLACK_DISCOVERY_URL": "http://idp.example.com/x"})
    with pytest.raises(ConfigError, match="POLICYBOT_CONSOLE_IDLE_MINUTES"):
        Settings.from_env({"POLICYBOT_CONSOLE_IDLE_MINUTES": "0"})
    fine = Settings.from_env({"POLICYBOT_CONSOLE_URL": "http://127.0.0.1:8080/"})
    assert fine.console_url == "http://127.0.0.1:8080" and not fine.entra_signin
    assert ENTRA_SECRET not in repr(
        replace(fine, entra_client_secret=ENTRA_SECRET, slack_signin_client_secret=SLACK_SECRET)
    )


# -- 9. the store, on both engines ---------------------------------------------------------
def test_sessions_end_when_idle_or_past_their_lifetime_and_links_work_once(
    new_storage: Any,
) -> None:
    storage: Storage = new_storage()
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    idle = timedelta(minutes=30)
    for token in ("a", "b"):
        storage.create_console_session(
            token_hash(token),
            platform="slack",
            user_id="U1",
            name="",
            via="link",
            expires_at=now + timedelta(hours=1),
            now=now,
        )
    # Seen again within the idle time, "a" lives on; "b", left alone, ends.
    assert storage.console_session(token_hash("a"), idle=idle, now=now + idle / 2) is not None
    assert storage.console_session(token_hash("a"), idle=idle, now=now + idle) is not None
    assert storage.console_session(token_hash("b"), idle=idle, now=now + idle) is None
    # However active, the absolute lifetime ends it.
    late = now + timedelta(hours=1)
    assert storage.console_session(token_hash("a"), idle=idle, now=late) is None
    assert storage.console_sessions() == []
    storage.create_console_link(
        token_hash("link"),
        platform="slack",
        user_id="U1",
        name="",
        expires_at=now + timedelta(minutes=10),
        now=now,
    )
    assert storage.use_console_link(token_hash("link"), now=now) == ConsoleLink("slack", "U1", "")
    assert storage.use_console_link(token_hash("link"), now=now) is None
    storage.start_console_sign_in(
        token_hash("state"),
        provider="entra",
        browser_hash="h",
        expires_at=now + timedelta(minutes=10),
        now=now,
    )
    assert storage.finish_console_sign_in(token_hash("state"), provider="slack", now=now) is None
    assert storage.finish_console_sign_in(token_hash("state"), provider="entra", now=now) == "h"
    assert storage.finish_console_sign_in(token_hash("state"), provider="entra", now=now) is None
