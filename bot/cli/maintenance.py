"""Upkeep commands, run from cron as well as by hand: `digest` (the week's summary, posted to the
digest channels), `backup` (a consistent copy of the live database) and `migrate` (the schema
brought up to date, for a Procfile's `release:` step)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from bot.cli.context import Context, connect_platforms, guarded
from bot.cli.root import main
from bot.review.digest import build_digest, post_digest_once
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
