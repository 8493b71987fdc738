"""The root `policybot` group: `--db`, and the `Context` every command receives."""

from __future__ import annotations

import click

from bot.cli.context import Context


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Database file, or a postgresql:// URL (default: $DATABASE_URL, else $POLICYBOT_DB "
    "or ./policybot.db).",
)
@click.pass_context
def main(ctx: click.Context, db_path: str | None) -> None:
    """Answer "may I post this?" from the organization's own policy, citing its clauses."""
    ctx.obj = Context(db_path)
