"""Console chat: read a question from the terminal, print the cited answer."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
from typing import TextIO

from bot import messages
from bot.core import ASK_POLICY_TEAM, HELPFUL, NOT_HELPFUL, PolicyBot
from bot.models import Actor, Answer, IncomingQuestion, QuestionError
from bot.notify import ReplyAddress

PLATFORM = "console"

#: The console's feedback commands, as the core's reactions.
COMMANDS = {"!helpful": HELPFUL, "!unhelpful": NOT_HELPFUL, "!human": ASK_POLICY_TEAM}


class ConsoleNotifier:
    """Reviewed answers for the asker at this terminal, shown when their chat opens: the
    console has no way to reach anyone later."""

    def __init__(self, stdout: TextIO) -> None:
        self.stdout = stdout

    async def send(self, address: ReplyAddress, text: str) -> None:
        print(f"bot> {text}\n", file=self.stdout)


def render(answer: Answer, width: int) -> str:
    footer = ""
    if answer.answered:
        footer = "\n\n" + messages.CONSOLE_FOOTER
    elif answer.uncertain:
        footer = "\n\n" + messages.CONSOLE_FOOTER_UNCERTAIN
    return answer.plain_text(width=width) + footer


async def chat(bot: PolicyBot, stdin: TextIO, stdout: TextIO, asker: str = "console") -> None:
    width = min(shutil.get_terminal_size((100, 24)).columns, 110)
    # The database through the bot's worker, as on the server: the loop only does I/O.
    active = await bot.worker.run(bot.active_versions)
    names = "; ".join(f"{v.title} ({v.label or v.uploaded_at[:10]})" for v in active)
    help_text = messages.console_help(await bot.worker.run(bot.example_question))
    print(f"policybot: answering from {names}.\n{help_text}\n", file=stdout)
    await bot.deliver_answers_to(Actor(PLATFORM, asker), ConsoleNotifier(stdout))
    last: Answer | None = None
    # One chat is one conversation: a follow-up here is read with this session's questions.
    session = f"session-{secrets.token_hex(8)}"

    async def tell(note: str) -> None:
        print(f"bot> {note}", file=stdout)

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
            print(help_text, file=stdout)
            continue
        if command == "!policy":
            for v in await bot.worker.run(bot.active_versions):
                print(f"  {v.title}: {v.display}, {v.clause_count} clauses", file=stdout)
            continue
        if command in COMMANDS:
            if last is None or last.question_id is None:
                print(f"bot> {messages.ASK_FIRST}", file=stdout)
            else:
                await bot.react_to_answer(
                    Actor(PLATFORM, asker), last.question_id, COMMANDS[command], tell
                )
            continue
        if command.startswith("!"):  # a mistyped command is not a question for the team
            print(f"bot> {messages.unknown_command(text)}\n{help_text}", file=stdout)
            continue
        try:
            last = await bot.ask(
                IncomingQuestion(
                    text=text, platform=PLATFORM, asker=asker, conversation_key=session
                )
            )
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
