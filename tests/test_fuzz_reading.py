"""Random and malformed policy text: reading never crashes and every clause stays citable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import PolicyError, QuestionError
from bot.reading.clauses import MAX_CHARS
from bot.reading.ingest import read_policy
from bot.text import normalize_question

_markdown_line = st.one_of(
    st.text(max_size=200),
    st.builds(lambda d, t: "#" * d + " " + t, st.integers(1, 7), st.text(max_size=60)),
    st.builds(lambda n, t: f"{n}. {t}", st.integers(0, 30), st.text(max_size=300)),
    st.builds(lambda t: f"- {t}", st.text(max_size=700)),
    st.builds(lambda t: f"| {t} | {t} |", st.text(max_size=40)),
    st.sampled_from(["", "---", "```", "Owner: Legal", "Never share:", "<!-- x", "-->", "===="]),
    st.builds(lambda w: " ".join(["word"] * w), st.integers(0, 400)),
)
_document = st.lists(_markdown_line, max_size=60).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(_document, st.sampled_from(["p.md", "p.txt"]))
def test_any_text_reads_into_bounded_clauses_or_a_clear_error(text: str, filename: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    try:
        policy = read_policy(filename, data)
    except PolicyError as error:
        assert str(error)
        return
    line_count = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for clause in policy.clauses:
        assert clause.text.strip()
        assert len(clause.text) <= MAX_CHARS
        assert 0 <= clause.line_start <= clause.line_end <= line_count + 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_the_reader(data: bytes) -> None:
    try:
        read_policy("random.txt", data)
    except PolicyError as error:
        assert str(error)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_questions_are_normalized_or_refused_with_a_message(text: str) -> None:
    try:
        question = normalize_question(text, 2000)
    except QuestionError as error:
        assert str(error)
        return
    assert question and len(question) <= 2000
    assert not any(ord(c) < 32 for c in question)


#: Every code point, lone surrogates included: JSON from Slack or Teams can carry "\ud800".
ANY_CHARACTER = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ANY_CHARACTER, max_size=300))
def test_normalized_questions_are_always_encodable(text: str) -> None:
    try:
        question = normalize_question(text, 2000)
    except QuestionError:
        return
    question.encode("utf-8")  # what SQLite and the spool file need


def test_a_lone_surrogate_becomes_a_replacement_character_and_a_pair_its_character() -> None:
    assert normalize_question("x \ud83d\ude00 \udc00 \ud800", 2000) == "x \U0001f600 \ufffd \ufffd"
