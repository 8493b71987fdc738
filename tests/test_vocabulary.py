"""Chat pleasantries around a question are not part of it; the word lists agree with each other."""

from __future__ import annotations

import pytest

from bot.retrieval.vocabulary import SHIPPED, read_vocabulary, without_pleasantries


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


def test_shipped_word_lists_neither_contradict_nor_repeat_themselves() -> None:
    assert SHIPPED.problems() == []


def test_each_kind_of_contradiction_and_repeat_is_found() -> None:
    vocabulary = read_vocabulary(
        """
        stopwords = ["like", "own", "sure", "the", "the", "pet"]
        generic_question_words = ["days", "days", "sure"]
        topic_synonyms = [["dog", "dog", "puppy"], ["cat", "pet"], ["dog", "hound"]]
        [expansions]
        like = ["endorse"]
        personal = ["private", "own", "private", "E-mail"]
        """
    )
    assert vocabulary.problems() == [
        "stopwords: 'the' is listed twice",
        "generic_question_words: 'days' is listed twice",
        "expansions.personal: 'private' is listed twice",
        "expansions.personal: 'E-mail' is not one lower-case word",
        "topic_synonyms[0]: 'dog' is listed twice",
        "topic_synonyms: 'dog' is in more than one group",
        "expansions: 'like' is a stopword, so its expansion never fires",
        "expansions.personal: 'own' is a stopword",
        "generic_question_words: 'sure' is a stopword, so grouping never sees it",
        "topic_synonyms: 'pet' is a stopword, so grouping never sees it",
    ]


def test_an_everyday_word_expanded_twice_is_refused_when_read() -> None:
    # Python's dict literal kept the last of two equal keys silently; TOML refuses them.
    with pytest.raises(ValueError, match="line 3"):
        read_vocabulary('[expansions]\ntweet = ["post"]\ntweet = ["share"]\n')


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('stopwords = "a b"', "stopwords"),
        ("expansions = [1]", "expansions"),
        ("[expansions]\ntweet = [1]", "expansions.tweet"),
        ('topic_synonyms = ["dog"]', r"topic_synonyms\[0\]"),
    ],
)
def test_a_list_of_the_wrong_shape_is_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        read_vocabulary(text)
