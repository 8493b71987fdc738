"""The README documents every command, every option and every setting the bot reads.

The lists come from the code itself (the click command tree, and the names `Settings.from_env`
reads), so a command, option or setting added without its README line fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterator, Mapping
from itertools import takewhile
from pathlib import Path

import click
import pytest

from bot.cli import main
from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Variables in the Configuration table that the bot itself does not read, with who does.
READ_ELSEWHERE = {"POLICYBOT_SHARED_EVAL": ROOT / "bench" / "sets.py"}


def section(markdown: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of that level."""
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of each table row (the header and its rule left out); `\\|` stays in a cell."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| ") or set(line) <= set("|- "):
            continue
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows[1:] if rows else rows


def command_synopses(markdown: str) -> dict[str, str]:
    """`policy load` -> the first cell of its row in the command-line table, e.g.
    "policybot policy load FILE [--name NAME] ..."."""
    synopses = {}
    for cells in table_rows(section(markdown, "The command line")):
        synopsis = cells[0].strip("`")
        words = synopsis.split()
        if words[:1] != ["policybot"]:
            continue
        path = list(takewhile(lambda word: re.fullmatch(r"[a-z][a-z-]*", word), words[1:3]))
        synopses[" ".join(path)] = synopsis
    return synopses


def configuration_variables(markdown: str) -> set[str]:
    """The variable named in the first cell of each row of the Configuration table."""
    names = set()
    for cells in table_rows(section(markdown, "Configuration")):
        match = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", cells[0])
        assert match, f"a Configuration row does not start with one `VARIABLE`: {cells[0]}"
        names.add(match.group(1))
    return names


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command under `group`, as "policy load", subgroups included, depth first."""
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path)


def leaf_commands() -> list[tuple[str, click.Command]]:
    return [(p, c) for p, c in commands(main) if not isinstance(c, click.Group)]


def option_names(command: click.Command) -> list[tuple[str, ...]]:
    """Each option's spellings (`("-o", "--output")`, `("--groups", "--questions")`), help
    left out, and hidden ones (what one process passes another: `serve --reuse-port`)."""
    return [
        (*param.opts, *param.secondary_opts)
        for param in command.params
        if isinstance(param, click.Option) and "--help" not in param.opts and not param.hidden
    ]


class RecordingEnvironment(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.asked.add(name)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def names_in_from_env_source() -> set[str]:
    """The string literals `from_env` passes next to `env` (`env.get("X")`, `_int(env, "X",
    ...)`): catches a variable read only when another one is set, which an empty environment
    never reaches."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(Settings.from_env)))
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        reads_env = (
            isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
        ) or any(isinstance(arg, ast.Name) and arg.id == "env" for arg in node.args)
        if reads_env:
            names.update(
                arg.value
                for arg in node.args[:2]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value
            )
    return names


def settings_read() -> set[str]:
    """Every environment variable the bot reads: `Settings.from_env`, and click options that
    fall back to one (`serve --port` reads PORT)."""
    environment = RecordingEnvironment()
    Settings.from_env(environment)
    from_options = {
        envvar
        for _, command in commands(main)
        for param in command.params
        for envvar in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    }
    return environment.asked | names_in_from_env_source() | from_options


# -- what the code has is in the README -------------------------------------------------------
@pytest.mark.parametrize("path", [p for p, _ in commands(main)])
def test_readme_names_every_command(path: str) -> None:
    if isinstance(dict(commands(main))[path], click.Group):
        # A group is documented by its subcommands' rows ("policybot policy load ...").
        assert any(documented.startswith(f"{path} ") for documented in command_synopses(README))
    else:
        assert path in command_synopses(README), f"no row for `policybot {path}` in the README"


@pytest.mark.parametrize("path, command", leaf_commands(), ids=[p for p, _ in leaf_commands()])
def test_readme_shows_every_option_of_a_command(path: str, command: click.Command) -> None:
    synopsis = command_synopses(README).get(path, "")
    shown = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", synopsis))
    missing = [names for names in option_names(command) if not shown & set(names)]
    assert not missing, f"`policybot {path}` in the README does not show {missing}"


def test_readme_shows_the_options_before_the_command() -> None:
    for names in option_names(main):
        assert any(f"`{name} " in README for name in names), f"the README does not show {names}"


def test_readme_configuration_table_has_every_setting() -> None:
    missing = settings_read() - configuration_variables(README)
    assert not missing, f"no row in the README's Configuration table for {sorted(missing)}"


# -- what the README says is in the code ------------------------------------------------------
def test_readme_commands_exist() -> None:
    known = {path for path, _ in commands(main)}
    unknown = set(command_synopses(README)) - known
    assert not unknown, f"the README documents commands that do not exist: {sorted(unknown)}"


def test_readme_configuration_rows_are_read() -> None:
    for name, reader in READ_ELSEWHERE.items():
        assert name in reader.read_text(encoding="utf-8"), f"{reader} no longer reads {name}"
    unread = configuration_variables(README) - settings_read() - set(READ_ELSEWHERE)
    assert not unread, f"the Configuration table lists variables nothing reads: {sorted(unread)}"


def test_the_setting_lists_are_not_empty() -> None:
    """The walks these tests use find what they should, so none passes on an empty list."""
    assert {"policy load", "questions list", "serve"} <= {p for p, _ in commands(main)}
    assert {"POLICYBOT_DB", "MicrosoftAppId", "PORT"} <= settings_read()
    assert {"POLICYBOT_DB", "MicrosoftAppId"} <= configuration_variables(README)
    assert command_synopses(README)["policy load"].startswith("policybot policy load FILE")
