"""The plan and published-values validators never crash on a damaged file: any value
anywhere in the file gives (errors, warnings), and a file without errors loads. No database
(Hypothesis, derandomized as the suite's profile)."""

import copy
import os

import pytest
from django.conf import settings as settings_module
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import plan, published
from trial import protocol_file

PROTOCOL_FILE = settings_module.PROTOCOL_FILE
PROTOCOL = protocol_file.read(PROTOCOL_FILE)
PLANS = [plan.read(p) for p in plan.plan_files(PROTOCOL_FILE)]
PUBLISHED = published.read(published.path_for("NCT02025270"))

# 150 each keeps the module at a few seconds; EDC_FUZZ_EXAMPLES=2000 is a deeper run by hand.
EXAMPLES = max(150, int(os.environ.get("EDC_FUZZ_EXAMPLES", "0")))

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 10)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        ["SCOS", "M12", "chi_square", "mean_sd", "age", "before", "all_treated", "p"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _damage(data, draw):
    """Replace (or delete) one node of the tree, chosen by walking down at random."""
    damaged = copy.deepcopy(data)
    parent, key = None, None
    node = damaged
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        parent, node = node, node[key]
    if parent is None:
        return draw(JSON)
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(JSON)
    return damaged


@settings(max_examples=EXAMPLES)
@given(data=st.data(), which=st.integers(0, len(PLANS) - 1))
def test_a_damaged_plan_is_refused_or_loads_never_crashes(data, which):
    damaged = _damage(PLANS[which], data.draw)
    errors, warnings = plan.problems(damaged, protocol=PROTOCOL)
    assert all(isinstance(m, str) for m in errors + warnings)
    if not errors:
        plan.load(damaged, protocol=PROTOCOL)
    else:
        with pytest.raises(plan.PlanError):
            plan.load(damaged, protocol=PROTOCOL)


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_a_damaged_published_file_is_refused_or_loads_never_crashes(data):
    damaged = _damage(PUBLISHED, data.draw)
    errors, warnings = published.problems(damaged)
    assert all(isinstance(m, str) for m in errors + warnings)
    if not errors:
        published.load(damaged)
    else:
        with pytest.raises(published.PublishedError):
            published.load(damaged)
