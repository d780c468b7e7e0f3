"""The chaos run (`tests.ops.chaos`), once per Prodia API: 200 /imagine while Prodia (429, 5xx, dropped connections,
slow answers, failed jobs) and Discord (5xx and 429 on edits, posts and reactions; deleted replies; two restarts)
misbehave at random from seed 14; then what every job came to, as its member sees it. The README's guarantees quote
these runs (`python -m tests.ops.chaos --api all`). About a minute for the three."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from tests.ops import chaos

JOBS = 200
SEED = 14
FAULT_KINDS = (
    "prodia 429",
    "prodia 5xx",
    "prodia disconnect",
    "prodia slow",
    "prodia job_fails",
    "discord 5xx",
    "discord 429",
    "reply deleted",
)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=list(chaos.APIS))
async def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    summary = await chaos.run(JOBS, SEED, request.param, workdir=tmp_path_factory.mktemp("chaos"))
    print(chaos.describe(summary))  # the figures, for a failing test's report
    return summary


def test_faults_of_every_kind_were_injected(run: dict[str, Any]) -> None:
    assert {kind: run["faults"].get(kind, 0) for kind in FAULT_KINDS if not run["faults"].get(kind)} == {}
    assert run["faults"]["bot restart"] == len(chaos.RESTARTS_AFTER)


def test_every_job_ended(run: dict[str, Any]) -> None:
    assert run["violations"]["unfinished"] == []
    assert run["jobs"] == JOBS
    assert sum(run["outcomes"].values()) == JOBS
    assert "stuck" not in run["outcomes"]


def test_every_job_shows_its_image_or_a_sentence(run: dict[str, Any]) -> None:
    assert run["violations"]["not shown"] == []
    sentences = {outcome: n for outcome, n in run["outcomes"].items() if outcome != "image"}
    assert run["outcomes"]["image"] >= JOBS // 2  # most jobs get through: the faults are chances, not a wall
    assert sum(sentences.values()) > 0  # and some do not, and say why


def test_no_job_is_shown_twice(run: dict[str, Any]) -> None:
    assert run["violations"]["twice"] == []


def test_no_job_is_sent_to_prodia_more_often_than_the_retry_policy_allows(run: dict[str, Any]) -> None:
    assert run["violations"]["over the retry policy"] == []
    assert run["max_sends_per_job"] <= run["sends_allowed"]["in_all"]
    assert run["max_maybe_billed_per_job"] <= run["sends_allowed"]["maybe_billed"]
    assert run["max_sends_per_job"] > 1  # retries happened: the policy was put to the test


def test_the_journal_counts_every_send_the_server_saw(run: dict[str, Any]) -> None:
    assert run["violations"]["journal"] == []


def test_nothing_raised(run: dict[str, Any]) -> None:
    assert run["violations"]["errors"] == []


def test_every_guarantee_held(run: dict[str, Any]) -> None:
    assert not any(run["violations"].values()), chaos.describe(run)  # all of them at once, kinds added later too
