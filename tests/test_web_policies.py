"""The console's policy pages over the real server on 127.0.0.1, signed in through the real
one-time link: upload a DOCX and read its side-by-side diff, activate it (after a confirmation
page) and read what the re-check found, roll back, retire; the policy team reads but every
admin action is refused to it, and a change without the CSRF token is refused."""

from __future__ import annotations

import re
import time
from contextlib import AbstractAsyncContextManager

import docx
import pytest

from bot.config import Settings
from bot.models import IncomingQuestion
from tests.documents import docx_bytes
from tests.reliability import percentiles, record
from tests.web import ConsoleServer, console_server, csrf_of, sign_in

ADMIN = "slack:U0ADMIN"
REVIEWER = "slack:U0REV"
CAFETERIA = "what time does the cafeteria open?"
DRONES = b"# Drones policy\n\n## 1. Drones\n\nEmployees must not fly drones over any office.\n"
COMMAND = ".venv/bin/pytest -q tests/test_web_policies.py"


def drones_docx() -> bytes:
    """The drones policy's next version: its clause reworded, a cafeteria section added."""
    document = docx.Document()
    document.add_heading("Drones policy", 0)
    document.add_heading("1. Drones", 1)
    document.add_paragraph("Employees must not fly drones over any office or warehouse.")
    document.add_heading("2. Cafeteria", 1)
    document.add_paragraph("The staff cafeteria opens at 7 am and closes at 3 pm on weekdays.")
    return docx_bytes(document)


async def prepared(server: ConsoleServer) -> int:
    """Drones v1 active and an open question it does not answer; the question's id."""
    bot = server.bot
    await bot.worker.run(bot.policies.upload, "drones.md", DRONES, uploaded_by="t", activate=True)
    answer = await bot.ask(IncomingQuestion(CAFETERIA, platform="slack", asker="U1"))
    assert answer.question_id is not None and not answer.answered
    return answer.question_id


def policy_console(settings: Settings) -> AbstractAsyncContextManager[ConsoleServer]:
    return console_server(settings, slack_policy_team=("U0REV",), admins=("slack:U0ADMIN",))


async def active_drones(server: ConsoleServer) -> int | None:
    versions = await server.bot.worker.run(server.bot.active_versions)
    return next((v.number for v in versions if v.document == "drones"), None)


async def test_an_admin_uploads_compares_activates_rolls_back_and_retires(
    settings: Settings,
) -> None:
    latency: list[float] = []
    async with policy_console(settings) as server:
        question = await prepared(server)
        async with sign_in(server, as_=ADMIN) as client:
            page = await client.get("/console/policies")
            assert page.status_code == 200 and 'id="policies-heading"' in page.text
            assert 'id="upload-form"' in page.text and "upload.js" in page.text
            token = csrf_of(page.text)
            started = time.perf_counter()
            uploaded = await client.post(
                "/console/policies/upload",
                data={"csrf_token": token},
                files={"policy_file": ("drones.docx", drones_docx(), "application/octet-stream")},
            )
            latency.append((time.perf_counter() - started) * 1000)
            assert uploaded.status_code == 303, uploaded.text
            location = uploaded.headers["location"]
            version_id = int(location.rsplit("/", 1)[1])
            diff = await client.get(location)
            assert diff.status_code == 200 and 'id="diff"' in diff.text
            assert "Added" in diff.text and "2 Cafeteria" in diff.text
            assert (
                "<del>office.</del>" in diff.text and "<ins>office or warehouse.</ins>" in diff.text
            )
            assert await active_drones(server) == 1  # staged, not active

            confirm = await client.get(f"/console/policies/versions/{version_id}/activate")
            assert confirm.status_code == 200 and 'id="confirm-form"' in confirm.text
            activated = await client.post(
                f"/console/policies/versions/{version_id}/activate", data={"csrf_token": token}
            )
            assert activated.status_code == 303 and await active_drones(server) == 2
            told: list[str] = []

            async def tell(text: str) -> None:
                told.append(text)

            await server.bot.when_rechecked(tell)
            results = await client.get("/console/policies")
            assert "1 open question now answered by §2 Cafeteria" in results.text
            row = await server.bot.worker.run(server.bot.storage.question, question)
            assert row.now_answered_version == version_id

            rolled = await client.post(
                f"/console/policies/versions/{version_id}/rollback", data={"csrf_token": token}
            )
            assert rolled.status_code == 303 and await active_drones(server) == 1
            retired = await client.post(
                f"/console/policies/versions/{version_id}/retire", data={"csrf_token": token}
            )
            assert retired.status_code == 303 and await active_drones(server) is None
            history = await client.get("/console/policies")
            drones_history = history.text.split('id="history-drones"')[1].split("</table>")[0]
            kinds = re.findall(r'<th scope="row">(activate|rollback|retire) v\d', drones_history)
            assert kinds == ["activate", "activate", "rollback", "retire"]
    record(
        "Web console: policy upload, diff, activate, roll back, retire",
        COMMAND + " -k admin_uploads",
        docx_uploaded=1,
        actions=3,
        rechecked_now_answered=1,
        **percentiles(latency),
    )


async def test_the_policy_team_reads_but_every_admin_action_is_refused(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with policy_console(settings) as server:
        await prepared(server)
        (drones,) = [
            v
            for v in await server.bot.worker.run(server.bot.active_versions)
            if v.document == "drones"
        ]
        async with sign_in(server, as_=REVIEWER) as client:
            page = await client.get("/console/policies")
            assert page.status_code == 200 and 'id="upload-form"' not in page.text
            assert (await client.get(f"/console/policies/versions/{drones.id}")).status_code == 200
            token = csrf_of(page.text)
            refused = 0
            uploaded = await client.post(
                "/console/policies/upload",
                data={"csrf_token": token},
                files={"policy_file": ("drones.docx", drones_docx(), "application/octet-stream")},
            )
            assert uploaded.status_code == 403
            refused += 1
            for action in ("activate", "rollback", "retire"):
                response = await client.post(
                    f"/console/policies/versions/{drones.id}/{action}", data={"csrf_token": token}
                )
                assert response.status_code == 403, action
                refused += 1
        async with sign_in(server, as_=ADMIN) as client:
            missing = await client.post(f"/console/policies/versions/{drones.id}/retire")
            assert missing.status_code == 403
            refused += 1
        assert await active_drones(server) == 1
        versions = await server.bot.worker.run(server.bot.storage.versions, "drones")
        assert len(versions) == 1  # the refused upload stored nothing
        logged = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
        for action in ("policy upload", "policy activate", "policy rollback", "policy retire"):
            assert any(f"refused {action}:" in line and "U0REV" in line for line in logged)
        assert any("CSRF" in line for line in logged)
    record(
        "Web console: policy pages refused to the policy team",
        COMMAND + " -k refused",
        refused=refused,
        stored_by_refused_uploads=0,
    )
