"""Upkeep commands, run from cron as well as by hand: `digest` (the week's summary, posted to the
digest channels), `backup` (a consistent copy of the live database), `migrate` (the schema
brought up to date, for a Procfile's `release:` step) and `db copy` (a SQLite database moved
into PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from bot.cli.context import EXIT_STORAGE, Context, connect_platforms, fail, guarded
from bot.cli.root import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.review.digest import build_digest, post_digest_once
from bot.store.copying import copy_database
from bot.store.database import Storage


@main.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366))
@click.option("--json", "as_json", is_flag=True, help="The digest's numbers as JSON.")
@click.option("--no-post", is_flag=True, help="Print only; do not post to channels.")
@click.pass_obj
@guarded
def digest(ctx: Context, days: int, as_json: bool, no_post: bool) -> None:
    """The week's summary for the policy team, printed and posted to the digest channels
    (once per week and channel, however many replicas or cron jobs run it)."""
    bot = ctx.bot(with_policy=False)
    summary = build_digest(
        bot.storage, bot.review, days=days, chart_weeks=bot.settings.digest_chart_weeks
    )
    click.echo(json.dumps(summary.as_json(), ensure_ascii=False) if as_json else summary.text)
    if no_post:
        return
    connect_platforms(bot)
    results = asyncio.run(post_digest_once(bot.storage, summary, bot.channel_posters))
    for platform, outcome in results.items():
        click.echo(f"{platform}: {outcome}", err=True)
    settings = bot.settings
    configured = {
        "slack": ("POLICYBOT_DIGEST_SLACK_CHANNEL", settings.digest_slack_channel),
        "teams": ("POLICYBOT_DIGEST_TEAMS_CONVERSATION", settings.digest_teams_conversation),
    }
    for platform, (variable, value) in configured.items():
        if not value and platform not in results:
            click.echo(f"{platform}: not posted; {variable} is not set.", err=True)
        elif value and platform not in results:
            why = " (SLACK_BOT_TOKEN is not set)" if platform == "slack" else ""
            click.echo(
                f"{variable} is set, but no {platform} poster is available here{why}; "
                "printed only.",
                err=True,
            )


@main.command()
@click.argument("destination", type=click.Path(path_type=Path))
@click.pass_obj
@guarded
def backup(ctx: Context, destination: Path) -> None:
    """Copy the database to DESTINATION while the bot keeps running."""
    storage = ctx.bot(with_policy=False).storage
    storage.backup(destination)
    click.echo(f"Backed up to {destination}.")


@main.command()
@click.pass_obj
@guarded
def migrate(ctx: Context) -> None:
    """Bring the database's schema up to date and print the version it reached. Idempotent;
    safe beside running processes and replicas (one migration at a time, under a lock)."""
    storage = Storage.open(ctx.settings.database)
    try:
        # Opening migrates: what it applied is recorded, so the version says where it is.
        click.echo(f"{storage.engine} schema version {storage.schema_version}")
    finally:
        storage.close()


@main.group()
def db() -> None:
    """Move the database between engines."""


@db.command("copy")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="An empty PostgreSQL database: postgresql://user:password@host:port/name.",
)
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="The SQLite file to copy (default: --db or POLICYBOT_DB, else ./policybot.db).",
)
@click.pass_obj
@guarded
def db_copy(ctx: Context, target: str, source: Path | None) -> None:
    """Copy a SQLite database, every table and id, into an empty PostgreSQL database (migrated
    first), and check each table's count. Stop `serve` on the SQLite file first; a target that
    holds any rows is refused with nothing written."""
    source = source or Path(ctx.settings.db_path)
    if not source.is_file():
        fail(
            f"{source} is not a SQLite database file; --from names the file to copy "
            "(default: --db or POLICYBOT_DB, else ./policybot.db).",
            EXIT_STORAGE,
        )
    settings = ctx.settings
    report = copy_database(
        source, target, before=lambda path: _take_in_left_over(settings.with_db(str(path)))
    )
    for table, rows in report.tables.items():
        click.echo(f"{table}: {rows}")
    click.echo(
        f"Copied {report.rows} rows in {len(report.tables)} tables into {report.target}; "
        "every table's count matches. Point DATABASE_URL at it to run on PostgreSQL."
    )
    for warning in report.warnings:
        click.echo(
            f"warning: {warning}, and could not be put into it, so it was not copied.",
            err=True,
        )


def _take_in_left_over(settings: Settings) -> None:
    """Questions a stopped `serve` left beside the SQLite file (its spool, the unlogged file)
    put into the database, so that the copy carries them and the new engine answers them."""
    bot = PolicyBot.create(settings)
    try:
        bot.received.take_in_left_over()
    finally:
        bot.mark.release()
        bot.storage.close()
