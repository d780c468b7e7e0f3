"""Operations, read rather than run (no Docker here): the image, compose, .env.example and the console script."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests import REPO_ROOT

ROOT = REPO_ROOT  # the repository, whose files these tests read


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    lines = [line for line in read("Dockerfile").splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            instructions.append((instruction.upper(), arguments.strip()))
    return instructions


def last(instruction: str) -> str:
    found = [arguments for name, arguments in dockerfile_instructions() if name == instruction]
    assert found, f"the Dockerfile has no {instruction}"
    return found[-1]


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def readme_run_command() -> list[str]:
    """The README's run command: the last step of the quick start's first shell line."""
    line = next(line for line in read("README.md").splitlines() if "-m bot" in line and not line.startswith("#"))
    command = shlex.split(line.split("&&")[-1])
    return [Path(command[0]).name, *command[1:]]  # .venv/bin/python -> python


def test_the_image_runs_the_readmes_command():
    assert exec_form(last("CMD")) == ["python", "-m", "bot"]
    assert readme_run_command() == ["python", "-m", "bot"]
    assert "ENTRYPOINT" not in {name for name, _ in dockerfile_instructions()}


def test_the_image_is_an_exact_python_311_slim_and_installs_the_package():
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM"
    # An exact release on an exact Debian, not a moving tag (a digest may follow).
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", instructions[0][1])
    runs = [arguments for name, arguments in instructions if name == "RUN"]
    assert any(re.search(r"\bpip install\b.* \.(\s|$)", run) for run in runs)
    copied = " ".join(arguments for name, arguments in instructions if name == "COPY")
    pyproject = tomllib.loads(read("pyproject.toml"))
    for needed in ("pyproject.toml", pyproject["project"]["readme"], "bot", "cogs"):
        assert needed in copied, f"the image does not copy {needed}"


def test_the_image_installs_exactly_the_locked_dependencies():
    instructions = dockerfile_instructions()
    runs = [(index, arguments) for index, (name, arguments) in enumerate(instructions) if name == "RUN"]
    (locked,) = [(i, run) for i, run in runs if "requirements.lock" in run]
    assert re.search(r"\bpip install --require-hashes --no-deps -r requirements\.lock$", locked[1])
    (package,) = [(i, run) for i, run in runs if re.search(r"\bpip install\b.* \.(\s|$)", run)]
    assert "--no-deps" in package[1].split() and "--no-build-isolation" in package[1].split()  # nothing unlocked
    copies = [i for i, (name, arguments) in enumerate(instructions) if name == "COPY" and arguments.startswith("bot")]
    assert locked[0] < copies[0] < package[0]  # a source change keeps the dependency layer


def locked_packages() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock as {normalized name: (version, [sha256 hashes])}."""
    joined = re.sub(r"\\\n", " ", read("requirements.lock"))
    locked = {}
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pin, *options = line.split()
            name, _, version = pin.partition("==")
            assert version, f"requirements.lock: {pin} is not pinned with =="
            hashes = [option.removeprefix("--hash=sha256:") for option in options if option.startswith("--hash=")]
            locked[re.sub(r"[-_.]+", "-", name).lower()] = (version, hashes)
    return locked


def test_the_lock_pins_every_dependency_and_build_requirement_with_hashes():
    from packaging.requirements import Requirement

    pyproject = tomllib.loads(read("pyproject.toml"))
    locked = locked_packages()
    for listed in [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]:
        requirement = Requirement(listed)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in locked, f"{requirement.name} is in pyproject.toml but not in requirements.lock: re-lock"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), f"requirements.lock has {name} {version}"
    for name, (_, hashes) in locked.items():
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), f"{name} has no sha256 hash"


def test_the_image_checks_its_health_on_the_metrics_port():
    healthcheck = last("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert exec_form(command.strip()) == ["python", "-m", "bot.healthcheck"]
    assert "--start-period=" in options
    env = " ".join(arguments for name, arguments in dockerfile_instructions() if name == "ENV")
    assert re.search(r"\bMETRICS_PORT=\d+\b", env)


def compose_service(name: str) -> str:
    match = re.search(rf"^  {name}:\n((?:    .*\n|\s*\n)*)", read("docker-compose.yml"), re.MULTILINE)
    assert match, f"docker-compose.yml has no service {name}"
    return match.group(1)


def test_compose_stops_the_bot_cleanly_and_restarts_it_a_bounded_number_of_times():
    from bot.shutdown import STOP_TIMEOUT

    bot = compose_service("bot")
    assert re.search(r"^    init: true\b", bot, re.MULTILINE)
    grace = re.search(r"^    stop_grace_period: (\d+)s$", bot, re.MULTILINE)
    assert grace and int(grace.group(1)) > STOP_TIMEOUT
    restart = re.search(r"^    restart: on-failure:(\d+)$", bot, re.MULTILINE)
    assert restart and 1 <= int(restart.group(1)) <= 10
    assert re.search(r"^      METRICS_PORT: \$\{METRICS_PORT:-\d+\}$", bot, re.MULTILINE)  # even if .env empties it


def test_the_image_runs_as_a_non_root_user():
    user = last("USER").split(":")[0]
    assert user not in {"root", "0", ""}
    names = [name for name, _ in dockerfile_instructions()]
    assert "RUN" not in names[names.index("USER") :]  # nothing after the switch runs as root again


def test_the_database_is_on_a_volume_at_data():
    env = " ".join(arguments for name, arguments in dockerfile_instructions() if name == "ENV")
    assert "DATABASE_URL=sqlite:////data/imagine.sqlite3" in env
    assert "/data" in exec_form(last("VOLUME"))
    assert any("chown" in arguments and "/data" in arguments for name, arguments in dockerfile_instructions())


def test_secrets_and_local_state_stay_out_of_the_build_context():
    ignored = {line.strip() for line in read(".dockerignore").splitlines() if line.strip() and not line.startswith("#")}
    assert {".env", ".git", ".venv", "data"} <= ignored
    assert not ignored & {"bot", "cogs", "pyproject.toml", "README.md"}


def test_compose_runs_the_bot_against_postgres():
    compose = read("docker-compose.yml")
    assert re.search(r"^  bot:\n(    .*\n|\n)*?    env_file: \.env$", compose, re.MULTILINE)
    assert re.search(r"^  postgres:\n    image: postgres:16$", compose, re.MULTILINE)
    assert re.search(r"DATABASE_URL: postgresql://\S+@postgres:5432/\S+", compose)
    assert re.search(r"^      - \S+:/var/lib/postgresql/data$", compose, re.MULTILINE)


# --- .env.example documents every setting ---


def config_variables() -> list[str]:
    names = re.findall(r"_(?:text|number)\(\s*env,\s*\"([A-Z_]+)\"", read("bot/core/config.py"))
    assert len(names) > 10
    return sorted(set(names))


def documented(variable: str) -> bool:
    """Assigned in .env.example, and the assignment (or the group of assignments it belongs to) follows a comment."""
    lines = read(".env.example").splitlines()
    index = next((i for i, line in enumerate(lines) if line.startswith(f"{variable}=")), None)
    if index is None:
        return False
    while index > 0 and re.match(r"[A-Z_]+=", lines[index - 1]):
        index -= 1
    return index > 0 and lines[index - 1].startswith("#")


@pytest.mark.parametrize(
    "variable",
    config_variables(),
)
def test_env_example_documents_every_setting(variable):
    assert documented(variable), f"{variable} is read by bot/core/config.py but not documented in .env.example"


# --- The console script ---


def test_the_console_script_points_at_main():
    scripts = tomllib.loads(read("pyproject.toml"))["project"]["scripts"]
    assert scripts["imagine-bot"] == "bot.__main__:main"
    module, _, attribute = scripts["imagine-bot"].partition(":")
    main = getattr(importlib.import_module(module), attribute)
    assert callable(main)


def test_main_without_a_token_stops_with_one_sentence(monkeypatch, tmp_path, capsys):
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)  # no .env here
    for name in config_variables():
        monkeypatch.delenv(name, raising=False)
    assert main([]) == 2
    assert "DISCORD_TOKEN" in capsys.readouterr().err


def runnable_environment(monkeypatch, tmp_path) -> None:
    """Only the settings `python -m bot` needs (canary secrets), in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    for name in config_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISCORD_TOKEN", "canary-token-5d1e")
    monkeypatch.setenv("PRODIA_API_KEY", "canary-key-5d1e")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.sqlite3'}")


def test_main_without_a_way_to_discord_stops_with_one_sentence(monkeypatch, tmp_path, capsys):
    import discord.http

    from bot.__main__ import main

    runnable_environment(monkeypatch, tmp_path)
    monkeypatch.setattr(discord.http.Route, "BASE", "http://127.0.0.1:9/api/v10")  # nothing listens there
    assert main([]) == 1
    err = capsys.readouterr().err
    assert "Discord could not be reached" in err
    assert "Traceback" not in err and "canary" not in err


def test_main_with_its_metrics_port_taken_stops_with_one_sentence(monkeypatch, tmp_path, capsys):
    import socket

    from bot.__main__ import main

    runnable_environment(monkeypatch, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("METRICS_PORT", str(port))
        assert main([]) == 2  # before it tries Discord
    err = capsys.readouterr().err
    assert f"Cannot start: METRICS_PORT {port} is already in use on 127.0.0.1: pick another port" in err
    assert "Traceback" not in err and "canary" not in err


def _modules_loaded_by(code: str) -> set[str]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def test_the_core_and_the_local_server_load_no_discord():
    loaded = _modules_loaded_by(
        "import bot.core.catalog, bot.core.jobs, bot.core.messages, bot.core.prodia, bot.core.store\n"
        "from bot import Settings\n"
        "import devtools.local_prodia.__main__"
    )
    assert "bot.core.prodia.v2" in loaded and "devtools.local_prodia.server" in loaded
    assert not {m for m in loaded if m == "discord" or m.startswith("discord.")}


def test_create_bot_is_still_importable_from_the_package():
    assert "discord" in _modules_loaded_by("from bot import create_bot, ImagineBot")


def test_the_docker_image_copies_no_dev_tools():
    copied = [args for instruction, args in dockerfile_instructions() if instruction == "COPY"]
    assert not any("devtools" in args or "tests" in args for args in copied)
