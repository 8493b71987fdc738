from __future__ import annotations

import io

from adapters.console import chat
from bot.core import PolicyBot


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
