"""`python -m bot.healthcheck`: the container's HEALTHCHECK. Exit 0 if the bot's /healthz (METRICS_PORT) answers
200, else 1; either way one line saying why, which `docker inspect` shows. Standard library only (the slim
image has no curl), and no proxy: the bot is on this machine.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from .core.config import ConfigError, Settings

TIMEOUT = 5.0  # seconds; the bot's own database check gives up after 2
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # listening everywhere: ask on the loopback


def healthz_url(settings: Settings) -> str | None:
    if settings.metrics_port is None:
        return None
    host = WILDCARDS.get(settings.metrics_host, settings.metrics_host)
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{settings.metrics_port}/healthz"


def check(url: str) -> tuple[bool, str]:
    """(healthy, the reason in one line) from one GET of `url`."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT) as response:
            return True, response.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read().decode(errors='replace').strip()}"
    except OSError as exc:  # refused, timed out, unknown host
        reason = getattr(exc, "reason", exc)
        return False, f"no answer from {url} ({reason})"


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    url = healthz_url(settings)
    if url is None:
        print("unhealthy: METRICS_PORT is not set, so the bot serves no /healthz to check", file=sys.stderr)
        return 1
    healthy, reason = check(url)
    print(reason, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
