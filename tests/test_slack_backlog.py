"""Acknowledgements that wait for nothing: Events API questions acknowledged before bolt runs
and answered on a loop of their own (adapters/slack/answering.py) from the backlog
(adapters/backlog.py), started only while that loop keeps its turns short, in order, once
each, and never lost to a stop; and a click acknowledged
while the worker is busy, applied once after. Over the real server and the loopback fake
Slack."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable

from adapters.backlog import Backlog
from adapters.slack import blocks as render
from adapters.slack.app import SLACK_ANSWERING
from bot.config import Settings
from tests.fakes.slack_api import fake_slack_api
from tests.fakes.slack_harness import SlackHarness, slack_server
from tests.reliability import record

GUARD = 10.0
ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
TWEET = "can I tweet about our quarterly revenue?"


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_work_waits_while_the_loop_is_busy_and_starts_in_order_once_it_is_free() -> None:
    backlog = Backlog(turn_budget=0.004, longest_hold=0.2)
    started: list[int] = []
    busy = True

    async def hog() -> None:
        while busy:
            time.sleep(0.01)  # every turn of the loop now takes 10 ms: over the budget
            await asyncio.sleep(0)

    async def note(number: int) -> None:
        started.append(number)

    hogging = asyncio.create_task(hog())
    for number in range(20):
        backlog.add(functools.partial(note, number))
    await asyncio.sleep(0.5)
    during = len(started)
    busy = False
    await hogging
    await until(lambda: len(started) == 20, "the backlog did not drain")
    # While busy only the longest hold starts anything (at 0.2 s, 0.4 s): the queue still drains.
    assert 1 <= during <= 3
    assert started == list(range(20))
    await backlog.close()
    record(
        "Slack: acknowledged answers wait while the event loop is busy",
        "pytest tests/test_slack_backlog.py",
        queued=20,
        started_while_busy=during,
        started_in_order=started == list(range(20)),
    )


async def test_work_waiting_for_its_record_holds_back_what_came_after_it() -> None:
    backlog = Backlog(turn_budget=1.0, longest_hold=1.0)
    recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started: list[str] = []

    async def note(name: str) -> None:
        started.append(name)

    backlog.add(functools.partial(note, "first"), recorded)
    backlog.add(functools.partial(note, "second"))
    await asyncio.sleep(0.1)
    waited = list(started)
    recorded.set_result(None)
    await until(lambda: len(started) == 2, "the backlog did not drain")
    # Nothing started before the first one's record, then both in order: a lock released
    # lets them start as the loop has room, not all at once.
    assert waited == [] and started == ["first", "second"]
    await backlog.close()


async def test_closing_finishes_what_started_and_starts_nothing_more() -> None:
    backlog = Backlog(turn_budget=0.004, longest_hold=0.05)
    release = asyncio.Event()
    finished: list[str] = []

    async def slow() -> None:
        await release.wait()
        finished.append("slow")

    async def never() -> None:
        finished.append("never")

    backlog.add(slow)
    await until(lambda: len(backlog) == 0, "the first piece of work did not start")
    backlog.turn_budget = -1.0  # the loop "busy" from now on: what is added waits
    backlog.longest_hold = 1e9
    backlog.add(never)
    asyncio.get_running_loop().call_later(0.05, release.set)
    await backlog.close(grace=GUARD)
    backlog.add(never)  # after close: ignored
    await asyncio.sleep(0.05)
    assert finished == ["slow"] and len(backlog) == 0


async def answered_in(slack: SlackHarness, channel: str) -> int:
    return sum(
        channel == post.get("channel") and not str(post.get("text", "")).startswith("Thinking")
        for post in slack.api["chat.postMessage"]
    )


async def test_a_question_acknowledged_before_bolt_runs_is_answered_once_even_when_replayed(
    settings: Settings,
) -> None:
    async with slack_server(settings) as slack:
        # The first event goes through bolt, which asks Slack who the bot is.
        assert (await slack.dm(ROADMAP, user="U1")).status_code == 200
        await slack.api.wait_for("chat.postMessage", 1)
        response = await slack.dm(TWEET, user="U2")
        assert response.status_code == 200 and response.text == ""
        again = await slack.replay()
        assert again.status_code == 200 and again.text == ""
        await slack.api.wait_for("chat.postMessage", 2)
        await asyncio.sleep(0.3)  # a second answer would follow closely
        assert await answered_in(slack, "D2") == 1
        logged = Counter(str(q.text) for q in slack.bot.storage.questions(status=None))
        assert logged == {ROADMAP: 1, TWEET: 1}


async def test_questions_are_acknowledged_while_the_answering_loop_is_stuck_and_answered_after(
    settings: Settings,
) -> None:
    asked = 3
    async with slack_server(settings) as slack:
        assert (await slack.dm(ROADMAP, user="U1")).status_code == 200
        await slack.api.wait_for("chat.postMessage", 1)
        answering = slack.web_app[SLACK_ANSWERING]
        assert answering.thread is not None
        # The answering loop's thread held (as by an answer's long step): the server's loop
        # still acknowledges, and nothing is answered until it goes on.
        release = threading.Event()
        answering.thread.call(release.wait, GUARD)
        try:
            acks = [
                await asyncio.wait_for(slack.dm(f"{TWEET} ({n})", user=f"U{n + 10}"), GUARD / 2)
                for n in range(asked)
            ]
            await asyncio.sleep(0.3)  # an answer on the server's own loop would be here by now
            answered_while_stuck = len(slack.api["chat.postMessage"]) - 1
        finally:
            release.set()
        await slack.api.wait_for("chat.postMessage", 1 + asked)
        await asyncio.sleep(0.3)  # a second answer would follow closely
        answered = {f"D{n + 10}": await answered_in(slack, f"D{n + 10}") for n in range(asked)}
    assert [ack.status_code for ack in acks] == [200] * asked
    assert answered_while_stuck == 0
    assert answered == {f"D{n + 10}": 1 for n in range(asked)}


async def test_questions_waiting_in_the_backlog_when_the_server_stops_are_answered_on_start(
    settings: Settings,
) -> None:
    waiting = 5
    async with fake_slack_api() as api:
        async with slack_server(settings, api=api, on_disk=True) as slack:
            await slack.dm(ROADMAP, user="U1")
            await api.wait_for("chat.postMessage", 1)
            # From now on the backlog starts nothing: what is acknowledged stays in it.
            backlog = slack.web_app[SLACK_ANSWERING].backlog
            backlog.turn_budget, backlog.longest_hold = -1.0, 1e9
            for number in range(waiting):
                response = await slack.dm(f"{TWEET} ({number})", user=f"U{number + 10}")
                assert response.status_code == 200
            # Handed to the answering loop after each acknowledgement.
            await until(lambda: len(backlog) == waiting, "the acknowledged questions waiting")
            answered_before_stop = len(api["chat.postMessage"]) - 1
        async with slack_server(settings, api=api, on_disk=True):
            await api.wait_for("chat.postMessage", 1 + waiting)
            await asyncio.sleep(0.3)  # a second answer to any would follow closely
            posts = api["chat.postMessage"][1:]
    channels = Counter(str(p["channel"]) for p in posts)
    assert answered_before_stop == 0
    assert channels == {f"D{number + 10}": 1 for number in range(waiting)}
    record(
        "Slack: acknowledged questions still in the backlog at a stop",
        "pytest tests/test_slack_backlog.py -k stops",
        acknowledged=waiting,
        answered_before_the_stop=answered_before_stop,
        answered_after_restart=sum(channels.values()),
    )


async def test_a_click_is_acknowledged_while_the_worker_is_busy_and_applied_once_after(
    settings: Settings,
) -> None:
    async with slack_server(settings, slack_review_channel="CREVIEW") as slack:
        await slack.dm(ROADMAP)
        await slack.api.wait_for("chat.postMessage")
        (question,) = slack.bot.storage.questions(status=None)
        note = slack.api.response_url("click")
        # The worker is busy (a long re-check, another process's write lock): the click's
        # key can reach the database only after.
        release = threading.Event()
        busy = asyncio.ensure_future(slack.bot.worker.run(release.wait, GUARD))
        try:
            clicked = await asyncio.wait_for(
                slack.click(render.ACTION_NOT_HELPFUL, str(question.id), response_url=note),
                GUARD / 2,
            )
            applied_while_busy = len(slack.api["response_url:click"])
        finally:
            release.set()
        await busy
        await slack.api.wait_for("response_url:click")
        again = await slack.replay()
        await asyncio.sleep(0.3)  # a second note would follow closely
        to_review = [p for p in slack.api["chat.postMessage"] if p["channel"] == "CREVIEW"]
    assert clicked.status_code == 200 and applied_while_busy == 0
    assert again.status_code == 200
    assert len(to_review) == 1 and len(slack.api["response_url:click"]) == 1
    record(
        "Slack: a click acknowledged while the worker is busy",
        "pytest tests/test_slack_backlog.py -k click",
        acknowledged_while_busy=clicked.status_code == 200,
        applied_before_the_worker_was_free=applied_while_busy,
        applied=len(to_review),
    )


async def test_a_click_acknowledged_just_before_a_stop_is_applied_before_the_server_stops(
    settings: Settings,
) -> None:
    # Slack does not send an acknowledged click again: a stop that cut it short would lose it.
    async with fake_slack_api() as api:
        async with slack_server(
            settings, api=api, on_disk=True, slack_review_channel="CREVIEW"
        ) as slack:
            await slack.dm(ROADMAP)
            await api.wait_for("chat.postMessage")
            (question,) = slack.bot.storage.questions(status=None)
            note = api.response_url("click")
            release = threading.Event()
            busy = asyncio.ensure_future(slack.bot.worker.run(release.wait, GUARD))
            clicked = await slack.click(
                render.ACTION_NOT_HELPFUL, str(question.id), response_url=note
            )
            assert api["response_url:click"] == []  # acknowledged, not applied yet
            threading.Timer(0.3, release.set).start()  # free within the stop's grace
        # Leaving the block stopped the server, as `serve` stops: nothing is awaited after.
        applied = [p for p in api["chat.postMessage"] if p["channel"] == "CREVIEW"]
        told = len(api["response_url:click"])
        await busy
    assert clicked.status_code == 200
    assert len(applied) == 1 and told == 1
    record(
        "Slack: a click acknowledged just before a stop",
        "pytest tests/test_slack_backlog.py -k just_before",
        acknowledged=clicked.status_code == 200,
        applied_before_the_stop_ended=len(applied),
        clicker_told=told,
    )


async def test_a_click_replayed_to_another_process_is_applied_once(settings: Settings) -> None:
    async with (
        fake_slack_api() as api,
        slack_server(settings, api=api, on_disk=True, slack_review_channel="CREVIEW") as first,
        slack_server(settings, api=api, on_disk=True, slack_review_channel="CREVIEW") as other,
    ):
        await first.dm(ROADMAP)
        await api.wait_for("chat.postMessage")
        (question,) = first.bot.storage.questions(status=None)
        note = api.response_url("click")
        await first.click(render.ACTION_NOT_HELPFUL, str(question.id), response_url=note)
        await api.wait_for("response_url:click")
        body, headers = first.last_sent
        again = await other.http.post("/slack/events", content=body, headers=headers)
        await asyncio.sleep(0.5)  # a second note would follow closely
        to_review = [p for p in api["chat.postMessage"] if p["channel"] == "CREVIEW"]
    assert again.status_code == 200
    assert len(to_review) == 1 and len(api["response_url:click"]) == 1
