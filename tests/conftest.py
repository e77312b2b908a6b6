"""Test settings shared by every file: hypothesis runs a fixed, repeatable set of examples."""

import os

from hypothesis import settings

# Deterministic by default (the same examples on every run and in CI);
# HYPOTHESIS_PROFILE=explore draws fresh random examples to hunt for new failures.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
