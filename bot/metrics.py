"""The bot's Prometheus metrics, in a registry of its own (so several bots in one process keep theirs apart).

Recorded in three places only: the pipeline's one line per job (`Outcome`: outcome, time to deliver, Prodia's
error), the pipeline's generation step (price), and the Prodia client, which reports polls and retries to this
object as its `ProdiaObserver`. The queue is read when scraped. `bot.health` serves them on METRICS_PORT.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .core.errors import ProdiaError
from .core.jobs import JobQueue
from .core.prodia import ProdiaObserver

# Seconds from a job's start (waiting in the queue included) to Discord accepting its result.
DELIVERY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0)


def error_kind(error: ProdiaError) -> str:
    """`JobTimeout` -> "job_timeout": the error's class, as a label value."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


class Metrics(ProdiaObserver):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.jobs = Counter(
            "imagine_jobs",
            "Jobs that ended, by outcome: delivered, or the message key of what the user was told",
            ["outcome"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "imagine_delivery_seconds",
            "Seconds from a job's start (its wait in the queue included) to its result accepted by Discord",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.prodia_errors = Counter(
            "imagine_prodia_errors", "Jobs Prodia gave no image, by kind of error", ["kind"], registry=registry
        )
        self.prodia_retries = Counter(
            "imagine_prodia_retries",
            "Prodia requests sent again after an error (429, 5xx, dropped), by kind of error",
            ["kind"],
            registry=registry,
        )
        self.polls = Counter("imagine_prodia_polls", "Polls of submitted jobs sent to Prodia", registry=registry)
        self.spend = Counter(
            "imagine_prodia_spend_dollars",
            "US dollars Prodia said the images made cost (v2 only; jobs without a price add nothing)",
            registry=registry,
        )
        self.content_checks = Counter(
            "imagine_content_checks",
            "Results checked by Prodia's NSFW classifier (a Prodia job each), by label; `failed`: no label came",
            ["label"],
            registry=registry,
        )
        self.queue_waiting = Gauge(
            "imagine_queue_waiting", "Jobs waiting in the bot's queue for a slot at Prodia", registry=registry
        )
        self.queue_running = Gauge(
            "imagine_queue_running", "Jobs holding a slot at Prodia (at most MAX_CONCURRENT_JOBS)", registry=registry
        )

    def watch_queue(self, queue: JobQueue) -> None:
        """Read the queue's depth whenever the metrics are scraped."""
        self.queue_waiting.set_function(lambda: queue.waiting)
        self.queue_running.set_function(lambda: queue.running)

    def job_ended(self, outcome: str, seconds: float) -> None:
        self.jobs.labels(outcome=outcome).inc()
        if outcome == "delivered":
            self.delivery_seconds.observe(seconds)

    def job_failed_at_prodia(self, error: ProdiaError) -> None:
        self.prodia_errors.labels(kind=error_kind(error)).inc()

    def content_checked(self, label: str) -> None:
        self.content_checks.labels(label=label).inc()

    def spent(self, price: float | None) -> None:
        if price is not None:
            self.spend.inc(price)

    def exposition(self) -> bytes:
        """Everything, in Prometheus's text format."""
        return generate_latest(self.registry)

    # ProdiaObserver

    def polled(self) -> None:
        self.polls.inc()

    def retrying(self, error: ProdiaError) -> None:
        self.prodia_retries.labels(kind=error_kind(error)).inc()
