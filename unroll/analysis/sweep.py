"""Grid sweeps: analyze one model per grid point, serially or in parallel processes.

``sweep(factory, grid, ...)`` calls ``factory(**settings)`` for every point of the
product of ``grid``'s value lists (in the order the grid lists its keys and values) and
summarizes each model with :func:`~unroll.analysis.profile.analyze`. Each point is a pure
function of its settings, so ``workers=K`` (a process pool) gives results identical to
``workers=1``. A setting named ``steps`` sets the unrolled length of that point instead
of being passed to the factory; so do the settings in :data:`ANALYZE_SETTINGS`
(``input_scale``, ``mode``, ``batch``, ``loss``, ``threshold``).
"""

from __future__ import annotations

import csv
import inspect
import io
import itertools
import json
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .. import presets
from ..graph import Graph
from .errors import AnalysisError
from .export import csv_cell, plain, versions
from .probes import as_spec
from .profile import SCHEMA as REPORT_SCHEMA
from .profile import _seed_list, analyze
from .verdict import DEFAULT_RULE

__all__ = ["ANALYZE_SETTINGS", "CELL_BUILDERS", "SCHEMA", "SweepResult", "standard_model", "sweep"]

SCHEMA = "unroll.analysis.sweep/1"

#: Grid settings that go to :func:`analyze` instead of the factory (``steps`` too).
ANALYZE_SETTINGS = ("input_scale", "mode", "batch", "loss", "threshold")

_ROW_COLUMNS = [
    "state",
    "decay_per_step",
    "factor_per_step",
    "distance_to_threshold",
    "verdict",
    "first_steps_share",
    "log10_drop_over_horizon",
    "gamma_sigma_max",
]


def _elman(input_size, hidden_size, activation):
    return presets.elman(input_size, hidden_size, activation=activation)


def _gated(builder):
    def build(input_size, hidden_size, activation):
        if activation is not None:
            raise AnalysisError(f"activation={activation!r} applies to the elman cell only")
        return builder(input_size, hidden_size)

    return build


#: Cells :func:`standard_model` builds: ``builder(input_size, hidden_size, activation)``.
CELL_BUILDERS: dict[str, Callable[..., Graph]] = {
    "elman": _elman,
    "lstm": _gated(presets.lstm),
    "gru": _gated(presets.gru),
}


def standard_model(
    cell: str = "elman",
    *,
    hidden_size: int = 32,
    input_size: int | None = None,
    activation: str | None = None,
    init: str = "torch",
    spectral_radius: float | None = None,
    spectral_norm: float | None = None,
    forget_bias: float | None = None,
    bias: float | None = None,
):
    """A preset cell and its init options: the factory behind ``sweep("elman", grid)``.

    Parameters
    ----------
    cell : {"elman", "lstm", "gru"}
    hidden_size, input_size : int
        ``input_size`` defaults to ``hidden_size``.
    activation : str, optional
        The Elman cell's activation (default tanh).
    init, spectral_radius, spectral_norm, forget_bias, bias
        Passed to :func:`unroll.init_params`.

    Returns
    -------
    (Graph, dict)
        The graph and its init options (``{"init": scheme, ...}``).

    Examples
    --------
    >>> g, opts = standard_model("elman", hidden_size=4, spectral_norm=0.9)
    >>> g.name, opts
    ('elman', {'init': 'torch', 'spectral_norm': 0.9})
    """
    if cell not in CELL_BUILDERS:
        raise AnalysisError(f"unknown cell {cell!r} (known: {', '.join(CELL_BUILDERS)})")
    if cell == "elman" and activation is None:
        activation = "tanh"
    graph = CELL_BUILDERS[cell](input_size or hidden_size, hidden_size, activation)
    options = {
        "spectral_radius": spectral_radius,
        "spectral_norm": spectral_norm,
        "forget_bias": forget_bias,
        "bias": bias,
    }
    return graph, {"init": init, **{k: v for k, v in options.items() if v is not None}}


def _run_point(factory, settings: dict, steps: int, seeds, options: dict) -> list[dict]:
    """Analyze one grid point; return one row per state node (a pure function)."""
    settings = dict(settings)
    steps = int(settings.pop("steps", steps))
    options = {**options, **{k: settings.pop(k) for k in ANALYZE_SETTINGS if k in settings}}
    try:
        spec = as_spec(factory(**settings))
    except AnalysisError as e:
        raise AnalysisError(f"grid point {settings!r}: {e}") from None
    report = analyze({"model": spec}, steps, seeds, **options)
    profile = report["model"]
    rows = []
    for state, sm in profile.summary.items():
        factors = profile.theory_factors.get(state)
        gamma_sigma = (
            float(10.0 ** np.median(factors))
            if factors is not None and np.isfinite(factors).all()
            else None
        )
        rows.append(
            {
                "state": state,
                **sm.to_dict(),
                "first_steps_share": plain(profile.first_steps_share),
                "gamma_sigma_max": gamma_sigma,
            }
        )
    return rows


@dataclass
class SweepResult:
    """The rows of a sweep: one per grid point and state node.

    Attributes
    ----------
    rows : list of dict
        The grid settings, then ``state, decay_per_step, factor_per_step,
        distance_to_threshold, verdict, first_steps_share, log10_drop_over_horizon,
        gamma_sigma_max`` (the median over seeds of ``gamma sigma_max(W_hh)`` where
        Pascanu's bound applies, else ``None``).
    grid : dict
        ``{setting: list of values}``.
    settings : dict
        ``steps``, ``seeds`` and the options passed on to ``analyze``.
    """

    rows: list[dict]
    grid: dict
    settings: dict
    rule: dict = field(default_factory=DEFAULT_RULE.to_dict)

    @property
    def columns(self) -> list[str]:
        """The grid settings, then the measured columns."""
        return [*self.grid, *_ROW_COLUMNS]

    def to_dict(self) -> dict:
        """Plain JSON-able data: schema, versions, settings, grid, thresholds, rows."""
        return {
            "schema": SCHEMA,
            "report_schema": REPORT_SCHEMA,
            "versions": versions(),
            "settings": self.settings,
            "grid": self.grid,
            "thresholds": self.rule,
            "columns": self.columns,
            "rows": [{c: plain(r.get(c)) for c in self.columns} for r in self.rows],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The sweep as JSON text, byte-stable for equal inputs."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_csv(self) -> str:
        """One line per row, the columns of :attr:`columns`; empty cells for ``None``."""
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(self.columns)
        for r in self.rows:
            out.writerow([csv_cell(plain(r.get(c))) for c in self.columns])
        return buf.getvalue()

    def __repr__(self) -> str:
        return f"SweepResult(grid={self.grid!r}, rows={len(self.rows)})"


def _points(grid: Mapping) -> list[dict]:
    if not grid:
        return [{}]
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise AnalysisError(f"grid[{name!r}] must be a list of values, got {values!r}")
    names = list(grid)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(list(grid[n]) for n in names))
    ]


def _check_picklable(factory) -> None:
    try:
        pickle.dumps(factory)
    except Exception as e:  # any pickling failure means the same thing
        raise AnalysisError(
            f"workers > 1 needs a factory that can be pickled (a module-level "
            f"function or a cell name), got {factory!r}: {e}"
        ) from None


def sweep(
    factory,
    grid: Mapping,
    steps: int = 100,
    seeds=10,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> SweepResult:
    """Analyze a model at every point of a grid of settings.

    Parameters
    ----------
    factory : callable or str
        ``factory(**settings)`` returns a Graph, a ``(Graph, init options)`` pair or a
        ModelSpec; a cell name (``"elman"``, ``"lstm"``, ``"gru"``) uses
        :func:`standard_model` (settings ``hidden_size``, ``activation``, ``init``,
        ``spectral_radius``, ``spectral_norm``, ``forget_bias``, ``bias``).
    grid : dict
        ``{setting: list of values}``; every combination is one point. ``steps`` and
        the settings of :data:`ANALYZE_SETTINGS` (e.g. ``input_scale``) go to ``analyze``.
    steps : int
    seeds : int or list of int
    workers : int
        Processes to run points in (a ``ProcessPoolExecutor``); results are identical to
        ``workers=1``.
    progress : callable, optional
        ``progress(done, total)``, called in this process after each point.
    **options
        Passed to :func:`~unroll.analysis.profile.analyze` (``mode``, ``input_scale``,
        ``loss``, ``threshold``, ...).

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> res = sweep("elman", {"spectral_norm": [0.5, 1.0], "hidden_size": [4],
    ...                       "init": ["orthogonal"], "bias": [0.0]},
    ...             steps=20, seeds=2, input_scale=0.0)
    >>> [(r["spectral_norm"], r["verdict"]) for r in res.rows]
    [(0.5, 'vanishing'), (1.0, 'stable')]
    """
    if isinstance(factory, str):
        factory = partial(standard_model, factory)
    if not callable(factory):
        raise AnalysisError(f"factory must be callable or a cell name, got {factory!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise AnalysisError(f"workers must be a positive integer, got {workers!r}")
    unknown = sorted(set(options) - set(inspect.signature(analyze).parameters))
    if unknown:
        raise AnalysisError(
            f"unknown analyze option {unknown[0]!r}; settings of the factory go "
            "in the grid (as one-value lists) or in functools.partial"
        )
    points = _points(grid)
    seed_list = _seed_list(seeds)
    results: list[list[dict] | None] = [None] * len(points)
    if workers == 1:
        for i, point in enumerate(points):
            results[i] = _run_point(factory, point, steps, seed_list, options)
            if progress is not None:
                progress(i + 1, len(points))
    else:
        _check_picklable(factory)
        with ProcessPoolExecutor(max_workers=min(workers, len(points))) as pool:
            futures = {
                pool.submit(_run_point, factory, point, steps, seed_list, options): i
                for i, point in enumerate(points)
            }
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(done, len(points))
    rows = [
        {**point, **row}
        for point, point_rows in zip(points, results, strict=True)
        for row in point_rows
    ]
    settings = {
        "steps": steps,
        "seeds": seed_list,
        "options": {k: plain(v) for k, v in sorted(options.items())},
    }
    rule = options.get("rule", DEFAULT_RULE).to_dict()
    return SweepResult(rows, {k: [plain(v) for v in vs] for k, vs in grid.items()}, settings, rule)
