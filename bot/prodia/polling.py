"""When to poll a v1 job: the first version; the benchmark compares policies."""

from __future__ import annotations


class PollPolicy:
    """A fixed interval (the official client's 250 ms by default)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval

    def delay(self, model: str, elapsed: float, status: str) -> float:
        return self.interval

    def observe(self, model: str, duration: float) -> None:
        """Learn how long a job of `model` took; a fixed interval has nothing to learn."""
