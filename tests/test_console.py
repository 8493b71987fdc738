from __future__ import annotations

import io
from collections.abc import Callable

from adapters.console import chat
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from tests.bands import ROADMAP, uncertain_for


async def test_console_chat_answers_and_takes_feedback(bot: PolicyBot) -> None:
    stdin = io.StringIO(
        "can I post pictures from the team offsite on instagram?\n!unhelpful\n"
        "what time does the cafeteria open?\n!quit\n"
    )
    stdout = io.StringIO()
    await chat(bot, stdin, stdout)
    out = stdout.getvalue()
    assert "answering from Brightwater" in out
    assert "[9." in out
    assert "does not cover this" in out
    assert {q.review_reason for q in bot.open_questions()} == {"not_helpful", "not_covered"}


async def test_console_chat_says_an_uncertain_answer_may_not_be_what_was_asked(
    settings: Settings, bot_with: Callable[..., PolicyBot]
) -> None:
    band = uncertain_for(settings)
    bot = bot_with(
        min_confidence=band.min_confidence, uncertain_confidence=band.uncertain_confidence
    )
    stdout = io.StringIO()
    await chat(bot, io.StringIO(f"{ROADMAP}\n!helpful\n!quit\n"), stdout)
    out = stdout.getvalue()
    assert "I'm not sure the policy answers this." in out and "[3.3" in out
    assert messages.CONSOLE_FOOTER_UNCERTAIN in out and messages.CONSOLE_FOOTER not in out
    assert f"bot> {messages.REACTION_NOTES['helpful']}" in out
    (row,) = bot.storage.questions(status=None)
    assert (row.outcome, row.feedback) == ("uncertain", "helpful")
