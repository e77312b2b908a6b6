"""Grid sweeps: analyze one model per grid point, serially, in processes or on a cluster.

``sweep(factory, grid, ...)`` calls ``factory(**settings)`` for every point of the
product of ``grid``'s value lists (in the order the grid lists its keys and values) and
summarizes each model with :func:`~unroll.analysis.profile.analyze`. Each point is a pure
function of its settings, so ``workers=K`` (a process pool) or ``executor=`` (any
``concurrent.futures.Executor``: a Dask cluster's, see :mod:`unroll.analysis.cluster`)
gives results identical to ``workers=1``. A setting named ``steps`` sets the unrolled
length of that point instead of being passed to the factory; so do the settings in
:data:`ANALYZE_SETTINGS` (``input_scale``, ``mode``, ``batch``, ``loss``, ``threshold``).

A point that fails (a factory that refuses its settings, a model with nothing to
measure) becomes one row with verdict ``"error"`` and its message in ``error``; the
sweep goes on. ``on_point`` sees every point as it completes, and ``done`` gives the
rows of points finished earlier, so :mod:`unroll.analysis.sweeplog` can stream a sweep
to a JSON-lines file and resume it.
"""

from __future__ import annotations

import csv
import inspect
import io
import itertools
import json
import math
import os
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .. import presets
from ..errors import UnrollError
from ..files import suggest
from ..graph import Graph
from ..init import INIT_OPTIONS
from ..limits import MAX_GRID_POINTS, MAX_SECONDS, check, check_seconds, estimate_seconds
from ..models import (
    ModelSpec,
    ModelSpecError,
    check_preset_values,
    load_model,
    parse_scalar,
    preset_at,
    preset_settings,
)
from .errors import AnalysisError
from .export import csv_cell, plain, versions
from .probes import as_spec
from .profile import SCHEMA as REPORT_SCHEMA
from .profile import _seed_list, analyze
from .verdict import DEFAULT_RULE

__all__ = [
    "ANALYZE_SETTINGS",
    "CELL_BUILDERS",
    "SCHEMA",
    "ModelFactory",
    "SweepResult",
    "grid_values",
    "point_error_row",
    "points",
    "run_point",
    "standard_model",
    "sweep",
]

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
    "error",
]

# What a failing point may raise and still let the sweep go on: bad settings for this
# point, or a computation the numbers make impossible. Anything else is a bug.
_POINT_ERRORS = (UnrollError, ArithmeticError, MemoryError)


def _elman(input_size, hidden_size, activation):
    return presets.elman(input_size, hidden_size, activation=activation)


def _gated(builder):
    def build(input_size, hidden_size, activation):
        if activation is not None:
            raise AnalysisError(
                f"activation={activation!r} applies to the elman and indrnn cells only"
            )
        return builder(input_size, hidden_size)

    return build


#: Cells :func:`standard_model` builds: ``builder(input_size, hidden_size, activation)``.
CELL_BUILDERS: dict[str, Callable[..., Graph]] = {
    "elman": _elman,
    "lstm": _gated(presets.lstm),
    "lstm_peephole": _gated(lambda i, h: presets.lstm(i, h, peephole=True)),
    "gru": _gated(presets.gru),
    "indrnn": lambda i, h, activation: presets.indrnn(i, h, activation=activation or "relu"),
    "mingru": _gated(presets.mingru),
    "minlstm": _gated(presets.minlstm),
    "lru": _gated(presets.lru),
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
    cell : {"elman", "lstm", "lstm_peephole", "gru", "indrnn", "mingru", "minlstm", "lru"}
    hidden_size, input_size : int
        ``input_size`` defaults to ``hidden_size``.
    activation : str, optional
        The Elman cell's activation (default tanh), or IndRNN's (default relu).
    init, spectral_radius, spectral_norm, forget_bias, bias
        Passed to :func:`unroll.init_params`.

    Returns
    -------
    ModelSpec

    Examples
    --------
    >>> spec = standard_model("elman", hidden_size=4, spectral_norm=0.9)
    >>> spec.graph.name, spec.init, spec.init_options
    ('elman', 'torch', {'spectral_norm': 0.9})
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
    return ModelSpec(graph, init, {k: v for k, v in options.items() if v is not None})


# init_params' keyword options a sweep may vary, and the scheme itself as ``init``.
_INIT_SETTINGS = ("init", *INIT_OPTIONS)


@dataclass(frozen=True)
class ModelFactory:
    """Build a MODEL at one grid point of a sweep; picklable, so sweeps run in processes.

    A setting the preset takes (``hidden``, ``activation``, ...) changes the graph;
    otherwise a setting :func:`unroll.init_params` takes (``spectral_radius``,
    ``forget_bias``, ...) or ``init`` (the scheme) changes how parameters are drawn.
    Calling the factory returns the point's :class:`~unroll.models.ModelSpec`.

    Examples
    --------
    >>> factory = ModelFactory("elman:input=2", init="orthogonal")
    >>> spec = factory(hidden=4, spectral_radius=0.9)
    >>> spec.graph.nodes["h"].size, spec.init, spec.init_options
    (4, 'orthogonal', {'spectral_radius': 0.9})
    >>> factory.check(["hidden", "spectral_radius", "steps"])
    >>> factory.check(["hiden"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.models.ModelSpecError: elman:input=2: cannot vary 'hiden' (did you mean 'hidden'?); ...
    """

    spec: str
    init: str = "torch"
    init_options: tuple[tuple[str, object], ...] = ()

    def graph_settings(self) -> list[str]:
        """The settings that change the graph: the preset's options and their short names."""
        return preset_settings(self.spec)

    def check(self, names) -> None:
        """Raise :class:`~unroll.models.ModelSpecError` for a setting that nothing takes."""
        known = [*self.graph_settings(), *_INIT_SETTINGS, "steps"]
        for name in names:
            if name not in known:
                raise ModelSpecError(
                    f"{self.spec}: cannot vary {name!r}{suggest(name, known)}"
                    f"; settings: {', '.join(known)}"
                )

    def check_values(self, grid: dict, carries_params: bool = False) -> None:
        """Raise :class:`~unroll.models.ModelSpecError` for a value a graph setting cannot
        take (read as the preset reads it), steps that are not positive integers, or for
        varying how parameters are drawn on a model that carries its own."""
        check_preset_values(self.spec, grid)
        for value in grid.get("steps", ()):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelSpecError(f"steps takes positive integers, got {value!r}")
        drawn = [k for k in grid if k in _INIT_SETTINGS]
        if carries_params and drawn:
            raise ModelSpecError(
                f"{self.spec} carries its own parameters, so varying {drawn[0]!r} (how "
                "parameters are drawn) would change nothing"
            )

    def __call__(self, **settings) -> ModelSpec:
        graph_keys = set(self.graph_settings())
        self.check(settings)
        graph_part = {k: v for k, v in settings.items() if k in graph_keys}
        init_part = {k: v for k, v in settings.items() if k not in graph_keys}
        model = preset_at(self.spec, graph_part) if graph_part else load_model(self.spec)
        if model.params is not None:
            return model
        scheme = init_part.pop("init", self.init)
        return ModelSpec(
            model.graph, scheme, {**dict(self.init_options), **init_part}, label=self.spec
        )


#: Grid points one task analyzes together: points of one graph run as one ensemble.
POINTS_PER_TASK = 32


def _point_spec(factory, settings: dict, steps: int, options: dict):
    """``(spec, steps, analyze options)`` of one grid point."""
    settings = dict(settings)
    steps = int(settings.pop("steps", steps))
    options = {**options, **{k: settings.pop(k) for k in ANALYZE_SETTINGS if k in settings}}
    try:
        spec = as_spec(factory(**settings))
    except AnalysisError as e:
        raise AnalysisError(f"grid point {settings!r}: {e}") from None
    return spec, steps, options


def _rows_of(profile) -> list[dict]:
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
                "error": None,
            }
        )
    return rows


def run_point(factory, settings: dict, steps: int, seeds, options: dict) -> list[dict]:
    """Analyze one grid point; return one row per state node (a pure function).

    Raises what the factory or :func:`analyze` raise; :func:`sweep` records it.
    """
    spec, steps, options = _point_spec(factory, settings, steps, options)
    return _rows_of(analyze({"model": spec}, steps, seeds, **options)["model"])


def _prepare(factory, settings: dict, steps: int, options: dict) -> tuple | dict:
    """:func:`_point_spec` of one grid point, or the point's error row if it fails."""
    try:
        return _point_spec(factory, settings, steps, options)
    except _POINT_ERRORS as e:
        return point_error_row(e)


def _tasks(prepared: Mapping[int, tuple | dict], todo) -> list[list[int]]:
    """The points to run, in grid order, as tasks of consecutive points that share one
    graph and settings (one ensemble each, at most :data:`POINTS_PER_TASK`); a task's
    points are written when it completes. ``prepared``: :func:`_prepare` of each point."""
    tasks: list[list[int]] = []
    previous = None
    for i in todo:
        point = prepared[i]
        key = None  # a failed point runs alone, as its error row
        if not isinstance(point, dict):
            spec, point_steps, point_options = point
            key = (spec.graph, point_steps, repr(sorted(point_options.items())))
        if key is not None and key == previous and len(tasks[-1]) < POINTS_PER_TASK:
            tasks[-1].append(i)
        else:
            tasks.append([i])
        previous = key
    return tasks


def run_points(factory, points: list[dict], steps: int, seeds, options: dict) -> list[list[dict]]:
    """Analyze several grid points, those of one graph and settings as one ensemble pass;
    return each point's rows (a failing point's one error row). A pure function of its
    arguments, with the rows :func:`run_point` gives each point alone."""
    prepared = [_prepare(factory, settings, steps, options) for settings in points]
    return _run_prepared(factory, points, prepared, steps, seeds, options)


def _run_prepared(factory, points, prepared, steps, seeds, options) -> list[list[dict]]:
    """:func:`run_points` of points whose :func:`_prepare` is made (the factory is called
    once per point)."""
    rows: list = [None] * len(points)
    groups: dict = {}
    for i, point in enumerate(prepared):
        if isinstance(point, dict):
            rows[i] = [point]
            continue
        spec, point_steps, point_options = point
        key = (point_steps, repr(sorted(point_options.items())))
        groups.setdefault(key, (point_steps, point_options, []))[2].append((i, spec))
    for point_steps, point_options, members in groups.values():
        try:
            report = analyze(
                {str(i): spec for i, spec in members}, point_steps, seeds, **point_options
            )
        except _POINT_ERRORS:  # one point spoils the pass: find it by running them alone
            for i, _ in members:
                rows[i] = _run_or_record(factory, points[i], steps, seeds, options)
            continue
        for i, _ in members:
            rows[i] = _rows_of(report[str(i)])
    return rows


def point_error_row(error: BaseException) -> dict:
    """The one row a failing point gets: verdict ``"error"`` and the message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = text if isinstance(error, UnrollError) else f"{type(error).__name__}: {text}"
    return {**dict.fromkeys(_ROW_COLUMNS), "verdict": "error", "error": message}


def _run_or_record(factory, settings, steps, seeds, options) -> list[dict]:
    try:
        return run_point(factory, settings, steps, seeds, options)
    except _POINT_ERRORS as e:
        return [point_error_row(e)]


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
    def failed(self) -> list[dict]:
        """The rows of points that failed (verdict ``"error"``)."""
        return [r for r in self.rows if r.get("verdict") == "error"]

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

    def summary_table(self) -> str:
        """A text table: the grid settings, then state, decay, distance and verdict per
        row; a line per failed point after it.

        Examples
        --------
        >>> row = {"hidden": 4, "state": "h", "decay_per_step": -0.25,
        ...        "distance_to_threshold": 12, "verdict": "vanishing"}
        >>> r = SweepResult([row], {"hidden": [4]}, {})
        >>> print(r.summary_table())
        hidden  state  decay/step  distance  verdict
        ------  -----  ----------  --------  ---------
        4       h      -0.2500     12        vanishing
        """
        names = [*self.grid, "state", "decay_per_step", "distance_to_threshold", "verdict"]
        head = [*self.grid, "state", "decay/step", "distance", "verdict"]
        rows = [head]
        for row in self.rows:
            cells = [_cell(row.get(n)) for n in names]
            decay = row.get("decay_per_step")
            cells[len(self.grid) + 1] = "-" if decay is None else f"{decay:+.4f}"
            if row.get("state") is None:
                cells[len(self.grid)] = "-"
            rows.append(cells)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for row in self.failed:
            where = ", ".join(f"{k}={_cell(row.get(k))}" for k in self.grid)
            lines.append(f"error at {where}: {row['error']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SweepResult(grid={self.grid!r}, rows={len(self.rows)})"


def _cell(value) -> str:
    """A table cell: ``never`` for no value, floats in ``%g``."""
    if value is None:
        return "never"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def grid_values(text: str, max_count: int = MAX_GRID_POINTS) -> list:
    """Values of ``START:STOP:COUNT`` (evenly spaced, integers if they all are) or ``a,b,c``.

    Raises
    ------
    ValueError
        For text of neither form, START or STOP that are not finite numbers, or a COUNT
        that is not an integer from 1 to ``max_count``.

    Examples
    --------
    >>> grid_values("0.5:1.5:3"), grid_values("4:16:4"), grid_values("tanh,relu")
    ([0.5, 1.0, 1.5], [4, 8, 12, 16], ['tanh', 'relu'])
    >>> grid_values("1:2:1000000000")
    Traceback (most recent call last):
    ...
    ValueError: '1:2:1000000000': COUNT must be an integer from 1 to 100,000
    """
    parts = text.split(":")
    if len(parts) == 1:
        values = [parse_scalar(v) for v in text.split(",") if v.strip()]
        if len(values) > max_count:
            raise ValueError(f"{len(values):,} values, more than the limit of {max_count:,}")
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError(f"{text!r}: every number must be finite")
        return values
    if len(parts) != 3:
        raise ValueError(f"{text!r} is neither START:STOP:COUNT nor a comma-separated list")
    start, stop, count = (parse_scalar(p) for p in parts)
    if not all(_is_number(v) and math.isfinite(v) for v in (start, stop)):
        raise ValueError(f"{text!r}: START and STOP must be finite numbers")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= max_count:
        raise ValueError(f"{text!r}: COUNT must be an integer from 1 to {max_count:,}")
    if isinstance(start, int) and isinstance(stop, int):
        steps = [(stop - start) * k for k in range(count)]
        if count == 1 or all(d % (count - 1) == 0 for d in steps):
            return [start + d // max(count - 1, 1) for d in steps]
    return [float(v) for v in np.linspace(float(start), float(stop), count)]


def points(grid: Mapping, max_points: int | None = MAX_GRID_POINTS) -> list[dict]:
    """Every combination of the grid's values, the last setting varying fastest.

    Raises
    ------
    AnalysisError
        For a setting whose values are not a list.
    LimitError
        For more than ``max_points`` points (counted before any is made).

    Examples
    --------
    >>> points({"a": [1, 2], "b": ["x"]})
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    """
    if not grid:
        return [{}]
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise AnalysisError(f"grid[{name!r}] must be a list of values, got {values!r}")
    names = list(grid)
    total = math.prod(len(grid[n]) for n in names)
    check(
        total,
        max_points,
        lambda: (
            f"the grid has {total:,} points "
            f"({' x '.join(str(len(grid[n])) for n in names)}), more than the limit of "
            f"{max_points:,}"
        ),
        "sweep(..., max_points=None)",
    )
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(list(grid[n]) for n in names))
    ]


def _check_time(factory, grid_points, todo, steps, seeds: int, max_seconds) -> None:
    """Estimate the points still to run from the largest of the first and last graph."""
    if max_seconds is None or not todo:
        return
    per_point = 0.0
    for i in {todo[0], todo[-1]}:
        settings = dict(grid_points[i])
        point_steps = settings.pop("steps", steps)
        for key in ANALYZE_SETTINGS:
            settings.pop(key, None)
        try:
            graph = as_spec(factory(**settings)).graph
        except _POINT_ERRORS:  # the point will fail on its own, quickly
            continue
        if isinstance(point_steps, int):
            numbers = sum(math.prod(shape) for shape in graph.params().values())
            seconds = estimate_seconds(len(graph.nodes), point_steps, seeds, numbers)
            per_point = max(per_point, seconds)
    check_seconds(
        f"a sweep of {len(todo):,} points x {seeds} seeds", per_point * len(todo), max_seconds
    )


def _check_picklable(factory) -> None:
    try:
        pickle.dumps(factory)
    except Exception as e:  # any pickling failure means the same thing
        raise AnalysisError(
            f"workers > 1 needs a factory that can be pickled (a module-level "
            f"function or a cell name), got {factory!r}: {e}"
        ) from None


def _slots(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once: the threads of a Dask client's workers, a
    standard pool's ``max_workers``, else the CPUs of this machine."""
    client = getattr(executor, "_client", None)  # distributed's ClientExecutor
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return getattr(executor, "_max_workers", None) or os.cpu_count() or 1


def _split(tasks: list[list[int]], count: int, slots: int) -> list[list[int]]:
    """Split long tasks so that ``count`` points keep ``slots`` workers busy."""
    size = max(1, -(-count // slots))
    return [task[k : k + size] for task in tasks for k in range(0, len(task), size)]


def _run_tasks(executor, tasks, factory, grid_points, steps, seed_list, options, finished):
    """Submit every task to ``executor`` and hand each point's rows to ``finished`` as its
    task completes; cancel the tasks not yet run if anything goes wrong here."""
    futures = {
        executor.submit(
            run_points, factory, [grid_points[i] for i in task], steps, seed_list, options
        ): task
        for task in tasks
    }
    try:
        for future in as_completed(futures):
            for i, rows in zip(futures[future], future.result(), strict=True):
                finished(i, rows)
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def sweep(
    factory,
    grid: Mapping,
    steps: int = 100,
    seeds=10,
    *,
    workers: int = 1,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_point: Callable[[int, dict, list[dict]], None] | None = None,
    done: Mapping[int, list[dict]] | None = None,
    max_points: int | None = MAX_GRID_POINTS,
    max_seconds: float | None = MAX_SECONDS,
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
        Processes to run points in (a ``ProcessPoolExecutor`` made for this sweep);
        results are identical to ``workers=1``.
    executor : concurrent.futures.Executor, optional
        Run the tasks here instead: a Dask client's ``get_executor(pure=False)`` (see
        :mod:`unroll.analysis.cluster`), a ``ProcessPoolExecutor`` or a
        ``ThreadPoolExecutor`` of yours, left running afterwards. Results are identical
        to a serial run, byte for byte. Each task is a run of consecutive points of one
        graph (at most :data:`POINTS_PER_TASK`, one ensemble engine pass with all their
        seeds), split so that every worker thread gets some.
    progress : callable, optional
        ``progress(done, total)``, called in this process after each point.
    on_point : callable, optional
        ``on_point(index, settings, rows)``, called in this process as each point
        completes (in completion order with several workers or an executor); a failed
        point's rows are its one error row.
    done : dict, optional
        ``{index: rows}`` of points already computed (a resumed sweep): not run again.
    max_points : int or None
        Refuse a grid of more points (:data:`unroll.limits.MAX_GRID_POINTS`).
    max_seconds : float or None
        Refuse a sweep estimated to take longer (:func:`unroll.limits.estimate_seconds`
        from the graphs of the first and the last point), before any point runs.
    **options
        Passed to :func:`~unroll.analysis.profile.analyze` (``mode``, ``input_scale``,
        ``loss``, ``threshold``, ...).

    Returns
    -------
    SweepResult
        Rows in grid order; a point that failed has one row, verdict ``"error"``.

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
    if executor is not None and workers != 1:
        raise AnalysisError("give workers or executor, not both (workers makes an executor)")
    if executor is not None and not isinstance(executor, Executor):
        raise AnalysisError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
    unknown = sorted(set(options) - set(inspect.signature(analyze).parameters))
    if unknown:
        raise AnalysisError(
            f"unknown analyze option {unknown[0]!r}; settings of the factory go "
            "in the grid (as one-value lists) or in functools.partial"
        )
    grid_points = points(grid, max_points)
    seed_list = _seed_list(seeds)
    results: dict[int, list[dict]] = dict(done or {})
    stray = sorted(i for i in results if not (isinstance(i, int) and 0 <= i < len(grid_points)))
    if stray:
        raise AnalysisError(f"done: point {stray[0]!r} is not one of the grid's points")
    todo = [i for i in range(len(grid_points)) if i not in results]
    _check_time(factory, grid_points, todo, steps, len(seed_list), max_seconds)

    def finished(i: int, rows: list[dict]) -> None:
        results[i] = rows
        if on_point is not None:
            on_point(i, grid_points[i], rows)
        if progress is not None:
            progress(len(results), len(grid_points))

    prepared = {i: _prepare(factory, grid_points[i], steps, options) for i in todo}
    tasks = _tasks(prepared, todo)
    if executor is None and (workers == 1 or len(todo) <= 1):
        for task in tasks:
            task_rows = _run_prepared(
                factory,
                [grid_points[i] for i in task],
                [prepared[i] for i in task],
                steps,
                seed_list,
                options,
            )
            for i, rows in zip(task, task_rows, strict=True):
                finished(i, rows)
    elif executor is None:
        _check_picklable(factory)
        tasks = _split(tasks, len(todo), workers)
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            _run_tasks(pool, tasks, factory, grid_points, steps, seed_list, options, finished)
    else:
        tasks = _split(tasks, len(todo), _slots(executor))
        _run_tasks(executor, tasks, factory, grid_points, steps, seed_list, options, finished)
    rows = [{**point, **row} for i, point in enumerate(grid_points) for row in results[i]]
    settings = {
        "steps": steps,
        "seeds": seed_list,
        "options": {k: plain(v) for k, v in sorted(options.items())},
    }
    rule = options.get("rule", DEFAULT_RULE).to_dict()
    return SweepResult(rows, {k: [plain(v) for v in vs] for k, vs in grid.items()}, settings, rule)
