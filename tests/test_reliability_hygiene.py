"""HTTP hygiene of `policybot serve`, over the real server on loopback with every logger at DEBUG:
no secret in any log line (access log included), malformed Slack bodies answered 401 or 400
without a traceback, refused Slack requests logged in one bounded line, hostile upload file
names refused with a message, and no route answering 500 to hostile input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.slack.app import SLACK_MAX_BODY
from bot.config import Settings
from bot.models import PolicyError
from tests.fakes.slack_harness import SECRET, SlackHarness, slack_server
from tests.reliability import record

ADMIN_TOKEN = "adm-9d2f7c41e8b35a60-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: The serve command's log format (adapters.server.run), to count the bytes a line takes.
LINE = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
#: The test's own HTTP client logs what it sends: that is not the server's log.
CLIENT_LOGGERS = ("httpx", "httpcore")
POLICY = b"# Posting rules\n\nEmployees may post about the company picnic on weekends only.\n"


@pytest.fixture(autouse=True)
def capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's access log included


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[SlackHarness]:
    """`policybot serve` with Slack, the admin API and Teams (local testing, on loopback)
    configured (runner as `run` makes it)."""
    configured = dataclasses.replace(settings, admin_token=ADMIN_TOKEN, teams_unauthenticated=True)
    async with slack_server(configured) as harness:
        yield harness


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]


def as_logged(record_: logging.LogRecord) -> str:
    """A record as the serve command's handler writes it, traceback included."""
    return LINE.format(record_)


def signed(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def error_of(response: httpx.Response) -> str:
    """The error message of a JSON answer; a plain-text one (aiohttp's 500 page) as it is."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return str(response.json().get("error", ""))
    return str(response.text)


def multipart(filename: bytes, data: bytes = POLICY, **fields: str) -> tuple[bytes, str]:
    """A multipart body built by hand, so a file name can hold any byte at all."""
    boundary = b"hygieneBoundary42"
    parts = [
        b'Content-Disposition: form-data; name="%s"\r\n\r\n%s' % (k.encode(), v.encode())
        for k, v in fields.items()
    ]
    parts.append(
        b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + data
    )
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    return body + b"--" + boundary + b"--\r\n", f"multipart/form-data; boundary={boundary.decode()}"


# -- 3: no secret in any log line ----------------------------------------------------------------
async def test_the_admin_token_never_reaches_a_log_line_wherever_it_is_sent(
    server: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    http = server.http
    form, form_type = multipart(b"notes.exe", token=ADMIN_TOKEN, by=ADMIN_TOKEN)
    padded = {"Authorization": f"Bearer {ADMIN_TOKEN}" + "x" * 9000}  # past aiohttp's 8 KiB
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        # in the query string, refused and accepted, as a value and as a bare name
        ("GET", f"/admin/policies?token={ADMIN_TOKEN}", {}),
        ("GET", f"/admin/policies?{ADMIN_TOKEN}", {}),
        ("GET", f"/admin/policies?document=x&token={ADMIN_TOKEN}", {"headers": AUTH}),
        ("GET", f"/admin/policies/1/diff?token={ADMIN_TOKEN}", {"headers": AUTH}),
        ("POST", f"/slack/events?token={ADMIN_TOKEN}", {"content": b"{}"}),
        ("GET", f"/healthz?access_token={ADMIN_TOKEN}", {}),
        # in a header: right, wrong (the token plus one character), elsewhere, over-long
        ("GET", "/admin/policies", {"headers": AUTH}),
        ("GET", "/admin/policies", {"headers": {"Authorization": f"Bearer {ADMIN_TOKEN}z"}}),
        ("GET", "/admin/policies", {"headers": {"Authorization": f"Basic {ADMIN_TOKEN}"}}),
        ("GET", "/healthz", {"headers": {"Referer": f"https://intranet/?token={ADMIN_TOKEN}"}}),
        ("GET", "/healthz", {"headers": {"X-Admin-Token": ADMIN_TOKEN, "Cookie": ADMIN_TOKEN}}),
        ("GET", "/admin/policies", {"headers": padded}),
        # in a path: one no route matches, and one under a route's prefix
        ("GET", f"/{ADMIN_TOKEN}", {}),
        ("GET", f"/admin/policies/{ADMIN_TOKEN}", {"headers": AUTH}),
        ("DELETE", f"/admin/policies/{ADMIN_TOKEN}", {"headers": AUTH}),
        # in a form field and in a body
        (
            "POST",
            "/admin/policies",
            {"content": form, "headers": {**AUTH, "Content-Type": form_type}},
        ),
        ("POST", "/admin/policies", {"content": form, "headers": {"Content-Type": form_type}}),
        ("POST", "/slack/events", {"content": f'{{"token": "{ADMIN_TOKEN}"}}'.encode()}),
    ]
    statuses = []
    for method, path, options in attempts:
        response = await http.request(method, path, **options)
        statuses.append(response.status_code)
    assert 500 not in statuses and statuses[6] == 200 and statuses[7] == 401
    records = server_records(caplog)
    access = [r.getMessage() for r in records if r.name == "aiohttp.access"]
    assert len(access) >= len(attempts) - 1  # the over-long header is refused before routing
    assert any("/admin/policies/{version}/diff?..." in line for line in access)
    logged = "\n".join(f"{as_logged(r)} {r.args!r}" for r in records)
    assert ADMIN_TOKEN not in logged
    record(
        "Hygiene: the admin token in a query, header, path, form field or body never logged",
        "pytest tests/test_reliability_hygiene.py -k never_reaches",
        requests=len(attempts),
        access_log_lines=len(access),
        log_records_searched=len(records),
        leaked=0,
    )


# -- 7: malformed Slack bodies -------------------------------------------------------------------
MALFORMED = {
    "truncated JSON": (b'{"type": "event_callback", "event": {"type": "app_m', "application/json"),
    "an array": (b'[{"type": "event_callback"}]', "application/json"),
    "a string": (b'"event_callback"', "application/json"),
    "null": (b"null", "application/json"),
    "a number": (b"42", "application/json"),
    "binary": (bytes(range(256)) * 4, "application/json"),
    "binary as a form": (b"\xff\xfe\x00payload=\x80", "application/x-www-form-urlencoded"),
    "a form's payload truncated": (b"payload=%7B%22type", "application/x-www-form-urlencoded"),
    "a form's payload an array": (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),
    "fields of the wrong type": (b'{"team": 5, "user": 7}', "application/json"),
    "an event that is not an object": (
        b'{"type": "event_callback", "event": "x"}',
        "application/json",
    ),
    "an event without a type": (b'{"type": "event_callback", "event": {}}', "application/json"),
    "actions that are not a list": (
        b"payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A7%7D",
        "application/x-www-form-urlencoded",
    ),
}


async def test_malformed_slack_bodies_get_401_unsigned_400_signed_and_no_traceback(
    server: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes: dict[tuple[str, bool], int] = {}
    for label, (body, content_type) in MALFORMED.items():
        for is_signed in (False, True):
            headers = {"Content-Type": content_type, **(signed(body) if is_signed else {})}
            response = await server.http.post("/slack/events", content=body, headers=headers)
            outcomes[label, is_signed] = response.status_code
            if is_signed:
                assert "not a Slack payload" in response.json()["error"]
    # A timestamp that is not a number, with a signature of sorts: refused, not a crash.
    stamp = {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}
    outcomes["timestamp not a number", False] = (
        await server.http.post("/slack/events", content=b"{}", headers=stamp)
    ).status_code
    expected = {key: 400 if key[1] else 401 for key in outcomes}
    assert outcomes == expected
    records = server_records(caplog)
    tracebacks = [r for r in records if r.exc_info or r.exc_text or r.levelno >= logging.ERROR]
    assert tracebacks == []
    assert server.api.total_calls == 0  # nothing reached a listener
    record(
        "Hygiene: malformed Slack bodies, signed and unsigned",
        "pytest tests/test_reliability_hygiene.py -k malformed_slack",
        requests=len(outcomes),
        answered_401=sum(s == 401 for s in outcomes.values()),
        answered_400=sum(s == 400 for s in outcomes.values()),
        answered_500=0,
        tracebacks_logged=0,
    )


async def test_slacks_unsigned_ssl_check_is_still_answered_200_as_bolt_answers_it(
    server: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await server.http.post("/slack/events", content=b"ssl_check=1&token=x", headers=form)
    assert response.status_code == 200 and response.text == ""
    assert not [r for r in server_records(caplog) if r.name == "policybot.security"]
    assert server.api.total_calls == 0


# -- 8: refused Slack requests, one bounded line each --------------------------------------------
async def test_bad_signature_requests_of_a_megabyte_log_a_bounded_line_each(
    server: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "FLOODFLOODFLOOD"
    body = ('{"type": "event_callback", "pad": "' + marker * 66_600 + '"}').encode()
    assert 990_000 < len(body) <= SLACK_MAX_BODY  # under the limit: read, checked, refused
    caplog.clear()
    statuses = []
    for n in range(10):
        headers = {"Content-Type": "application/json"}
        if n % 2:  # half forged (the wrong secret), half with no signature at all
            headers |= signed(body, secret="not-the-signing-secret")
        response = await server.http.post("/slack/events", content=body, headers=headers)
        statuses.append(response.status_code)
    assert statuses == [401] * 10
    records = server_records(caplog)
    logged_bytes = sum(len(as_logged(r).encode()) + 1 for r in records)
    assert marker not in "\n".join(as_logged(r) for r in records)
    security = [r for r in records if r.name == "policybot.security"]
    assert len(security) == 10
    assert logged_bytes < 10 * 1024  # ten MB sent; not even a kilobyte a request logged

    # Over the limit: refused (413) before the body is read, still one line.
    caplog.clear()
    oversized = b"{" + b" " * (SLACK_MAX_BODY + 1) + b"}"
    response = await server.http.post("/slack/events", content=oversized)
    assert response.status_code == 413
    over_records = server_records(caplog)
    over_bytes = sum(len(as_logged(r).encode()) + 1 for r in over_records)
    assert over_bytes < 1024
    record(
        "Hygiene: ten 1 MB Slack requests with a bad signature",
        "pytest tests/test_reliability_hygiene.py -k bounded_line",
        requests=10,
        bytes_sent=10 * len(body),
        bytes_logged=logged_bytes,
        log_records=len(records),
        oversized_request_bytes_logged=over_bytes,
    )


# -- 9: hostile upload file names ----------------------------------------------------------------
HOSTILE_NAMES = {
    "NUL": b"policy\x00.md",
    "a control character": b"policy\x01.md",
    "DEL": b"policy\x7f.md",
    "a right-to-left override": "policy\u202edm.txt".encode(),
    "not UTF-8": b"\xff\xfepolicy.md",
    "a relative path": b"../../etc/policy.md",
    "a Windows path": b"C:\\\\Users\\\\me\\\\policy.md",
    "over-long": b"p" * 300 + b".md",
    "only dots": b"..",
    "blank": b"   ",
}


async def test_hostile_upload_file_names_get_400_with_a_message_and_change_nothing(
    server: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    storage = server.bot.storage
    before = [(v.id, v.status) for v in storage.versions(None)]
    answers: dict[str, tuple[int, str]] = {}
    for label, name in HOSTILE_NAMES.items():
        body, content_type = multipart(name, activate="true")
        response = await server.http.post(
            "/admin/policies", content=body, headers={**AUTH, "Content-Type": content_type}
        )
        answers[label] = response.status_code, error_of(response)
    # The same names as ?filename= with the file as the body.
    for label, quoted in (("NUL", "a%00.md"), ("a relative path", "..%2Fx.md")):
        response = await server.http.post(
            f"/admin/policies?filename={quoted}&activate=1", content=POLICY, headers=AUTH
        )
        answers[f"{label} in ?filename="] = response.status_code, error_of(response)
    assert {label: status for label, (status, _) in answers.items()} == dict.fromkeys(answers, 400)
    for _, message in answers.values():
        assert len(message) > 20 and message.isprintable()
    assert "control characters" in answers["NUL in ?filename="][1]
    assert "NUL" in answers["NUL"][1]
    assert [(v.id, v.status) for v in storage.versions(None)] == before
    assert not [r for r in server_records(caplog) if r.exc_info or r.levelno >= logging.ERROR]
    # Every platform's upload takes the same check (Slack and Teams hand the core a name too).
    with pytest.raises(PolicyError, match="control characters"):
        server.bot.policies.upload("policy\x00.md", POLICY, activate=True)
    # An ordinary name still goes through.
    body, content_type = multipart("Richtlinie für Beiträge.md".encode())
    response = await server.http.post(
        "/admin/policies", content=body, headers={**AUTH, "Content-Type": content_type}
    )
    assert response.status_code == 201
    record(
        "Hygiene: hostile upload file names (NUL, control, bidi, non-UTF-8, paths, long, empty)",
        "pytest tests/test_reliability_hygiene.py -k hostile_upload",
        uploads=len(answers),
        refused_400=len(answers),
        versions_added=0,
        active_policy_changed=0,
    )


# -- other routes: no 500 on hostile input -------------------------------------------------------
async def test_no_route_answers_500_to_hostile_input(
    server: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "9" * 5000  # past Python's int-from-text limit, and far past SQLite's integers
    form_headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
    attempts: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/admin/policies/99999999999999999999/diff", {"headers": AUTH}, 404),
        ("POST", f"/admin/policies/{huge}/activate", {"headers": AUTH}, 404),
        ("DELETE", "/admin/policies/9223372036854775808", {"headers": AUTH}, 404),
        (
            "POST",
            "/admin/policies",
            {"content": b"xx", "headers": {**AUTH, "Content-Type": "multipart/form-data"}},
            400,
        ),
        ("POST", "/admin/policies", {"content": b"no boundary here", "headers": form_headers}, 400),
        (
            "POST",
            "/admin/policies",
            {
                "content": b'--b\r\nContent-Disposition: form-data; name="by"\r\n'
                b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nme\r\n--b--\r\n",
                "headers": form_headers,
            },
            400,
        ),
        (
            "POST",
            "/admin/policies",
            {
                "content": b'--b\r\nContent-Disposition: form-data; name="by"\r\n\r\n\xff\xfe\r\n--b--\r\n',
                "headers": form_headers,
            },
            400,
        ),
        (
            "POST",
            "/api/messages",
            {"content": b"null", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        (
            "POST",
            "/api/messages",
            {"content": b"\xff\x00", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("GET", "/healthz", {"headers": {"X-Padding": "a" * 20_000}}, 400),
    ]
    statuses = []
    for method, path, options, expected in attempts:
        response = await server.http.request(method, path, **options)
        statuses.append(response.status_code)
        assert response.status_code == expected, (method, path[:60], response.text[:200])
    records = server_records(caplog)
    assert not [r for r in records if r.exc_info or r.exc_text or r.levelno >= logging.ERROR]
    record(
        "Hygiene: hostile input to the other routes (ids, multipart, Teams bodies, headers)",
        "pytest tests/test_reliability_hygiene.py -k no_route",
        requests=len(attempts),
        answered_500=0,
        tracebacks_logged=0,
    )
