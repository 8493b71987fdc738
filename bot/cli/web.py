"""`policybot console ...`: the web console's one-time sign-in link, for a laptop with no
identity provider. The adapter is imported by name when the command runs, as `serve` does."""

from __future__ import annotations

import importlib

import click

from bot import access
from bot.cli.context import Context, fail, guarded
from bot.cli.root import main
from bot.config import PLATFORMS
from bot.console_sessions import DEFAULT_LINK_MINUTES, MAX_LINK_MINUTES
from bot.models import Actor


@main.group()
def console() -> None:
    """The web console that `policybot serve` serves under /console."""


def _actor(given: str) -> Actor:
    platform, colon, user_id = given.partition(":")
    platform = platform.strip().lower()
    if not colon or platform not in PLATFORMS or not user_id.strip():
        fail(
            f"--as takes platform:id, e.g. --as slack:U0123ABCD or --as teams:<Entra object "
            f"id>, got {given[:60]!r}",
            2,
        )
    return Actor(platform, user_id.strip())


@console.command()
@click.option(
    "--as",
    "as_",
    metavar="PLATFORM:ID",
    default="",
    help="Sign in as this Slack or Teams id, with the roles the settings give it "
    "(default: the local operator, policy admin and policy team).",
)
@click.option(
    "--minutes",
    default=DEFAULT_LINK_MINUTES,
    show_default=True,
    type=click.IntRange(1, MAX_LINK_MINUTES),
    help="How long the link stays valid; it works once.",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    envvar="PORT",
    type=int,
    help="The port policybot serve listens on.",
)
@click.pass_obj
@guarded
def link(ctx: Context, as_: str, minutes: int, port: int) -> None:
    """Print a one-time sign-in link to the console; it works only while policybot serve
    listens on 127.0.0.1."""
    actor = _actor(as_) if as_ else access.OPERATOR
    links = importlib.import_module("adapters.web.links")
    bot = ctx.bot(with_policy=False)
    token = bot.console_sessions.create_link(actor, minutes=minutes)
    click.echo(links.link_url(token, port))
    click.echo(
        f"Valid once, for {minutes} minutes, while policybot serve listens on 127.0.0.1.",
        err=True,
    )
