"""Import the ``unroll`` library for the benchmarks, degrading to None if it is unusable."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
UNROLL_API = ("presets", "unroll", "init_params", "bptt")
# What a missing or half-written library tends to raise; reported, then benchmarking goes on.
UNROLL_ERRORS = (
    ImportError,
    SyntaxError,
    AttributeError,
    TypeError,
    ValueError,
    LookupError,
    ArithmeticError,
    RuntimeError,
    AssertionError,
)


def load_unroll():
    """Import ``unroll`` (from the repo root if it is not installed); None if impossible.

    The library counts as usable when it has every name in ``UNROLL_API``; otherwise a
    note saying why is printed.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))  # after site-packages: an installed unroll wins
    try:
        import unroll

        missing = [name for name in UNROLL_API if not hasattr(unroll, name)]
        if missing:
            where = getattr(unroll, "__file__", None) or list(unroll.__path__)
            raise ImportError(f"unroll from {where} has no {', '.join(missing)}")
    except UNROLL_ERRORS as exc:
        print(f"NOTE: cannot use unroll ({type(exc).__name__}: {exc}).")
        return None
    return unroll
