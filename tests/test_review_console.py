"""The core's reads behind the web console's review and policy pages: the audit trail of
every resolution (from any surface), the queue under filters, a group with its questions,
an answer's preview, bulk dismissal, and what each activation's re-check found."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor, IncomingQuestion
from bot.review.groups import ReviewError
from bot.review.views import QueueFilter
from bot.store.database import Storage
from tests.fakes.outbound import RecordingNotifier

ADMIN = Actor("slack", "U0ADMIN", "Pat Policy")
REVIEWER = Actor("slack", "U0REV", "Rey Viewer")
SOMEONE = Actor("slack", "U0SOMEONE")
LINKEDIN = [
    "can I expense LinkedIn Premium?",
    "will the company reimburse my LinkedIn Premium subscription",
]
CAFETERIA = "what time does the cafeteria open?"
DRONES_V1 = b"# Drones policy\n\n## 1. Drones\n\nEmployees must not fly drones over any office.\n"
DRONES_V2 = (
    b"# Drones policy\n\n## 1. Drones\n\nEmployees must not fly drones over any office.\n\n"
    b"## 2. Cafeteria\n\nThe staff cafeteria opens at 7 am and closes at 3 pm on weekdays.\n"
)


@pytest.fixture
def team_settings(settings: Settings) -> Settings:
    return replace(settings, admins=("slack:U0ADMIN",), slack_policy_team=("U0REV",))


@pytest.fixture
def engine_bot(team_settings: Settings, new_storage: Callable[[], Storage]) -> Iterator[PolicyBot]:
    policy_bot = PolicyBot.create(team_settings, storage=new_storage())
    policy_bot.ensure_policy()
    yield policy_bot
    policy_bot.mark.release()


async def ask(bot: PolicyBot, text: str, user: str) -> int:
    answer = await bot.ask(
        IncomingQuestion(text, platform="slack", asker=user, conversation=f"D-{user}")
    )
    assert answer.question_id is not None
    if answer.answered and answer.source != "reviewed":
        bot.escalate(answer.question_id)
    return answer.question_id


async def test_every_resolution_is_recorded_with_who_and_when_from_any_surface(
    engine_bot: PolicyBot,
) -> None:
    bot = engine_bot
    await ask(bot, LINKEDIN[0], "U1")
    (group,) = bot.review.queue()
    done = await bot.resolve_group(REVIEWER, group.id, "Recruiters only.")
    assert done.done
    await bot.answer_group(group.id, "Recruiters only; claim under Subscriptions.", by="cli")
    bot.dismiss_group(group.id, by="cli")  # withdraws the reviewed answer
    refused = await bot.resolve_group(SOMEONE, group.id, None)
    assert not refused.done

    shown = await bot.review_group(REVIEWER, group.id)
    assert shown.value is not None
    trail = [(a.action, a.actor, a.detail) for a in shown.value.actions]
    assert trail == [
        ("answered", "Rey Viewer (slack:U0REV)", "Recruiters only."),
        ("edited", "cli", "Recruiters only; claim under Subscriptions."),
        ("withdrawn", "cli", ""),
    ]
    assert all(a.acted_at[:4].isdigit() and "T" in a.acted_at for a in shown.value.actions)


async def test_the_queue_filters_by_team_status_and_dates_and_counts_each_status(
    bot_with: Callable[..., PolicyBot],
) -> None:
    bot = bot_with(slack_policy_team=("U0REV",))
    for user, text in zip(("U1", "U2"), LINKEDIN, strict=True):
        await ask(bot, text, user)
    await ask(bot, CAFETERIA, "U3")
    groups = bot.review.queue()
    assert len(groups) == 2 and groups[0].count == 2  # busiest first
    await bot.resolve_group(REVIEWER, groups[1].id, None)

    everything = await bot.review_queue(REVIEWER, QueueFilter.parse(status="all"))
    assert everything.value is not None
    assert [e.group.id for e in everything.value.entries] == [g.id for g in groups]
    assert everything.value.counts == {"open": 1, "answered": 0, "dismissed": 1}
    assert everything.value.entries[0].samples == tuple(LINKEDIN)

    dismissed = await bot.review_queue(REVIEWER, QueueFilter.parse(status="dismissed"))
    assert dismissed.value is not None
    assert [e.group.id for e in dismissed.value.entries] == [groups[1].id]

    owner = groups[0].owner or "unrouted"
    by_team = await bot.review_queue(REVIEWER, QueueFilter.parse(owner=owner, status=""))
    assert by_team.value is not None
    assert groups[0].id in [e.group.id for e in by_team.value.entries]

    later = await bot.review_queue(REVIEWER, QueueFilter.parse(since="2999-01-01", status=""))
    earlier = await bot.review_queue(REVIEWER, QueueFilter.parse(until="2000-01-01", status=""))
    today = groups[0].last_seen[:10]
    same_day = await bot.review_queue(
        REVIEWER, QueueFilter.parse(since=today, until=today, status="")
    )
    assert later.value is not None and earlier.value is not None and same_day.value is not None
    assert later.value.entries == () and earlier.value.entries == ()
    assert len(same_day.value.entries) == 2


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"since": "yesterday"}, "Cannot read the from date 'yesterday'"),
        ({"until": "2024-02-30"}, "Cannot read the to date '2024-02-30'"),
        ({"since": "2024-03-01", "until": "2024-02-01"}, "is after the to date"),
        ({"status": "closed"}, "There is no group status 'closed'"),
    ],
)
def test_a_filter_it_cannot_read_says_what_is_wrong(options: dict[str, str], says: str) -> None:
    with pytest.raises(ReviewError, match=says):
        QueueFilter.parse(**options)


async def test_a_group_shows_pseudonymous_askers_unless_askers_are_shown(
    bot_with: Callable[..., PolicyBot],
) -> None:
    for show in (False, True):
        bot = bot_with(slack_policy_team=("U0REV",), show_askers=show)
        answer = await bot.ask(
            IncomingQuestion(
                CAFETERIA, platform="slack", asker="U1", conversation="D1", asker_name="Sam Asker"
            )
        )
        assert answer.question_id is not None
        (group,) = bot.review.queue()
        shown = await bot.review_group(REVIEWER, group.id)
        assert shown.value is not None
        (question,) = shown.value.questions
        assert question.text == CAFETERIA and question.reason == "not_covered"
        if show:
            assert question.asker == "Sam Asker"
        else:
            assert question.asker.startswith("asker-") and "U1" not in question.asker


async def test_the_preview_is_word_for_word_what_the_askers_are_sent(
    bot_with: Callable[..., PolicyBot],
) -> None:
    bot = bot_with(slack_policy_team=("U0REV",))
    slack = RecordingNotifier()
    bot.notifiers["slack"] = slack
    await ask(bot, CAFETERIA, "U1")
    (group,) = bot.review.queue()
    answer = "The cafeteria opens at 7 am.  \n\nIt closes at 3 pm."

    preview = await bot.preview_answer(REVIEWER, group.id, answer)
    empty = await bot.preview_answer(REVIEWER, group.id, "   ")
    outsider = await bot.preview_answer(SOMEONE, group.id, answer)
    assert bot.review.group(group.id).status == "open" and slack.sent == []  # nothing done

    await bot.resolve_group(REVIEWER, group.id, answer)
    ((_, sent),) = slack.sent
    assert preview.value == sent
    assert empty.value is None and empty.refusal == messages.EMPTY_ANSWER
    assert outsider.value is None and outsider.forbidden


async def test_bulk_dismiss_takes_each_group_through_the_dismiss_path(
    bot_with: Callable[..., PolicyBot], caplog: pytest.LogCaptureFixture
) -> None:
    bot = bot_with(slack_policy_team=("U0REV",))
    await ask(bot, LINKEDIN[0], "U1")
    await ask(bot, CAFETERIA, "U2")
    ids = [g.id for g in bot.review.queue()]

    with caplog.at_level(logging.WARNING, logger="policybot.security"):
        refused = await bot.dismiss_groups(SOMEONE, ids)
    assert [r.done for r in refused] == [False]
    assert len([r for r in caplog.records if "review bulk dismiss" in r.getMessage()]) == 1
    assert {g.status for g in bot.review.groups(None)} == {"open"}

    done = await bot.dismiss_groups(REVIEWER, [*ids, ids[0], 999_999])
    assert [r.done for r in done] == [True, True, False]
    assert done[2].text == messages.no_such_group(999_999)
    assert {g.status for g in bot.review.groups(None)} == {"dismissed"}
    for group_id in ids:
        assert [a.action for a in bot.review.actions(group_id)] == ["dismissed"]


async def test_each_activation_lists_what_its_recheck_found_by_section(
    engine_bot: PolicyBot,
) -> None:
    bot = engine_bot
    upload = bot.policies.upload("drones.md", DRONES_V1, uploaded_by="t", activate=True)
    assert upload.activation is not None
    question = await ask(bot, CAFETERIA, "U1")
    assert bot.storage.question(question).status == "open"
    bot.policies.upload("drones.md", DRONES_V2, uploaded_by="t", activate=True)

    shown = await bot.policy_documents(REVIEWER)
    assert shown.value is not None
    (drones,) = [d for d in shown.value if d.name == "drones"]
    assert drones.active is not None and drones.active.number == 2
    first, second = drones.history
    assert first.now_answered == ()
    ((found),) = second.now_answered
    assert found.question_ids == (question,)
    assert found.as_text() == "1 open question now answered by §2 Cafeteria"

    rolled = bot.rollback_document(ADMIN, "drones")
    refused = bot.rollback_document(REVIEWER, "drones")
    assert rolled.version is not None and rolled.version.number == 1
    assert refused.version is None and refused.text == messages.ADMIN_ONLY


async def test_the_policy_pages_are_refused_to_people_on_neither_list(
    bot: PolicyBot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="policybot.security"):
        shown = await bot.policy_documents(SOMEONE)
        changes = await bot.version_changes(SOMEONE, 1)
    assert shown.value is None and shown.forbidden and changes.forbidden
    assert len([r for r in caplog.records if "refused policy view" in r.getMessage()]) == 2
