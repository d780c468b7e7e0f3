"""Settings.from_env: defaults, validation, secrets and the `python -m bot` start-up refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from bot.core.config import DEFAULT_BASE_URLS, PRODIA_IMAGE_HOST, ConfigError, Secret, Settings
from tests import REPO_ROOT

TOKEN_CANARY = "discord-token-CANARY-7f3a9"
KEY_CANARY = "prodia-key-CANARY-51c2e"
# Every variable Settings reads: the field names in upper case.
SETTING_VARIABLES = sorted({f.name.upper() for f in fields(Settings)})


# --- Defaults ---


def test_empty_environment_uses_v2() -> None:
    assert Settings.from_env({}).prodia_api == "v2"


def test_empty_environment_uses_v2_default_base_url() -> None:
    assert Settings.from_env({}).prodia_base_url == "https://inference.prodia.com/v2"


def test_empty_environment_uses_sqlite_database() -> None:
    assert Settings.from_env({}).database_url == "sqlite:///data/imagine.sqlite3"


def test_empty_environment_has_no_secrets() -> None:
    settings = Settings.from_env({})
    assert (settings.discord_token, settings.prodia_api_key) == (None, None)


def test_v1_picks_v1_default_base_url() -> None:
    settings = Settings.from_env({"PRODIA_API": "v1"})
    assert (settings.prodia_api, settings.prodia_base_url) == ("v1", DEFAULT_BASE_URLS["v1"])


def test_prodia_api_is_case_insensitive() -> None:
    assert Settings.from_env({"PRODIA_API": "V1"}).prodia_api == "v1"


def test_base_url_trailing_slash_is_stripped() -> None:
    settings = Settings.from_env({"PRODIA_BASE_URL": "http://127.0.0.1:8000/v2/"})
    assert settings.prodia_base_url == "http://127.0.0.1:8000/v2"


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({"PRODIA_API": "  ", "PRODIA_TIMEOUT": "", "DISCORD_TOKEN": " "})
    assert (settings.prodia_api, settings.prodia_timeout, settings.discord_token) == ("v2", 300.0, None)


def test_numbers_are_parsed() -> None:
    settings = Settings.from_env({"PRODIA_TIMEOUT": "12.5", "MAX_CONCURRENT_JOBS": "7", "QUEUE_SIZE": "0"})
    assert (settings.prodia_timeout, settings.max_concurrent_jobs, settings.queue_size) == (12.5, 7, 0)


def test_retention_days_default_to_30_and_0_keeps_forever() -> None:
    assert Settings.from_env({}).retention_days == 30
    assert Settings.from_env({"RETENTION_DAYS": "0"}).retention_days == 0


def test_sync_commands_false_is_parsed() -> None:
    assert Settings.from_env({"SYNC_COMMANDS": "no"}).sync_commands is False


def test_log_level_is_upper_cased() -> None:
    assert Settings.from_env({"LOG_LEVEL": "debug"}).log_level == "DEBUG"


# --- Invalid values name their variable ---


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PRODIA_API", "v3"),
        ("PRODIA_TIMEOUT", "abc"),
        ("PRODIA_TIMEOUT", "0"),
        ("MAX_CONCURRENT_JOBS", "0"),
        ("MAX_CONCURRENT_JOBS", "2.5"),
        ("PRODIA_BASE_URL", "ftp://x"),
        ("PRODIA_BASE_URL", "http://"),
        ("PRODIA_PROXY", "nonsense"),
        ("DATABASE_URL", "mysql://u@h/db"),
        ("LOG_LEVEL", "LOUD"),
        ("PRODIA_IMAGE_HOSTS", "images.example.com/path"),
        ("SYNC_COMMANDS", "maybe"),
        ("PRODIA_V2_MODE", "sometimes"),
        ("PRODIA_V2_MODELS", "flux-fast,midjourney"),
        ("RETENTION_DAYS", "-1"),
        ("RETENTION_DAYS", "1.5"),
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_v2_mode_and_models_defaults_and_parsing() -> None:
    default = Settings.from_env({})
    assert (default.prodia_v2_mode, default.prodia_v2_models) == ("auto", ("flux-fast", "flux-schnell", "flux-dev"))
    chosen = Settings.from_env({"PRODIA_V2_MODE": "SYNC", "PRODIA_V2_MODELS": " sdxl, flux-dev,sdxl "})
    assert (chosen.prodia_v2_mode, chosen.prodia_v2_models) == ("sync", ("sdxl", "flux-dev"))


def test_unknown_v2_model_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PRODIA_V2_MODELS": "flux-fast,midjourney"})
    assert str(caught.value).startswith(
        "PRODIA_V2_MODELS knows flux-fast, flux-schnell, flux-dev, sdxl, sd15; got midjourney"
    )


# --- Image hosts ---


def test_image_hosts_are_parsed_and_lower_cased() -> None:
    settings = Settings.from_env({"PRODIA_IMAGE_HOSTS": " CDN.Example.com , img.example.org,, "})
    assert settings.prodia_image_hosts == ("cdn.example.com", "img.example.org")


def test_allowed_image_hosts_include_api_host_prodia_host_and_extras() -> None:
    settings = Settings.from_env(
        {"PRODIA_BASE_URL": "http://LocalHost:8000/v2", "PRODIA_IMAGE_HOSTS": "CDN.Example.com"}
    )
    assert settings.allowed_image_hosts == frozenset({"localhost", PRODIA_IMAGE_HOST, "cdn.example.com"})


def test_allowed_image_hosts_default_to_api_host_and_prodia_host() -> None:
    assert Settings.from_env({}).allowed_image_hosts == frozenset({"inference.prodia.com", "images.prodia.xyz"})


# --- Secrets ---


def _settings_with_secrets() -> Settings:
    return Settings.from_env({"DISCORD_TOKEN": TOKEN_CANARY, "PRODIA_API_KEY": KEY_CANARY})


def test_secrets_are_kept_revealable() -> None:
    settings = _settings_with_secrets()
    assert (settings.discord_token.reveal(), settings.prodia_api_key.reveal()) == (TOKEN_CANARY, KEY_CANARY)


@pytest.mark.parametrize("render", [repr, str, lambda s: f"{s}"], ids=["repr", "str", "fstring"])
def test_secrets_absent_from_settings_text(render) -> None:
    shown = render(_settings_with_secrets())
    assert "CANARY" not in shown
    assert "Settings(" in shown


def test_secret_hides_itself_in_repr_and_str() -> None:
    secret = Secret(TOKEN_CANARY)
    assert TOKEN_CANARY not in repr(secret) + str(secret) + f"{secret}"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "postgresql://bot:db-pass-CANARY@db.example.com/imagine"),
        ("PRODIA_PROXY", "http://user:proxy-pass-CANARY@proxy.example.com:3128"),
    ],
)
def test_passwords_in_urls_absent_from_settings_repr(variable: str, value: str) -> None:
    assert "CANARY" not in repr(Settings.from_env({variable: value}))


# --- require_runnable ---


def test_require_runnable_names_discord_token_when_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PRODIA_API_KEY": KEY_CANARY}).require_runnable()
    assert caught.value.variable == "DISCORD_TOKEN"
    assert "DISCORD_TOKEN" in str(caught.value)


def test_require_runnable_names_prodia_api_key_when_only_it_is_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DISCORD_TOKEN": TOKEN_CANARY}).require_runnable()
    assert caught.value.variable == "PRODIA_API_KEY"
    assert "PRODIA_API_KEY" in str(caught.value)


def test_require_runnable_accepts_token_and_key() -> None:
    assert _settings_with_secrets().require_runnable() is None


# --- .env file ---


def test_from_env_none_reads_dotenv_in_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in SETTING_VARIABLES:
        # setenv first so monkeypatch restores "absent" even after load_dotenv writes into os.environ.
        monkeypatch.setenv(variable, "placeholder")
        monkeypatch.delenv(variable)
    (tmp_path / ".env").write_text(
        f"DISCORD_TOKEN={TOKEN_CANARY}\nPRODIA_API=v1\nMAX_CONCURRENT_JOBS=9\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env()
    assert settings.discord_token.reveal() == TOKEN_CANARY
    assert (settings.prodia_api, settings.prodia_base_url) == ("v1", DEFAULT_BASE_URLS["v1"])
    assert settings.max_concurrent_jobs == 9


# --- python -m bot ---


def _run_bot(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    workdir = tmp_path / "empty"
    workdir.mkdir()
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=workdir, env=env, capture_output=True, text=True, timeout=20, check=False
    )


def test_python_m_bot_without_token_fails_with_one_line_naming_discord_token(tmp_path: Path) -> None:
    result = _run_bot(tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DISCORD_TOKEN" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_python_m_bot_with_invalid_prodia_api_fails_naming_it(tmp_path: Path) -> None:
    result = _run_bot(tmp_path, PRODIA_API="v3", DISCORD_TOKEN=TOKEN_CANARY, PRODIA_API_KEY=KEY_CANARY)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PRODIA_API" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert "CANARY" not in result.stderr + result.stdout


# --- Every problem at once ---


def test_every_invalid_setting_is_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PRODIA_TIMEOUT": "soon", "LOG_LEVEL": "LOUD", "PRODIA_API": "v3", "SHARD_IDS": "1"})
    assert sorted(caught.value.variables) == ["LOG_LEVEL", "PRODIA_API", "PRODIA_TIMEOUT", "SHARD_IDS"]
    for variable in caught.value.variables:
        assert variable in str(caught.value)


def test_runnable_adds_the_missing_token_and_key_to_the_invalid_settings() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"MAX_CONCURRENT_JOBS": "0"}, runnable=True)
    assert caught.value.variables == ("DISCORD_TOKEN", "PRODIA_API_KEY", "MAX_CONCURRENT_JOBS")


def test_runnable_accepts_token_and_key() -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": TOKEN_CANARY, "PRODIA_API_KEY": KEY_CANARY}, runnable=True)
    assert settings.require_runnable() is None


def test_python_m_bot_in_an_empty_environment_names_every_missing_setting_at_once(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), "PRODIA_TIMEOUT": "soon"}
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Cannot start: ")
    for variable in ("DISCORD_TOKEN", "PRODIA_API_KEY", "PRODIA_TIMEOUT"):
        assert variable in lines[0]
    assert "Traceback" not in result.stderr


# --- Health and metrics (bot.health) ---


def test_metrics_are_off_unless_a_port_is_set() -> None:
    assert (Settings.from_env({}).metrics_port, Settings.from_env({}).metrics_host) == (None, "127.0.0.1")
    settings = Settings.from_env({"METRICS_PORT": "9464", "METRICS_HOST": "0.0.0.0"})
    assert (settings.metrics_port, settings.metrics_host) == (9464, "0.0.0.0")


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_a_metrics_port_that_is_no_port_is_named(port: str) -> None:
    with pytest.raises(ConfigError, match=r"^METRICS_PORT must be"):
        Settings.from_env({"METRICS_PORT": port})
