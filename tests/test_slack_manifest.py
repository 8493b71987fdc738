"""The manifest admins install from names everything the adapter listens to."""

from __future__ import annotations

from pathlib import Path

from adapters.slack.asking import CHECK_SHORTCUT, COMMAND

MANIFEST = (Path(__file__).resolve().parent.parent / "slack-manifest.yml").read_text()


def test_manifest_declares_the_command_shortcut_events_and_scopes() -> None:
    assert f"command: {COMMAND}" in MANIFEST
    assert f"callback_id: {CHECK_SHORTCUT}" in MANIFEST
    for event in ("app_mention", "message.im", "app_home_opened"):
        assert f"- {event}" in MANIFEST
    for scope in (
        "app_mentions:read",
        "chat:write",
        "commands",
        "files:read",
        "files:write",
        "im:history",
        "im:write",
        "usergroups:read",
    ):
        assert f"- {scope} " in MANIFEST or f"- {scope}\n" in MANIFEST
    assert MANIFEST.count("url: https://YOUR-HOST/slack/events") == 3


def test_manifest_declares_the_agent_view_with_its_scope_and_events() -> None:
    features = MANIFEST.split("\nfeatures:\n", 1)[1].split("\noauth_config:", 1)[0]
    assert "\n  agent_view:\n    agent_description: " in features
    assert "assistant_view" not in MANIFEST  # replaced by the agent view
    assert "- assistant:write " in MANIFEST
    for event in ("app_context_changed", "app_home_opened"):
        assert f"- {event} " in MANIFEST or f"- {event}\n" in MANIFEST
