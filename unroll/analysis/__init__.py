"""Measure vanishing and exploding gradients: profiles, Jacobian spectra, theory, sweeps.

>>> import unroll
>>> from unroll.analysis import analyze
>>> rep = analyze({"RNN": unroll.presets.elman(4, 8), "LSTM": unroll.presets.lstm(4, 8)},
...               steps=20, seeds=3)
>>> rep.models
['RNN', 'LSTM']
>>> sorted(rep.summary["LSTM"])
['c', 'h']
"""

from ..models import ModelSpec
from .clipping import ClippingTrace, clip_gradients, clipping_trace, global_norm
from .errors import AnalysisError
from .jacobians import (
    JacobianProducts,
    jacobian_products,
    lyapunov_exponents,
    state_layout,
    step_jacobian,
    step_jacobians,
    trajectory,
)
from .probes import PROBES, draw_inputs
from .profile import ModelProfile, Report, StateSummary, analyze, compare
from .sweep import CELL_BUILDERS, SweepResult, standard_model, sweep
from .theory import THEORIES, Theory, pascanu_factor, theory_bound
from .verdict import DEFAULT_RULE, VERDICTS, VerdictRule, fit_decay, verdict

__all__ = [
    "CELL_BUILDERS",
    "DEFAULT_RULE",
    "PROBES",
    "THEORIES",
    "VERDICTS",
    "AnalysisError",
    "ClippingTrace",
    "JacobianProducts",
    "ModelProfile",
    "ModelSpec",
    "Report",
    "StateSummary",
    "SweepResult",
    "Theory",
    "VerdictRule",
    "analyze",
    "clip_gradients",
    "clipping_trace",
    "compare",
    "draw_inputs",
    "fit_decay",
    "global_norm",
    "jacobian_products",
    "lyapunov_exponents",
    "pascanu_factor",
    "standard_model",
    "state_layout",
    "step_jacobian",
    "step_jacobians",
    "sweep",
    "theory_bound",
    "trajectory",
    "verdict",
]
