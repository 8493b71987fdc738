"""Questions the log refused, kept beside the database until it takes writes again."""

from __future__ import annotations

from pathlib import Path

from bot.store.unlogged import Entry, UnloggedQuestions


def entry(text: str) -> Entry:
    return {"record": {"text": text}, "asker": "", "reply_to": None, "asker_name": ""}


def test_has_pending_follows_what_is_kept_in_the_file(tmp_path: Path) -> None:
    kept = UnloggedQuestions.beside(tmp_path / "policybot.db")
    assert kept.path is not None
    assert not kept.has_pending()  # no file yet
    kept.path.touch()
    assert not kept.has_pending() and kept.pending() == 0  # an empty file keeps nothing
    kept.keep(entry("may I post?"), OSError("disk full"))
    kept.keep(entry("may I tweet?"), OSError("disk full"))
    assert kept.has_pending() and kept.pending() == 2
    logged: list[Entry] = []
    assert kept.replay(logged.extend) == 2
    assert [e["record"]["text"] for e in logged] == ["may I post?", "may I tweet?"]
    assert not kept.has_pending() and kept.pending() == 0


def test_has_pending_follows_what_is_held_in_memory() -> None:
    kept = UnloggedQuestions(None)
    assert not kept.has_pending()
    kept.keep(entry("may I post?"), OSError("read-only"))
    assert kept.has_pending() and kept.pending() == 1
    kept.replay(lambda entries: None)
    assert not kept.has_pending()
