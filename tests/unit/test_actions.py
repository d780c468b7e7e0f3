"""The rules of actions on a result that need no Discord: who may act, and what an edit form's values become."""

from __future__ import annotations

import pytest

from bot.core.errors import InvalidInput
from bot.core.store import GuildSettings, ResultRecord
from bot.pipeline import megabytes
from cogs.actions import Actor, edited_request, may_act

STORED = {"prompt": "a red fox", "negative_prompt": "blur", "model": None, "seed": 42}
RESULT = ResultRecord(1, guild_id=10, channel_id=20, user_id=100, request=STORED, created_at=0.0)


@pytest.mark.parametrize(
    ("actor", "policy", "action", "allowed"),
    [
        (Actor(100, 10, 20, False), "requester", "delete", True),  # the requester
        (Actor(200, 10, 20, True), "requester", "delete", True),  # Manage Messages
        (Actor(200, 10, 20, False), "requester", "reroll", False),
        (Actor(200, 10, 20, False), "anyone", "vary", True),
        (Actor(200, 10, 20, False), "anyone", "delete", False),  # delete: never "anyone"
        (Actor(200, None, 20, False), "anyone", "reroll", False),  # a DM: its requester only
    ],
)
def test_who_may_act(actor, policy, action, allowed):
    assert may_act(actor, RESULT, GuildSettings(reroll=policy), action) is allowed


def test_an_edit_keeps_what_the_form_does_not_show():
    request = edited_request({**STORED, "steps": 12}, "a blue fox", "  ", "7")
    assert request == {**STORED, "steps": 12, "prompt": "a blue fox", "negative_prompt": None, "seed": 7}


def test_an_empty_seed_is_a_new_one(monkeypatch):
    monkeypatch.setattr("cogs.actions.random_seed", lambda: 5)
    assert edited_request(STORED, "a fox", "", " ")["seed"] == 5


@pytest.mark.parametrize("seed", ["seven", "-1", "1.5", "٣", "4294967296"])
def test_a_seed_that_is_not_a_number_in_range_is_refused(seed):
    with pytest.raises(InvalidInput) as refused:
        edited_request(STORED, "a fox", "", seed)
    assert refused.value.key == "input.range" and refused.value.params["name"] == "seed"


@pytest.mark.parametrize(("prompt", "key"), [("  ", "input.prompt_empty"), ("x" * 1001, "input.too_long")])
def test_a_prompt_the_command_would_refuse_is_refused(prompt, key):
    with pytest.raises(InvalidInput) as refused:
        edited_request(STORED, prompt, "", "")
    assert refused.value.key == key


@pytest.mark.parametrize(("size", "shown"), [(10 * 2**20, "10"), (25 * 2**20, "25"), (10_485, "0.01")])
def test_upload_limits_in_megabytes(size, shown):
    assert megabytes(size) == shown
