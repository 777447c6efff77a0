import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.likeness import SAME_PERSON_DISTANCE, likeness


def test_anchor_points():
    assert likeness(SAME_PERSON_DISTANCE) == pytest.approx(50.0)
    assert likeness(0.0) > 99.0
    assert likeness(2.0) < 0.01


@given(st.floats(0, 10), st.floats(0, 10))
def test_monotone_decreasing_and_bounded(a, b):
    la, lb = likeness(a), likeness(b)
    assert 0.0 <= la <= 100.0
    if a < b:
        assert la >= lb


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_rejects_bad_distance(bad):
    with pytest.raises(ValueError, match="distance must be"):
        likeness(bad)
