"""The answering commands: `ask` (questions, as text or JSON) and `eval` (retrieval measured on
labeled questions)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from bot.cli.context import EXIT_REFUSED, Context, console, fail, guarded
from bot.cli.root import main
from bot.core import PolicyBot
from bot.evaluation import evaluate, load_questions
from bot.models import Answer, IncomingQuestion, QuestionError
from bot.store.database import Storage


@main.command()
@click.argument("questions", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question per line.")
@click.pass_obj
@guarded
def ask(ctx: Context, questions: tuple[str, ...], as_json: bool) -> None:
    """Ask one or more questions; `-` reads one question per line from standard input."""
    if not questions:
        fail("give a question, or - to read questions from standard input", 2)
    texts: list[str] = []
    for question in questions:
        if question == "-":
            texts.extend(line.rstrip("\n") for line in sys.stdin if line.strip())
        else:
            texts.append(question)
    bot = ctx.bot()
    refused = False

    async def run() -> None:
        nonlocal refused
        try:
            for text in texts:
                try:
                    answer = await bot.ask(IncomingQuestion(text=text, platform="cli"))
                except QuestionError as error:
                    refused = True
                    if as_json:
                        click.echo(json.dumps({"question": text, "error": str(error)}))
                    else:
                        click.echo(f"policybot: {error}", err=True)
                    continue
                emit(answer, as_json)
        finally:
            await bot.aclose()

    asyncio.run(run())
    if refused:
        sys.exit(EXIT_REFUSED)


def emit(answer: Answer, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(answer.as_json(), ensure_ascii=False))
    else:
        click.echo(answer.plain_text(width=100))
        click.echo("")


@main.command("eval")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path),
    help="Evaluate against this policy file instead of the database's active policy.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.pass_obj
@guarded
def eval_command(
    ctx: Context, files: tuple[Path, ...], policy_path: Path | None, as_json: bool
) -> None:
    """Measure retrieval on labeled questions (JSONL: question, sections or lines)."""
    settings = ctx.settings
    if policy_path is not None:
        bot = PolicyBot.create(settings, storage=Storage.memory())
        bot.policies.load_file(policy_path)
    else:
        bot = ctx.bot()
    reports = [
        evaluate(path.stem, load_questions(path), bot.retrieve, settings.min_confidence)
        for path in files
    ]
    if as_json:
        for report in reports:
            click.echo(json.dumps(report.as_dict()))
        return
    from rich.table import Table

    table = Table(
        "set",
        "questions",
        "recall@1",
        "recall@3",
        "MRR",
        "unans. P",
        "unans. R",
        "unans. F1",
        "top-3 chars",
    )
    for r in reports:
        table.add_row(
            r.name,
            str(r.questions),
            f"{r.recall_at_1:.3f}",
            f"{r.recall_at_3:.3f}",
            f"{r.mrr:.3f}",
            f"{r.unanswered_precision:.3f}",
            f"{r.unanswered_recall:.3f}",
            f"{r.unanswered_f1:.3f}",
            f"{r.mean_cited_chars:.0f}",
        )
    console().print(table)
