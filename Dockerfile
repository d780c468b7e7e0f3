# The bot as a container: `docker build -t imagine .` then `docker run --env-file .env -v imagine-data:/data imagine`,
# or `docker compose up -d` for the bot with PostgreSQL (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs (pyproject names README.md as its readme); .dockerignore keeps .env and the rest out.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install .

# An unprivileged user that owns only the data directory.
RUN groupadd --system --gid 10001 imagine \
    && useradd --system --uid 10001 --gid imagine --home-dir /app --no-create-home --shell /usr/sbin/nologin imagine \
    && mkdir -p /data \
    && chown imagine:imagine /data

# The SQLite database lives on a volume, so it survives a new image. Set DATABASE_URL to use PostgreSQL instead.
ENV DATABASE_URL=sqlite:////data/imagine.sqlite3
VOLUME ["/data"]

USER 10001:10001

# The README's run command. Settings come from the environment: docker run --env-file .env, or compose's env_file.
CMD ["python", "-m", "bot"]
