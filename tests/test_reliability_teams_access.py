"""Access through the Teams route: who can reach `/api/messages` at all, whose ids count where,
and where an unauthenticated activity may make the bot send its reply.

An outside attack run against `policybot serve` found that a Slack-only deployment still served
an unauthenticated `/api/messages`, that `POLICYBOT_ADMINS` let a Slack id (visible to the whole
workspace) pass for a Teams sender, and that a `serviceUrl` the loopback check and the HTTP
client read differently could send the answer elsewhere. Each is walked here over the real
server on 127.0.0.1 with the Bot Framework connector stub recording every reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.server import build_app
from bench.speed import stop_process
from bot import messages
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from tests.conftest import ROOT
from tests.fakes.bot_connector import ConnectorStub, connector_stub
from tests.fakes.file_server import file_server
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.slack_harness import slack_server
from tests.fakes.teams_activities import PAT, PAT_PERSONAL, file_message, message, submit
from tests.fakes.teams_harness import post
from tests.reliability import percentiles, record

SECURITY = "policybot.security"
ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
UNCOVERED = "what time does the cafeteria open?"
POLICY = b"# Policy\n\n## 1. Posting\n\nEmployees may post anything at all, anywhere, anytime.\n"
#: A Slack admin's and a Slack policy-team member's ids, as everyone in the workspace sees them.
SLACK_ADMIN = "U0ADMIN7"
SLACK_TEAM_MEMBER = "U0TEAM7"
#: The Teams admin and policy-team member (an Entra ID object id).
TEAMS_ADMIN = str(PAT["aadObjectId"])
#: A start-up must end within this; only an old build that starts serving would reach it.
START_UP_LIMIT = 60


def security_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SECURITY]


def claiming(user_id: str) -> dict[str, Any]:
    """A Teams sender who says their AAD object id is `user_id`."""
    return {"id": f"29:{user_id.lower()}", "name": "Claimed Name", "aadObjectId": user_id}


@pytest.fixture(autouse=True)
def capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


# -- 1. a deployment without Teams has no Teams route ----------------------------------------
async def test_a_slack_only_deployment_has_no_teams_route_to_impersonate_an_admin_through(
    settings: Settings, stub: ConnectorStub
) -> None:
    """The attack: claim a Slack admin's id (`U…`) as `from.aadObjectId`, with a loopback
    serviceUrl, and upload, activate and answer for the policy team. No route, no turn."""
    async with (
        file_server() as files,
        slack_server(
            settings,
            admins=(f"slack:{SLACK_ADMIN}",),
            slack_policy_team=(SLACK_TEAM_MEMBER,),
        ) as slack,
    ):
        bot = slack.bot
        await bot.ask(IncomingQuestion(UNCOVERED))
        (group,) = bot.review.queue()
        active_before = [v.id for v in bot.storage.active_versions()]
        url = files.add("policy.md", POLICY)
        staged = bot.policies.upload("policy.md", POLICY).version
        attempts = [
            file_message("policy.md", url, stub.url, sender=claiming(SLACK_ADMIN)),
            submit(
                {"policybot": "activate_version", "version_id": staged.id},
                stub.url,
                sender=claiming(SLACK_ADMIN),
            ),
            message("review", stub.url, sender=claiming(SLACK_TEAM_MEMBER)),
            submit(
                {"policybot": "answer_group", "group_id": group.id, "answer": "Anything goes."},
                stub.url,
                sender=claiming(SLACK_TEAM_MEMBER),
            ),
            message(ROADMAP, stub.url, sender=claiming(SLACK_ADMIN)),
        ]
        statuses = []
        latencies = []
        for activity in attempts:
            started = time.perf_counter()
            response = await slack.http.post("/api/messages", json=activity)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses.append(response.status_code)
        assert statuses == [404] * len(attempts)
        assert (await slack.http.get("/healthz")).status_code == 200  # the server is up
        assert stub.calls == [] and files.downloads == []
        assert [v.id for v in bot.storage.active_versions()] == active_before
        assert bot.review.group(group.id).status == "open"
        assert [q.text for q in bot.storage.questions(status=None)] == [UNCOVERED]
        assert "teams" not in bot.notifiers
    record(
        "Access: Teams route on a Slack-only deployment (impersonating Slack admins)",
        "pytest tests/test_reliability_teams_access.py -k slack_only",
        requests=len(attempts),
        not_found=statuses.count(404),
        replies_sent=len(stub.calls),
        files_downloaded=len(files.downloads),
        failures=0,
        **percentiles(latencies),
    )


# -- 2. the local-testing switch only on loopback, and old-style admin lists, at start-up ------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def serve_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POLICYBOT_", "Microsoft", "SLACK_", "OPENAI_"))
    }
    env["POLICYBOT_DB"] = str(tmp_path / "policybot.db")
    env["POLICYBOT_RETRIEVER"] = "lexical"
    env.update(variables)
    return env


def start_serving(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`policybot serve ARGS` expected to refuse to start: a build that starts serving instead
    runs into the limit (TimeoutExpired, the process killed), which fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(free_port()), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=START_UP_LIMIT,
    )


@pytest.fixture
def serving_process() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes this test started; each is terminated (by its own handle) afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            stop_process(process)


async def test_unauthenticated_teams_refuses_to_start_off_loopback_and_serves_on_it(
    bot_with: Callable[..., PolicyBot],
    tmp_path: Path,
    serving_process: list[subprocess.Popen[str]],
    stub: ConnectorStub,
) -> None:
    env = serve_env(tmp_path, POLICYBOT_TEAMS_UNAUTHENTICATED="1")
    started = []
    for host in [(), ("--host", "192.0.2.10")]:  # the default (all interfaces), another host
        result = start_serving(env, *host)
        assert result.returncode == 2, result.stderr
        assert "POLICYBOT_TEAMS_UNAUTHENTICATED" in result.stderr
        assert "--host 127.0.0.1" in result.stderr and "SETTINGS__CLIENTID" in result.stderr
        started.append(result.stderr)
    assert "all interfaces" in started[0] and "192.0.2.10" in started[1]
    # The same check wherever the app is built for a host.
    bot = bot_with(teams_unauthenticated=True)
    for not_loopback in ("0.0.0.0", "::", "", "example.com", "127.0.0.1.nip.io"):
        with pytest.raises(ConfigError, match="only allowed on loopback"):
            build_app(bot, host=not_loopback)
    with pytest.raises(ConfigError, match="only allowed on loopback"):
        build_app(bot)  # a host not given is not taken to be loopback

    # On loopback it starts, and answers a local activity.
    port = free_port()
    with (tmp_path / "serve.log").open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", LOOPBACK, "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    serving_process.append(process)
    base = f"http://{LOOPBACK}:{port}"
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(START_UP_LIMIT):
            while True:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    async with session.get(base + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.2)
        status, _ = await post(base, message(ROADMAP, stub.url))
        assert status in (200, 201, 202)
    (reply,) = await stub.received(1)
    assert reply.card is not None
    record(
        "Access: unauthenticated Teams only on loopback (start-up check)",
        "pytest tests/test_reliability_teams_access.py -k refuses_to_start",
        hosts_refused=len(started) + 6,
        loopback_starts=1,
        failures=0,
    )


async def test_an_old_style_admin_list_is_a_clear_start_up_error(tmp_path: Path) -> None:
    result = start_serving(serve_env(tmp_path, POLICYBOT_ADMINS="U0ADMIN7"))
    assert result.returncode == 2, result.stderr
    assert "POLICYBOT_ADMINS entry 'U0ADMIN7' does not say its platform" in result.stderr
    assert "slack:<Slack user id>" in result.stderr
    assert "teams:<Entra ID object id>" in result.stderr
    lists = {
        "slack:U0ADMIN7,0f8fad5b-d9cb-469f-a165-70867728950e": (
            "0f8fad5b-d9cb-469f-a165-70867728950e"
        ),
        "slack:U0ADMIN7,discord:123": "discord:123",
        "teams:": "teams:",
        "U0ADMIN7:slack": "U0ADMIN7:slack",
    }
    for admins, named in lists.items():
        with pytest.raises(ConfigError, match=f"POLICYBOT_ADMINS entry {named!r}"):
            Settings.from_env({"POLICYBOT_ADMINS": admins})
    # Written per platform, with any spacing and case of the platform, it is taken.
    settings = Settings.from_env({"POLICYBOT_ADMINS": f" Slack : {SLACK_ADMIN} , teams:aad-1 "})
    assert settings.admins == (f"slack:{SLACK_ADMIN}", "teams:aad-1")
    assert settings.admin_ids("slack") == (SLACK_ADMIN,)
    assert settings.admin_ids("teams") == ("aad-1",)
    record(
        "Access: POLICYBOT_ADMINS without platforms (start-up error)",
        "pytest tests/test_reliability_teams_access.py -k old_style",
        lists_refused=len(lists) + 1,
        failures=0,
    )


# -- 3. an id counts on its own platform only ---------------------------------------------------
async def test_a_slack_id_in_a_teams_activity_authorizes_nothing(
    bot_with: Callable[..., PolicyBot],
    stub: ConnectorStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = bot_with(
        teams_unauthenticated=True,
        admins=(f"slack:{SLACK_ADMIN}", f"teams:{TEAMS_ADMIN}"),
        slack_policy_team=(SLACK_TEAM_MEMBER,),
        teams_policy_team=(TEAMS_ADMIN,),
    )
    await bot.ask(IncomingQuestion(UNCOVERED))
    (group,) = bot.review.queue()
    staged = bot.policies.upload("policy.md", POLICY).version
    active_before = [v.id for v in bot.storage.active_versions()]
    async with file_server() as files, serving(build_app(bot, host=LOOPBACK)) as base:
        url = files.add("policy.md", POLICY)
        attempts = [
            file_message("policy.md", url, stub.url, sender=claiming(SLACK_ADMIN)),
            submit(
                {"policybot": "activate_version", "version_id": staged.id},
                stub.url,
                sender=claiming(SLACK_ADMIN),
            ),
            message("review", stub.url, sender=claiming(SLACK_TEAM_MEMBER)),
            submit(
                {"policybot": "answer_group", "group_id": group.id, "answer": "Anything goes."},
                stub.url,
                sender=claiming(SLACK_TEAM_MEMBER),
            ),
            submit(
                {"policybot": "dismiss_group", "group_id": group.id},
                stub.url,
                sender=claiming(SLACK_TEAM_MEMBER),
            ),
        ]
        for activity in attempts:
            assert (await post(base, activity))[0] in (200, 201, 202)
        # Each turn runs after its acknowledgement, so replies may come in any order.
        arrived = {call.activity_id: call for call in await stub.received(len(attempts))}
        replies = [arrived[activity["id"]] for activity in attempts]
        assert replies[0].text == messages.ADMIN_ONLY and "only policy admins" in replies[1].text
        assert [r.text for r in replies[2:]] == [
            messages.NOT_POLICY_TEAM,
            messages.NOT_POLICY_TEAM_ACTION,
            messages.NOT_POLICY_TEAM_ACTION,
        ]
        assert files.downloads == []
        assert [v.id for v in bot.storage.active_versions()] == active_before
        assert bot.review.group(group.id).status == "open"

        # The Teams admin's own id still works: the refusals are about the platform.
        await post(
            base,
            message("review", stub.url, sender=PAT, conversation=PAT_PERSONAL),
        )
        (listing,) = (await stub.received(len(attempts) + 1))[len(attempts) :]
        assert listing.text.startswith("1 open question group")
    lines = security_lines(caplog)
    assert len(lines) == len(attempts)
    assert all("platform=teams" in line for line in lines)
    assert sum("not in POLICYBOT_ADMINS for teams" in line for line in lines) == 2
    assert sum("not in the policy team" in line for line in lines) == 3
    record(
        "Access: an id claimed on the other platform (Slack in Teams, Teams in Slack)",
        "pytest tests/test_reliability_teams_access.py -k authorizes_nothing",
        attempts=len(attempts),
        refused=len(lines),
        files_downloaded=len(files.downloads),
        failures=0,
    )


async def test_a_teams_id_sent_from_slack_authorizes_nothing(settings: Settings) -> None:
    async with slack_server(
        settings, admins=(f"teams:{TEAMS_ADMIN}",), slack_policy_team=()
    ) as slack:
        shared = slack.api.add_file("policy.md", POLICY)
        await slack.share_files([shared], user=TEAMS_ADMIN)
        (reply,) = await slack.api.wait_for("chat.postMessage")
        assert "only policy admins" in reply["text"]
        assert slack.api.downloads == []
        assert all(v.source_name != "policy.md" for v in slack.bot.storage.versions())
    record(
        "Access: an id claimed on the other platform (Slack in Teams, Teams in Slack)",
        "pytest tests/test_reliability_teams_access.py -k authorizes_nothing",
        attempts=1,
        refused=1,
        failures=0,
    )


# -- 4. serviceUrl tricks ------------------------------------------------------------------------
def service_url_tricks(port: int, other: int) -> dict[str, str]:
    """Ways to write a serviceUrl that a loopback check might pass while the HTTP client (or
    the Bot Framework's URL joining) goes elsewhere, or that are loopback only in a form no
    two parsers need agree on. `port` is the recording stub's, `other` a second stub's (the
    "attacker" on this machine)."""
    here = f"127.0.0.1:{port}"
    return {
        "userinfo": f"http://attacker@{here}/",
        "userinfo with password": f"http://user:secret@{here}/",
        "userinfo, other port first": f"http://127.0.0.1:{other}@{here}/",
        "percent-encoded @ in userinfo": f"http://evil.example%40{here}/",
        "backslash before @": f"http://evil.example:{other}\\@{here}/",
        "backslash as path": f"http://{here}\\@evil.example/",
        "percent-encoded host": f"http://%31%32%37.0.0.1:{port}/",
        "percent-encoded dot": f"http://127.0.0.1%2e:{port}/",
        "percent-encoding in path": f"http://{here}/%2e%2e/",
        "IPv4-mapped IPv6": f"http://[::ffff:127.0.0.1]:{port}/",
        "long-form IPv6 loopback": f"http://[0:0:0:0:0:0:0:1]:{port}/",
        "IPv6 with zone id": f"http://[::1%25lo]:{port}/",
        "IPv6 without brackets": f"http://::1:{port}/",
        "loopback as a subdomain": f"http://127.0.0.1.evil.example:{port}/",
        "localhost as a subdomain": f"http://localhost.evil.example:{port}/",
        "trailing dot": f"http://localhost.:{port}/",
        "decimal host": f"http://2130706433:{port}/",
        "hex host": f"http://0x7f.0.0.1:{port}/",
        "short host": f"http://127.1:{port}/",
        "leading zeros": f"http://127.000.000.001:{port}/",
        "all interfaces": f"http://0.0.0.0:{port}/",
        "mixed-case scheme": f"HTTP://{here}/",
        "mixed-case host": f"http://LocalHost:{port}/",
        "missing scheme": f"//{here}/",
        "no scheme at all": f"{here}/",
        "scheme without slashes": f"http:{here}/",
        "other scheme": f"ftp://{here}/",
        "leading space": f" http://{here}/",
        "trailing newline": f"http://{here}/\n",
        "tab inside": f"http://127.0.0.1\t:{port}/",
        "space before @": f"http://evil.example @{here}/",
        "fragment with @": f"http://{here}/#@evil.example",
        "query with @": f"http://{here}/?@evil.example",
        "port out of range": f"http://127.0.0.1:{port + 65536}/",
        "full-width digits": f"http://１２７.0.0.1:{port}/",
        "empty": "",
        "a number": "2130706433",
    }


@asynccontextmanager
async def two_stubs() -> AsyncIterator[tuple[ConnectorStub, ConnectorStub]]:
    async with connector_stub() as ours, connector_stub() as attackers:
        yield ours, attackers


async def test_service_url_tricks_are_refused_before_any_reply(
    bot_with: Callable[..., PolicyBot], caplog: pytest.LogCaptureFixture
) -> None:
    bot = bot_with(teams_unauthenticated=True)
    async with two_stubs() as (ours, attackers), serving(build_app(bot, host=LOOPBACK)) as base:
        port = int(ours.url.rstrip("/").rsplit(":", 1)[1])
        other = int(attackers.url.rstrip("/").rsplit(":", 1)[1])
        tricks = service_url_tricks(port, other)
        refused = {}
        latencies = []
        for name, service_url in tricks.items():
            started = time.perf_counter()
            refused[name] = (await post(base, message(ROADMAP, service_url)))[0]
            latencies.append((time.perf_counter() - started) * 1000)
        not_a_string = [5, None, ["http://127.0.0.1/"], {"host": "127.0.0.1"}]
        for wrong_type in not_a_string:
            # A serviceUrl that is not a string is the point: what a forged activity may carry.
            wrong = message(ROADMAP, wrong_type)  # type: ignore[arg-type]
            refused[repr(wrong_type)] = (await post(base, wrong))[0]
        assert {name: status for name, status in refused.items() if status != 403} == {}
        assert ours.calls == [] and attackers.calls == []
        assert bot.storage.questions(status=None) == []

        # The one way to write it is answered: the check refuses tricks, not local testing.
        status, _ = await post(base, message(ROADMAP, ours.url))
        assert status in (200, 201, 202) and len(await ours.received(1)) == 1
    lines = security_lines(caplog)
    assert len(lines) == len(refused)
    assert all("serviceUrl not on loopback" in line for line in lines)
    record(
        "Access: Teams serviceUrl tricks in unauthenticated mode",
        "pytest tests/test_reliability_teams_access.py -k service_url",
        urls_tried=len(refused),
        refused=sum(status == 403 for status in refused.values()),
        replies_sent=0,
        failures=0,
        **percentiles(latencies),
    )


async def test_a_file_link_with_userinfo_is_not_downloaded(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    """Uploads' file links go through the same check: an admin's attachment whose link hides
    another host is refused without a download."""
    bot = bot_with(teams_unauthenticated=True, admins=(f"teams:{TEAMS_ADMIN}",))
    async with file_server() as files, serving(build_app(bot, host=LOOPBACK)) as base:
        good = files.add("policy.md", POLICY)
        _, _, rest = good.partition("://")
        links = [f"http://attacker@{rest}", f"http://{rest}".replace("/files/", "\\files/")]
        for link in links:
            activity = file_message(
                "policy.md", link, stub.url, sender=PAT, conversation=PAT_PERSONAL
            )
            await post(base, activity)
        replies = await stub.received(len(links))
        assert all("no HTTPS link" in reply.text for reply in replies)
        assert files.downloads == []
        assert all(v.source_name != "policy.md" for v in bot.storage.versions())
    record(
        "Access: Teams file links hiding another host",
        "pytest tests/test_reliability_teams_access.py -k file_link",
        links_tried=len(links),
        refused=len(links),
        failures=0,
    )


# -- 5. unauthenticated only on loopback, whatever the app was told -----------------------------
def non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


async def test_unauthenticated_requests_arriving_off_loopback_are_refused(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub
) -> None:
    """An app told it listens on loopback but served on another address (a wrapper that lied,
    a port forwarded in) still takes nothing unauthenticated from there."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to listen on")
    bot = bot_with(teams_unauthenticated=True)
    runner = web.AppRunner(build_app(bot, host=LOOPBACK))
    await runner.setup()
    site = web.TCPSite(runner, address, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        status, body = await post(f"http://{address}:{port}", message(ROADMAP, stub.url))
    finally:
        await runner.cleanup()
    assert status == 403 and "loopback" in body
    assert stub.calls == [] and bot.storage.questions(status=None) == []
    record(
        "Access: unauthenticated Teams requests arriving off loopback",
        "pytest tests/test_reliability_teams_access.py -k arriving_off_loopback",
        requests=1,
        refused=1,
        replies_sent=len(stub.calls),
        failures=0,
    )
