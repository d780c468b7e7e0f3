"""Each numeric setting's range, exactly: its lowest and highest value taken, the next ones out refused in the
operator's sentence, a fraction refused where a whole number is wanted (and taken where it is not), its default
when unset; each flag's spellings and default; each log level; the lists' refusals naming every bad entry."""

from __future__ import annotations

import pytest

from bot.core.config import ConfigError, Settings

# variable: (attribute, lowest, highest, whole numbers only)
RANGES = {
    "PRODIA_TIMEOUT": ("prodia_timeout", 1, 3600, False),
    "PRODIA_MAX_RETRIES": ("prodia_max_retries", 0, 20, True),
    "PRODIA_RETRY_DELAY": ("prodia_retry_delay", 0, 60, False),
    "PRODIA_POLL_INTERVAL": ("prodia_poll_interval", 0.01, 30, False),
    "PRODIA_MAX_POLLS_PER_SECOND": ("prodia_max_polls_per_second", 1, 10_000, False),
    "MAX_IMAGE_BYTES": ("max_image_bytes", 1024, 100 * 1024 * 1024, True),
    "MAX_CONCURRENT_JOBS": ("max_concurrent_jobs", 1, 1000, True),
    "QUEUE_SIZE": ("queue_size", 0, 100_000, True),
    "USER_MAX_JOBS": ("user_max_jobs", 1, 100, True),
    "USER_COOLDOWN": ("user_cooldown", 0, 3600, False),
    "DM_DAILY_CAP": ("dm_daily_cap", 0, 1_000_000, True),
    "USER_DAILY_CAP": ("user_daily_cap", 0, 1_000_000, True),
    "PROGRESS_INTERVAL": ("progress_interval", 0, 60, False),
    "JOB_LEASE_SECONDS": ("job_lease_seconds", 1, 86400, False),
    "MODEL_REFRESH_INTERVAL": ("model_refresh_interval", 0, 7 * 86400, False),
    "RETENTION_DAYS": ("retention_days", 0, 36500, True),
    "SHARD_COUNT": ("shard_count", 1, 100_000, True),
    "METRICS_PORT": ("metrics_port", 1, 65535, True),
}
UNSET_DEFAULTS = {name for name in RANGES if name not in ("SHARD_COUNT", "METRICS_PORT")}  # those two: None


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return str(caught.value)


def shown(value: float) -> str:
    return f"{value:g}"


@pytest.mark.parametrize("name", RANGES)
def test_a_setting_takes_its_lowest_and_highest_value(name: str) -> None:
    attribute, low, high, _ = RANGES[name]
    assert getattr(Settings.from_env({name: shown(low)}), attribute) == low
    assert getattr(Settings.from_env({name: str(high)}), attribute) == high


@pytest.mark.parametrize("name", RANGES)
def test_a_setting_refuses_the_values_just_outside_its_range(name: str) -> None:
    _, low, high, integer = RANGES[name]
    step = 1 if integer else 0.001 if low < 1 else 0.5
    for outside in (low - step, high + step):
        value = str(int(outside)) if integer else str(round(outside, 3))
        assert f"{name} must be between {shown(low)} and {shown(high)}, got {value}" in refusal({name: value})


@pytest.mark.parametrize("name", RANGES)
def test_a_whole_number_setting_refuses_a_fraction_and_the_others_take_one(name: str) -> None:
    attribute, low, high, integer = RANGES[name]
    fraction = low + 0.5 if high - low >= 1 else low + 0.005
    if integer:
        assert f"{name} must be a whole number, got '{fraction:g}'" in refusal({name: f"{fraction:g}"})
    else:
        assert getattr(Settings.from_env({name: f"{fraction:g}"}), attribute) == pytest.approx(fraction)


@pytest.mark.parametrize("name", sorted(UNSET_DEFAULTS))
def test_an_unset_setting_takes_its_default(name: str) -> None:
    attribute = RANGES[name][0]
    default = getattr(Settings, attribute)
    assert getattr(Settings.from_env({}), attribute) == default
    assert getattr(Settings.from_env({name: "  "}), attribute) == default  # blank counts as unset


def test_the_defaults_are_the_documented_ones() -> None:  # README's Settings table
    settings = Settings.from_env({})
    assert (settings.prodia_timeout, settings.prodia_max_retries, settings.prodia_retry_delay) == (300, 5, 1.0)
    assert (settings.max_concurrent_jobs, settings.queue_size, settings.user_max_jobs) == (4, 50, 2)
    assert (settings.user_cooldown, settings.dm_daily_cap, settings.user_daily_cap) == (5.0, 20, 0)
    assert (settings.progress_interval, settings.retention_days, settings.max_image_bytes) == (2, 30, 20 * 2**20)
    assert (settings.shard_count, settings.metrics_port) == (None, None)


@pytest.mark.parametrize(
    ("name", "attribute", "default"),
    [("SYNC_COMMANDS", "sync_commands", True), ("LOG_JSON", "log_json", False), ("LOG_PROMPTS", "log_prompts", True)],
)
def test_a_flag_reads_every_spelling_and_has_its_default(name: str, attribute: str, default: bool) -> None:
    assert getattr(Settings.from_env({}), attribute) is default
    for yes in ("true", "TRUE", "True", "1", "yes", "YES"):
        assert getattr(Settings.from_env({name: yes}), attribute) is True
    for no in ("false", "FALSE", "0", "no", "No"):
        assert getattr(Settings.from_env({name: no}), attribute) is False
    assert f"{name} must be true or false, got 'maybe'" in refusal({name: "maybe"})


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "error", "Warning"])
def test_every_log_level_is_taken_in_any_case(level: str) -> None:
    assert Settings.from_env({"LOG_LEVEL": level}).log_level == level.upper()


def test_the_default_log_level_is_info() -> None:
    assert Settings.from_env({}).log_level == "INFO"


def test_image_hosts_with_a_path_or_a_space_are_refused_each_named() -> None:
    message = refusal({"PRODIA_IMAGE_HOSTS": "good.example, bad host, cdn.example/images"})
    assert "PRODIA_IMAGE_HOSTS must list host names only, got 'bad host', 'cdn.example/images'" in message
    assert message.count("PRODIA_IMAGE_HOSTS") == 1  # one sentence names them all
    assert Settings.from_env({"PRODIA_IMAGE_HOSTS": " A.Example ,b.example"}).prodia_image_hosts == (
        "a.example",
        "b.example",
    )


def test_unknown_v2_models_are_each_named() -> None:
    message = refusal({"PRODIA_V2_MODELS": "flux-dev, nope, nada"})
    assert message.split("PRODIA_V2_MODELS knows ")[1].split("; got ")[1].startswith("nope, nada")


def test_a_base_url_loses_only_its_trailing_slashes() -> None:
    assert Settings.from_env({"PRODIA_BASE_URL": "http://example.com/X//"}).prodia_base_url == "http://example.com/X"
