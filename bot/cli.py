"""The `policybot` command line: a thin layer over the core.

Exit codes scripts can rely on: 0 done; 1 a question was refused (empty or too long);
2 wrong usage; 3 a policy or data file could not be used; 4 the database could not be used.
Commands that start a platform (`chat`, `serve`, `slack`) import their adapter only when run, so the
core itself never loads an adapter.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.evaluation import evaluate, load_questions
from bot.models import Answer, IncomingQuestion, PolicyError, QuestionError
from bot.redaction import Redactor, redact_logs
from bot.review.digest import build_digest, post_digest
from bot.review.export import STATUSES as EXPORT_STATUSES
from bot.review.export import export_rows, to_csv, to_json
from bot.review.queue import Group, ReviewError, owner_matches, parse_age
from bot.store.database import Storage, StorageError

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
            except ConfigError as error:
                fail(str(error), 2)
            # Commands configure no logging: their warnings go to Python's last resort.
            redact_logs(Redactor.of(self._bot.settings))
        if with_policy:
            try:
                self._bot.ensure_policy()
            except PolicyError as error:
                fail(str(error), EXIT_POLICY)
        return self._bot


#: Platforms whose adapter can send from a command run outside the app (cron, a terminal): the
#: adapter module, and the setting that says the platform is configured here.
OUTBOUND: dict[str, tuple[str, Callable[[Settings], bool]]] = {
    "slack": ("adapters.slack.outbound", lambda s: bool(s.slack_bot_token)),
    "teams": (
        "adapters.teams",
        lambda s: bool(s.microsoft_app_id or s.digest_teams_conversation),
    ),
}


def connect_platforms(bot: PolicyBot) -> None:
    """Let `digest` and `questions answer` post and deliver through the configured platforms,
    whose apps are not running in this process: each adapter, imported by name (the core never
    imports one), registers its notifier and digest poster on the bot."""
    for platform, (module_name, configured) in OUTBOUND.items():
        if not configured(bot.settings):
            continue
        register = getattr(importlib.import_module(module_name), "register_outbound", None)
        if register is None:
            click.echo(
                f"{platform}: this version cannot send from the command line; messages for "
                f"{platform} wait until `policybot serve` runs.",
                err=True,
            )
            continue
        try:
            register(bot)
        except ConfigError as error:
            click.echo(f"{platform}: not connected: {error}", err=True)


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
    try:
        server.run(ctx.bot(), host, port)
    except ConfigError as error:  # e.g. unauthenticated Teams on a non-loopback host
        fail(str(error), 2)


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
@click.pass_obj
@guarded
def slack(ctx: Context) -> None:
    """Connect to Slack over Socket Mode (SLACK_APP_TOKEN, SLACK_BOT_TOKEN)."""
    settings = ctx.settings
    if not (settings.slack_app_token and settings.slack_bot_token):
        fail("policybot slack needs SLACK_APP_TOKEN (xapp-...) and SLACK_BOT_TOKEN (xoxb-...)", 2)
    adapter = importlib.import_module("adapters.slack.app")
    adapter.run_socket_mode(ctx.bot())


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


GROUP_VIEW_STATUSES = ("open", "answered", "dismissed", "all")


@questions.command("list")
@click.option(
    "--status",
    type=click.Choice(["open", "all", "answered", "resolved", "dismissed", "refused"]),
    default=None,
    help="Which questions: the default is the open review list in a table, and the whole log "
    "(all) with --json.",
)
@click.option(
    "--groups/--questions",
    "as_groups",
    default=None,
    help="Groups of similar questions (the default for the open list in a table) or each "
    "question (the default with --json or another status).",
)
@click.option("--owner", help="Only this team's queue: its name or initials (HR, PR), or unrouted.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", default=200, show_default=True)
@click.pass_obj
@guarded
def questions_list(
    ctx: Context,
    status: str | None,
    as_groups: bool | None,
    owner: str | None,
    as_json: bool,
    limit: int,
) -> None:
    """The review list: open questions grouped by topic, busiest first, with the team that
    owns the closest policy section. --questions lists each logged question, newest first."""
    bot = ctx.bot(with_policy=False)
    if status is None:
        # People at a terminal want the review list; scripts reading JSON want the whole log.
        status = "all" if as_json and not as_groups else "open"
    if as_groups is None:
        # Scripts already read `--json` as one question per line, so JSON stays per question
        # unless --groups asks for groups; people at a terminal get the grouped list.
        as_groups = status == "open" and not as_json
    if as_groups:
        if status not in GROUP_VIEW_STATUSES:
            fail(f"groups are {', '.join(GROUP_VIEW_STATUSES)}; use --questions for {status}", 2)
        groups = bot.review.queue(status=None if status == "all" else status, owner=owner)
        print_groups(groups[:limit], as_json)
        return
    wanted = None if status == "all" else status
    rows = bot.storage.questions(status=wanted, limit=limit)
    if owner is not None:
        routed = {
            r["id"]
            for r in bot.storage.questions_between(status=wanted)
            if owner_matches(owner, r["owner"] or "")
        }
        rows = [r for r in rows if r["id"] in routed]
    print_questions(bot, rows, as_json)


def print_groups(groups: list[Group], as_json: bool) -> None:
    if as_json:
        for group in groups:
            click.echo(json.dumps(group.as_json(), ensure_ascii=False))
        return
    if not groups:
        click.echo("No question groups to show.")
        return
    from rich.table import Table

    table = Table(
        "group",
        "asked",
        "first seen",
        "last seen",
        "owner",
        "closest section",
        "status",
        "why",
        "sample question",
    )
    for g in groups:
        table.add_row(
            str(g.id),
            str(g.count),
            g.first_seen[:16],
            g.last_seen[:16],
            g.owner or "(unrouted)",
            g.reference,
            g.status,
            ", ".join(g.reasons),
            g.label,
        )
    console().print(table)


def print_questions(bot: PolicyBot, rows: list[dict[str, Any]], as_json: bool) -> None:
    # Rows logged before secrets were scrubbed on the way in may still hold one.
    redactor = Redactor.of(bot.settings)
    rows = [redactor.scrub_row(row) for row in rows]
    names = bot.storage.asker_names(r["id"] for r in rows) if bot.settings.show_askers else {}
    if as_json:
        for row in rows:
            if row["id"] in names:
                row = {**row, "asker_name": names[row["id"]]}
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(
        "id",
        "asked",
        "platform",
        "asker",
        "status",
        "reason",
        "group",
        "conf.",
        "question",
        "now answered",
    )
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["asked_at"],
            row["platform"],
            names.get(row["id"]) or row["asker"] or "",
            row["status"],
            row["review_reason"] or "",
            str(row.get("group_id") or ""),
            f"{row['confidence'] or 0:.2f}",
            row["text"],
            _now_answered(row),
        )
    console().print(table)


def review_guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """A review action the reviewer got wrong (unknown group, empty answer) exits 2."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ReviewError as error:
            fail(str(error), 2)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


@questions.command("show")
@click.argument("group_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@guarded
@review_guarded
def questions_show(ctx: Context, group_id: int, as_json: bool) -> None:
    """One group: its routing, its answer, and every question in it."""
    bot = ctx.bot(with_policy=False)
    group = bot.review.group(group_id)
    redactor = Redactor.of(bot.settings)
    members = [redactor.scrub_row(row) for row in bot.review.members(group_id)]
    if as_json:
        click.echo(json.dumps({**group.as_json(), "questions": members}, ensure_ascii=False))
        return
    click.echo(
        f"Group {group.id} ({group.status}): {group.count} asked, first {group.first_seen}, "
        f"last {group.last_seen}"
    )
    click.echo(f"Closest section: {group.reference or '-'}; owner: {group.owner or '(unrouted)'}")
    if group.answer:
        click.echo(f"Reviewed answer ({group.answered_at[:10]}, {group.answered_by or '-'}):")
        click.echo(f"  {group.answer}")
    print_questions(bot, members, as_json=False)


@questions.command("answer")
@click.argument("group_id", type=int)
@click.argument("answer")
@click.option("--by", "reviewer", default="cli", show_default=True, help="Who answers.")
@click.pass_obj
@guarded
@review_guarded
def questions_answer(ctx: Context, group_id: int, answer: str, reviewer: str) -> None:
    """Answer GROUP_ID (ANSWER, or - to read it from standard input). The bot gives the answer
    to similar questions from now on, and everyone who asked in the group is sent it."""
    if answer == "-":
        answer = sys.stdin.read()
    bot = ctx.bot(with_policy=False)
    connect_platforms(bot)
    report = asyncio.run(bot.answer_group(group_id, answer, reviewer))
    click.echo(
        f"Group {group_id} answered; the bot now gives this answer to similar questions. "
        f"Askers: {report.describe()}."
    )
    if report.pending:
        click.echo(
            "Pending answers are sent when the Slack or Teams app runs (policybot serve) or "
            "with the platform's settings present here; addresses are kept at most "
            f"{bot.settings.retention_days} days."
        )


@questions.command("dismiss")
@click.argument("group_id", type=int)
@click.option("--by", "reviewer", default="cli", show_default=True, help="Who dismisses.")
@click.pass_obj
@guarded
@review_guarded
def questions_dismiss(ctx: Context, group_id: int, reviewer: str) -> None:
    """Close GROUP_ID without an answer (or withdraw its reviewed answer)."""
    group = ctx.bot(with_policy=False).dismiss_group(group_id, reviewer)
    click.echo(f"Group {group.id} dismissed ({group.count} questions); nobody is notified.")


@questions.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--status", type=click.Choice(list(EXPORT_STATUSES)), default="all", show_default=True
)
@click.option("--owner", help="Only questions routed to this team (name or initials).")
@click.option("--since", help="Asked on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Asked on or before this date (YYYY-MM-DD).")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to FILE.")
@click.pass_obj
@guarded
@review_guarded
def questions_export(
    ctx: Context,
    fmt: str,
    status: str,
    owner: str | None,
    since: str | None,
    until: str | None,
    output: Path | None,
) -> None:
    """Export the question log as CSV or JSON; askers appear as pseudonyms unless
    POLICYBOT_SHOW_ASKERS=1."""
    bot = ctx.bot(with_policy=False)
    rows = export_rows(
        bot.storage,
        status=status,
        owner=owner,
        since=since or "",
        until=until or "",
        show_askers=bot.settings.show_askers,
    )
    redactor = Redactor.of(bot.settings)  # for rows logged before secrets were scrubbed
    rows = [redactor.scrub_row(row) for row in rows]
    text = to_csv(rows) if fmt == "csv" else to_json(rows) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror}", 2)
    click.echo(f"{len(rows)} questions written to {output}.", err=True)


@questions.command("purge")
@click.option("--older-than", "older_than", required=True, help="An age: 180d, 26w or 12h.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@guarded
@review_guarded
def questions_purge(ctx: Context, older_than: str, dry_run: bool, yes: bool) -> None:
    """Delete questions older than the age, with their askers' reply addresses and names;
    also deletes any reply address kept longer than POLICYBOT_RETENTION_DAYS."""
    age = parse_age(older_than)
    bot = ctx.bot(with_policy=False)
    cutoff = (datetime.now(UTC) - age).isoformat(timespec="seconds")
    counts = bot.storage.purge_questions(cutoff, dry_run=True)
    summary = (
        f"{counts['questions']} questions asked before {cutoff}, "
        f"{counts['reply_addresses']} reply addresses, {counts['groups']} emptied groups"
    )
    if dry_run:
        click.echo(f"Would delete {summary}.")
        return
    if not yes and counts["questions"]:
        click.confirm(f"Delete {summary}?", abort=True)
    bot.storage.purge_questions(cutoff)
    expired = bot.review.expire(bot.settings.retention_days)
    click.echo(
        f"Deleted {summary}; {expired} reply addresses older than "
        f"{bot.settings.retention_days} days expired."
    )


# -- digest ------------------------------------------------------------------------------------
@main.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366))
@click.option("--json", "as_json", is_flag=True, help="The digest's numbers as JSON.")
@click.option("--no-post", is_flag=True, help="Print only; do not post to channels.")
@click.pass_obj
@guarded
def digest(ctx: Context, days: int, as_json: bool, no_post: bool) -> None:
    """The week's summary for the policy team, printed and posted to the digest channels."""
    bot = ctx.bot(with_policy=False)
    summary = build_digest(bot.storage, bot.review, days=days)
    click.echo(json.dumps(summary.as_json(), ensure_ascii=False) if as_json else summary.text)
    if no_post:
        return
    connect_platforms(bot)
    results = asyncio.run(post_digest(summary.text, bot.channel_posters))
    for platform, outcome in results.items():
        click.echo(f"{platform}: {outcome}", err=True)
    settings = bot.settings
    configured = {
        "slack": ("POLICYBOT_DIGEST_SLACK_CHANNEL", settings.digest_slack_channel),
        "teams": ("POLICYBOT_DIGEST_TEAMS_CONVERSATION", settings.digest_teams_conversation),
    }
    for platform, (variable, value) in configured.items():
        if value and platform not in results:
            why = " (SLACK_BOT_TOKEN is not set)" if platform == "slack" else ""
            click.echo(
                f"{variable} is set, but no {platform} poster is available here{why}; "
                "printed only.",
                err=True,
            )


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
