"""The Teams settings under the Microsoft 365 Agents SDK's names, the Bot Framework's old names
still read with a start-up warning, and what the SDK's connection is built from."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from adapters.server import build_app
from adapters.teams.app import MULTI_TENANT_AUTHORITY, service_connection
from bot.config import ConfigError, Settings
from bot.core import PolicyBot

APP_ID = "00000000-0000-0000-0000-0000000000c1"
SECRET = "teams-client-secret-for-config-tests-51c7"
TENANT = "11111111-2222-3333-4444-555555555555"
NEW = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def test_the_agents_sdk_names_configure_the_service_connection() -> None:
    settings = Settings.from_env(
        {NEW + "CLIENTID": APP_ID, NEW + "CLIENTSECRET": SECRET, NEW + "TENANTID": TENANT}
    )
    assert (settings.microsoft_app_id, settings.microsoft_app_password) == (APP_ID, SECRET)
    assert settings.teams_legacy_settings == ()
    connection = service_connection(settings)
    assert (connection.CLIENT_ID, connection.CLIENT_SECRET) == (APP_ID, SECRET)
    assert connection.TENANT_ID == TENANT
    assert connection.AUTH_TYPE == "ClientSecret"
    # The secret is a secret under its new name too: never in the settings' repr.
    assert SECRET not in repr(settings)


def test_the_old_names_still_work_and_a_multi_tenant_bot_uses_the_bot_framework_tenant() -> None:
    settings = Settings.from_env({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": SECRET})
    assert (settings.microsoft_app_id, settings.microsoft_app_password) == (APP_ID, SECRET)
    assert settings.teams_legacy_settings == ("MicrosoftAppId", "MicrosoftAppPassword")
    assert service_connection(settings).TENANT_ID == MULTI_TENANT_AUTHORITY


def test_a_managed_identity_is_the_sdks_user_managed_identity_under_either_name() -> None:
    old = Settings.from_env(
        {
            "MicrosoftAppType": "UserAssignedMSI",
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppTenantId": TENANT,
        }
    )
    new = Settings.from_env(
        {
            NEW + "AUTHTYPE": "usermanagedidentity",
            NEW + "CLIENTID": APP_ID,
            NEW + "TENANTID": TENANT,
        }
    )
    for settings in (old, new):
        assert settings.teams_auth_type == "UserManagedIdentity"
        assert service_connection(settings).AUTH_TYPE == "UserManagedIdentity"
        settings.check_teams_secret()  # no secret for a managed identity


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {NEW + "CLIENTID": APP_ID, "MicrosoftAppId": "00000000-0000-0000-0000-0000000000c2"},
            "both set, to different values",
        ),
        ({NEW + "AUTHTYPE": "Certificate", NEW + "CLIENTID": APP_ID}, "must be one of"),
    ],
)
def test_conflicting_or_unsupported_teams_settings_are_refused_at_start(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_the_same_value_under_both_names_is_accepted() -> None:
    settings = Settings.from_env({NEW + "CLIENTID": APP_ID, "MicrosoftAppId": APP_ID})
    assert settings.microsoft_app_id == APP_ID


def test_serving_with_old_names_warns_what_to_rename_each_to(
    bot_with: Callable[..., PolicyBot], caplog: pytest.LogCaptureFixture
) -> None:
    legacy = Settings.from_env(
        {
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppPassword": SECRET,
            "MicrosoftAppType": "MultiTenant",
        }
    )
    bot = bot_with(
        microsoft_app_id=legacy.microsoft_app_id,
        microsoft_app_password=legacy.microsoft_app_password,
        teams_legacy_settings=legacy.teams_legacy_settings,
    )
    with caplog.at_level(logging.WARNING, logger="adapters.teams.app"):
        build_app(bot, host="127.0.0.1")
    warnings = [r.getMessage() for r in caplog.records if r.name == "adapters.teams.app"]
    assert len(warnings) == 3
    assert any("MicrosoftAppId" in w and NEW + "CLIENTID" in w for w in warnings)
    assert any("MicrosoftAppPassword" in w and NEW + "CLIENTSECRET" in w for w in warnings)
    assert any("MicrosoftAppType" in w and "unset it" in w for w in warnings)
    assert all(SECRET not in w for w in warnings)


def test_serving_with_the_new_names_warns_about_nothing(
    bot_with: Callable[..., PolicyBot], caplog: pytest.LogCaptureFixture
) -> None:
    bot = bot_with(microsoft_app_id=APP_ID, microsoft_app_password=SECRET)
    with caplog.at_level(logging.WARNING, logger="adapters.teams.app"):
        build_app(bot, host="127.0.0.1")
    assert [r for r in caplog.records if r.name == "adapters.teams.app"] == []
