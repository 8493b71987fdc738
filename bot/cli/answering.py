"""The answering commands: `ask` (questions, as text or JSON) and `eval` (what askers get,
measured on labeled questions; with `--llm`, the configured LLM's answers)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from bot.answering.grounded import GroundedAnswerer
from bot.cli.context import EXIT_REFUSED, Context, console, fail, guarded
from bot.cli.root import main
from bot.core import PolicyBot
from bot.evaluation import Cuts, EvalReport, evaluate, load_questions
from bot.llm_evaluation import LLMEvalReport, evaluate_llm
from bot.models import Answer, IncomingQuestion, QuestionError
from bot.redaction import Redactor, redact_logs
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
@click.option(
    "--llm",
    "with_llm",
    is_flag=True,
    help="Score the configured LLM's answers (outcome, citations, not covered) instead of "
    "retrieval alone; one call per question.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.pass_obj
@guarded
def eval_command(
    ctx: Context, files: tuple[Path, ...], policy_path: Path | None, with_llm: bool, as_json: bool
) -> None:
    """Measure what askers get on labeled questions (JSONL: question, sections or lines):
    outcomes, useful and harmful answers, not-covered detection, confidence AUC, ranking;
    with --llm, the configured LLM's answers."""
    settings = ctx.settings
    if with_llm:
        _eval_llm(ctx, files, policy_path, as_json)
        return
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


#: How often `eval --llm` says how far it has got: LLM calls take seconds each.
PROGRESS_EVERY = 10


def _eval_llm(
    ctx: Context, files: tuple[Path, ...], policy_path: Path | None, as_json: bool
) -> None:
    settings = ctx.settings
    if not settings.llm_configured:
        fail(
            "eval --llm scores the configured LLM, and none is: set OPENAI_BASE_URL and "
            "POLICYBOT_LLM_MODEL (and OPENAI_API_KEY if the server needs one)",
            2,
        )
    # Every file is read before the first call: a bad line in the last file should not come
    # after a run of paid LLM calls.
    labeled = [(path, load_questions(path)) for path in files]
    if policy_path is not None:
        bot = PolicyBot.create(settings, storage=Storage.memory())
        # As ctx.bot() does: a fallback's warning must not carry the API key.
        redact_logs(Redactor.of(settings))
        bot.policies.load_file(policy_path)
    else:
        bot = ctx.bot()
    answerer = bot.answerer
    if not isinstance(answerer, GroundedAnswerer):  # llm_configured made one; a guard for mypy
        fail("eval --llm needs the grounded answerer, which this bot was not built with", 2)

    def progress_of(name: str) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            if done % PROGRESS_EVERY == 0 or done == total:
                click.echo(f"eval --llm {name}: {done}/{total} questions", err=True)

        return progress

    async def run() -> list[LLMEvalReport]:
        try:
            return [
                await evaluate_llm(
                    path.stem, questions, bot.retrieve, answerer.judge, progress_of(path.stem)
                )
                for path, questions in labeled
            ]
        finally:
            await bot.aclose()

    reports = asyncio.run(run())
    if as_json:
        for report in reports:
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(
        "set",
        "questions",
        "answered",
        "uncertain",
        "not covered",
        "citation hit",
        "harmful",
        "n.c. P",
        "n.c. R",
        "n.c. F1",
        "LLM calls",
        "fallbacks",
        "p50 ms",
    )
    for r in reports:
        table.add_row(
            r.name,
            str(r.questions),
            str(r.answered),
            str(r.uncertain),
            str(r.not_covered),
            f"{r.citation_hit_rate:.3f}",
            f"{r.harmful_rate:.3f}",
            f"{r.not_covered_precision:.3f}",
            f"{r.not_covered_recall:.3f}",
            f"{r.not_covered_f1:.3f}",
            str(r.llm_calls),
            str(r.fallbacks),
            f"{r.latency_p50_ms:.0f}",
        )
    console().print(table)
