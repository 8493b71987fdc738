"""Access: every refused attempt (no or wrong admin token, a bad Teams token, forged or stale
Slack signatures, non-admins uploading, people outside the policy team reviewing) is refused
AND leaves a line in the security log; secrets never reach any log.

The refusals themselves (nothing changes) are tested in detail in test_admin_http.py,
test_teams_http.py, test_teams_upload.py, test_teams_review.py, test_slack_http.py,
test_slack_upload.py and test_slack_review.py; here each path is walked once more to see
that it is logged.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from click.testing import CliRunner

from adapters.replies import APOLOGY
from adapters.server import build_app
from adapters.slack import blocks as render
from bot.answering.extractive import Draft
from bot.answering.grounded import SUMMARY_PREFIX
from bot.answering.outcome import Outcome
from bot.cli import main as cli_main
from bot.config import SECRET_FIELDS, Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion, Retrieval
from bot.redaction import REDACTED, Redactor, redact_logs
from bot.store.database import Storage
from tests.fakes.bot_connector import ConnectorStub
from tests.fakes.file_server import file_server
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.openai_stub import OpenAIStub, Recorded, answer
from tests.fakes.openai_stub import Reply as StubReply
from tests.fakes.slack_harness import SECRET, SlackHarness, slack_server
from tests.fakes.teams_activities import ALICE, file_message, message, submit
from tests.reliability import record

SECURITY = "policybot.security"
ADMIN_TOKEN = "admin-token-7c1e0b5a9f3d4e2a8b6c"
APP_PASSWORD = "teams-app-password-4f8a2c9e1d7b"
OPENAI_KEY = "sk-openai-key-0a9b8c7d6e5f4a3b"
ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
#: Teams with an app id: every request needs a valid Bot Framework token.
SECURED_TEAMS = {
    "microsoft_app_id": "00000000-0000-0000-0000-000000000001",
    "microsoft_app_password": APP_PASSWORD,
    "teams_unauthenticated": False,
}


def security_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SECURITY]


@pytest.fixture(autouse=True)
def capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything any library logs, to look for secrets too


async def post_json(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


# -- admin API ---------------------------------------------------------------------------------
async def test_admin_api_refusals_are_logged_and_compared_in_constant_time(
    bot_with: Callable[..., PolicyBot],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("adapters.admin_http.hmac.compare_digest", spy)
    bot = bot_with(admin_token=ADMIN_TOKEN)
    attempts = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    ]
    async with serving(build_app(bot, host=LOOPBACK)) as base, aiohttp.ClientSession() as session:
        for headers in attempts:
            async with session.get(base + "/admin/policies", headers=headers) as response:
                assert response.status == 401
        async with session.get(
            base + "/admin/policies", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as response:
            assert response.status == 200
    lines = security_lines(caplog)
    assert len(lines) == len(attempts)
    assert all("refused admin GET /admin/policies" in line for line in lines)
    assert "no admin token" in lines[0] and "wrong admin token" in lines[1]
    # Every bearer token was checked with hmac.compare_digest, never with ==.
    assert len(compared) == 3 and all(b == ADMIN_TOKEN.encode() for _, b in compared)
    record(
        "Access: admin API without or with a wrong token",
        "pytest tests/test_reliability_access.py -k admin_api",
        requests=len(attempts) + 1,
        refused=len(attempts),
        logged=len(lines),
        failures=0,
    )


# -- Teams -------------------------------------------------------------------------------------
async def test_teams_refusals_are_logged(
    bot_with: Callable[..., PolicyBot], stub: ConnectorStub, caplog: pytest.LogCaptureFixture
) -> None:
    bot = bot_with(
        admins=("teams:aad-pat",), teams_policy_team=("aad-pat",), teams_unauthenticated=True
    )
    uncovered = await bot.ask(IncomingQuestion("what time does the cafeteria open?"))
    assert uncovered.question_id is not None
    (group,) = bot.review.queue()
    async with file_server() as files, serving(build_app(bot, host=LOOPBACK)) as base:
        url = files.add("policy.md", b"# Policy\n\nEmployees may post anything at all.\n")
        attempts = [
            file_message("policy.md", url, stub.url, sender=ALICE),  # a non-admin uploads
            message("review", stub.url, sender=ALICE),  # outside the policy team
            submit(
                {"policybot": "answer_group", "group_id": group.id, "answer": "Yes."},
                stub.url,
                sender=ALICE,
            ),
            submit({"policybot": "dismiss_group", "group_id": group.id}, stub.url, sender=ALICE),
            submit({"policybot": "activate_version", "version_id": 1}, stub.url, sender=ALICE),
        ]
        for activity in attempts:
            assert await post_json(base + "/api/messages", activity) in (200, 201, 202)
        await stub.received(len(attempts))
        # Not even asked: a serviceUrl off this machine in unauthenticated mode.
        assert (
            await post_json(
                base + "/api/messages", message(ROADMAP, "https://attacker.example.com/")
            )
            == 403
        )
        assert files.downloads == []
    assert bot.review.group(group.id).status == "open"
    lines = security_lines(caplog)
    assert len(lines) == len(attempts) + 1
    assert all("platform=teams" in line for line in lines)
    assert "aad-alice" in lines[0] and "policy upload" in lines[0]
    assert "refused review:" in lines[1]

    # With an app id set, a request without a valid token is refused and logged.
    caplog.clear()
    secured_bot = bot_with(**SECURED_TEAMS)
    async with serving(build_app(secured_bot, host=LOOPBACK)) as base:
        for headers in (None, {"Authorization": "Bearer not-a-real-jwt"}):
            status = await post_json(base + "/api/messages", message(ROADMAP, stub.url), headers)
            assert status == 401
    token_lines = security_lines(caplog)
    assert len(token_lines) == 2 and all("Bot Framework token" in x for x in token_lines)
    assert secured_bot.storage.questions(status=None) == []
    record(
        "Access: Teams (no valid token, non-admin upload, review by non-members)",
        "pytest tests/test_reliability_access.py -k teams",
        requests=len(attempts) + 3,
        refused=len(attempts) + 3,
        logged=len(lines) + len(token_lines),
        failures=0,
    )


# -- Slack -------------------------------------------------------------------------------------
@pytest.fixture
def slack_options() -> dict[str, Any]:
    return {
        "admins": ("slack:UADMIN",),
        "slack_policy_team": ("UTEAM",),
        "slack_review_channel": "CREV",
    }


async def test_slack_refusals_are_logged(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    uncovered = await slack.bot.ask(IncomingQuestion("what time does the cafeteria open?"))
    assert uncovered.question_id is not None
    (group,) = slack.bot.review.queue()
    mention = {
        "type": "app_mention",
        "user": "U1",
        "channel": "C1",
        "ts": "1.1",
        "text": f"<@UBOT> {ROADMAP}",
    }
    # Forged, stale (replayed after five minutes) and unsigned requests.
    assert (await slack.event(mention, secret="forged-secret")).status_code == 401
    assert (await slack.event(mention, age=600)).status_code == 401
    assert (
        await slack.http.post("/slack/events", json={"type": "event_callback"})
    ).status_code == 401
    # A non-admin sends a policy file; outside the policy team, someone presses review buttons.
    await slack.share_files(
        [slack.api.add_file("policy.md", b"# P\n\nAnything goes.\n")], user="U555"
    )
    await slack.api.wait_for("chat.postMessage")
    for action_id in (render.ACTION_ANSWER_GROUP, render.ACTION_DISMISS_GROUP):
        url = slack.api.response_url(action_id)
        await slack.click(action_id, str(group.id), user="U555", channel="CREV", response_url=url)
        await slack.api.wait_for("response_url:" + action_id)
    lines = security_lines(caplog)
    assert len(lines) == 6
    assert sum("X-Slack-Signature" in line for line in lines) == 3
    assert any("policy upload" in line and "U555" in line for line in lines)
    assert sum("not in the policy team" in line for line in lines) == 2
    assert slack.api.downloads == [] and slack.bot.review.group(group.id).status == "open"
    assert slack.bot.storage.questions(status=None)[0].text != ROADMAP
    record(
        "Access: Slack (forged, stale, unsigned; non-admin upload; review by non-members)",
        "pytest tests/test_reliability_access.py -k slack",
        requests=6,
        refused=6,
        logged=len(lines),
        failures=0,
    )


# -- secrets -----------------------------------------------------------------------------------
async def test_no_secret_reaches_any_log(
    settings: Settings,
    bot_with: Callable[..., PolicyBot],
    llm_stub: OpenAIStub,
    stub: ConnectorStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every flow that handles a secret, run at DEBUG with every library's logging on."""
    configured = dataclasses.replace(
        settings,
        admin_token=ADMIN_TOKEN,
        openai_base_url=llm_stub.url,
        openai_api_key=OPENAI_KEY,
        llm_model="stub-model",
        llm_budget=5,
    )
    async with slack_server(configured) as slack:
        bot_token = slack.bot.settings.slack_bot_token
        await slack.event(
            {
                "type": "app_mention",
                "user": "U1",
                "channel": "C1",
                "ts": "1.1",
                "text": f"<@UBOT> {ROADMAP}",
            }
        )
        await slack.api.wait_for("chat.postMessage")
        await slack.event(
            {
                "type": "app_mention",
                "user": "U1",
                "channel": "C1",
                "ts": "1.2",
                "text": "<@UBOT> hi",
            },
            secret="forged",
        )
        base = str(slack.http.base_url).rstrip("/")
        for token in (ADMIN_TOKEN, "wrong-token"):
            await post_json(base + "/admin/policies", {}, {"Authorization": f"Bearer {token}"})
        assert llm_stub.requests, "the LLM was asked"
    teams_bot = bot_with(**SECURED_TEAMS)
    async with serving(build_app(teams_bot, host=LOOPBACK)) as teams_base:
        await post_json(teams_base + "/api/messages", message(ROADMAP, stub.url))

    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert len(caplog.records) > 10  # the flows did log
    secrets = {
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": bot_token,
        "MicrosoftAppPassword": APP_PASSWORD,
        "OPENAI_API_KEY": OPENAI_KEY,
        "POLICYBOT_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    leaked = [name for name, value in secrets.items() if value in text]
    assert leaked == []
    record(
        "Access: secrets never in logs",
        "pytest tests/test_reliability_access.py -k secret",
        secrets_checked=len(secrets),
        log_records_searched=len(caplog.records),
        leaked=0,
        failures=0,
    )


# -- secrets echoed back: LLM error bodies, failures while serving -----------------------------
#: "/", "+" and "=" make the URL-encoded forms differ from the key itself.
LLM_KEY = "sk-proj/Zx9+Qw7=Lm3_Rt5-Vb8Hj2"
LLM_USER = "llm-proxy-user"
#: Userinfo in OPENAI_BASE_URL; "@" and ":" must be percent-encoded there.
URL_PASSWORD = "pr0xy@pass:W9/kQ"


def leak_forms(secret: str) -> set[str]:
    """A secret as it may surface: itself, URL-encoded, JSON-escaped, and its first eight
    characters (what a snippet cut before redaction would leave)."""
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        secret[:8],
    }


def userinfo_url(base: str) -> str:
    return base.replace("http://", f"http://{LLM_USER}:{quote(URL_PASSWORD, safe='')}@", 1)


def echoing(status: int) -> Callable[[Recorded], StubReply]:
    """An LLM server answering `status` with a body that quotes the credentials it was sent,
    in several forms, one of them across the 200th character (where a snippet is cut)."""

    def reply(request: Recorded) -> StubReply:
        authorization = request.headers.get("authorization", "")
        credential = authorization.partition(" ")[2]
        plain = credential
        if authorization.startswith("Basic "):
            plain = base64.b64decode(credential).decode()
        echoed = {
            "error": {
                "message": f"Incorrect API key provided: {plain}",
                "type": "invalid_request_error",
                "received_headers": {"Authorization": authorization},
                "url_encoded": quote(plain, safe=""),
                "form_encoded": quote_plus(plain),
            }
        }
        lead = f"HTTP {status} " + "." * (195 - len(plain) // 2)  # the key straddles char 200
        body = f"{lead}{plain} {json.dumps(echoed)}"
        return StubReply(status=status, body=body.encode(), headers={"Content-Type": "text/plain"})

    return reply


def slack_messages(slack: SlackHarness) -> list[dict[str, Any]]:
    """What the bot sent to Slack, without the bot token each call authenticates with."""
    return [
        {key: value for key, value in call.items() if key != "_token"}
        for calls in slack.api.calls.values()
        for call in calls
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed once the block ends: nothing listens there


def searched_places(
    db_path: str, caplog: pytest.LogCaptureFixture, replies: list[Any]
) -> dict[str, str]:
    """Everything the bot wrote, by where: log records, stored rows, the CLI's list and
    exports, and the replies sent on the platforms."""
    storage = Storage.open(db_path)
    try:
        rows = storage.questions(status=None)
    finally:
        storage.close()
    runner = CliRunner()
    env = {"POLICYBOT_DB": "", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}

    def cli(*args: str) -> str:
        result = runner.invoke(cli_main, ["--db", db_path, *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    return {
        "logs": "\n".join(
            f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
        ),
        "storage rows": json.dumps([row.as_json() for row in rows], ensure_ascii=False),
        "questions list --json": cli("questions", "list", "--json"),
        "questions export CSV": cli("questions", "export", "--format", "csv"),
        "questions export JSON": cli("questions", "export", "--format", "json"),
        "platform replies": json.dumps(replies, ensure_ascii=False),
    }


def leaks(places: dict[str, str], secrets: dict[str, set[str]]) -> list[str]:
    return [
        f"{name} in {where}"
        for where, text in places.items()
        for name, forms in secrets.items()
        if any(form in text for form in forms)
    ]


async def test_llm_errors_echoing_secrets_leak_nowhere(
    settings: Settings,
    llm_stub: OpenAIStub,
    stub: ConnectorStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An LLM server answers 400 then 401, quoting the key (or the URL's credentials) it was
    sent; the extractive answer is given, the reason is logged and stored, scrubbed."""
    on_disk = dataclasses.replace(
        settings, llm_model="stub-model", llm_budget=5, llm_retries=0, openai_api_key=LLM_KEY
    )
    questions = 0
    async with slack_server(
        dataclasses.replace(on_disk, openai_base_url=llm_stub.url), on_disk=True
    ) as slack:
        llm_stub.script(echoing(400), echoing(401))
        await slack.event(
            {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.1", "text": ROADMAP}
        )
        await slack.api.wait_for("chat.postMessage")
        # Then a model quoting the key in its answer, spelt with a JSON escape in the body.
        # A faithful summary (the groundedness check keeps it) with the key pasted into it.
        quoting = answer(
            "not_allowed",
            "No: employees must not share internal product roadmaps before Marketing announces"
            f" them publicly ({LLM_KEY}).",
            ["C1"],
        )
        llm_stub.script(
            dataclasses.replace(quoting, body=quoting.body.replace(b"sk-", b"\\u0073k-"))
        )
        await slack.event(
            {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.2", "text": ROADMAP}
        )
        # An LLM answer in a thread is streamed: the summary is the streamed text.
        await slack.api.wait_for("chat.stopStream")
        (summary,) = slack.api.streams.values()
        assert SUMMARY_PREFIX in summary["text"]
        assert render.markdown_escape(REDACTED) in summary["text"]
        questions += 2
        slack_replies = slack_messages(slack)
        reprs = [repr(slack.bot), str(slack.bot.settings)]
    # Teams: credentials in OPENAI_BASE_URL, first to the echoing stub, then to a closed port.
    teams_bots = [
        PolicyBot.create(
            dataclasses.replace(
                on_disk, openai_base_url=userinfo_url(url), teams_unauthenticated=True
            )
        )
        for url in (llm_stub.url, f"http://127.0.0.1:{closed_port()}/v1")
    ]
    llm_stub.script(echoing(400), echoing(401))
    try:
        for teams_bot in teams_bots:
            async with serving(build_app(teams_bot, host=LOOPBACK)) as base:
                await post_json(base + "/api/messages", message(ROADMAP, stub.url))
                questions += 1
                await stub.received(questions - 2)
            reprs += [repr(teams_bot), str(teams_bot.settings)]
    finally:
        for teams_bot in teams_bots:
            await teams_bot.aclose()
            teams_bot.storage.close()
    llm_replies = len(llm_stub.requests)
    assert llm_replies == 5 and llm_stub.unused == 0
    assert llm_stub.requests[0].headers["authorization"] == f"Bearer {LLM_KEY}"
    assert llm_stub.requests[3].headers["authorization"].startswith("Basic ")

    places = searched_places(
        on_disk.db_path, caplog, [*slack_replies, *(c.body for c in stub.calls)]
    )
    places["reprs"] = "\n".join(reprs)
    notes = places["storage rows"]
    # The failures were recorded, with the credentials scrubbed out of them.
    assert notes.count("llm fallback: HTTP 401 from the LLM") == 2 and REDACTED in notes
    assert "llm fallback: cannot connect to http://127.0.0.1:" in notes
    basic = base64.b64encode(f"{LLM_USER}:{URL_PASSWORD}".encode()).decode()
    secrets = {
        "OPENAI_API_KEY": leak_forms(LLM_KEY),
        "OPENAI_BASE_URL password": leak_forms(URL_PASSWORD) | {basic},
    }
    assert leaks(places, secrets) == []
    record(
        "Access: secrets never in logs",
        "pytest tests/test_reliability_access.py -k secret",
        secrets_checked=len(secrets),
        log_records_searched=len(caplog.records),
        llm_replies_quoting_secrets=llm_replies,
        questions_searched=questions,
        places_searched=len(places),
        leaked=0,
        failures=0,
    )


class EchoingAnswerer:
    """Fails as a library might, with the credentials it was given quoted in the error."""

    def __init__(self, quoted: str) -> None:
        self.quoted = quoted

    async def answer(self, retrieval: Retrieval, *, outcome: Outcome) -> Draft:
        raise RuntimeError(f"upstream refused the request: {self.quoted}")


async def test_an_exception_quoting_secrets_while_serving_leaks_nowhere(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure whose message quotes every secret: the asker gets the apology, the question is
    logged for review without the secrets, and the bot's log filter scrubs the traceback."""
    configured = dataclasses.replace(
        settings,
        admin_token=ADMIN_TOKEN,
        openai_api_key=LLM_KEY,
        openai_base_url=userinfo_url("http://127.0.0.1:9/v1"),
        microsoft_app_password=APP_PASSWORD,
        slack_app_token="xapp-1-A0123-4567-abcdef0123456789",
        # The console's sign-in secrets (m015's round) are secrets like the others.
        entra_client_secret="entra-client-secret-3b9d7f1a",
        slack_signin_client_secret="slack-signin-secret-6e2c8a4f",
    )
    async with slack_server(configured, on_disk=True) as slack:
        secrets = (
            {"admin_token": ADMIN_TOKEN}
            | {name: getattr(slack.bot.settings, name) for name in SECRET_FIELDS}
            | {"OPENAI_BASE_URL password": URL_PASSWORD}
        )
        assert all(secrets.values())
        # The admin token first, across the 500th character, where the stored note is cut.
        note_start = "failed: RuntimeError: upstream refused the request: "
        quoted = "." * (495 - len(note_start)) + " ".join(
            f"{value} Bearer {value} {quote(value, safe='')}" for value in secrets.values()
        )
        assert next(iter(secrets.values())) == ADMIN_TOKEN
        slack.bot.answerer = EchoingAnswerer(quoted)
        redact_logs(Redactor.of(slack.bot.settings), [caplog.handler])
        # Asked with a pasted secret in it, as someone checking a config snippet might.
        pasted = f"{ROADMAP} POLICYBOT_ADMIN_TOKEN={ADMIN_TOKEN}"
        await slack.event(
            {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.1", "text": pasted}
        )
        (posted,) = await slack.api.wait_for("chat.postMessage")
        assert APOLOGY in json.dumps(posted)
        replies = slack_messages(slack)
        reprs = [repr(slack.bot), str(slack.bot.settings)]
    assert any(r.exc_info for r in caplog.records), "the failure was logged with its traceback"
    places = searched_places(configured.db_path, caplog, replies)
    places["reprs"] = "\n".join(reprs)
    assert f"{note_start}....." in places["storage rows"]
    assert f".{REDACTED[:5]}" in places["storage rows"]  # replaced, then cut at 500
    forms = {name: leak_forms(value) for name, value in secrets.items()}
    assert leaks(places, forms) == []
    record(
        "Access: secrets never in logs",
        "pytest tests/test_reliability_access.py -k secret",
        secrets_checked=len(secrets),
        log_records_searched=len(caplog.records),
        questions_searched=1,
        places_searched=len(places),
        leaked=0,
        failures=0,
    )
