"""The README documents every command and every option.

The lists come from the code itself (the click command tree), so a command or option added
without its README line fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import takewhile
from pathlib import Path

import click
import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


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
    left out."""
    return [
        (*param.opts, *param.secondary_opts)
        for param in command.params
        if isinstance(param, click.Option) and "--help" not in param.opts
    ]


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


# -- what the README says is in the code ------------------------------------------------------
def test_readme_commands_exist() -> None:
    known = {path for path, _ in commands(main)}
    unknown = set(command_synopses(README)) - known
    assert not unknown, f"the README documents commands that do not exist: {sorted(unknown)}"


def test_the_command_lists_are_not_empty() -> None:
    """The walks these tests use find what they should, so none passes on an empty list."""
    assert {"policy load", "questions list", "serve"} <= {p for p, _ in commands(main)}
    assert command_synopses(README)["policy load"].startswith("policybot policy load FILE")
