import pytest

from .world import build_world


@pytest.fixture
def world(protocol):
    return build_world(protocol)
