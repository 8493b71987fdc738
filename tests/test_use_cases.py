"""The core's use cases, as every platform is to call them: one order of checks, doing and
telling, whatever the platform; refusals as texts from bot.messages."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest

from adapters.console import chat
from bot import messages
from bot.core import PolicyBot
from bot.models import Actor, IncomingQuestion, PolicyError
from bot.notify import ReplyAddress, ReviewNotice
from bot.policies import ACTIVATE, DISCARD
from bot.use_cases import Fetched
from tests.fakes.outbound import RecordingNotifier, RecordingPoster

ADMIN = Actor("slack", "U0ADMIN", "Pat Policy")
REVIEWER = Actor("teams", "aad-rev", "Rey Viewer")
SOMEONE = Actor("slack", "U0SOMEONE")
UNCOVERED = "what time does the cafeteria open?"
POLICY = b"# Drones policy\n\n## 1. Drones\n\nEmployees must not fly drones over any office.\n"


@pytest.fixture
def team_bot(bot_with: Callable[..., PolicyBot]) -> PolicyBot:
    return bot_with(admins=("slack:U0ADMIN",), teams_policy_team=("aad-rev",))


async def open_group(bot: PolicyBot, asker: str = "U7") -> int:
    incoming = IncomingQuestion(UNCOVERED, platform="slack", asker=asker, conversation="D7")
    answer = await bot.ask(incoming)
    assert not answer.answered
    (group,) = bot.review.queue()
    return group.id


class Said:
    """Everything told to the actor and posted or sent on their behalf, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def tell(self, text: str) -> None:
        self.events.append(("told", text))


def test_the_parts_are_built_once(bot: PolicyBot) -> None:
    assert bot.policies is bot.policies
    assert bot.review is bot.review


def test_claim_delivery_records_the_first_and_refuses_a_retry(bot: PolicyBot) -> None:
    assert bot.claim_delivery("slack", "file:F1")
    assert not bot.claim_delivery("slack", "file:F1")
    assert bot.claim_delivery("teams", "file:F1")  # per platform


async def test_a_reaction_is_told_first_then_announced(team_bot: PolicyBot) -> None:
    said = Said()

    class Channel(RecordingPoster[ReviewNotice]):
        async def post(self, item: ReviewNotice) -> None:
            said.events.append(("announced", item))

    team_bot.review_posters["slack"] = Channel()
    answer = await team_bot.ask(IncomingQuestion("may I post photos from the offsite?"))
    assert answer.question_id is not None
    assert await team_bot.react_to_answer(SOMEONE, answer.question_id, "helpful", said.tell)
    assert said.events == [("told", messages.REACTION_NOTES["helpful"])]  # nothing to announce

    said.events.clear()
    ok = await team_bot.react_to_answer(SOMEONE, answer.question_id, "not_helpful", said.tell)
    assert ok and [kind for kind, _ in said.events] == ["told", "announced"]
    notice = said.events[1][1]
    assert isinstance(notice, ReviewNotice) and notice.reason == "not_helpful"
    assert team_bot.storage.question(answer.question_id).status == "open"

    said.events.clear()
    assert not await team_bot.react_to_answer(SOMEONE, 999_999, "helpful", said.tell)
    assert not await team_bot.react_to_answer(SOMEONE, None, "helpful", said.tell)
    assert said.events == [("told", messages.STALE_QUESTION)] * 2


async def test_an_upload_is_refused_to_a_non_admin_before_it_is_fetched(
    team_bot: PolicyBot, caplog: pytest.LogCaptureFixture
) -> None:
    fetched: list[str] = []

    async def fetch() -> bytes:
        fetched.append("fetched")
        return POLICY

    before = team_bot.storage.versions()
    with caplog.at_level(logging.WARNING, logger="policybot.security"):
        reply = await team_bot.receive_upload(SOMEONE, "drones.md", fetch)
    # The same id on another platform is nobody there.
    other = await team_bot.receive_upload(Actor("teams", "U0ADMIN"), "drones.md", fetch)
    assert reply.result is None and reply.refusal == messages.ADMIN_ONLY == other.refusal
    assert fetched == [] and team_bot.storage.versions() == before
    assert any(
        "policy upload" in r.getMessage() and "U0SOMEONE" in r.getMessage() for r in caplog.records
    )


async def test_an_admins_upload_is_staged_and_settled(team_bot: PolicyBot) -> None:
    async def fetch() -> Fetched:  # the name learned while fetching
        return Fetched("drones.md", POLICY)

    reply = await team_bot.receive_upload(ADMIN, "", fetch)
    assert reply.refusal == "" and reply.result is not None
    version = reply.result.version
    assert version.status == "staged" and version.uploaded_by == "Pat Policy (slack:U0ADMIN)"

    refused = team_bot.settle_upload(SOMEONE, version.id, ACTIVATE)
    assert refused.version is None and refused.text == messages.ADMIN_ONLY
    stale = team_bot.settle_upload(ADMIN, None, DISCARD)
    assert stale.version is None and stale.text == messages.STALE_VERSION
    settled = team_bot.settle_upload(ADMIN, version.id, ACTIVATE)
    assert settled.version is not None and "is now active" in settled.text
    assert version.id in [v.id for v in team_bot.storage.active_versions()]


async def test_a_refused_upload_says_why_and_that_nothing_changed(team_bot: PolicyBot) -> None:
    async def unreachable() -> bytes:
        raise PolicyError(messages.could_not_download("drones.md", "the link expired"))

    async def empty() -> bytes:
        return b""

    before = team_bot.storage.versions()
    for fetch in (unreachable, empty):
        reply = await team_bot.receive_upload(ADMIN, "drones.md", fetch)
        assert reply.result is None and reply.refusal.endswith(messages.NOTHING_CHANGED)
    assert "the link expired" in (await team_bot.receive_upload(ADMIN, "d.md", unreachable)).refusal
    assert team_bot.storage.versions() == before


async def test_resolving_a_group_checks_then_stores_then_delivers(team_bot: PolicyBot) -> None:
    group_id = await open_group(team_bot)
    said = Said()

    class Notifier(RecordingNotifier):
        async def send(self, address: ReplyAddress, text: str) -> None:
            said.events.append(("sent", address.user_id))

    team_bot.notifiers["slack"] = Notifier()

    async def recorded() -> None:
        said.events.append(("recorded", team_bot.review.group(group_id).status))

    refused = await team_bot.resolve_group(SOMEONE, group_id, "Nine to five.", recorded=recorded)
    assert not refused.done and refused.text == messages.NOT_POLICY_TEAM_ACTION
    stale = await team_bot.resolve_group(REVIEWER, None, "Nine to five.", recorded=recorded)
    assert not stale.done and stale.text == messages.STALE_GROUP
    empty = await team_bot.resolve_group(REVIEWER, group_id, "  ", recorded=recorded)
    assert not empty.done and empty.text == messages.EMPTY_ANSWER
    assert said.events == [] and team_bot.review.group(group_id).status == "open"

    done = await team_bot.resolve_group(REVIEWER, group_id, "Nine to five.", recorded=recorded)
    assert done.done and done.report is not None and done.report.sent == 1
    assert said.events == [("recorded", "answered"), ("sent", "U7")]
    assert done.text == messages.group_answered(group_id, 1, "1 sent, 0 pending", 0)
    assert team_bot.review.group(group_id).answered_by == "Rey Viewer (teams:aad-rev)"


async def test_dismissing_a_group_notifies_nobody(team_bot: PolicyBot) -> None:
    group_id = await open_group(team_bot)
    notifier = RecordingNotifier()
    team_bot.notifiers["slack"] = notifier
    done = await team_bot.resolve_group(REVIEWER, group_id, None)
    assert done.done and done.report is None and notifier.sent == []
    assert done.text == messages.group_dismissed(group_id, 1)
    assert team_bot.review.group(group_id).status == "dismissed"


async def test_the_review_list_is_for_the_policy_team_in_private(
    team_bot: PolicyBot, caplog: pytest.LogCaptureFixture
) -> None:
    group_id = await open_group(team_bot)
    with caplog.at_level(logging.WARNING, logger="policybot.security"):
        refused = await team_bot.review_list(SOMEONE)
        quiet = await team_bot.review_list(SOMEONE, action="")
    assert refused.groups is None and refused.refusal == messages.NOT_POLICY_TEAM
    assert quiet.groups is None
    assert len([r for r in caplog.records if "refused review:" in r.getMessage()]) == 1
    public = await team_bot.review_list(REVIEWER, private=False)
    assert public.groups is None and public.refusal == messages.REVIEW_IN_PRIVATE
    listed = await team_bot.review_list(REVIEWER)
    assert listed.groups is not None and [g.id for g in listed.groups] == [group_id]

    async def in_group() -> bool:
        return True

    grouped = await team_bot.group_to_answer(SOMEONE, group_id, in_team_group=in_group)
    assert grouped.group is not None and grouped.group.id == group_id


async def test_after_the_reply_an_uncovered_question_is_announced(team_bot: PolicyBot) -> None:
    channel = RecordingPoster[ReviewNotice]()
    team_bot.review_posters["slack"] = channel
    incoming = IncomingQuestion(UNCOVERED, platform="slack", asker="U7")
    received = team_bot.received.receive("slack", "event:Ev1", incoming, "dm").received_id
    answer = await team_bot.ask(incoming, received=received)
    await team_bot.after_reply(incoming, answer, received)
    assert [n.reason for n in channel.posts] == ["not_covered"]
    assert team_bot.storage.unreplied() == []
    await team_bot.after_reply(incoming, None)  # a refusal or the apology: nothing to refer
    assert len(channel.posts) == 1


async def test_the_console_reacts_through_the_use_case(bot: PolicyBot) -> None:
    stdin = io.StringIO(f"!human\n{UNCOVERED}\n!human\n!quit\n")
    stdout = io.StringIO()
    await chat(bot, stdin, stdout, asker="alice")
    out = stdout.getvalue()
    assert f"bot> {messages.ASK_FIRST}" in out
    assert f"bot> {messages.REACTION_NOTES['ask_policy_team']}" in out
    (question,) = bot.open_questions()
    assert question.review_reason == "ask_policy_team"


def test_policybot_chat_words_reactions_as_every_platform_does(run: Any) -> None:
    result = run("chat", stdin="may I post photos from the offsite?\n!helpful\n!quit\n")
    assert result.exit_code == 0, result.output
    assert f"bot> {messages.REACTION_NOTES['helpful']}" in result.output
