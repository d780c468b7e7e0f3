"""The pipeline's bookkeeping of a batch (`count:`): Prodia's id of each image in the journal, the sends each image
may still make after a restart, and the progress a batch shows."""

from __future__ import annotations

from typing import Any

from bot.pipeline import Journal, batch_ids, least_advanced


class RecordingStore:
    """Only what `Journal` calls: the journal's updates, kept in order."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    async def update_job(self, job_id: str, **changes: Any) -> None:
        self.updates.append(changes)


def test_a_batchs_prodia_ids_are_kept_in_image_order() -> None:
    assert batch_ids(None, 1) == [""]
    assert batch_ids("job-a", 1) == ["job-a"]
    assert batch_ids(None, 3) == ["", "", ""]
    assert batch_ids("a,,c", 3) == ["a", "", "c"]  # the second image had no id yet: it is sent again
    assert batch_ids("a", 2) == ["a", ""]


def test_a_batch_shows_its_slowest_images_state() -> None:
    assert least_advanced(["generating", None, "queued"]) == "queued"
    assert least_advanced(["downloading", "generating"]) == "generating"
    assert least_advanced([None, "submitted"]) == "submitted"


async def test_a_batchs_sends_are_journaled_as_one_total() -> None:
    store = RecordingStore()
    journal = Journal(store, "job", attempts=0)  # type: ignore[arg-type]
    first, second, third = journal.image_sends(3)
    await first.spend()
    await second.spend()
    await first.spend()  # a retry
    await third.spend()
    assert [update["attempts"] for update in store.updates] == [1, 2, 3, 4]
    assert journal.attempts == 4


async def test_after_a_restart_each_image_counts_the_sends_it_may_have_had() -> None:
    # Four sends before the restart, over three images: each may have had two (one each, and one resent).
    journal = Journal(RecordingStore(), "job", attempts=4)  # type: ignore[arg-type]
    sends = journal.image_sends(3)
    assert [each.earlier for each in sends] == [2, 2, 2]
    await sends[0].spend()
    assert journal.attempts == 5  # the total goes on from the journal's
    # One image: exactly the journal's count, as before batches.
    (single,) = Journal(RecordingStore(), "job", attempts=2).image_sends(1)  # type: ignore[arg-type]
    assert single.earlier == 2
