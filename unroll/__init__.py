"""unroll: recurrent networks as cyclic graphs, unrolled in time, with exact numeric BPTT.

The names here are the ones a user reaches for every day; the rest live in namespaced
modules: :mod:`unroll.presets`, :mod:`unroll.analysis`, :mod:`unroll.plot`,
:mod:`unroll.files`, :mod:`unroll.models`, :mod:`unroll.tasks`, :mod:`unroll.training`,
:mod:`unroll.ops`, :mod:`unroll.engine`, :mod:`unroll.interop`.

>>> import numpy as np, unroll
>>> g = unroll.presets.lstm(input_size=3, hidden_size=8)
>>> u = unroll.unroll(g, steps=20)
>>> params = unroll.init_params(g, seed=0)
>>> xs = np.random.default_rng(0).normal(size=(20, 2, 3))
>>> r = unroll.bptt(u, params, {"x": xs}, {("h", 19): np.ones((2, 8))})
>>> r.param_grads["W_hh"].shape if "W_hh" in r.param_grads else r.param_grads["W_hf"].shape
(8, 8)
"""

from . import analysis, engine, files, interop, models, ops, plot, presets, tasks, training
from .analysis import Report, analyze, sweep
from .check import check_grads
from .engine import BPTTResult, bptt
from .errors import GraphError, InputError, LimitError, UnrollError, UnrollWarning
from .explore import explore
from .graph import Graph
from .init import init_params
from .interop import from_keras, from_onnx, from_torch, load_state_dict
from .models import ModelSpec, load_model
from .render import render, save
from .training import train
from .unrolled import Unrolled, unroll

__version__ = "0.1.0"

__all__ = [
    "BPTTResult",
    "Graph",
    "GraphError",
    "InputError",
    "LimitError",
    "ModelSpec",
    "Report",
    "UnrollError",
    "UnrollWarning",
    "Unrolled",
    "analysis",
    "analyze",
    "bptt",
    "check_grads",
    "engine",
    "explore",
    "files",
    "from_keras",
    "from_onnx",
    "from_torch",
    "init_params",
    "interop",
    "load_model",
    "load_state_dict",
    "models",
    "ops",
    "plot",
    "presets",
    "render",
    "save",
    "sweep",
    "tasks",
    "train",
    "training",
    "unroll",
]
