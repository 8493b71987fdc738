"""The Adaptive Cards the Teams adapter renders from the neutral Answer."""

from __future__ import annotations

from typing import Any

from adapters.teams import cards as teams_cards
from bot.answering.outcome import Outcome
from bot.core import REACTIONS, PolicyBot
from bot.models import Answer, Citation, IncomingQuestion
from bot.notify import ReviewNotice
from tests.fakes.teams_harness import submit_data


def runs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "TextRun" else []
        return found + [run for value in node.values() for run in runs(value)]
    if isinstance(node, list):
        return [run for item in node for run in runs(item)]
    return []


def answer(
    *citations: Citation, outcome: Outcome = Outcome.ANSWERED, question_id: int | None = 7
) -> Answer:
    return Answer(
        question="q",
        outcome=outcome,
        lead="The policy addresses this in section 4.2 Confidential information.",
        citations=citations,
        confidence=0.8,
        question_id=question_id,
        policy_version="Social media policy v3",
    )


CLAUSE = Citation(
    clause_id=1,
    document="social-media",
    section="4.2",
    title="Confidential information",
    text="Never post *unreleased* figures or customer_names.",
    score=0.9,
    owner="Legal",
)


def test_answer_card_quotes_each_clause_literally_under_its_section() -> None:
    other = Citation(2, "social-media", "4.3", "Customers", "Ask before naming a customer.", 0.5)
    card_json = teams_cards.answer_card(answer(CLAUSE, other))
    assert card_json["type"] == "AdaptiveCard" and card_json["version"] == "1.4"
    texts = [run["text"] for run in runs(card_json["body"])]
    assert texts[0].startswith("The policy addresses this in section 4.2")
    assert texts.index("4.2 Confidential information") < texts.index(
        "“Never post *unreleased* figures or customer_names.”"
    )
    assert "4.3 Customers" in texts and "“Ask before naming a customer.”" in texts
    assert "Owner: Legal" in texts and "Policy: Social media policy v3" in texts
    # Policy text is never run through Markdown: only RichTextBlock/TextRun carry it.
    assert all(block["type"] != "TextBlock" for block in card_json["body"])


def test_answer_card_names_the_document_when_clauses_come_from_several() -> None:
    other = Citation(2, "email-policy", "1.1", "Scope", "Applies to all email.", 0.5)
    texts = [run["text"] for run in runs(teams_cards.answer_card(answer(CLAUSE, other)))]
    assert "social-media, 4.2 Confidential information" in texts
    assert "email-policy, 1.1 Scope" in texts


def test_answer_card_actions_carry_the_question_id() -> None:
    actions = teams_cards.answer_card(answer(CLAUSE))["actions"]
    assert [(a["type"], a["title"], a["data"]) for a in actions] == [
        ("Action.Submit", "Helpful", {"policybot": "helpful", "question_id": 7}),
        ("Action.Submit", "Not helpful", {"policybot": "not_helpful", "question_id": 7}),
        (
            "Action.Submit",
            "Ask the policy team",
            {"policybot": "ask_policy_team", "question_id": 7},
        ),
    ]


def test_unanswered_or_unlogged_answers_have_no_feedback_actions() -> None:
    assert "actions" not in teams_cards.answer_card(answer(outcome=Outcome.NOT_COVERED))
    assert "actions" not in teams_cards.answer_card(answer(CLAUSE, question_id=None))


async def test_group_card_shows_the_group_with_an_answer_box_and_never_an_asker(
    bot: PolicyBot,
) -> None:
    for n, text in enumerate(
        ["may I post on TikTok?", "can I make TikTok videos?", "is TikTok allowed for me?"]
    ):
        answer = await bot.ask(IncomingQuestion(text, platform="teams", asker=f"29:asker-{n}"))
        assert answer.question_id is not None
        bot.escalate(answer.question_id)
    (group,) = bot.review.queue()
    card = teams_cards.group_card(group)
    texts = [run["text"] for run in runs(card["body"])]
    assert texts[0].startswith("3 questions: “")
    facts = {
        f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]
    }
    assert facts["Group"] == f"#{group.id}"
    assert facts["Owner"] == (group.owner or "(unrouted: no section is close)")
    assert "asker wants the policy team" in facts["Why"]
    (box,) = [b for b in card["body"] if b["type"] == "Input.Text"]
    assert box["id"] == teams_cards.ANSWER_INPUT and box["isMultiline"] and box["isRequired"]
    answer_action, dismiss_action = card["actions"]
    assert answer_action["data"] == {"policybot": "answer_group", "group_id": group.id}
    assert dismiss_action["data"] == {"policybot": "dismiss_group", "group_id": group.id}
    assert dismiss_action["associatedInputs"] == "none"  # dismissing needs no answer
    assert "29:asker" not in str(card)


def test_review_heading_counts_and_says_when_the_list_is_cut() -> None:
    assert "empty" in teams_cards.review_heading(0, 0)
    assert teams_cards.review_heading(1, 1) == "1 open question group, busiest first."
    assert "Showing 10" in teams_cards.review_heading(14, 10)


def test_answer_card_names_the_document_by_its_title() -> None:
    titled = Citation(
        1,
        "social-media",
        "4.2",
        "Confidential information",
        "Never post figures.",
        0.9,
        document_title="Acme Social Media Policy",
    )
    texts = [run["text"] for run in runs(teams_cards.answer_card(answer(titled))["body"])]
    assert "— Acme Social Media Policy" in texts
    other = Citation(
        2,
        "email-policy",
        "1.1",
        "Scope",
        "Applies to all email.",
        0.5,
        document_title="Acme E-mail Policy",
    )
    texts = [run["text"] for run in runs(teams_cards.answer_card(answer(titled, other)))]
    assert "Acme Social Media Policy, 4.2 Confidential information" in texts
    assert "Acme E-mail Policy, 1.1 Scope" in texts


def test_upload_card_lists_changes_and_offers_activate_and_discard(bot: PolicyBot) -> None:
    (active,) = bot.storage.active_versions()
    policy = bot.settings.policies_dir / (active.source_name or "")
    text = policy.read_text(encoding="utf-8")
    edited = text.replace("before Marketing announces them", "before Legal announces them")
    edited += "\n### 20.5 Drones\n\nEmployees must not post drone footage of Brightwater depots.\n"
    result = bot.policies.upload(policy.name, edited.encode(), uploaded_by="pat")
    card = teams_cards.upload_card(result)
    texts = [run["text"] for run in runs(card["body"])]
    assert texts[0] == f"Read {result.version.clause_count} clauses from {policy.name}"
    assert "1 added, 0 removed, 1 changed" in " ".join(texts)
    assert "Added: 20.5 Drones" in texts
    assert any(t.startswith("Was: “") and "Marketing announces" in t for t in texts)
    assert any(t.startswith("Now: “") and "Legal announces" in t for t in texts)
    version_id = result.version.id
    assert submit_data(card) == {
        "Activate": {"policybot": "activate_version", "version_id": version_id},
        "Discard": {"policybot": "discard_version", "version_id": version_id},
        "Retire": {"policybot": "retire_document", "version_id": version_id},
    }
    assert card["actions"][2]["type"] == "Action.ShowCard"  # Retire is confirmed first
    # The same file again once it is active: nothing to activate or discard, only Retire.
    bot.policies.activate(version_id)
    again = bot.policies.upload(policy.name, edited.encode())
    assert not again.created and list(submit_data(teams_cards.upload_card(again))) == ["Retire"]


def test_upload_card_cuts_long_change_lists(bot: PolicyBot) -> None:
    (active,) = bot.storage.active_versions()
    sections = "".join(
        f"\n### 21.{n} Rule {n}\n\nEmployees must follow drone rule number {n} at every depot.\n"
        for n in range(1, teams_cards.CHANGES_LIMIT + 4)
    )
    text = (bot.settings.policies_dir / (active.source_name or "")).read_text(encoding="utf-8")
    result = bot.policies.upload(active.source_name or "", (text + sections).encode())
    texts = [run["text"] for run in runs(teams_cards.upload_card(result)["body"])]
    assert sum(t.startswith("Added: ") for t in texts) == teams_cards.CHANGES_LIMIT
    assert texts[-1].startswith("…and 3 more changes")


def test_digest_card_quotes_every_line_literally() -> None:
    text = "policybot weekly digest, x\n\nQuestions: 3 asked.\n\nTop open groups:\n  #1: 2 asked “*TikTok*”"
    card = teams_cards.digest_card(text)
    texts = [run["text"] for run in runs(card["body"])]
    assert texts == [
        "policybot weekly digest, x",
        "Questions: 3 asked.",
        "Top open groups:",
        "#1: 2 asked “*TikTok*”",
    ]


def test_llm_verdict_is_shown_above_the_summary() -> None:
    base = answer(CLAUSE)
    grounded = Answer(
        question=base.question,
        outcome=Outcome.ANSWERED,
        lead="In short (my summary, not policy text): only after the results are public.",
        citations=base.citations,
        confidence=base.confidence,
        question_id=base.question_id,
        verdict="depends",
        source="llm",
    )
    card = teams_cards.answer_card(grounded)
    assert [r["text"] for r in runs(card["body"][0])] == [grounded.headline]
    assert grounded.headline
    assert teams_cards.answer_summary(grounded).startswith(grounded.headline)


def test_the_answer_cards_buttons_are_the_cores_reactions() -> None:
    # The Teams adapter hands a button's name to PolicyBot.react as it is.
    assert set(teams_cards.ACTIONS) == set(REACTIONS)


def notice_facts(card: dict[str, Any]) -> dict[str, str]:
    return {
        f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]
    }


def test_review_notice_card_quotes_the_question_and_says_why() -> None:
    notice = ReviewNotice(
        question="may I post *draft* figures_q3?", question_id=12, reason="failed", group_id=4
    )
    card = teams_cards.review_notice_card(notice)
    texts = [run["text"] for run in runs(card["body"])]
    assert texts[:2] == ["Question for the policy team", "“may I post *draft* figures_q3?”"]
    assert notice_facts(card) == {
        "Why": teams_cards.REVIEW_REASON_LABELS["failed"],
        "Question": "#12",
        "Group": "#4",
    }
    assert not any(t.startswith("Asked by") for t in texts)
    # Its group's Answer and Dismiss; the question id marks presses as this card's.
    answer_action, dismiss_action = card["actions"]
    assert answer_action["data"] == {"policybot": "answer_group", "group_id": 4, "question_id": 12}
    assert dismiss_action["data"] == {
        "policybot": "dismiss_group",
        "group_id": 4,
        "question_id": 12,
    }
    assert dismiss_action["associatedInputs"] == "none"
    (box,) = [b for b in card["body"] if b["type"] == "Input.Text"]
    assert box["id"] == teams_cards.ANSWER_INPUT
    assert teams_cards.review_notice_summary(notice).endswith("may I post *draft* figures_q3?")


def test_review_notice_card_names_the_asker_only_when_given_and_numbers_only_logged_ones() -> None:
    notice = ReviewNotice(question="q " * 1500, question_id=None, reason="x", asker="29:a_b")
    card = teams_cards.review_notice_card(notice)
    texts = [run["text"] for run in runs(card["body"])]
    assert "Asked by 29:a_b" in texts  # literal, so the "_" is not read as Markdown
    assert notice_facts(card) == {"Why": "x"}  # no number before the log has taken it
    assert "actions" not in card and "Input.Text" not in str(card)  # no group to answer yet
    assert len(texts[1]) <= teams_cards.NOTICE_CHARS + 2 and texts[1].endswith("…”")


def test_review_notice_card_names_the_asker_by_name_before_id() -> None:
    notice = ReviewNotice("q", 1, "x", asker="29:alice", asker_name="Alice *Example*")
    texts = [run["text"] for run in runs(teams_cards.review_notice_card(notice)["body"])]
    assert "Asked by Alice *Example*" in texts and "29:alice" not in str(texts)


async def test_a_settled_review_notice_card_says_how_and_has_nothing_to_press(
    bot: PolicyBot,
) -> None:
    asked = await bot.ask(IncomingQuestion("may I post on TikTok?", "teams", "29:a"))
    assert asked.question_id is not None
    bot.escalate(asked.question_id)
    notice = bot.review_notice(asked.question_id)
    assert notice.group_id is not None and notice.reason == "ask_policy_team"
    assert notice.asker == "" and notice.asker_name == ""  # POLICYBOT_SHOW_ASKERS is off

    answered = bot.review.answer(notice.group_id, "Only from the brand account.", by="Pat")
    card = teams_cards.review_notice_card(notice, settled=answered)
    texts = [run["text"] for run in runs(card["body"])]
    assert f"Answered by Pat (group #{answered.id}, 1 question)" in texts
    assert "Only from the brand account." in texts
    assert "actions" not in card and "Input.Text" not in str(card)

    dismissed = bot.dismiss_group(notice.group_id, by="Pat")
    texts = [run["text"] for run in runs(teams_cards.review_notice_card(notice, dismissed)["body"])]
    assert f"Dismissed by Pat (group #{dismissed.id}); nobody is told" in texts


def test_review_notice_card_says_when_the_bot_was_unsure_of_its_answer() -> None:
    notice = ReviewNotice(question="may I post a teaser?", question_id=3, reason="uncertain")
    why = notice_facts(teams_cards.review_notice_card(notice))["Why"]
    assert why != "uncertain" and "unsure" in why
