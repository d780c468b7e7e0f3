# The bot as a container: `docker build -t imagine .` then
#   docker run --init --env-file .env -v imagine-data:/data imagine
# or `docker compose up -d` for the bot with PostgreSQL (docker-compose.yml).
#
# The base image is pinned to an exact Python release on an exact Debian release. For byte-for-byte builds pin
# its digest too (FROM python:3.11.13-slim-bookworm@sha256:...; `docker buildx imagetools inspect` prints it):
# the digest could not be looked up where this file was written (no registry reachable), so it is left out.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependencies first, exactly as locked: every file pip downloads must match a hash in requirements.lock
# (made from pyproject.toml by pip-compile; the README says how to refresh it). A source change keeps this layer.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Then the bot itself, resolving and downloading nothing more (setuptools comes from the lock too). pyproject names
# README.md as its readme; .dockerignore keeps .env and the rest out.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-deps --no-build-isolation .

# An unprivileged user that owns only the data directory.
RUN groupadd --system --gid 10001 imagine \
    && useradd --system --uid 10001 --gid imagine --home-dir /app --no-create-home --shell /usr/sbin/nologin imagine \
    && mkdir -p /data \
    && chown imagine:imagine /data

# The SQLite database lives on a volume, so it survives a new image. Set DATABASE_URL to use PostgreSQL instead.
ENV DATABASE_URL=sqlite:////data/imagine.sqlite3
# /healthz and /metrics (bot/health.py) on 127.0.0.1 inside the container, for the HEALTHCHECK below. To scrape
# /metrics from elsewhere set METRICS_HOST=0.0.0.0 and publish the port.
ENV METRICS_PORT=9464
VOLUME ["/data"]

USER 10001:10001

# Healthy while the bot is connected to Discord and its database answers; unhealthy after three failed checks
# (after a minute's grace for login and command sync). Docker shows it (docker ps); an orchestrator acts on it.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-m", "bot.healthcheck"]

# The README's run command. Settings come from the environment: docker run --env-file .env, or compose's env_file.
# docker stop sends SIGTERM: the bot hands its jobs back and exits 0 within seconds (README: Stopping). Run it under
# an init (docker run --init, compose's init: true), as any long-lived process in a container should be.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
