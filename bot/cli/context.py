"""What every command shares: the exit codes, the database opened lazily (`Context`), the errors
turned into messages, and the platforms a command run outside the app sends through."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import PolicyError
from bot.redaction import Redactor, redact_logs
from bot.store.database import StorageError

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

    def close(self) -> None:
        """At the command's end: the database connection closed and this process's mark
        given up (on PostgreSQL both are sessions the server would otherwise keep until the
        process exits)."""
        if self._bot is not None:
            bot, self._bot = self._bot, None
            bot.mark.release()
            bot.storage.close()


#: Platforms whose adapter can send from a command run outside the app (cron, a terminal): the
#: adapter module, and the setting that says the platform is configured here.
OUTBOUND: dict[str, tuple[str, Callable[[Settings], bool]]] = {
    "slack": ("adapters.slack.outbound", lambda s: bool(s.slack_bot_token)),
    "teams": (
        "adapters.teams.app",
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
            if platform == "teams":
                bot.settings.check_teams_secret()
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
