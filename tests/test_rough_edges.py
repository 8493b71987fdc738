"""The rough edges a new admin hit: console commands, ratings, listing limits, the digest's
report, numeric settings, console deliveries, the Teams secret, CLI wording, oversized files."""

from __future__ import annotations

import io

from adapters.console import chat
from bot import messages
from bot.core import PolicyBot
from bot.models import Actor, IncomingQuestion

COVERED = "can I post pictures from the team offsite on instagram?"
NOT_COVERED = "what time does the cafeteria open?"


class Posts:
    """A review channel that keeps what it was given."""

    def __init__(self) -> None:
        self.notices: list[object] = []

    async def post(self, notice: object) -> None:
        self.notices.append(notice)


async def test_an_unknown_console_command_gets_the_help_and_is_not_asked(bot: PolicyBot) -> None:
    stdout = io.StringIO()
    await chat(bot, io.StringIO("!foo\n!HELPFULL please\n!quit\n"), stdout)
    out = stdout.getvalue()
    assert out.count(messages.CONSOLE_HELP) == 3  # on opening, then once per unknown command
    assert "!foo" in out and "!HELPFULL" in out
    assert bot.storage.questions() == []  # neither went on the log or the review list


async def test_a_not_covered_reply_takes_no_rating_and_a_rating_counts_once(
    bot: PolicyBot,
) -> None:
    channel = Posts()
    bot.review_posters["console"] = channel
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    asker = Actor("console", "someone")
    uncovered = await bot.ask(IncomingQuestion(NOT_COVERED, platform="console"))
    assert uncovered.question_id is not None and not uncovered.answered
    before = bot.storage.question(uncovered.question_id)
    for rating in ("helpful", "not_helpful"):
        assert not await bot.react_to_answer(asker, uncovered.question_id, rating, tell)
    assert told == [messages.NOTHING_TO_RATE] * 2 and channel.notices == []
    assert bot.storage.question(uncovered.question_id)["feedback"] == before["feedback"]

    told.clear()
    answer = await bot.ask(IncomingQuestion(COVERED, platform="console"))
    assert answer.question_id is not None and answer.answered
    for _ in range(3):
        await bot.react_to_answer(asker, answer.question_id, "not_helpful", tell)
    assert told == [
        messages.REACTION_NOTES["not_helpful"],
        messages.ALREADY_NOTED["not_helpful"],
        messages.ALREADY_NOTED["not_helpful"],
    ]
    assert len(channel.notices) == 1  # the review channel is told once
    assert bot.react(answer.question_id, "not_helpful") is None  # the adapters' path as well
    # Changing one's mind is a new reaction, taken.
    told.clear()
    assert await bot.react_to_answer(asker, answer.question_id, "helpful", tell)
    assert told == [messages.REACTION_NOTES["helpful"]]


async def test_a_reviewed_answer_reaches_a_console_asker_when_their_chat_opens(
    bot: PolicyBot,
) -> None:
    first = io.StringIO()
    await chat(bot, io.StringIO(NOT_COVERED + "\n!quit\n"), first, asker="alex")
    (row,) = bot.storage.questions()
    assert row["status"] == "open"
    report = await bot.answer_group(row["group_id"], "The cafeteria opens at 8.", "policy team")
    assert report.waiting == {"console": 1}  # nobody at the terminal to tell yet

    someone_else = io.StringIO()
    await chat(bot, io.StringIO("!quit\n"), someone_else, asker="sam")
    assert "cafeteria opens at 8" not in someone_else.getvalue()

    again = io.StringIO()
    await chat(bot, io.StringIO("!quit\n"), again, asker="alex")
    assert "The cafeteria opens at 8." in again.getvalue()
    assert bot.storage.pending_deliveries() == []  # delivered once, its address deleted
    once_more = io.StringIO()
    await chat(bot, io.StringIO("!quit\n"), once_more, asker="alex")
    assert "cafeteria opens at 8" not in once_more.getvalue()
