"""Collection settings for the whole repository (tests/ and the doctests in unroll/)."""

import importlib.util
import os
import tempfile

import pytest

# Keras reads its backend and home folder once, at import: the torch backend (the CPU torch
# CI installs) and a throwaway home, before any test or doctest imports it.
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="keras-home-"))

HAS_TORCH = importlib.util.find_spec("torch") is not None

#: Doctests that need an optional extra: module path prefix -> (the modules it needs, hint).
OPTIONAL_DOCTESTS = {
    "unroll/interop/keras_models.py": (("keras", "torch"), "pip install rnn-unroll[keras]"),
    "unroll/interop/onnx_models.py": (("onnx", "torch"), "pip install rnn-unroll[onnx]"),
    "unroll/interop/": (("torch",), "pip install rnn-unroll[torch]"),
}


def _missing(modules) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config, items):
    """The interop doctests need their framework: skip them only where it is not installed."""
    for item in items:
        for prefix, (modules, hint) in OPTIONAL_DOCTESTS.items():
            if item.nodeid.startswith(prefix):
                missing = _missing(modules)
                if missing:
                    reason = f"{', '.join(missing)} not installed ({hint})"
                    item.add_marker(pytest.mark.skip(reason=reason))
                break
