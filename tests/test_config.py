"""Settings read from the environment: numbers that cannot be read are refused by name."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Settings


def test_numeric_settings_are_read_or_refused_with_the_variable_named() -> None:
    settings = Settings.from_env(
        {"POLICYBOT_MIN_CONFIDENCE": " 0.55 ", "POLICYBOT_MAX_CITATIONS": "4"}
    )
    assert settings.min_confidence == 0.55 and settings.max_citations == 4
    assert Settings.from_env({"POLICYBOT_MAX_CITATIONS": " "}).max_citations == 3  # blank: default
    with pytest.raises(ConfigError, match="POLICYBOT_MIN_CONFIDENCE must be a number, got 'high'"):
        Settings.from_env({"POLICYBOT_MIN_CONFIDENCE": "high"})
    with pytest.raises(ConfigError, match="POLICYBOT_MAX_CITATIONS must be a whole number"):
        Settings.from_env({"POLICYBOT_MAX_CITATIONS": "2.5"})


def test_the_teams_signing_key_metadata_url_must_be_https_or_on_this_machine() -> None:
    default = Settings.from_env({}).teams_openid_metadata_url
    assert default == "https://login.botframework.com/v1/.well-known/openidconfiguration"
    local = "http://127.0.0.1:8123/v1/.well-known/openidconfiguration"
    variable = "POLICYBOT_TEAMS_OPENID_METADATA_URL"
    assert Settings.from_env({variable: f" {local} "}).teams_openid_metadata_url == local
    for refused in ("http://login.example.com/openid", "login.botframework.com", "https://"):
        with pytest.raises(ConfigError, match=variable):
            Settings.from_env({variable: refused})


def test_the_upload_readers_limits_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {"POLICYBOT_UPLOAD_READ_SECONDS": "5", "POLICYBOT_UPLOAD_READ_MEMORY_MB": "256"}
    )
    assert (settings.upload_read_seconds, settings.upload_read_memory_mb) == (5.0, 256)
    with pytest.raises(ConfigError, match="POLICYBOT_UPLOAD_READ_SECONDS must be above 0"):
        Settings.from_env({"POLICYBOT_UPLOAD_READ_SECONDS": "0"})
    with pytest.raises(ConfigError, match="POLICYBOT_UPLOAD_READ_MEMORY_MB must be at least 64"):
        Settings.from_env({"POLICYBOT_UPLOAD_READ_MEMORY_MB": "16"})
