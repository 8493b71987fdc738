"""The `policybot` command line: a thin layer over the core.

Exit codes scripts can rely on: 0 done; 1 a question was refused (empty or too long);
2 wrong usage; 3 a policy or data file could not be used; 4 the database could not be used.
Commands that start a platform (`chat`, `serve`) import their adapter only when run, so the
core itself never loads an adapter.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.evaluation import evaluate, load_questions
from bot.models import Answer, IncomingQuestion, PolicyError, QuestionError
from bot.storage import Storage, StorageError

EXIT_REFUSED = 1
EXIT_POLICY = 3
EXIT_STORAGE = 4


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"policybot: {message}", err=True)
    sys.exit(code)


class Context:
    """Opens the database lazily, so `--help` and usage errors never touch it."""

    def __init__(self, db_path: str | None) -> None:
        self.db_path = db_path
        self._bot: PolicyBot | None = None

    @property
    def settings(self) -> Settings:
        try:
            settings = Settings.from_env()
        except ConfigError as error:
            fail(str(error), 2)
        return settings.with_db(self.db_path) if self.db_path else settings

    def bot(self, *, with_policy: bool = True) -> PolicyBot:
        if self._bot is None:
            try:
                self._bot = PolicyBot.create(self.settings)
            except StorageError as error:
                fail(str(error), EXIT_STORAGE)
        if with_policy:
            try:
                self._bot.ensure_policy()
            except PolicyError as error:
                fail(str(error), EXIT_POLICY)
        return self._bot


def console() -> Any:
    """A rich console for tables; wide when the output is a pipe, so nothing is cut."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 240)


def guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the core's errors into a clear message and the documented exit code."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except PolicyError as error:
            fail(str(error), EXIT_POLICY)
        except StorageError as error:
            fail(str(error), EXIT_STORAGE)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Database file (default: $POLICYBOT_DB or ./policybot.db).",
)
@click.pass_context
def main(ctx: click.Context, db_path: str | None) -> None:
    """Answer "may I post this?" from the organization's own policy, citing its clauses."""
    ctx.obj = Context(db_path)


# -- asking ------------------------------------------------------------------------------------
@main.command()
@click.pass_obj
@guarded
def chat(ctx: Context) -> None:
    """Chat with the bot in this terminal."""
    console = importlib.import_module("adapters.console")
    bot = ctx.bot()

    async def session() -> None:
        try:
            await console.chat(bot, sys.stdin, sys.stdout)
        finally:
            await bot.aclose()

    try:
        asyncio.run(session())
    except KeyboardInterrupt:
        click.echo("")


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, envvar="PORT", type=int)
@click.pass_obj
@guarded
def serve(ctx: Context, host: str, port: int) -> None:
    """Run the HTTP server for Slack and Teams (and /healthz)."""
    server = importlib.import_module("adapters.server")
    server.run(ctx.bot(), host, port)


@main.command("teams-package")
@click.option(
    "--out",
    default="policybot-teams.zip",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--developer", default="", help="Developer name (default: the app name).")
@click.option(
    "--website",
    default="",
    help="https URL for the developer, privacy and terms links (default: the first valid domain).",
)
@click.option("--app-version", default="1.0.0", show_default=True, help="The package version.")
@click.pass_obj
def teams_package(ctx: Context, out: Path, developer: str, website: str, app_version: str) -> None:
    """Write the Teams app package (manifest.json and icons) to upload or sideload."""
    package = importlib.import_module("adapters.teams_package")
    try:
        package.write_package(
            ctx.settings, out, developer=developer, website=website, version=app_version
        )
    except package.PackageError as error:
        fail(str(error), 2)
    except OSError as error:
        fail(f"cannot write {out}: {error.strerror or error}", 2)
    click.echo(f"Wrote {out}. Upload it in Teams (Apps > Manage your apps > Upload an app).")


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


# -- policy ------------------------------------------------------------------------------------
@main.group()
def policy() -> None:
    """Load and inspect policy documents."""


@policy.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Document name (default: the file's stem).")
@click.option("--by", "uploaded_by", default="cli", show_default=True, help="Who uploads it.")
@click.option("--stage", is_flag=True, help="Only stage the new version; activate it later.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@click.pass_obj
@guarded
def policy_load(
    ctx: Context, file: Path, name: str | None, uploaded_by: str, stage: bool, as_json: bool
) -> None:
    """Load FILE (Markdown, text, HTML, DOCX or PDF) as a new version of its document, show
    what changed against the active version, and make it active (unless --stage)."""
    bot = ctx.bot(with_policy=False)
    result = bot.policies.load_file(file, uploaded_by=uploaded_by, name=name, activate=not stage)
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        click.echo(result.as_text())


@policy.command("diff")
@click.argument("version", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="The changes as one JSON object.")
@click.pass_obj
@guarded
def policy_diff(ctx: Context, version: int | None, as_json: bool) -> None:
    """What VERSION (default: the newest staged one) changes against the active version."""
    changes = ctx.bot(with_policy=False).policies.diff(version)
    if as_json:
        click.echo(json.dumps(changes.as_json(), ensure_ascii=False))
    else:
        click.echo(changes.as_text())


@policy.command("activate")
@click.argument("version", type=int)
@click.option("--by", default="cli", show_default=True, help="Who activates it.")
@click.pass_obj
@guarded
def policy_activate(ctx: Context, version: int, by: str) -> None:
    """Make VERSION its document's active version (any earlier version too)."""
    click.echo(ctx.bot(with_policy=False).policies.activate(version, by=by).as_text())


@policy.command("rollback")
@click.argument("document", required=False)
@click.option("--by", default="cli", show_default=True, help="Who rolls back.")
@click.pass_obj
@guarded
def policy_rollback(ctx: Context, document: str | None, by: str) -> None:
    """Make the previously active version of DOCUMENT active again."""
    click.echo(ctx.bot(with_policy=False).policies.rollback(document, by=by).as_text())


@policy.command("discard")
@click.argument("version", type=int)
@click.pass_obj
@guarded
def policy_discard(ctx: Context, version: int) -> None:
    """Delete a staged VERSION that was never active."""
    discarded = ctx.bot(with_policy=False).policies.discard(version)
    click.echo(f"Discarded {discarded.display} ({discarded.source_name}).")


@policy.command("history")
@click.argument("document", required=False)
@click.pass_obj
@guarded
def policy_history(ctx: Context, document: str | None) -> None:
    """Versions (who uploaded what, when, with which content hash) and activations."""
    from rich.table import Table

    policies = ctx.bot(with_policy=False).policies
    events = policies.history(document)
    versions = policies.storage.versions(document)
    table = Table("document", "version", "status", "label", "clauses", "uploaded", "by")
    for column in ("source", "sha256"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            v.document,
            str(v.id),
            v.status,
            v.label,
            str(v.clause_count),
            v.uploaded_at,
            v.uploaded_by,
            v.source_name,
            v.content_hash[:12],
        )
    out = console()
    out.print(table)
    log = Table("document", "when", "what", "version", "by")
    for event in events:
        log.add_row(
            event["document"],
            event["activated_at"],
            "rolled back to" if event["kind"] == "rollback" else "activated",
            str(event["version_id"]),
            event["activated_by"],
        )
    out.print(log)


@policy.command("list")
@click.pass_obj
@guarded
def policy_list(ctx: Context) -> None:
    """List documents and their versions."""
    from rich.table import Table

    versions = ctx.bot().storage.versions()
    table = Table("document", "version", "label", "status", "clauses", "uploaded", "by", "source")
    for v in versions:
        table.add_row(
            v.document,
            str(v.id),
            v.label,
            v.status,
            str(v.clause_count),
            v.uploaded_at,
            v.uploaded_by,
            v.source_name,
        )
    console().print(table)


@policy.command("show")
@click.argument("document", required=False)
@click.pass_obj
@guarded
def policy_show(ctx: Context, document: str | None) -> None:
    """Print the active version's clauses, with their section references."""
    bot = ctx.bot()
    active = [v for v in bot.storage.active_versions() if document in (None, v.document)]
    if not active:
        fail(f"no active policy named {document!r}", EXIT_POLICY)
    for version in active:
        click.echo(f"# {version.title} — {version.display}, owners: {', '.join(version.owners)}")
        for stored in bot.storage.clauses([version.id]):
            clause = stored.clause
            owner = f" [{clause.owner}]" if clause.owner else ""
            click.echo(f"\n{clause.reference}{owner}\n  {clause.text}")


# -- question log ------------------------------------------------------------------------------
@main.group()
def questions() -> None:
    """The question log the policy team reviews."""


@questions.command("list")
@click.option(
    "--status",
    type=click.Choice(["open", "all", "answered", "refused"]),
    default="open",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question per line.")
@click.option("--limit", default=200, show_default=True)
@click.pass_obj
@guarded
def questions_list(ctx: Context, status: str, as_json: bool, limit: int) -> None:
    """List logged questions, newest first."""
    storage = ctx.bot(with_policy=False).storage
    rows = storage.questions(status=None if status == "all" else status, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(
        "id", "asked", "platform", "asker", "status", "reason", "conf.", "question", "now answered"
    )
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["asked_at"],
            row["platform"],
            row["asker"] or "",
            row["status"],
            row["review_reason"] or "",
            f"{row['confidence'] or 0:.2f}",
            row["text"],
            _now_answered(row),
        )
    console().print(table)


def _now_answered(row: dict[str, Any]) -> str:
    """ "v3 §4.2": a policy version activated since the question was asked answers it."""
    if not row.get("now_answered_version"):
        return ""
    sections = ", ".join(
        dict.fromkeys(c["section"] for c in row.get("now_answered_citations", []) if c["section"])
    )
    return f"v{row['now_answered_version']}" + (f" §{sections}" if sections else "")


@main.command()
@click.argument("destination", type=click.Path(path_type=Path))
@click.pass_obj
@guarded
def backup(ctx: Context, destination: Path) -> None:
    """Copy the database to DESTINATION while the bot keeps running."""
    storage = ctx.bot(with_policy=False).storage
    storage.backup(destination)
    click.echo(f"Backed up to {destination}.")


# -- evaluation --------------------------------------------------------------------------------
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


if __name__ == "__main__":
    main()
