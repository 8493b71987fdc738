"""Block Kit rendering: escaping, cutting at sensible places, Slack's limits."""

from __future__ import annotations

import dataclasses
import json

from adapters.slack import blocks as render
from bot import messages
from bot.answering.checking import Finding, PostCheck
from bot.answering.outcome import Outcome
from bot.models import Answer, Citation
from bot.review.grouping import TermProfile
from bot.review.groups import Group


def citation(n: int, text: str) -> Citation:
    return Citation(n, "policy", f"{n}.1", f"Title <{n}>", text, 0.9)


def answer(citations: list[Citation], lead: str = "The policy addresses this.") -> Answer:
    return Answer(
        "q?", Outcome.ANSWERED, lead, tuple(citations), 0.9, question_id=7, policy_version="p v1"
    )


def test_escape_neutralises_mentions_links_and_broadcasts() -> None:
    assert render.escape("<!channel> & <@U1> <https://a|b>") == (
        "&lt;!channel&gt; &amp; &lt;@U1&gt; &lt;https://a|b&gt;"
    )


def test_cut_keeps_whole_sentences_then_whole_words() -> None:
    text = "First sentence here. Second sentence is longer than the first one. Third."
    assert render.cut(text, 30) == "First sentence here.…"
    assert render.cut(text, 50) == "First sentence here. Second sentence is longer…"
    assert render.cut(text, 200) == text
    long_sentence = "word " * 100
    out = render.cut(long_sentence, 52)
    assert len(out) <= 52 and out.endswith("word…")


def test_escaping_never_pushes_text_over_the_limit() -> None:
    out = render.escaped_cut("<>&" * 2000, 3000)
    assert len(out) <= 3000 and "<" not in out


def test_answer_has_lead_quotes_version_and_buttons() -> None:
    blocks = render.answer_blocks(answer([citation(3, "Do not share <secret> plans.")]))
    text = json.dumps(blocks)
    assert blocks[0]["text"]["text"] == "The policy addresses this."
    assert "*3.1 Title &lt;3&gt;*\\n>Do not share &lt;secret&gt; plans." in text
    feedback, actions = blocks[-2:]
    assert feedback["type"] == "context_actions" and feedback["block_id"] == "policybot_feedback_7"
    (buttons,) = feedback["elements"]
    assert buttons["type"] == "feedback_buttons" and buttons["action_id"] == render.ACTION_FEEDBACK
    assert buttons["positive_button"]["value"] == render.FEEDBACK_POSITIVE
    assert buttons["negative_button"]["value"] == render.FEEDBACK_NEGATIVE
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        (render.ACTION_ESCALATE, "7")
    ]


def test_huge_answers_respect_slack_limits() -> None:
    citations = [citation(i, "A very long clause sentence. " * 300) for i in range(80)]
    blocks = render.answer_blocks(answer(citations, lead="Lead. " * 1000), shareable=True)
    assert len(blocks) <= render.MAX_MESSAGE_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= render.MAX_SECTION_TEXT
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= render.MAX_BUTTON_TEXT
    quoted = blocks[1]["text"]["text"]
    assert quoted.endswith("sentence.…")  # cut after a whole sentence
    assert len(render.answer_text(answer(citations))) <= render.MAX_FALLBACK_TEXT


def test_unanswered_has_no_feedback_buttons_but_says_where_it_went() -> None:
    unanswered = Answer(
        "q?", Outcome.NOT_COVERED, "The policy does not cover this.", (), 0.1, question_id=3
    )
    blocks = render.answer_blocks(unanswered)
    assert [b["type"] for b in blocks] == ["section", "context"]
    assert "review list" in json.dumps(blocks)


def test_check_blocks_show_the_passages_that_raised_each_clause() -> None:
    check = PostCheck("text", (Finding(citation(3, "Keep plans private."), ("our <plan>",)),))
    text = json.dumps(render.check_blocks(check))
    assert "3.1 Title" in text and "our &lt;plan&gt;" in text


def group(n: int, label: str = "", owner: str = "Human Resources") -> Group:
    return Group(
        id=n,
        status="open",
        count=n + 1,
        first_seen="2024-01-01T10:00:00",
        last_seen="2024-01-02T10:00:00",
        sample=label or f"question {n}?",
        document="policy",
        section="4.2",
        section_title="Personal use",
        owner=owner,
        answer="",
        answered_at="",
        answered_by="",
        created_at="2024-01-01T10:00:00",
        closed_at="",
        reasons=("not_covered",),
        profile=TermProfile(0, {}, {}),
    )


def test_home_lists_at_most_slack_home_limit() -> None:
    view = render.home_view([], [group(i) for i in range(300)])
    assert view["type"] == "home" and len(view["blocks"]) <= render.MAX_HOME_BLOCKS
    assert "more groups" in json.dumps(view["blocks"][-1])
    # Every group listed comes with its own Answer and Dismiss buttons.
    actions = [b for b in view["blocks"] if b["type"] == "actions"]
    assert actions and all(
        [e["action_id"] for e in b["elements"]]
        == [render.ACTION_ANSWER_GROUP, render.ACTION_DISMISS_GROUP]
        for b in actions
    )


def test_home_group_shows_count_owner_section_and_escaped_sample() -> None:
    view = render.home_view([], [group(2, label="can I post <!channel> memes?", owner="PR")])
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "3 asked" in text and "PR" in text and "4.2 Personal use" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text


def test_answer_modal_carries_the_group_and_a_bounded_multiline_input() -> None:
    modal = render.answer_modal(group(5), '{"group": 5}')
    assert modal["type"] == "modal" and modal["callback_id"] == render.ANSWER_VIEW
    assert modal["private_metadata"] == '{"group": 5}'
    assert all(len(modal[k]["text"]) <= 24 for k in ("title", "submit", "close"))
    (field,) = [b for b in modal["blocks"] if b["type"] == "input"]
    assert field["block_id"] == render.ANSWER_BLOCK
    element = field["element"]
    assert element["multiline"] and element["action_id"] == render.ANSWER_INPUT
    assert element["max_length"] == 4000 and "initial_value" not in element


def test_an_uncertain_answer_is_marked_above_its_clauses_and_in_its_text() -> None:
    unsure = answer([citation(1, "Keep plans private.")], lead="I'm not sure the policy answers.")
    unsure = dataclasses.replace(unsure, outcome=Outcome.UNCERTAIN)
    blocks = render.answer_blocks(unsure)
    assert blocks[0]["type"] == "context" and messages.UNCERTAIN_MARK in json.dumps(blocks[0])
    assert "Keep plans private." in json.dumps(blocks)
    # Rated with Slack's feedback buttons; no other action (the team has the question).
    assert [b["type"] for b in blocks if "actions" in b["type"]] == ["context_actions"]
    assert render.answer_text(unsure).startswith(messages.UNCERTAIN_MARK)
    confident = render.answer_blocks(answer([citation(1, "Keep plans private.")]))
    assert messages.UNCERTAIN_MARK not in json.dumps(confident)
    why = render.review_blocks("may I?", 3, "uncertain")[0]["text"]["text"]
    assert "not sure" in why
