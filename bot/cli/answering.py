"""The answering commands: `ask` (questions, as text or JSON) and `eval` (what askers get,
measured on labeled questions)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from bot.cli.context import EXIT_REFUSED, Context, console, fail, guarded
from bot.cli.root import main
from bot.core import PolicyBot
from bot.evaluation import Cuts, EvalReport, evaluate, load_questions
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
    """Measure what askers get on labeled questions (JSONL: question, sections or lines):
    outcomes, useful and harmful answers, not-covered detection, confidence AUC, ranking."""
    settings = ctx.settings
    if policy_path is not None:
        bot = PolicyBot.create(settings, storage=Storage.memory())
        bot.policies.load_file(policy_path)
    else:
        bot = ctx.bot()
    cuts = Cuts.of(settings)
    reports = [evaluate(path.stem, load_questions(path), bot.retrieve, cuts) for path in files]
    print_reports(reports, cuts, as_json)


#: What `eval` prints for each file, in order: (label, how the report's figure is shown).
EVAL_ROWS: tuple[tuple[str, Callable[[EvalReport], str]], ...] = (
    ("questions (answerable)", lambda r: f"{r.questions} ({r.covered})"),
    (
        "answered / uncertain / not covered",
        lambda r: f"{r.answered} / {r.uncertain} / {r.not_covered}",
    ),
    ("useful", lambda r: f"{r.useful:.1%}"),
    ("harmful, of all questions", lambda r: f"{r.harmful:.1%}"),
    ("harmful, of answered (wrong when confident)", lambda r: f"{r.wrong_when_confident:.1%}"),
    (
        "not covered P / R / F1",
        lambda r: (
            f"{r.unanswered_precision:.3f} / {r.unanswered_recall:.3f} / {r.unanswered_f1:.3f}"
        ),
    ),
    ("confidence AUC", lambda r: "—" if r.confidence_auc is None else f"{r.confidence_auc:.3f}"),
    (
        "recall@1 / recall@3 / MRR (ranking alone)",
        lambda r: f"{r.recall_at_1:.3f} / {r.recall_at_3:.3f} / {r.mrr:.3f}",
    ),
    ("cited chars per clause (top 3)", lambda r: f"{r.mean_cited_chars:.0f}"),
)


def print_reports(reports: Sequence[EvalReport], cuts: Cuts, as_json: bool) -> None:
    if as_json:
        for report in reports:
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    from rich.table import Table

    table = Table("", *(r.name for r in reports))
    for label, shown in EVAL_ROWS:
        table.add_row(label, *(shown(r) for r in reports))
    console().print(table)
    click.echo(
        f"Answered from confidence {cuts.answer_from:g}, uncertain from {cuts.uncertain_from:g}; "
        "not-covered P/R/F1 count uncertain and not covered alike as not answered."
    )
