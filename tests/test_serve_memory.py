"""`policybot serve` starts without what only some requests need (issue 17: its peak resident
memory under 300 MB with the model loaded).

The real server, in a process of its own on loopback with Slack configured (the fake Web API
on 127.0.0.1) and no Teams, no LLM, no identity provider, on SQLite: it answers /healthz and a
Slack question, and then, at its exit, lists what it imported. None of these may be there:
each is loaded by the one request that needs it (the Teams adapter only when Teams is
configured). The process's resident memory is recorded, not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.slack_api import FakeSlackApi, fake_slack_api
from tests.reliability import record
from tests.served import ROOT, free_port, signed_mention, slack_serve_env, wait_until_healthy

SECRET = "serve-memory-signing-secret"
#: Top-level packages `serve` must not import at start, and who needs each.
NOT_AT_START = {
    "microsoft_agents": "the Teams adapter (Teams configured)",
    "pydantic": "the Teams adapter",
    "msal": "the Teams adapter",
    "jwt": "a console sign-in through an identity provider, or Teams' tokens",
    "cryptography": "the same",
    "jinja2": "the console's first page",
    "PIL": "a digest with its chart",
    "httpx": "the LLM client, a sign-in or a file download",
    "rich": "httpx's command line, which httpx imports with itself",
    "psycopg": "a PostgreSQL database",
    "pypdf": "a PDF upload, read in the upload worker's own process",
    "docx": "a DOCX upload, likewise",
    "lxml": "the same",
}
#: Run as `serve`'s main module: `policybot serve`, then, at exit, what it had imported.
SERVE_AND_LIST_MODULES = """
import atexit, json, os, sys
def listed():
    with open(os.environ["MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
atexit.register(listed)
from bot.cli import main
main(sys.argv[1:], prog_name="policybot")
"""


def memory_kib(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            fields[name] = int(value.split()[0])
    return fields


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with fake_slack_api() as fake:
        yield fake


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
async def test_serve_starts_and_answers_without_what_only_some_requests_need(
    slack_api: FakeSlackApi, tmp_path: Path
) -> None:
    port = free_port()
    env = slack_serve_env(
        SECRET, slack_api.url, tmp_path / "serve.db", MODULES_OUT=str(tmp_path / "modules.json")
    )
    command = [sys.executable, "-c", SERVE_AND_LIST_MODULES]
    command += ["serve", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        await wait_until_healthy(process, port, log)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            body, headers = signed_mention(
                SECRET,
                "may I post photos of the office?",
                event_id="EvMemory1",
                channel="CMEMORY",
                user="U0000001",
                ts="1700000000.000001",
            )
            acknowledged = await http.post("/slack/events", content=body, headers=headers)
            assert acknowledged.status_code == 200
            replies = await slack_api.wait_for("chat.postMessage")
        memory = memory_kib(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    assert replies[-1]["channel"] == "CMEMORY"  # the question was answered
    loaded = json.loads((tmp_path / "modules.json").read_text(encoding="utf-8"))
    tops = {name.split(".")[0] for name in loaded}
    present = {name: NOT_AT_START[name] for name in NOT_AT_START if name in tops}
    record(
        "Serve's start-up imports",
        "pytest tests/test_serve_memory.py",
        heavy_packages_checked=len(NOT_AT_START),
        heavy_packages_imported=len(present),
        modules_imported=len(loaded),
        serve_resident_mib=round(memory["VmRSS"] / 1024, 1),
        serve_peak_mib=round(memory["VmHWM"] / 1024, 1),
    )
    assert not present, f"imported at start, needed only for: {present}"
    assert "adapters.teams.app" not in loaded
