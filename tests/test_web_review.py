"""The console's review pages over the real server on 127.0.0.1, signed in through the real
one-time link: the queue and its filters, a group's page with its preview, answering (the
Slack asker notified through the fake Slack Web API), dismissing one and several groups, the
audit trail, and the refusals (outside the policy team, no CSRF token)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.config import Settings
from bot.models import IncomingQuestion
from tests.fakes.slack_api import FakeSlackApi, fake_slack_api
from tests.reliability import percentiles, record
from tests.web import ConsoleServer, console_server, csrf_of, sign_in

REVIEWER = "slack:U0REV"
OUTSIDER = "slack:U0OUT"
ADMIN_ONLY = "slack:U0ADMIN"
CAFETERIA = "what time does the cafeteria open?"
LINKEDIN = [
    "can I expense LinkedIn Premium?",
    "will the company reimburse my LinkedIn Premium subscription",
]
COMMAND = ".venv/bin/pytest -q tests/test_web_review.py"


@asynccontextmanager
async def review_console(settings: Settings) -> AsyncIterator[tuple[ConsoleServer, FakeSlackApi]]:
    async with (
        fake_slack_api() as api,
        console_server(
            settings,
            slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5",
            slack_bot_token="xoxb-test",
            slack_api_url=api.url,
            slack_policy_team=("U0REV",),
            admins=("slack:U0ADMIN",),
        ) as server,
    ):
        yield server, api


async def asked(server: ConsoleServer, text: str, user: str) -> int:
    answer = await server.bot.ask(
        IncomingQuestion(text, platform="slack", asker=user, conversation=f"D-{user}")
    )
    assert answer.question_id is not None
    if answer.answered:
        await server.bot.worker.run(server.bot.escalate, answer.question_id)
    return answer.question_id


async def groups_of(server: ConsoleServer) -> list[Any]:
    return list(await server.bot.worker.run(server.bot.review.queue, None))


def row_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'id="group-row-(\d+)"', html)]


async def test_the_queue_lists_busiest_first_and_filters_by_status_team_and_dates(
    settings: Settings,
) -> None:
    async with review_console(settings) as (server, _):
        for user, text in zip(("U1", "U2"), LINKEDIN, strict=True):
            await asked(server, text, user)
        await asked(server, CAFETERIA, "U3")
        busiest, other = await groups_of(server)
        async with sign_in(server, as_=REVIEWER) as client:
            started = time.perf_counter()
            page = await client.get("/console/review")
            latency = [(time.perf_counter() - started) * 1000]
            assert (
                page.status_code == 200 and '<h1 id="review-queue">Review queue</h1>' in page.text
            )
            assert row_ids(page.text) == [busiest.id, other.id]
            assert LINKEDIN[1] in page.text  # a sample beside the group's first question
            token = csrf_of(page.text)
            dismissed = await client.post(
                f"/console/review/{other.id}/dismiss", data={"csrf_token": token}
            )
            assert dismissed.status_code == 303
            filters = {
                "status=open": [busiest.id],
                "status=dismissed": [other.id],
                "status=all": [busiest.id, other.id],
                "status=all&since=2999-01-01": [],
                f"status=all&owner={busiest.owner or 'unrouted'}": [busiest.id],
            }
            for query, expected in filters.items():
                started = time.perf_counter()
                shown = await client.get(f"/console/review?{query}")
                latency.append((time.perf_counter() - started) * 1000)
                assert shown.status_code == 200, query
                assert row_ids(shown.text) == expected, query
            bad = await client.get("/console/review?since=yesterday&owner=Legal")
            assert bad.status_code == 400
            assert "Cannot read the from date" in bad.text and 'value="Legal"' in bad.text
    record(
        "Web console: review queue filters",
        COMMAND + " -k queue",
        filters_tried=len(filters) + 1,
        refused_bad_dates=1,
        **percentiles(latency),
    )


async def test_answering_a_group_previews_it_then_notifies_the_slack_asker(
    settings: Settings,
) -> None:
    async with review_console(settings) as (server, api):
        await asked(server, CAFETERIA, "U1")
        (group,) = await groups_of(server)
        answer = "The cafeteria opens at 7 am on weekdays."
        async with sign_in(server, as_=REVIEWER) as client:
            page = await client.get(f"/console/review/{group.id}")
            assert page.status_code == 200 and 'id="group-heading"' in page.text
            assert CAFETERIA in page.text and "not covered" in page.text
            token = csrf_of(page.text)
            preview = await client.post(
                f"/console/review/{group.id}/answer",
                data={"csrf_token": token, "answer": answer, "intent": "preview"},
            )
            assert preview.status_code == 200 and 'id="answer-preview"' in preview.text
            assert api["chat.postMessage"] == []  # a preview sends nothing
            empty = await client.post(
                f"/console/review/{group.id}/answer",
                data={"csrf_token": token, "answer": "  ", "intent": "send"},
            )
            assert empty.status_code == 400 and "The answer is empty" in empty.text
            sent = await client.post(
                f"/console/review/{group.id}/answer",
                data={"csrf_token": token, "answer": answer, "intent": "send"},
            )
            assert sent.status_code == 303
            (message,) = await api.wait_for("chat.postMessage")
            assert message["channel"] == "D-U1" and answer in message["text"]
            after = await client.get(f"/console/review/{group.id}")
            trail = after.text.split('id="audit-trail"')[1]
            assert "answered" in trail and "U0REV" in trail
        preview_text = re.search(r'<pre class="preview">(.*?)</pre>', preview.text, re.S)
        assert preview_text is not None and answer in preview_text.group(1)
    record(
        "Web console: answer a group",
        COMMAND + " -k answering",
        previews=1,
        empty_answers_refused=1,
        slack_askers_notified=1,
    )


async def test_bulk_dismiss_dismisses_each_chosen_group_and_records_it(
    settings: Settings,
) -> None:
    async with review_console(settings) as (server, api):
        await asked(server, LINKEDIN[0], "U1")
        await asked(server, CAFETERIA, "U2")
        ids = [g.id for g in await groups_of(server)]
        async with sign_in(server, as_=REVIEWER) as client:
            page = await client.get("/console/review")
            done = await client.post(
                "/console/review/dismiss",
                data={"csrf_token": csrf_of(page.text), "group": [str(i) for i in ids]},
            )
            assert done.status_code == 303
        groups = await groups_of(server)
        assert {g.status for g in groups} == {"dismissed"}
        for group_id in ids:
            actions = await server.bot.worker.run(server.bot.review.actions, group_id)
            assert [(a.action, a.actor) for a in actions] == [("dismissed", "slack:U0REV")]
        assert api["chat.postMessage"] == []
    record("Web console: bulk dismiss", COMMAND + " -k bulk", groups_dismissed=len(ids))


async def test_outsiders_and_changes_without_csrf_are_refused_and_nothing_changes(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with review_console(settings) as (server, _):
        await asked(server, CAFETERIA, "U1")
        (group,) = await groups_of(server)
        refused = 0
        async with sign_in(server, as_=REVIEWER) as client:
            for path in (f"/console/review/{group.id}/dismiss", "/console/review/dismiss"):
                response = await client.post(path, data={"group": str(group.id)})
                assert response.status_code == 403, path
                refused += 1
        with pytest.raises(AssertionError, match="403"):  # on neither list: no session
            async with sign_in(server, as_=OUTSIDER):
                pass
        refused += 1
        async with sign_in(server, as_=ADMIN_ONLY) as client:
            # A policy admin outside the policy team: the core refuses the review pages.
            for path in ("/console/review", f"/console/review/{group.id}"):
                response = await client.get(path)
                assert response.status_code == 403, path
                refused += 1
            token = csrf_of((await client.get("/console/")).text)
            for path in (f"/console/review/{group.id}/dismiss", "/console/review/dismiss"):
                response = await client.post(
                    path, data={"csrf_token": token, "group": str(group.id)}
                )
                assert response.status_code == 403, path
                refused += 1
        assert (await groups_of(server))[0].status == "open"
        logged = [r.getMessage() for r in caplog.records if "refused review" in r.getMessage()]
        assert len(logged) == 4 and all("U0ADMIN" in line for line in logged)
    record("Web console: review refusals", COMMAND + " -k outsiders", refused=refused)
