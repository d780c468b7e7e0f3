"""Settings.from_env: sharding (SHARD_COUNT, SHARD_IDS), every setting read from its variable, the one-line refusal an
operator reads for each invalid one, and secrets compared without being shown. The rest is in test_config.py."""

from __future__ import annotations

import pytest

from bot.core.config import ConfigError, Secret, Settings

HINT = "(set it in the environment or in .env; see .env.example)"


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return str(caught.value)


def test_shard_ids_are_read_sorted_once_each() -> None:
    settings = Settings.from_env({"SHARD_COUNT": "4", "SHARD_IDS": " 3, 1,1,, 0"})
    assert (settings.shard_count, settings.shard_ids) == (4, (0, 1, 3))


def test_a_shard_count_alone_runs_every_shard_of_it() -> None:
    settings = Settings.from_env({"SHARD_COUNT": "2"})
    assert (settings.shard_count, settings.shard_ids) == (2, ())
    assert (Settings.from_env({}).shard_count, Settings.from_env({}).shard_ids) == (None, ())


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"SHARD_IDS": "1"}, "SHARD_IDS needs SHARD_COUNT to be set too"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "one,2"}, "SHARD_IDS must be comma-separated shard numbers, got 'one,2'"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "1,4"}, "SHARD_IDS must be numbers from 0 to 3, got '1,4'"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "-1"}, "SHARD_IDS must be numbers from 0 to 3, got '-1'"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": " , "}, "SHARD_IDS must be numbers from 0 to 3, got ','"),
    ],
)
def test_shard_ids_that_cannot_be_run_are_refused_saying_why(env: dict[str, str], said: str) -> None:
    assert refusal(env) == f"{said} {HINT}"


def test_the_last_shard_is_a_shard() -> None:
    assert Settings.from_env({"SHARD_COUNT": "4", "SHARD_IDS": "3"}).shard_ids == (3,)
    assert Settings.from_env({"SHARD_COUNT": "1", "SHARD_IDS": "0"}).shard_ids == (0,)


def test_shard_ids_with_an_invalid_shard_count_name_only_the_count() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SHARD_COUNT": "0", "SHARD_IDS": "1"})
    assert caught.value.variables == ("SHARD_COUNT",)


def test_several_problems_are_listed_in_one_line_in_the_order_found() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SHARD_COUNT": "4", "SHARD_IDS": "9", "LOG_LEVEL": "LOUD"})
    assert str(caught.value) == (
        "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'; "
        "SHARD_IDS must be numbers from 0 to 3, got '9'"
        " (set them in the environment or in .env; see .env.example)"
    )
    assert (caught.value.variable, caught.value.variables) == ("LOG_LEVEL", ("LOG_LEVEL", "SHARD_IDS"))


def test_secrets_compare_by_value_without_showing_it() -> None:
    assert Secret("abc") == Secret("abc")
    assert Secret("abc") != Secret("abd")
    assert Secret("abc") != "abc"  # a secret is not its text
    assert len({Secret("abc"), Secret("abc"), Secret("abd")}) == 2
    env = {"DISCORD_TOKEN": "t", "PRODIA_API_KEY": "k"}
    assert Settings.from_env(env) == Settings.from_env(env)
    assert Settings.from_env(env) != Settings.from_env({**env, "PRODIA_API_KEY": "other"})


def test_the_missing_token_and_key_are_refused_saying_where_to_get_them() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({}, runnable=True)
    assert str(caught.value) == (
        "DISCORD_TOKEN is not set: copy your bot's token from the Discord developer portal; "
        "PRODIA_API_KEY is not set: use your Prodia key, or any value with the local server "
        "(python -m devtools.local_prodia) (set them in the environment or in .env; see .env.example)"
    )


def test_settings_show_every_setting_but_no_secret_nor_password() -> None:
    settings = Settings.from_env(
        {"DISCORD_TOKEN": "tok-CANARY", "PRODIA_API": "v1", "DATABASE_URL": "postgresql://bot:pw-CANARY@db/imagine"}
    )
    shown = repr(settings)
    assert shown.startswith("Settings(discord_token=Secret('********'), ")
    assert "prodia_api='v1'" in shown and "database_url='postgresql://bot:***@db/imagine'" in shown
    assert "CANARY" not in shown


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"PRODIA_TIMEOUT": "soon"}, "PRODIA_TIMEOUT must be a number, got 'soon'"),
        ({"MAX_CONCURRENT_JOBS": "2.5"}, "MAX_CONCURRENT_JOBS must be a whole number, got '2.5'"),
        ({"METRICS_PORT": "65536"}, "METRICS_PORT must be between 1 and 65535, got 65536"),
        ({"NSFW_THRESHOLD": "Extreme"}, "NSFW_THRESHOLD must be low, medium or high, got 'extreme'"),
    ],
)
def test_a_setting_that_is_no_valid_value_is_refused_saying_what_it_must_be(env: dict[str, str], said: str) -> None:
    assert refusal(env) == f"{said} {HINT}"


def test_the_top_of_a_range_is_in_it() -> None:
    assert Settings.from_env({"METRICS_PORT": "65535"}).metrics_port == 65535
    assert Settings.from_env({"NSFW_THRESHOLD": "HIGH"}).nsfw_threshold == "high"


# Every setting read from its variable (a value other than its default), and its bounds: what an operator sets is
# what the bot runs with.
READ = [
    ("PRODIA_TIMEOUT", "45.5", "prodia_timeout", 45.5),
    ("PRODIA_MAX_RETRIES", "7", "prodia_max_retries", 7),
    ("PRODIA_RETRY_DELAY", "0.25", "prodia_retry_delay", 0.25),
    ("PRODIA_POLL_INTERVAL", "0.5", "prodia_poll_interval", 0.5),
    ("PRODIA_MAX_POLLS_PER_SECOND", "12", "prodia_max_polls_per_second", 12.0),
    ("MAX_IMAGE_BYTES", "2048", "max_image_bytes", 2048),
    ("MAX_CONCURRENT_JOBS", "9", "max_concurrent_jobs", 9),
    ("QUEUE_SIZE", "0", "queue_size", 0),
    ("USER_MAX_JOBS", "3", "user_max_jobs", 3),
    ("USER_COOLDOWN", "12.5", "user_cooldown", 12.5),
    ("DM_DAILY_CAP", "4", "dm_daily_cap", 4),
    ("USER_DAILY_CAP", "6", "user_daily_cap", 6),
    ("NSFW_THRESHOLD", "Low", "nsfw_threshold", "low"),
    ("PROGRESS_INTERVAL", "0", "progress_interval", 0.0),
    ("JOB_LEASE_SECONDS", "90", "job_lease_seconds", 90.0),
    ("MODEL_REFRESH_INTERVAL", "0", "model_refresh_interval", 0.0),
    ("RETENTION_DAYS", "3", "retention_days", 3),
    ("LOG_LEVEL", "warning", "log_level", "WARNING"),
    ("LOG_LEVEL", "critical", "log_level", "CRITICAL"),
    ("SYNC_COMMANDS", "no", "sync_commands", False),
    ("LOG_JSON", "1", "log_json", True),
    ("LOG_JSON", "YES", "log_json", True),
    ("LOG_PROMPTS", "0", "log_prompts", False),
    ("METRICS_HOST", "0.0.0.0", "metrics_host", "0.0.0.0"),
    ("PRODIA_PROXY", "https://proxy.example:3128/", "prodia_proxy", "https://proxy.example:3128"),
    ("DATABASE_URL", "postgres://bot@db/imagine", "database_url", "postgres://bot@db/imagine"),
    ("SHARD_COUNT", "100000", "shard_count", 100_000),
]


@pytest.mark.parametrize(("variable", "raw", "field", "value"), READ, ids=[f"{r[0]}={r[1]}" for r in READ])
def test_every_setting_is_read_from_its_variable(variable: str, raw: str, field: str, value: object) -> None:
    settings = Settings.from_env({variable: raw})
    assert getattr(settings, field) == value != getattr(Settings(), field)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"PRODIA_API": "v3"}, "PRODIA_API must be v1 or v2, got 'v3'"),
        ({"PRODIA_V2_MODE": "later"}, "PRODIA_V2_MODE must be sync, async or auto, got 'later'"),
        ({"LOG_JSON": "maybe"}, "LOG_JSON must be true or false, got 'maybe'"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with sqlite:/// or postgresql://"),
        ({"PRODIA_PROXY": "socks5://p"}, "PRODIA_PROXY must be a URL starting with http:// or https://"),
        (
            {"PRODIA_IMAGE_HOSTS": "a.example, b.example/x"},
            "PRODIA_IMAGE_HOSTS must list host names only, got 'b.example/x'",
        ),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'"),
        ({"SHARD_COUNT": "100001"}, "SHARD_COUNT must be between 1 and 100000, got 100001"),
        ({"METRICS_PORT": "0"}, "METRICS_PORT must be between 1 and 65535, got 0"),
    ],
)
def test_each_invalid_setting_is_refused_saying_what_it_must_be(env: dict[str, str], said: str) -> None:
    assert refusal(env) == f"{said} {HINT}"
