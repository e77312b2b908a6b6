"""Collection settings for the whole repository (tests/ and the doctests in unroll/)."""

import importlib.util

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None


def pytest_collection_modifyitems(config, items):
    """The torch interop's doctests need torch: skip them only where it is not installed."""
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason="torch is not installed (pip install rnn-unroll[torch])")
    for item in items:
        if item.nodeid.startswith("unroll/interop/"):
            item.add_marker(skip)
