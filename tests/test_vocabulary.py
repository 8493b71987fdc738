"""Chat pleasantries around a question are not part of it."""

from __future__ import annotations

import pytest

from bot.vocabulary import without_pleasantries


@pytest.mark.parametrize(
    ("asked", "question"),
    [
        (
            "hi team, sorry to bother you but I was wondering, can I post photos of my truck?",
            "can I post photos of my truck?",
        ),
        (
            "Hello! I had a question about something that came up today: can i tweet this",
            "can i tweet this",
        ),
        ("hey quick question - is linkedin ok", "is linkedin ok"),
        ("can I post a selfie? thanks!", "can I post a selfie?"),
        ("sorry if this is dumb but can i like a competitor post", "can i like a competitor post"),
        (
            "good morning all, hope you are well. do we have a rule on reddit?",
            "do we have a rule on reddit?",
        ),
        ("history of the hiring team", "history of the hiring team"),  # nothing to strip
        ("thanks", "thanks"),  # nothing would be left: unchanged
        ("Hi", "Hi"),
    ],
)
def test_pleasantries_around_a_question_are_left_out(asked: str, question: str) -> None:
    assert without_pleasantries(asked) == question
