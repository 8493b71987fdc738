"""Console chat: read a question from the terminal, print the cited answer."""

from __future__ import annotations

import asyncio
import shutil
import sys
from typing import TextIO

from bot.core import PolicyBot
from bot.models import Answer, IncomingQuestion, QuestionError

HELP = """Ask a question about the policy, for example:
  may I post photos from the team offsite on Instagram?
Commands: !helpful, !unhelpful (the last answer), !human (send the last question to the
policy team), !policy (which policy is active), !help, !quit (or Ctrl-D)."""

#: The console's feedback commands, as the core's reactions, and what the asker is told.
REACTIONS = {"!helpful": "helpful", "!unhelpful": "not_helpful", "!human": "ask_policy_team"}
CONFIRMATIONS = {
    "!helpful": "Thanks, noted.",
    "!unhelpful": "Thanks, noted.",
    "!human": "Sent to the policy team; they will follow up.",
}


def render(answer: Answer, width: int) -> str:
    footer = (
        "\n\nWas this helpful? Type !helpful or !unhelpful; !human sends it to the policy team."
        if answer.answered
        else ""
    )
    return answer.plain_text(width=width) + footer


async def chat(bot: PolicyBot, stdin: TextIO, stdout: TextIO, asker: str = "console") -> None:
    width = min(shutil.get_terminal_size((100, 24)).columns, 110)
    active = bot.storage.active_versions()
    names = "; ".join(f"{v.title} ({v.label or v.uploaded_at[:10]})" for v in active)
    print(f"policybot: answering from {names}.\n{HELP}\n", file=stdout)
    last: Answer | None = None
    while True:
        print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:
            print("", file=stdout)
            return
        text = line.strip()
        if not text:
            continue
        command = text.lower()
        if command in {"!quit", "!exit", "quit", "exit"}:
            return
        if command == "!help":
            print(HELP, file=stdout)
            continue
        if command == "!policy":
            for v in bot.storage.active_versions():
                print(f"  {v.title}: {v.display}, {v.clause_count} clauses", file=stdout)
            continue
        if command in REACTIONS:
            if last is None or last.question_id is None:
                print("bot> Ask a question first.", file=stdout)
            else:
                bot.react(last.question_id, REACTIONS[command])
                print(f"bot> {CONFIRMATIONS[command]}", file=stdout)
            continue
        try:
            last = await bot.ask(IncomingQuestion(text=text, platform="console", asker=asker))
        except QuestionError as error:
            print(f"bot> {error}", file=stdout)
            continue
        print("bot> " + render(last, width), file=stdout)
        print("", file=stdout)


def run(bot: PolicyBot) -> None:
    try:
        asyncio.run(chat(bot, sys.stdin, sys.stdout))
    except KeyboardInterrupt:
        print("", file=sys.stdout)
