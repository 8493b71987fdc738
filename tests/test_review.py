from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.access import may_review
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor, IncomingQuestion
from bot.review.grouping import JOIN_THRESHOLD, TermProfile, word_similarity
from bot.review.groups import ReviewError, owner_matches
from bot.review.queue import parse_age
from tests.fakes.outbound import RecordingNotifier

# Realistic paraphrase sets: each is one topic the policy does not answer, worded differently.
PARAPHRASES = {
    "linkedin premium": [
        "can I expense LinkedIn Premium?",
        "will the company reimburse my LinkedIn Premium subscription",
        "is LinkedIn premium something I can claim back on expenses",
    ],
    "tiktok uniform": [
        "can I post dance videos on TikTok wearing my Brightwater uniform",
        "is it ok to make tiktoks in my work uniform",
        "can I film a TikTok in my Brightwater uniform",
    ],
    "wfh": [
        "how many days a week can I work from home",
        "what's the rule on working remotely, how many days?",
    ],
    "phone bill": [
        "can I expense my phone bill since I use it for work",
        "does the company pay for my mobile phone bill",
    ],
}


async def ask(bot: PolicyBot, text: str, user: str = "", platform: str = "slack") -> int:
    answer = await bot.ask(
        IncomingQuestion(text, platform=platform, asker=user, conversation=f"D-{user}")
    )
    assert answer.question_id is not None
    if answer.answered and answer.source != "reviewed":
        bot.escalate(answer.question_id)  # an answered one reaches the list by "Ask the team"
    return answer.question_id


def members_by_group(bot: PolicyBot) -> list[set[str]]:
    return [{m.text for m in bot.review.members(g.id)} for g in bot.review.groups("open")]


async def test_paraphrases_group_by_topic_and_near_misses_stay_apart(bot: PolicyBot) -> None:
    # Interleaved, as questions really arrive: grouping is incremental.
    longest = max(len(v) for v in PARAPHRASES.values())
    for i in range(longest):
        for texts in PARAPHRASES.values():
            if i < len(texts):
                await ask(bot, texts[i], user=f"U{i}")
    groups = members_by_group(bot)
    for topic, texts in PARAPHRASES.items():
        assert set(texts) in groups, topic
    assert len(groups) == len(PARAPHRASES)


async def test_questions_sharing_a_word_but_not_a_topic_are_not_grouped(bot: PolicyBot) -> None:
    near_misses = [
        "can I expense LinkedIn Premium?",
        "can I expense my phone bill since I use it for work",
        "how many sick days do we get",
        "how many vacation days can I carry over to next year",
        "can I bring my dog to the office",
        "can I bring my kids to the office",
        "when is payday this month",
        "will the company pay for my conference ticket",
        "can I use ChatGPT to write customer emails",
        "can I use my personal phone for work email",
    ]
    for text in near_misses:
        await ask(bot, text, user="U1")
    groups = members_by_group(bot)
    assert groups and all(len(group) == 1 for group in groups)


def test_similarity_is_symmetric_and_weighs_rare_words(bot: PolicyBot) -> None:
    a = TermProfile.of("can I expense LinkedIn Premium?")
    b = TermProfile.of("will the company reimburse my LinkedIn Premium subscription")
    c = TermProfile.of("can I expense my phone bill")
    idf = bot.review._idf(bot.active_policy().version_ids, a, b, c)
    assert word_similarity(a, b, idf) == pytest.approx(word_similarity(b, a, idf))
    assert word_similarity(a, b, idf) > JOIN_THRESHOLD
    assert word_similarity(a, c, idf) < JOIN_THRESHOLD
    # A group's profile is the sum of its members: merging is order-independent.
    assert a.merged(b).as_json() == b.merged(a).as_json()
    assert TermProfile.from_json(a.merged(b).as_json()) == a.merged(b)


async def test_group_counts_first_and_last_seen_and_sample(bot: PolicyBot) -> None:
    ids = [await ask(bot, t, user=f"U{n}") for n, t in enumerate(PARAPHRASES["linkedin premium"])]
    bot.storage.update_question(ids[0], asked_at="2025-01-02T09:00:00+00:00")
    bot.storage.update_question(ids[1], asked_at="2025-01-05T12:00:00+00:00")
    bot.storage.update_question(ids[2], asked_at="2025-01-09T17:30:00+00:00")
    (group,) = bot.review.queue()
    assert group.count == 3 and group.sample == PARAPHRASES["linkedin premium"][0]
    assert group.first_seen == "2025-01-02T09:00:00+00:00"
    assert group.last_seen == "2025-01-09T17:30:00+00:00"


async def test_groups_are_routed_to_the_owner_of_their_closest_section(bot: PolicyBot) -> None:
    # Not-helpful answers about leaking the roadmap sit closest to 3.3 (Legal); escalated
    # questions about posting job ads sit closest to 16.x (Human Resources).
    for text in [
        "may I share our unreleased roadmap on LinkedIn?",
        "can I post our internal product roadmap on twitter",
    ]:
        answer = await bot.ask(IncomingQuestion(text, platform="teams", asker="A"))
        assert answer.question_id and answer.answered
        bot.feedback(answer.question_id, helpful=False)
    for text in [
        "can I share our job openings on my personal linkedin",
        "am I allowed to post our job vacancies on my own LinkedIn profile",
    ]:
        await ask(bot, text, user="B")
    routed = {g.owner: (g.count, g.section) for g in bot.review.groups("open")}
    assert routed["Legal"] == (2, "3.3")
    assert routed["Human Resources"][0] == 2
    assert routed["Human Resources"][1].startswith("16.")
    legal = bot.review.queue(owner="legal")
    assert [g.owner for g in legal] == ["Legal"]
    assert [g.owner for g in bot.review.queue(owner="HR")] == ["Human Resources"]
    assert bot.review.queue(owner="Marketing") == []


def test_owner_filter_takes_names_initials_and_unrouted() -> None:
    assert owner_matches("hr", "Human Resources")
    assert owner_matches("Public Relations", "Public Relations")
    assert not owner_matches("PR", "Human Resources")
    assert owner_matches("unrouted", "") and not owner_matches("unrouted", "Legal")


async def test_resolve_sends_every_asker_the_answer_and_forgets_their_address(
    bot: PolicyBot,
) -> None:
    slack, teams = RecordingNotifier(), RecordingNotifier()
    bot.notifiers.update({"slack": slack, "teams": teams})
    texts = PARAPHRASES["linkedin premium"]
    q1 = await ask(bot, texts[0], user="U1", platform="slack")
    q2 = await ask(bot, texts[1], user="U2", platform="slack")
    q3 = await ask(bot, texts[2], user="29:teams-user", platform="teams")
    (group,) = bot.review.groups("open")

    answer = "LinkedIn Premium is reimbursed for recruiters only; claim it under Subscriptions."
    report = await bot.answer_group(group.id, answer, by="policy-team")

    assert (report.sent, report.pending) == (3, 0)
    assert [(a.user_id, a.conversation) for a, _ in slack.sent] == [("U1", "D-U1"), ("U2", "D-U2")]
    assert [a.user_id for a, _ in teams.sent] == ["29:teams-user"]
    for (address, text), question in zip(
        [*slack.sent, *teams.sent], [texts[0], texts[1], texts[2]], strict=True
    ):
        assert answer in text and question in text and "reviewed answer" in text
        assert address.platform in {"slack", "teams"}
    for qid in (q1, q2, q3):
        assert bot.storage.reply_address(qid) is None
        assert bot.storage.question(qid).status == "resolved"
    assert bot.review.group(group.id).status == "answered"
    # Delivered once: a retry sends nothing again.
    again = await bot.deliver_answers()
    assert (again.sent, again.pending) == (0, 0) and len(slack.sent) == 2


async def test_undeliverable_answers_stay_for_retry_and_unknown_platforms_wait(
    bot: PolicyBot,
) -> None:
    slack = RecordingNotifier(refuse={"U-gone"})
    bot.notifiers["slack"] = slack
    texts = PARAPHRASES["linkedin premium"]
    ok = await ask(bot, texts[0], user="U-ok")
    gone = await ask(bot, texts[1], user="U-gone")
    waiting = await ask(bot, texts[2], user="29:x", platform="teams")
    (group,) = bot.review.groups("open")

    report = await bot.answer_group(group.id, "LinkedIn Premium is reimbursed for recruiters.")

    assert (report.sent, report.failed, report.waiting) == (1, 1, {"teams": 1})
    assert "1 failed" in report.describe() and "teams" in report.describe()
    assert bot.storage.reply_address(ok) is None
    assert bot.storage.reply_address(gone) is not None
    assert bot.storage.reply_address(waiting) is not None
    row = bot.storage.db.execute(
        "SELECT attempts, last_error FROM reply_addresses WHERE question_id = ?", [gone]
    ).fetchone()
    assert row[0] == 1 and "user_not_found" in row[1]

    # The platform recovers and the Teams adapter registers: the retry reaches both.
    slack.refuse.clear()
    teams = RecordingNotifier()
    bot.notifiers["teams"] = teams
    retry = await bot.deliver_answers()
    assert (retry.sent, retry.pending) == (2, 0)
    assert [a.user_id for a, _ in teams.sent] == ["29:x"]
    assert bot.storage.reply_address(gone) is None


async def test_retention_period_ends_waiting_for_delivery(bot: PolicyBot) -> None:
    q = await ask(bot, "where can I park at the HQ office", user="U1", platform="teams")
    bot.storage.db.execute(
        "UPDATE reply_addresses SET created_at = ? WHERE question_id = ?",
        [(datetime.now(UTC) - timedelta(days=91)).isoformat(timespec="seconds"), q],
    )
    (group,) = bot.review.groups("open")
    report = await bot.answer_group(group.id, "Staff parking is at the north gate.")
    assert report.pending == 0 and bot.storage.reply_address(q) is None


async def test_a_later_similar_question_gets_the_reviewed_answer(bot: PolicyBot) -> None:
    for n, text in enumerate(PARAPHRASES["linkedin premium"]):
        await ask(bot, text, user=f"U{n}")
    (group,) = bot.review.groups("open")
    reviewed = "LinkedIn Premium is reimbursed for recruiters only."
    await bot.answer_group(group.id, reviewed)

    later = await bot.ask(
        IncomingQuestion("Does Brightwater pay back a LinkedIn premium membership?", asker="U9")
    )
    assert later.answered and later.source == "reviewed"
    assert reviewed in later.lead and "reviewed answer" in later.lead
    assert datetime.now(UTC).date().isoformat() in later.lead
    row = bot.storage.question(later.question_id or 0)
    assert row.answer_source == "reviewed" and row.group_id == group.id
    assert row.status == "answered"
    assert bot.review.groups("open") == []

    # A different uncovered question still gets "not covered", and the policy still answers
    # what it covers.
    other = await bot.ask(IncomingQuestion("can I bring my dog to the office"))
    assert not other.answered and other.source == "extractive"
    covered = await bot.ask(IncomingQuestion("may I share our unreleased roadmap on LinkedIn?"))
    assert covered.answered and covered.source == "extractive"
    assert covered.citations[0].section == "3.3"


async def test_marking_a_reviewed_answer_not_helpful_reopens_the_topic(bot: PolicyBot) -> None:
    await ask(bot, PARAPHRASES["linkedin premium"][0], user="U1")
    (group,) = bot.review.groups("open")
    await bot.answer_group(group.id, "For recruiters only.")
    later = await bot.ask(IncomingQuestion(PARAPHRASES["linkedin premium"][1], asker="U2"))
    assert later.source == "reviewed" and later.question_id
    bot.feedback(later.question_id, helpful=False)
    (reopened,) = bot.review.groups("open")
    assert reopened.id != group.id and reopened.count == 1


async def test_dismiss_closes_the_group_and_deletes_reply_addresses(bot: PolicyBot) -> None:
    q = await ask(bot, "what time does the cafeteria close", user="U1")
    (group,) = bot.review.groups("open")
    dismissed = bot.dismiss_group(group.id, by="hr-lead")
    assert dismissed.status == "dismissed" and dismissed.answered_by == "hr-lead"
    assert bot.storage.question(q).status == "dismissed"
    assert bot.storage.reply_address(q) is None
    # A new question on the topic starts a fresh open group rather than joining the closed one.
    await ask(bot, "when does the canteen shut?", user="U2")
    (fresh,) = bot.review.groups("open")
    assert fresh.id != group.id


async def test_escalating_twice_does_not_count_a_question_twice(bot: PolicyBot) -> None:
    answer = await bot.ask(IncomingQuestion("can I friend my boss on facebook?", asker="U1"))
    assert answer.question_id
    bot.escalate(answer.question_id)
    bot.escalate(answer.question_id)
    (group,) = bot.review.groups("open")
    assert group.count == 1 and group.profile.size == 1


async def test_review_actions_refuse_bad_input_and_lose_nothing(bot: PolicyBot) -> None:
    await ask(bot, "can I bring my dog to the office", user="U1")
    (group,) = bot.review.groups("open")
    with pytest.raises(ReviewError, match="empty"):
        await bot.answer_group(group.id, "   \n ")
    with pytest.raises(ReviewError, match="characters long"):
        await bot.answer_group(group.id, "x" * 5000)
    with pytest.raises(ReviewError, match="no question group 999"):
        await bot.answer_group(999, "an answer")
    with pytest.raises(ReviewError, match="no question group 999"):
        bot.dismiss_group(999)
    assert bot.review.group(group.id).status == "open"
    assert bot.storage.reply_address(bot.review.members(group.id)[0].id) is not None


async def test_the_log_keeps_pseudonyms_and_names_apart(bot: PolicyBot) -> None:
    answer = await bot.ask(
        IncomingQuestion(
            "can I bring my dog to the office",
            platform="slack",
            asker="U123",
            asker_name="Dana Smith",
        )
    )
    qid = answer.question_id or 0
    row = bot.storage.question(qid)
    assert row.asker.startswith("asker-") and "U123" not in str(row)
    assert "Dana" not in str(row)
    assert bot.storage.asker_names([qid]) == {qid: "Dana Smith"}
    assert bot.storage.reply_address(qid) == {
        "platform": "slack",
        "user_id": "U123",
        "conversation": "",
    }
    # Both expire with the retention period.
    later = (datetime.now(UTC) + timedelta(days=91)).isoformat(timespec="seconds")
    assert bot.storage.expire_contacts(later) == 1
    assert bot.storage.asker_names([qid]) == {} and bot.storage.reply_address(qid) is None


async def test_purge_deletes_old_questions_but_keeps_reviewed_answers(bot: PolicyBot) -> None:
    premium = PARAPHRASES["linkedin premium"][:2]
    old_ids = [await ask(bot, t, user=f"U{n}") for n, t in enumerate(premium)]
    await ask(bot, "what time does the cafeteria close", user="U7")
    (premium_group,) = [g for g in bot.review.groups("open") if "LinkedIn" in g.sample]
    await bot.answer_group(premium_group.id, "For recruiters only.")
    stale = (datetime.now(UTC) - timedelta(days=200)).isoformat(timespec="seconds")
    for qid in old_ids:
        bot.storage.update_question(qid, asked_at=stale)
    old_cafeteria = await ask(bot, "when is the staff canteen open on saturdays", user="U8")
    bot.storage.update_question(old_cafeteria, asked_at=stale)

    cutoff = (datetime.now(UTC) - parse_age("180d")).isoformat(timespec="seconds")
    assert bot.storage.purge_questions(cutoff, dry_run=True)["questions"] == 3
    counts = bot.storage.purge_questions(cutoff)
    assert counts["questions"] == 3
    remaining = {q.text for q in bot.storage.questions()}
    assert remaining == {"what time does the cafeteria close"}
    # The answered group keeps teaching the bot with no questions left in it.
    assert bot.review.group(premium_group.id).count == 0
    later = await bot.ask(IncomingQuestion("is LinkedIn premium something I can expense"))
    assert later.source == "reviewed"


def test_parse_age() -> None:
    assert parse_age("180d") == timedelta(days=180)
    assert parse_age("2w") == timedelta(days=14)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("30") == timedelta(days=30)
    for bad in ("", "soon", "-5d", "0d"):
        with pytest.raises(ReviewError):
            parse_age(bad)


def test_retention_and_digest_settings_come_from_the_environment() -> None:
    from bot.config import ConfigError, Settings

    settings = Settings.from_env(
        {
            "POLICYBOT_RETENTION_DAYS": "30",
            "POLICYBOT_DIGEST_SLACK_CHANNEL": "C123",
            "POLICYBOT_DIGEST_TEAMS_CONVERSATION": "19:abc@thread.tacv2",
            "POLICYBOT_SHOW_ASKERS": "1",
        }
    )
    assert settings.retention_days == 30 and settings.show_askers
    assert settings.digest_slack_channel == "C123"
    assert settings.digest_teams_conversation == "19:abc@thread.tacv2"
    with pytest.raises(ConfigError, match="RETENTION"):
        Settings.from_env({"POLICYBOT_RETENTION_DAYS": "0"})


def test_rarity_is_counted_in_the_active_versions_only(reworded_bot: PolicyBot) -> None:
    """A word only a retired version used weighs as much as one the policy never used."""
    review = reworded_bot.review
    phone, zebra = TermProfile.of("phone"), TermProfile.of("zebra")
    idf = review._idf(reworded_bot.active_policy().version_ids, phone, zebra)
    assert idf["phone"] == idf["zebra"]
    reworded_bot.policies.rollback("devices")
    idf = review._idf(reworded_bot.active_policy().version_ids, phone, zebra)
    assert idf["phone"] < idf["zebra"]


async def test_may_review_is_the_team_list_or_the_platforms_group_asked_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked: list[str] = []

    async def in_group() -> bool:
        asked.append("group")
        return True

    teams = Settings(slack_policy_team=("UTEAM",), teams_policy_team=("aad-pat", ""))
    assert await may_review(Actor("slack", "UTEAM"), teams, action="review", in_team_group=in_group)
    assert asked == []  # listed: the platform is not asked
    assert await may_review(Actor("slack", "UGROUP"), teams, in_team_group=in_group)
    assert asked == ["group"]
    assert not await may_review(Actor("teams", ""), teams, action="review")  # no id, no entry
    assert not await may_review(Actor("teams", "aad-alice"), teams, action="review dismiss")
    # Each platform's own list: a Slack member's id sent from Teams counts for nothing there.
    assert not await may_review(Actor("teams", "UTEAM"), teams, action="review")
    assert not await may_review(Actor("slack", "aad-pat"), teams)
    refusals = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
    assert len(refusals) == 3
    assert "refused review dismiss: platform=teams who=aad-alice" in refusals[1]
