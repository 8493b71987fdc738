"""Settings: one frozen object built from the environment and passed explicitly."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: The bundled default policy documents, shipped with the project.
BUNDLED_POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"

DEFAULT_MIN_CONFIDENCE = 0.4
#: From this confidence up to POLICYBOT_MIN_CONFIDENCE the closest clauses are shown as a
#: possibly-not-it answer and the question is reviewed (bot.answering.outcome).
DEFAULT_UNCERTAIN_CONFIDENCE = 0.25
#: With an LLM configured, from this confidence up the model is asked and decides coverage
#: itself (bot.answering.grounded); below it retrieval found nothing worth a call. Low on
#: purpose: the point is to let the model rescue questions retrieval under-rates, and only
#: questions with no word in common with the policy score below it.
DEFAULT_LLM_FLOOR = 0.05
#: Where Microsoft Entra ID publishes a tenant's OpenID Connect metadata (`{tenant}`).
ENTRA_DISCOVERY = "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
#: Where Slack publishes its OpenID Connect metadata ("Sign in with Slack").
SLACK_DISCOVERY = "https://slack.com/.well-known/openid-configuration"
#: Where the Bot Framework publishes the OpenID metadata naming its token-signing keys.
BOT_FRAMEWORK_OPENID_METADATA = "https://login.botframework.com/v1/.well-known/openidconfiguration"
RETRIEVERS = ("auto", "lexical", "semantic")
#: The Microsoft 365 Agents SDK's names for the bot's Azure Bot registration (its env loader
#: reads `CONNECTIONS__<name>__SETTINGS__<key>`), and the Bot Framework SDK's names they replace.
AGENTS_SDK_CONNECTION = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
TEAMS_CLIENT_ID = AGENTS_SDK_CONNECTION + "CLIENTID"
TEAMS_CLIENT_SECRET = AGENTS_SDK_CONNECTION + "CLIENTSECRET"
TEAMS_TENANT_ID = AGENTS_SDK_CONNECTION + "TENANTID"
TEAMS_AUTH_TYPE = AGENTS_SDK_CONNECTION + "AUTHTYPE"
#: Each old Bot Framework name and what to set instead.
TEAMS_RENAMED = {
    "MicrosoftAppId": TEAMS_CLIENT_ID,
    "MicrosoftAppPassword": TEAMS_CLIENT_SECRET,
    "MicrosoftAppTenantId": TEAMS_TENANT_ID,
    "MicrosoftAppType": TEAMS_AUTH_TYPE,
}
#: The credential kinds served: an app secret, or a user-assigned managed identity.
TEAMS_AUTH_TYPES = ("ClientSecret", "UserManagedIdentity")
#: The chat platforms an admin id can belong to (`POLICYBOT_ADMINS` entries are `platform:id`).
PLATFORMS = ("slack", "teams")
#: The URL schemes of DATABASE_URL that select PostgreSQL (libpq's, and Heroku's older one).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: DATABASE_URL's one parameter that is psycopg's, not libpq's: after how many runs on a
#: connection a statement is prepared on the server (psycopg's default 5; `off`: never, for a
#: pooler in transaction mode that cannot keep them: PgBouncer before 1.21, some others).
PREPARE_PARAMETER = "prepare_threshold"
DEFAULT_PREPARE_THRESHOLD = 5


def prepare_threshold_of(url: str) -> tuple[str, int | None]:
    """(DATABASE_URL without `prepare_threshold`, for libpq; that threshold, None for `off`).
    ValueError when it is neither a whole number nor `off`."""
    if PREPARE_PARAMETER not in url:
        return url.strip(), DEFAULT_PREPARE_THRESHOLD  # a malformed URL is libpq's to refuse
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip(), DEFAULT_PREPARE_THRESHOLD
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(name, value) for name, value in query if name != PREPARE_PARAMETER]
    if len(kept) == len(query):
        return url.strip(), DEFAULT_PREPARE_THRESHOLD  # the name only inside another value
    threshold: int | None = DEFAULT_PREPARE_THRESHOLD
    for value in (value.strip().lower() for name, value in query if name == PREPARE_PARAMETER):
        if value in ("off", "no", "false", "none"):
            threshold = None  # 0 is a number: prepare on the first run, as psycopg reads it
        elif value.isdigit():
            threshold = int(value)
        else:
            raise ValueError(f"{PREPARE_PARAMETER} must be a whole number or off")
    return urlunsplit(parts._replace(query=urlencode(kept))), threshold


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
#: The settings that are secrets: never shown by `repr` or `str`, redacted from logs and
#: stored reasons (bot.redaction). OPENAI_BASE_URL's and DATABASE_URL's userinfo are too.
SECRET_FIELDS = (
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "microsoft_app_password",
    "openai_api_key",
    "admin_token",
    "entra_client_secret",
    "slack_signin_client_secret",
)


#: POLICYBOT_POLICY_TEAMS: how many names, and how long each, one sentence of a reply holds.
MAX_POLICY_TEAMS = 12
MAX_TEAM_NAME_CHARS = 60


class ConfigError(ValueError):
    """A setting has a value the bot cannot use."""


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: from `low` (itself allowed unless `above`) to
    `high`; `unit` words the message."""

    low: float
    high: float
    above: bool = False
    unit: str = ""

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        low = f"above {_shown(self.low)}" if self.above else f"at least {_shown(self.low)}"
        return f"{low} and at most {_shown(self.high)}{unit}"


def _shown(number: float) -> str:
    """1,073,741,824 rather than 1.07374e+09: limits are read by people."""
    return f"{number:,.0f}" if number == int(number) else f"{number:g}"


#: Every numeric setting (its field) with its variable and range, checked at start-up: a value
#: out of range would otherwise surface much later, and oddly ("larger than the -4.8e-06 MB
#: limit").
NUMERIC_SETTINGS: dict[str, tuple[str, Range]] = {
    "min_confidence": ("POLICYBOT_MIN_CONFIDENCE", Range(0, 1)),
    "uncertain_confidence": ("POLICYBOT_UNCERTAIN_CONFIDENCE", Range(0, 1)),
    "max_citations": ("POLICYBOT_MAX_CITATIONS", Range(1, 20)),
    "max_question_chars": ("POLICYBOT_MAX_QUESTION_CHARS", Range(10, 100_000, unit="characters")),
    "llm_timeout": ("POLICYBOT_LLM_TIMEOUT", Range(0, 300, above=True, unit="seconds")),
    "llm_retries": ("POLICYBOT_LLM_RETRIES", Range(0, 10)),
    "llm_budget": ("POLICYBOT_LLM_BUDGET", Range(0, 600, above=True, unit="seconds")),
    "llm_floor": ("POLICYBOT_LLM_FLOOR", Range(0, 1)),
    "conversation_minutes": (
        "POLICYBOT_CONVERSATION_MINUTES",
        Range(0, 1440, unit="minutes (0 turns it off)"),
    ),
    "max_upload_bytes": ("POLICYBOT_MAX_UPLOAD_BYTES", Range(1024, 2**30, unit="bytes")),
    "upload_read_seconds": (
        "POLICYBOT_UPLOAD_READ_SECONDS",
        Range(0, 3600, above=True, unit="seconds"),
    ),
    "upload_read_memory_mb": ("POLICYBOT_UPLOAD_READ_MEMORY_MB", Range(64, 65536, unit="MB")),
    "retention_days": ("POLICYBOT_RETENTION_DAYS", Range(1, 3650, unit="days")),
    "digest_chart_weeks": ("POLICYBOT_DIGEST_CHART_WEEKS", Range(0, 26, unit="weeks (0: none)")),
    "delivery_interval": (
        "POLICYBOT_DELIVERY_INTERVAL",
        Range(0, 86400, unit="seconds (0 turns it off)"),
    ),
    "console_idle_minutes": ("POLICYBOT_CONSOLE_IDLE_MINUTES", Range(1, 24 * 60, unit="minutes")),
    "console_session_hours": ("POLICYBOT_CONSOLE_SESSION_HOURS", Range(1, 24 * 30, unit="hours")),
    "serve_processes": ("POLICYBOT_SERVE_PROCESSES", Range(1, 16, unit="processes")),
}


_N = TypeVar("_N", int, float)


def _number(
    env: Mapping[str, str], name: str, default: _N, parse: Callable[[str], _N], kind: str
) -> _N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "a whole number")


def https_or_loopback_http(url: str) -> bool:
    """Whether `url` is HTTPS, or plain HTTP to this machine (tests, a local mirror): what a
    document the bot trusts for security, such as signing keys, may be fetched from."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "::1", "localhost"}


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _renamed(env: Mapping[str, str], name: str, old_name: str) -> str:
    """A Teams setting under its Agents SDK name, else under the Bot Framework name it had;
    both given and different is refused, since which one the operator meant is unknown."""
    value = env.get(name, "")
    old_value = env.get(old_name, "")
    if value and old_value and value.strip() != old_value.strip():
        raise ConfigError(
            f"{name} and {old_name} are both set, to different values: {old_name} is its old "
            f"name, so keep {name} only"
        )
    return value or old_value


def _teams_auth_type(env: Mapping[str, str]) -> str:
    given = env.get(TEAMS_AUTH_TYPE, "").strip()
    if given:
        # The SDK matches these names exactly; accept any case and hand it the exact one.
        return next((kind for kind in TEAMS_AUTH_TYPES if kind.lower() == given.lower()), given)
    # A Bot Framework managed identity is the Agents SDK's user-assigned one.
    if env.get("MicrosoftAppType", "").strip().lower() == "userassignedmsi":
        return "UserManagedIdentity"
    return "ClientSecret"


def _switch(env: Mapping[str, str], name: str) -> bool:
    """An on/off setting; anything unrecognised is an error, not silently off (or on)."""
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1 (on) or 0 (off), got {raw!r}")


def platform_id(platform: str, user_id: str) -> str:
    """`slack:U123`: how an id is written in POLICYBOT_ADMINS, and compared (any case)."""
    return f"{platform.strip().lower()}:{user_id.strip()}"


def _platform_ids(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """`slack:U123, teams:<object id>` with the spacing and the platform's case tidied; an
    entry without a known platform is kept as written for `validate` to report."""
    tidied = []
    for entry in _list(env, name):
        platform, colon, user_id = entry.partition(":")
        known = colon and platform.strip().lower() in PLATFORMS
        tidied.append(platform_id(platform, user_id) if known else entry)
    return tuple(tidied)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once at start-up (see the README for each variable)."""

    db_path: str = "policybot.db"
    #: PostgreSQL (`postgresql://` or `postgres://`, as Procfile platforms set it); "" keeps the
    #: SQLite file `db_path`. Its password is a secret: never shown, logged or stored.
    database_url: str = ""
    policies_dir: Path = BUNDLED_POLICIES_DIR
    #: Below this retrieval confidence a question counts as not answered by the policy.
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    #: From this confidence up to min_confidence an answer is "uncertain": the closest clauses,
    #: said to be possibly not what was asked, and the question goes to the policy team.
    uncertain_confidence: float = DEFAULT_UNCERTAIN_CONFIDENCE
    #: How many clauses an answer cites at most.
    max_citations: int = 3
    #: Which retriever answers: "auto" (semantic hybrid when the model package is installed,
    #: else lexical), "lexical" or "semantic".
    retriever: str = "auto"
    #: Longest question accepted, in characters; longer ones are refused with a message.
    max_question_chars: int = 2000

    # Slack
    slack_bot_token: str = ""
    slack_app_token: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str = "https://slack.com/api/"
    slack_review_channel: str = ""
    slack_policy_team: tuple[str, ...] = ()
    #: A Slack user group (id "S…") whose members also count as the policy team.
    slack_policy_team_group: str = ""

    # Microsoft Teams: the Azure Bot registration (the Agents SDK's SERVICE_CONNECTION; the
    # Bot Framework's MicrosoftApp* names still read, see TEAMS_RENAMED)
    microsoft_app_id: str = ""
    microsoft_app_password: str = ""
    microsoft_app_type: str = "MultiTenant"
    microsoft_app_tenant_id: str = ""
    #: How the bot proves itself to the connector: TEAMS_AUTH_TYPES.
    teams_auth_type: str = "ClientSecret"
    #: The old Bot Framework names found in the environment, for the start-up warning.
    teams_legacy_settings: tuple[str, ...] = ()
    #: Serve `/api/messages` without the bot's client id, so with no token check at all: for local
    #: testing only, refused unless the server listens on loopback (adapters.server).
    teams_unauthenticated: bool = False
    #: AAD object ids of the people who may run `review` in Teams.
    teams_policy_team: tuple[str, ...] = ()
    # What the Teams app package (`policybot teams-package`) says about the bot.
    teams_app_name: str = "PolicyBot"
    teams_app_description: str = (
        'Answers "may I post this?" from our social media policy, quoting its clauses.'
    )
    teams_valid_domains: tuple[str, ...] = ()
    #: Where proactive messages to the digest and review channels go (the Bot Framework's
    #: Teams service).
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    #: The Teams conversation (a channel, "19:…@thread.tacv2") questions for the policy team
    #: are posted to, as Slack's review channel.
    teams_review_conversation: str = ""
    #: Advanced: the OpenID metadata document whose JWKS signs the Bot Framework's tokens
    #: (tests point it at a loopback server).
    teams_openid_metadata_url: str = BOT_FRAMEWORK_OPENID_METADATA

    # OpenAI-compatible LLM
    openai_base_url: str = ""
    openai_api_key: str = ""
    llm_model: str = ""
    #: Seconds one request to the LLM may take.
    llm_timeout: float = 8.0
    #: Further attempts after a 429, a 5xx or a refused connection.
    llm_retries: int = 2
    #: Seconds the LLM may take for one answer, retries and waits included; then extractive.
    llm_budget: float = 20.0
    #: Retrieval confidence from which the LLM is asked, and judges coverage itself; below it
    #: the policy does not cover the question, without a call. Above min_confidence it counts
    #: as min_confidence: a question confident enough to answer is always worth asking.
    llm_floor: float = DEFAULT_LLM_FLOOR
    #: How far back a follow-up reads its conversation (the asker's own earlier turns in the
    #: same thread or chat); 0: every question is understood alone.
    conversation_minutes: float = 30.0

    # Administration
    admin_token: str = ""
    #: Who may upload and activate policies in chat, each on one platform only:
    #: "slack:U123", "teams:<AAD object id>" (`platform_id`).
    admins: tuple[str, ...] = ()
    max_upload_bytes: int = 10 * 1024 * 1024
    #: Seconds, and megabytes of memory, the child process reading one upload may take.
    upload_read_seconds: float = 60.0
    upload_read_memory_mb: int = 1024

    # The policy team's view of the log
    show_askers: bool = False
    #: The teams the not-covered reply says review open questions ("HR, IT, Legal"); empty:
    #: the owners the active policy names.
    policy_teams: tuple[str, ...] = ()
    #: Days a reply address or asker name is kept when the answer cannot be delivered.
    retention_days: int = 90
    digest_slack_channel: str = ""
    digest_teams_conversation: str = ""
    #: Weeks in the chart posted with the digest (the console's weekly chart); 0: no chart.
    digest_chart_weeks: int = 8
    #: Seconds between attempts, while `serve` runs, to send reviewed answers not yet
    #: delivered; 0 turns the background delivery off.
    delivery_interval: float = 60.0

    # The web console (adapters/web)
    #: The console's public base URL (`https://policybot.example.com`): the identity
    #: providers' redirect URIs and the Origin a change must come from. https unless loopback.
    console_url: str = ""
    #: A console session ends after this long without a request, and this long after sign-in.
    console_idle_minutes: float = 60.0
    console_session_hours: float = 12.0
    #: `policybot serve`'s processes on one port (SO_REUSEPORT), each a full server.
    serve_processes: int = 1
    #: Sign-in with Microsoft Entra ID: the organization's tenant and the app registration.
    entra_tenant_id: str = ""
    entra_client_id: str = ""
    entra_client_secret: str = ""
    #: Advanced, for tests: the OpenID metadata document (default: the tenant's own).
    entra_discovery_url: str = ""
    #: "Sign in with Slack": the workspace (team id "T…") and the Slack app's OAuth client.
    slack_team_id: str = ""
    slack_signin_client_id: str = ""
    slack_signin_client_secret: str = ""
    #: Advanced, for tests: Slack's OpenID metadata document.
    slack_discovery_url: str = SLACK_DISCOVERY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        settings = cls(
            db_path=env.get("POLICYBOT_DB", "").strip() or "policybot.db",
            database_url=env.get("DATABASE_URL", "").strip(),
            policies_dir=Path(
                env.get("POLICYBOT_POLICIES_DIR", "").strip() or BUNDLED_POLICIES_DIR
            ),
            min_confidence=_float(env, "POLICYBOT_MIN_CONFIDENCE", DEFAULT_MIN_CONFIDENCE),
            uncertain_confidence=_float(
                env, "POLICYBOT_UNCERTAIN_CONFIDENCE", DEFAULT_UNCERTAIN_CONFIDENCE
            ),
            max_citations=_int(env, "POLICYBOT_MAX_CITATIONS", 3),
            max_question_chars=_int(env, "POLICYBOT_MAX_QUESTION_CHARS", 2000),
            retriever=env.get("POLICYBOT_RETRIEVER", "").strip().lower() or "auto",
            slack_bot_token=env.get("SLACK_BOT_TOKEN", ""),
            slack_app_token=env.get("SLACK_APP_TOKEN", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            slack_api_url=env.get("SLACK_API_URL", "").strip() or "https://slack.com/api/",
            slack_review_channel=env.get("POLICYBOT_SLACK_REVIEW_CHANNEL", ""),
            slack_policy_team=_list(env, "POLICYBOT_SLACK_POLICY_TEAM"),
            slack_policy_team_group=env.get("POLICYBOT_SLACK_POLICY_TEAM_GROUP", "").strip(),
            microsoft_app_id=_renamed(env, TEAMS_CLIENT_ID, "MicrosoftAppId").strip(),
            microsoft_app_password=_renamed(env, TEAMS_CLIENT_SECRET, "MicrosoftAppPassword"),
            microsoft_app_type=env.get("MicrosoftAppType", "").strip() or "MultiTenant",
            microsoft_app_tenant_id=_renamed(env, TEAMS_TENANT_ID, "MicrosoftAppTenantId").strip(),
            teams_auth_type=_teams_auth_type(env),
            teams_legacy_settings=tuple(name for name in TEAMS_RENAMED if env.get(name, "")),
            teams_unauthenticated=_switch(env, "POLICYBOT_TEAMS_UNAUTHENTICATED"),
            teams_policy_team=_list(env, "POLICYBOT_TEAMS_POLICY_TEAM"),
            teams_app_name=env.get("POLICYBOT_TEAMS_APP_NAME", "").strip() or "PolicyBot",
            teams_app_description=env.get("POLICYBOT_TEAMS_APP_DESCRIPTION", "").strip()
            or cls.teams_app_description,
            teams_valid_domains=_list(env, "POLICYBOT_TEAMS_VALID_DOMAINS"),
            teams_service_url=env.get("POLICYBOT_TEAMS_SERVICE_URL", "").strip()
            or cls.teams_service_url,
            teams_review_conversation=env.get("POLICYBOT_TEAMS_REVIEW_CONVERSATION", "").strip(),
            teams_openid_metadata_url=env.get("POLICYBOT_TEAMS_OPENID_METADATA_URL", "").strip()
            or BOT_FRAMEWORK_OPENID_METADATA,
            openai_base_url=env.get("OPENAI_BASE_URL", ""),
            openai_api_key=env.get("OPENAI_API_KEY", ""),
            llm_model=env.get("POLICYBOT_LLM_MODEL", ""),
            llm_timeout=_float(env, "POLICYBOT_LLM_TIMEOUT", 8.0),
            llm_retries=_int(env, "POLICYBOT_LLM_RETRIES", 2),
            llm_budget=_float(env, "POLICYBOT_LLM_BUDGET", 20.0),
            llm_floor=_float(env, "POLICYBOT_LLM_FLOOR", DEFAULT_LLM_FLOOR),
            conversation_minutes=_float(env, "POLICYBOT_CONVERSATION_MINUTES", 30.0),
            admin_token=env.get("POLICYBOT_ADMIN_TOKEN", ""),
            admins=_platform_ids(env, "POLICYBOT_ADMINS"),
            max_upload_bytes=_int(env, "POLICYBOT_MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
            upload_read_seconds=_float(env, "POLICYBOT_UPLOAD_READ_SECONDS", 60.0),
            upload_read_memory_mb=_int(env, "POLICYBOT_UPLOAD_READ_MEMORY_MB", 1024),
            show_askers=env.get("POLICYBOT_SHOW_ASKERS", "").strip() in {"1", "true", "yes"},
            policy_teams=_list(env, "POLICYBOT_POLICY_TEAMS"),
            retention_days=_int(env, "POLICYBOT_RETENTION_DAYS", 90),
            digest_slack_channel=env.get("POLICYBOT_DIGEST_SLACK_CHANNEL", "").strip(),
            digest_teams_conversation=env.get("POLICYBOT_DIGEST_TEAMS_CONVERSATION", "").strip(),
            digest_chart_weeks=_int(env, "POLICYBOT_DIGEST_CHART_WEEKS", 8),
            delivery_interval=_float(env, "POLICYBOT_DELIVERY_INTERVAL", 60.0),
            console_url=env.get("POLICYBOT_CONSOLE_URL", "").strip().rstrip("/"),
            console_idle_minutes=_float(env, "POLICYBOT_CONSOLE_IDLE_MINUTES", 60.0),
            console_session_hours=_float(env, "POLICYBOT_CONSOLE_SESSION_HOURS", 12.0),
            serve_processes=_int(env, "POLICYBOT_SERVE_PROCESSES", 1),
            entra_tenant_id=env.get("POLICYBOT_ENTRA_TENANT_ID", "").strip(),
            entra_client_id=env.get("POLICYBOT_ENTRA_CLIENT_ID", "").strip(),
            entra_client_secret=env.get("POLICYBOT_ENTRA_CLIENT_SECRET", "").strip(),
            entra_discovery_url=env.get("POLICYBOT_ENTRA_DISCOVERY_URL", "").strip(),
            slack_team_id=env.get("POLICYBOT_SLACK_TEAM_ID", "").strip(),
            slack_signin_client_id=env.get("POLICYBOT_SLACK_SIGNIN_CLIENT_ID", "").strip(),
            slack_signin_client_secret=env.get("POLICYBOT_SLACK_SIGNIN_CLIENT_SECRET", "").strip(),
            slack_discovery_url=env.get("POLICYBOT_SLACK_DISCOVERY_URL", "").strip()
            or SLACK_DISCOVERY,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        for name, (variable, allowed) in NUMERIC_SETTINGS.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{variable} must be {allowed.describe()}, got {value}")
        if self.database_url and not self.database_url.lower().startswith(POSTGRES_SCHEMES):
            # The value is not repeated: it may carry a password.
            raise ConfigError(
                "DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host/name "
                "or postgres://…); leave it unset to use the SQLite file POLICYBOT_DB"
            )
        if self.database_url:
            try:
                prepare_threshold_of(self.database_url)
            except ValueError as error:
                raise ConfigError(f"DATABASE_URL's {error}") from None
        if self.retriever not in RETRIEVERS:
            raise ConfigError(f"POLICYBOT_RETRIEVER must be one of {', '.join(RETRIEVERS)}")
        if self.llm_model.strip() and not self.openai_base_url.strip():
            raise ConfigError(
                "POLICYBOT_LLM_MODEL is set but OPENAI_BASE_URL is not; "
                "for OpenAI itself use https://api.openai.com/v1"
            )
        if self.openai_base_url.strip() and not self.openai_base_url.strip().startswith(
            ("http://", "https://")
        ):
            raise ConfigError("OPENAI_BASE_URL must start with http:// or https://")
        if not self.teams_service_url.startswith(("http://", "https://")):
            raise ConfigError("POLICYBOT_TEAMS_SERVICE_URL must start with https://")
        if not https_or_loopback_http(self.teams_openid_metadata_url):
            raise ConfigError(
                "POLICYBOT_TEAMS_OPENID_METADATA_URL must be an https:// URL "
                "(plain http:// only to 127.0.0.1, ::1 or localhost)"
            )
        self._validate_microsoft_app()
        self._validate_console()
        self._validate_admins()
        self._validate_policy_teams()
        if self.teams_unauthenticated and self.microsoft_app_id:
            raise ConfigError(
                f"POLICYBOT_TEAMS_UNAUTHENTICATED is for local testing without {TEAMS_CLIENT_ID}; "
                "with the bot's client id set every Teams request is checked, so unset one of them"
            )

    def _validate_console(self) -> None:
        """The console's URL, and each identity provider either fully configured or not at
        all: half a configuration would fail only when someone tries to sign in."""
        if self.console_url and not https_or_loopback_http(self.console_url):
            raise ConfigError(
                "POLICYBOT_CONSOLE_URL must be an https:// URL (plain http:// only to "
                "127.0.0.1, ::1 or localhost), e.g. https://policybot.example.com"
            )
        if self.console_url and (urlsplit(self.console_url).path not in ("", "/")):
            raise ConfigError(
                "POLICYBOT_CONSOLE_URL is the server's base URL, without a path "
                "(the console is under /console on it)"
            )
        providers = {
            "Entra ID": (
                ("POLICYBOT_ENTRA_TENANT_ID", self.entra_tenant_id),
                ("POLICYBOT_ENTRA_CLIENT_ID", self.entra_client_id),
                ("POLICYBOT_ENTRA_CLIENT_SECRET", self.entra_client_secret),
            ),
            "Slack": (
                ("POLICYBOT_SLACK_TEAM_ID", self.slack_team_id),
                ("POLICYBOT_SLACK_SIGNIN_CLIENT_ID", self.slack_signin_client_id),
                ("POLICYBOT_SLACK_SIGNIN_CLIENT_SECRET", self.slack_signin_client_secret),
            ),
        }
        for provider, named in providers.items():
            missing = [name for name, value in named if not value]
            if missing and len(missing) < len(named):
                raise ConfigError(
                    f"Signing in to the console with {provider} needs "
                    f"{', '.join(name for name, _ in named)}; {', '.join(missing)} missing"
                )
            if not missing and not self.console_url:
                raise ConfigError(
                    f"Signing in to the console with {provider} needs POLICYBOT_CONSOLE_URL, "
                    "the base of the redirect URI registered with the provider"
                )
        for name, url in (
            ("POLICYBOT_ENTRA_DISCOVERY_URL", self.entra_discovery_url),
            ("POLICYBOT_SLACK_DISCOVERY_URL", self.slack_discovery_url),
        ):
            if url and not https_or_loopback_http(url):
                raise ConfigError(
                    f"{name} must be an https:// URL (plain http:// only to 127.0.0.1, ::1 "
                    "or localhost)"
                )

    def _validate_admins(self) -> None:
        """An id in POLICYBOT_ADMINS is trusted on its own platform only, so it must say which:
        a bare Slack id (visible to the whole workspace) would otherwise also pass for Teams."""
        for entry in self.admins:
            platform, colon, user_id = entry.partition(":")
            if colon and platform in PLATFORMS and user_id.strip():
                continue
            raise ConfigError(
                f"POLICYBOT_ADMINS entry {entry!r} does not say its platform. Each admin id "
                "counts on one platform only: write slack:<Slack user id> or "
                "teams:<Entra ID object id>, comma-separated, e.g. "
                "POLICYBOT_ADMINS=slack:U0123ABCD,teams:0f8fad5b-d9cb-469f-a165-70867728950e"
            )

    def _validate_policy_teams(self) -> None:
        """Team names are quoted to every asker a question goes unanswered for: plain names,
        nothing a chat platform reads as markup (Slack's <!channel> pings a whole channel)."""
        if len(self.policy_teams) > MAX_POLICY_TEAMS:
            raise ConfigError(
                f"POLICYBOT_POLICY_TEAMS names {len(self.policy_teams)} teams; at most "
                f"{MAX_POLICY_TEAMS}, comma-separated, e.g. POLICYBOT_POLICY_TEAMS=HR, IT, Legal"
            )
        for name in self.policy_teams:
            if (
                len(name) > MAX_TEAM_NAME_CHARS
                or not any(c.isalnum() for c in name)
                or any(not c.isprintable() or c in "<>`*_~|" for c in name)
            ):
                raise ConfigError(
                    f"POLICYBOT_POLICY_TEAMS entry {name[:MAX_TEAM_NAME_CHARS]!r} is not a team "
                    f"name: at most {MAX_TEAM_NAME_CHARS} characters, without < > ` * _ ~ | "
                    "or control characters, comma-separated, e.g. "
                    "POLICYBOT_POLICY_TEAMS=HR, IT, Legal"
                )

    def _validate_microsoft_app(self) -> None:
        """The SDK's own checks fail late and vaguely; say which setting is missing."""
        if self.teams_auth_type not in TEAMS_AUTH_TYPES:
            raise ConfigError(
                f"{TEAMS_AUTH_TYPE} must be one of {', '.join(TEAMS_AUTH_TYPES)}, "
                f"got {self.teams_auth_type[:40]!r}"
            )
        if self.teams_auth_type == "UserManagedIdentity" and not self.microsoft_app_id:
            raise ConfigError(f"{TEAMS_AUTH_TYPE}=UserManagedIdentity needs {TEAMS_CLIENT_ID}")
        app_type = self.microsoft_app_type.lower()
        if app_type not in {"multitenant", "singletenant", "userassignedmsi"}:
            raise ConfigError(
                "MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI, "
                f"got {self.microsoft_app_type!r}"
            )
        if app_type != "multitenant" and not self.microsoft_app_id:
            raise ConfigError(f"MicrosoftAppType {self.microsoft_app_type} needs {TEAMS_CLIENT_ID}")
        if app_type != "multitenant" and not self.microsoft_app_tenant_id:
            raise ConfigError(f"MicrosoftAppType {self.microsoft_app_type} needs {TEAMS_TENANT_ID}")

    def check_teams_secret(self) -> None:
        """ConfigError when the bot would speak to Teams without its secret: checked where Teams
        is served or sent to (`serve`, `digest`, `questions answer`), not at start-up, so a
        missing MicrosoftAppPassword stops only those, never `ask` or `teams-package`."""
        app_type = self.microsoft_app_type.lower()
        needs_password = self.teams_auth_type == "ClientSecret" and (
            app_type == "singletenant" or bool(self.microsoft_app_id)
        )
        if needs_password and not self.microsoft_app_password:
            raise ConfigError(
                f"{TEAMS_CLIENT_ID} (formerly MicrosoftAppId) is set, so {TEAMS_CLIENT_SECRET} "
                "(formerly MicrosoftAppPassword) is needed too"
            )

    def admin_ids(self, platform: str) -> tuple[str, ...]:
        """The POLICYBOT_ADMINS ids that count on `platform` (and on no other)."""
        prefix = platform_id(platform, "")
        return tuple(entry[len(prefix) :] for entry in self.admins if entry.startswith(prefix))

    def policy_team(self, platform: str) -> tuple[str, ...]:
        """The ids listed as the policy team on `platform` (POLICYBOT_<PLATFORM>_POLICY_TEAM)."""
        return {"slack": self.slack_policy_team, "teams": self.teams_policy_team}.get(platform, ())

    @property
    def teams_configured(self) -> bool:
        """Teams is served (`/api/messages`) with the bot's client id (every request's token
        checked) or, for local testing only, with POLICYBOT_TEAMS_UNAUTHENTICATED; otherwise
        not at all."""
        return bool(self.microsoft_app_id) or self.teams_unauthenticated

    @property
    def entra_signin(self) -> bool:
        """Whether the console offers "Sign in with Microsoft" (validated complete)."""
        return bool(self.entra_tenant_id and self.entra_client_id and self.entra_client_secret)

    @property
    def slack_signin(self) -> bool:
        """Whether the console offers "Sign in with Slack" (validated complete)."""
        return bool(self.slack_team_id and self.slack_signin_client_id)

    @property
    def entra_metadata_url(self) -> str:
        return self.entra_discovery_url or ENTRA_DISCOVERY.format(tenant=self.entra_tenant_id)

    @property
    def llm_configured(self) -> bool:
        """Grounded answers need an endpoint and a model; without them answers are extractive."""
        return bool(self.openai_base_url.strip() and self.llm_model.strip())

    @property
    def database(self) -> str:
        """What `Storage.open` opens: DATABASE_URL when set, else the SQLite file."""
        return self.database_url or self.db_path

    def with_db(self, db: str) -> Settings:
        """These settings on another database (`--db`): a PostgreSQL URL or a SQLite file,
        either one replacing DATABASE_URL."""
        if db.strip().lower().startswith(POSTGRES_SCHEMES):
            return replace(self, database_url=db.strip())
        return replace(self, db_path=db, database_url="")

    def __repr__(self) -> str:
        # Written out so the dataclass does not make one: settings end up in tracebacks, debug
        # output and the repr of everything holding them; secrets show only whether they are set.
        from bot.redaction import shown_database_url, without_credentials  # it imports this

        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in SECRET_FIELDS:
                value = "<set>" if value else ""
            elif item.name == "openai_base_url":
                value = without_credentials(value)
            elif item.name == "database_url":
                value = shown_database_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"
