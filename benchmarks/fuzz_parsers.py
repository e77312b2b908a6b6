"""A long fuzz run over the readers and parsers, by hand (not part of the test suite).

Targets: the TOML model reader (``parse_toml``), the edge text parser (``parse_edge``),
MODEL preset specs (``load_model`` on preset-like specs only: a fuzzer must not import
and call arbitrary ``module:function`` names) and ``--vary`` grids (``grid_values`` and
``points``). Each may only raise its documented error types; anything else is a finding.

    .venv/bin/python benchmarks/fuzz_parsers.py hypothesis --seconds 300
    .venv/bin/python benchmarks/fuzz_parsers.py atheris --seconds 300   # pip install atheris

The hypothesis engine runs the strategies of tests/test_fuzz.py with fresh random seeds;
atheris (coverage-guided, libFuzzer) mutates raw bytes fed to the same targets.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def targets():
    """``{name: (call, allowed exception types)}``; imported late (atheris instruments)."""
    from unroll.analysis.sweep import grid_values, points
    from unroll.errors import UnrollError
    from unroll.files import parse_edge, parse_toml
    from unroll.models import MODEL_SOURCES, load_model

    def preset_spec(text: str):
        source = next(s for s in MODEL_SOURCES if s.matches(text.strip()))
        if source.name == "preset":
            load_model(text)

    def grid(text: str):
        values = grid_values(text)
        points({"a": values, "b": values[:3]})

    return {
        "toml": (lambda text: parse_toml(text, "fuzz.toml"), (UnrollError,)),
        "edge": (parse_edge, (UnrollError,)),
        "spec": (preset_spec, (UnrollError,)),
        "grid": (grid, (ValueError,)),
    }


def run_one(table, name: str, text: str) -> None:
    call, allowed = table[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call(text)
        except allowed as error:
            message = str(error)
            if "\n" in message:
                raise AssertionError(f"{name}: message on several lines: {message!r}") from None


def run_hypothesis(seconds: float) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sys.path.insert(0, str(HERE.parent / "tests"))
    import test_fuzz as fuzz

    table = targets()
    spec_text = st.text(
        alphabet=st.sampled_from(list("elmanlstgrucdkbi:=,.0123456789-_ e+xhTFtrn\x00é")),
        max_size=40,
    )
    grid_text = st.text(alphabet=st.sampled_from(list("0123456789.:,-+eEinfa x")), max_size=30)
    strategies = {
        "toml": st.one_of(fuzz.mutated_examples(), fuzz.toml_documents(), st.text(max_size=200)),
        "edge": st.one_of(st.text(max_size=40), st.sampled_from(["h -> h @ t-1 : W", "a->b"])),
        "spec": spec_text,
        "grid": grid_text,
    }
    counts = dict.fromkeys(strategies, 0)

    def batch(name, strategy):
        @settings(
            max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(strategy)
        def one(text):
            counts[name] += 1
            run_one(table, name, text)

        return one

    batches = [batch(name, strategy) for name, strategy in strategies.items()]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for one in batches:
            one()
    total = sum(counts.values())
    print(f"hypothesis: {total:,} examples in {seconds:.0f} s, no finding: {counts}")


def run_atheris(seconds: float) -> None:
    import atheris

    with atheris.instrument_imports():
        table = targets()
    names = sorted(table)

    def one_input(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        name = names[provider.ConsumeIntInRange(0, len(names) - 1)]
        run_one(table, name, provider.ConsumeUnicodeNoSurrogates(4096))

    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", "-rss_limit_mb=4096"], one_input)
    atheris.Fuzz()  # prints "Done N runs in S second(s)" and exits; a finding exits 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["hypothesis", "atheris"])
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    {"hypothesis": run_hypothesis, "atheris": run_atheris}[args.engine](args.seconds)


if __name__ == "__main__":
    main()
