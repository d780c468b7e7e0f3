"""The content policy's pieces without Discord or Prodia: which policy a channel gets, when a label is flagged, and
what the classifier's (undocumented) answer is read as."""

from __future__ import annotations

import json

import pytest

from bot.core.content import EXPLICIT_TERMS, LABELS, flagged, label_of, policy_for
from bot.core.errors import BadResponse
from bot.core.jobs import find_blocked


@pytest.mark.parametrize(
    ("ordinary", "age_restricted_policy", "age_restricted", "expected"),
    [
        ("block", "allow", False, "block"),
        ("spoiler", "allow", False, "spoiler"),
        ("block", "allow", True, "allow"),
        ("block", "spoiler", True, "spoiler"),
    ],
)
def test_a_channel_gets_its_kinds_policy(ordinary, age_restricted_policy, age_restricted, expected):
    assert policy_for(ordinary, age_restricted_policy, age_restricted=age_restricted) == expected


@pytest.mark.parametrize(
    ("label", "threshold", "expected"),
    [
        ("neutral", "low", False),
        ("low", "low", True),
        ("low", "medium", False),
        ("medium", "medium", True),
        ("high", "medium", True),
        ("medium", "high", False),
        ("high", "high", True),
    ],
)
def test_a_label_is_flagged_from_the_threshold_up(label, threshold, expected):
    assert flagged(label, threshold) is expected


def test_the_default_threshold_is_medium():
    assert (flagged("low"), flagged("medium")) == (False, True)


@pytest.mark.parametrize(
    ("output", "label"),
    [
        (b'{"label": "high"}', "high"),
        (b'"medium"', "medium"),
        (b"low", "low"),  # plain text
        (b"  NEUTRAL \n", "neutral"),  # any case, spaces around
        (b'{"labels": "low"}', "low"),
        (json.dumps([{"label": "neutral", "score": 0.1}, {"label": "high", "score": 0.8}]).encode(), "high"),
        (json.dumps([{"label": "medium", "score": 0.7}, {"label": "low", "score": 0.3}]).encode(), "medium"),
        (json.dumps({"label": [{"label": "low", "score": 1}]}).encode(), "low"),
    ],
)
def test_the_classifiers_answer_is_read_in_each_likely_shape(output, label):
    assert label_of(output) == label


@pytest.mark.parametrize(
    "output",
    [b'{"label": "nsfw"}', b"{}", b"[]", b'{"label": 3}', b"", b'[{"score": 1}]', b"\xff\xfe", b'"safe"'],
)
def test_an_answer_without_a_known_label_is_a_bad_response(output):
    with pytest.raises(BadResponse, match="no known label"):
        label_of(output)


def test_the_labels_run_from_least_to_most_explicit():
    assert LABELS == ("neutral", "low", "medium", "high")


@pytest.mark.parametrize("prompt", ["A NUDE study", "ｎｕｄｅ", "nu\u200bde", "голая натура", "порно"])
def test_explicit_terms_match_after_folding(prompt):
    assert find_blocked(prompt, EXPLICIT_TERMS) is not None


@pytest.mark.parametrize("prompt", ["a nuanced portrait", "a sexton in a church", "a body of water", "a kiss"])
def test_ordinary_words_are_not_explicit_terms(prompt):
    assert find_blocked(prompt, EXPLICIT_TERMS) is None


def test_a_label_without_a_numeric_score_counts_as_scoring_nothing():
    scored = [{"label": "high"}, {"label": "neutral", "score": "n/a"}, {"label": "low", "score": 0.5}]
    assert label_of(json.dumps(scored).encode()) == "low"
