"""unroll: recurrent networks as cyclic graphs, unrolled in time, with exact numeric BPTT.

>>> import numpy as np, unroll
>>> g = unroll.presets.lstm(input_size=3, hidden_size=8)
>>> u = unroll.unroll(g, steps=20)
>>> params = unroll.init_params(g, seed=0)
>>> xs = np.random.default_rng(0).normal(size=(20, 2, 3))
>>> r = unroll.bptt(u, params, {"x": xs}, {("h", 19): np.ones((2, 8))})
>>> r.param_grads["W_hh"].shape if "W_hh" in r.param_grads else r.param_grads["W_hf"].shape
(8, 8)
"""

from . import analysis, files, models, plot, presets, tasks
from .analysis import Report, SweepResult, analyze, compare, sweep
from .engine import BPTTResult, Program, bptt, compile_program, estimate_memory
from .errors import GraphError, InputError, LimitError, UnrollError, UnrollWarning
from .explore import explore
from .files import atomic_write, load_toml, to_json, to_toml
from .graph import Edge, Graph, Node
from .init import init_params
from .interop import from_keras, from_onnx, from_torch, load_state_dict
from .losses import LOSSES
from .models import Model, load_model
from .ops import ACTIVATIONS, OPS
from .render import RenderError, render, save
from .tasks import Task, adding_problem, copy_memory, make_task
from .training import TrainHistory, train, with_readout
from .unrolled import MODES, Unrolled, unroll

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MODES",
    "OPS",
    "BPTTResult",
    "Edge",
    "Graph",
    "GraphError",
    "InputError",
    "LimitError",
    "Model",
    "Node",
    "Program",
    "RenderError",
    "Report",
    "SweepResult",
    "Task",
    "TrainHistory",
    "UnrollError",
    "UnrollWarning",
    "Unrolled",
    "adding_problem",
    "analysis",
    "analyze",
    "atomic_write",
    "bptt",
    "compare",
    "compile_program",
    "copy_memory",
    "estimate_memory",
    "explore",
    "files",
    "from_keras",
    "from_onnx",
    "from_torch",
    "init_params",
    "load_model",
    "load_state_dict",
    "load_toml",
    "make_task",
    "models",
    "plot",
    "presets",
    "render",
    "save",
    "sweep",
    "tasks",
    "to_json",
    "to_toml",
    "train",
    "unroll",
    "with_readout",
]
