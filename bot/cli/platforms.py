"""The commands that start a platform: `chat`, `serve`, `slack`, `teams-package`. Each imports
its adapter by name only when it runs, so importing the CLI loads no adapter."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import click

from bot import messages
from bot.cli.context import Context, fail, guarded
from bot.cli.processes import serve_command, supervise
from bot.cli.root import main
from bot.config import ConfigError


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
@click.option(
    "--processes",
    type=click.IntRange(1, 16),
    default=None,
    help="Servers on the port, one per core (default: $POLICYBOT_SERVE_PROCESSES, else 1).",
)
@click.option("--reuse-port", is_flag=True, hidden=True)
@click.pass_obj
@guarded
def serve(ctx: Context, host: str, port: int, processes: int | None, reuse_port: bool) -> None:
    """Run the HTTP server for Slack and Teams (and /healthz)."""
    count = processes or ctx.settings.serve_processes
    if count > 1:
        ctx.bot()  # migrated, and the bundled policy loaded, once before the N start
        ctx.close()
        command = serve_command(ctx.db_path, host, port)
        sys.exit(supervise([command] * count))
    server = importlib.import_module("adapters.server")

    def listening() -> None:
        click.echo(messages.listening_on(host, port))

    try:
        server.run(ctx.bot(), host, port, ready=listening, reuse_port=reuse_port)
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
    """Write the Teams app package (manifest.json and icons) to upload or sideload; its
    prompt starters are questions about the active policy's sections."""
    package = importlib.import_module("adapters.teams.package")
    options = {"developer": developer, "website": website, "version": app_version}
    try:
        # The settings checked before the database is opened for the starters.
        package.manifest(ctx.settings, **options)
    except package.PackageError as error:
        fail(str(error), 2)
    starters = ctx.bot().prompt_starters(package.PROMPT_STARTERS)
    try:
        package.write_package(ctx.settings, out, **options, starters=starters)
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
