"""The queue's places for a batch (`count:` images, `JobQueue.reserve(count)`): each image takes one of them, the
images never run give theirs back, and the queue is full for the next request exactly while they are held. The rest
of jobs.py is in test_jobs.py."""

from __future__ import annotations

import pytest

from bot.core.jobs import JobQueue, QueueFull


def test_each_image_of_a_batch_takes_one_of_its_places() -> None:
    queue = JobQueue(running=1, waiting=2)
    place = queue.reserve(3)
    with pytest.raises(QueueFull):
        queue.check_room()
    assert [place.take() for _ in range(4)] == [True, True, True, False]  # three images, three places
    assert (queue.reserved, place.held) == (0, False)


def test_the_places_of_images_never_run_are_given_back() -> None:
    queue = JobQueue(running=1, waiting=2)
    place = queue.reserve(3)
    assert place.take()
    place.release()  # the other two images ended before their turn
    assert (queue.reserved, place.held) == (0, False)
    queue.check_room(3)  # room for three again
