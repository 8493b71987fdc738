"""`policybot questions ...`: the policy team's review list and the question log: list, show,
answer, dismiss, export and purge."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bot import messages
from bot.cli.context import Context, connect_platforms, console, fail, guarded
from bot.cli.root import main
from bot.core import PolicyBot
from bot.redaction import Redactor
from bot.review.export import STATUSES as EXPORT_STATUSES
from bot.review.export import export_rows, to_csv, to_json
from bot.review.groups import Group, ReviewError, owner_matches
from bot.review.queue import parse_age
from bot.store.database import QuestionRow


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
    if owner is not None:
        check_owner(bot, owner)
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
        say_if_cut(len(groups), limit, "group")
        return
    wanted = None if status == "all" else status
    if owner is None:
        # One more than shown, to know whether the list was cut.
        rows = bot.storage.questions(status=wanted, limit=limit + 1)
        found = len(rows)
    else:
        logged = bot.storage.questions_between(status=wanted)
        routed = {r.id for r in logged if owner_matches(owner, r.owner or "")}
        found = len(routed)
        # Newest first, as without --owner: every question of that status, then the team's.
        rows = bot.storage.questions(status=wanted, limit=max(len(logged), 1))
        rows = [r for r in rows if r.id in routed]
    print_questions(bot, rows[:limit], as_json)
    say_if_cut(found, limit, "question")


def say_if_cut(found: int, limit: int, noun: str) -> None:
    """On stderr, so a script reading the lines still reads only rows: that the list stops at
    --limit, and how to see the rest."""
    if found > limit:
        more = "more" if noun == "question" and found == limit + 1 else f"{found:,} in all"
        click.echo(
            f"policybot: showing the first {messages.counted(limit, noun)} ({more}); "
            "raise --limit to see the rest"
            + (", or use `policybot questions export`." if noun == "question" else "."),
            err=True,
        )


def check_owner(bot: PolicyBot, owner: str) -> None:
    """An --owner that names no team the policy or the review list knows is a mistake (a typo,
    a team by another name), not an empty queue: say so, with the teams there are."""
    teams = {team for version in bot.storage.versions() for team in version.owners}
    teams |= {g.owner for g in bot.review.groups(status=None) if g.owner}
    if owner_matches(owner, "") or any(owner_matches(owner, team) for team in teams):
        return
    known = ", ".join(sorted(teams)) or "none yet"
    fail(f"no team called {owner!r}; the teams are: {known} (or unrouted)", 2)


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
            g.sample,
        )
    console().print(table)


def print_questions(bot: PolicyBot, logged: list[QuestionRow], as_json: bool) -> None:
    # Rows logged before secrets were scrubbed on the way in may still hold one.
    redactor = Redactor.of(bot.settings)
    rows = [redactor.scrub_row(row.as_json()) for row in logged]
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
        "outcome",
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
            row["outcome"],
            row["review_reason"] or "",
            str(row.get("group_id") or ""),
            f"{row['confidence'] or 0:.2f}",
            row["text"] + (f"\n(taken as: {row['standalone']})" if row.get("standalone") else ""),
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
    logged = bot.review.members(group_id)
    members = [redactor.scrub_row(row.as_json()) for row in logged]
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
    print_questions(bot, logged, as_json=False)


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
    click.echo(
        f"Group {group.id} dismissed ({messages.counted(group.count, 'question')}); "
        "nobody is notified."
    )


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
    click.echo(f"{messages.counted(len(rows), 'question')} written to {output}.", err=True)


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
        f"{messages.counted(counts['questions'], 'question')} asked before {cutoff}, "
        f"{messages.counted(counts['reply_addresses'], 'reply address', 'reply addresses')}, "
        f"{messages.counted(counts['groups'], 'emptied group')}"
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


def _now_answered(row: dict[str, Any]) -> str:
    """ "v3 §4.2": a policy version activated since the question was asked answers it."""
    if not row.get("now_answered_version"):
        return ""
    sections = ", ".join(
        dict.fromkeys(c["section"] for c in row.get("now_answered_citations", []) if c["section"])
    )
    return f"v{row['now_answered_version']}" + (f" §{sections}" if sections else "")
