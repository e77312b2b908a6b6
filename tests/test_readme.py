"""The README's Python examples run as written, in order, in one namespace."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


def test_every_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict = {}
    for block in BLOCKS:
        for module, used in (
            ("torch", "import torch"),
            ("keras", "keras"),
            ("onnx", "from_onnx"),
            ("distributed", "dask_executor"),
        ):
            if used in block:
                pytest.importorskip(module)
        block = re.sub(r"iterations=\d+", "iterations=3", block)  # the API, not the minutes
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["r"].param_grads  # the last BPTT result
    assert len(namespace["h"].losses) == 3  # the training example ran its iterations
