"""Sequence goals and branches may name the interactions people log (note, call, meeting)."""

import pytest

from nurturing.conditions import ConditionError, condition_validate


@pytest.mark.parametrize("kind", ["note", "call", "meeting"])
def test_a_goal_on_a_logged_activity_is_valid(kind):
    condition_validate({"interaction_type": kind})


def test_an_unknown_type_is_still_refused():
    with pytest.raises(ConditionError):
        condition_validate({"interaction_type": "telepathy"})
