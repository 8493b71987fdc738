from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main


def test_backup_is_a_usable_copy_and_never_overwrites(tmp_path: Path) -> None:
    runner = CliRunner()
    live = str(tmp_path / "live.db")
    copy = tmp_path / "copy.db"
    asked = runner.invoke(main, ["--db", live, "ask", "--json", "can I tweet about our revenue?"])
    assert asked.exit_code == 0
    result = runner.invoke(main, ["--db", live, "backup", str(copy)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(
        main, ["--db", str(copy), "questions", "list", "--status", "all", "--json"]
    )
    assert [json.loads(line)["text"] for line in listed.output.splitlines()] == [
        "can I tweet about our revenue?"
    ]
    again = runner.invoke(main, ["--db", live, "backup", str(copy)])
    assert again.exit_code == 4 and "exists" in again.output
