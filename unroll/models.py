"""Resolve a MODEL argument (preset spec, TOML file, module:function, state_dict) to a graph.

Every command of the CLI, and :func:`load_model` for the library, accepts the same
MODEL argument:

- a preset with options: ``lstm``, ``elman:hidden=16,activation=relu``,
  ``stacked:cell=gru,layers=2``; options are the preset function's parameters (see
  ``unroll presets``), ``hidden``/``input``/``output`` short for ``hidden_size``/...;
- a TOML model file: ``examples/lstm.toml`` (format in :mod:`unroll.files`);
- ``package.module:function``: a function, called without arguments, that returns a
  :class:`~unroll.graph.Graph` (the current folder is importable);
- a saved ``torch.save(module.state_dict(), "rnn.pt")`` file (``.pt``/``.pth``, needs the
  torch extra), optionally with options for :func:`unroll.interop.load_state_dict`:
  ``rnn.pt:nonlinearity=relu``;
- a Keras model saved as ``model.keras`` (needs the keras extra) or an ONNX model
  ``model.onnx`` (needs the onnx extra), with their weights.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnrollError
from .files import load_toml, suggest
from .graph import Graph
from .init import INIT_OPTIONS, init_params
from .limits import MAX_GRAPH_NODES, MAX_PARAM_BYTES, check_graph_size, extrapolate
from .ops import ACTIVATIONS
from .presets import CELLS, PRESETS, preset_options

__all__ = [
    "MODEL_SOURCES",
    "OPTION_ALIASES",
    "LoadLimits",
    "ModelSource",
    "ModelSpec",
    "ModelSpecError",
    "PresetInfo",
    "build_preset",
    "by_label",
    "check_preset_values",
    "load_model",
    "load_model_for_task",
    "parse_preset_spec",
    "parse_scalar",
    "preset_at",
    "preset_catalog",
    "preset_settings",
]


class ModelSpecError(UnrollError):
    """A MODEL argument names no preset, file or function, or gives a bad option."""


@dataclass(frozen=True)
class ModelSpec:
    """A model: its graph, how to get its parameters for a seed, and a label.

    The one description of a model that :func:`load_model` returns and ``analyze``,
    ``sweep``, ``train``, ``render`` and the CLI take. ``init`` (a scheme of
    :func:`unroll.init_params`; ``None``: the caller's default, ``torch`` unless told)
    and ``init_options`` (its keyword options, e.g. ``spectral_norm``) apply unless
    ``params`` is given: a fixed ``{name: array}`` used for every seed (a model with its
    own weights), or a function ``seed -> {name: array}``.

    Examples
    --------
    >>> from unroll import presets
    >>> spec = ModelSpec(presets.elman(2, 3), "orthogonal", {"spectral_norm": 0.5})
    >>> float(np.linalg.norm(spec.params_for(seed=1)["W_hh"], 2)).__round__(12)
    0.5
    >>> spec.label, spec.with_defaults("glorot", {"bias": 0.0}).init_options
    ('elman', {'bias': 0.0, 'spectral_norm': 0.5})
    """

    graph: Graph
    init: str | None = None
    init_options: Mapping = field(default_factory=dict)
    params: Mapping | Callable | None = None
    label: str = ""

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", self.graph.name)

    def with_defaults(self, init: str = "torch", init_options: Mapping | None = None):
        """This spec with the caller's default scheme where it names none, and the caller's
        init options under its own."""
        return replace(
            self,
            init=self.init or init,
            init_options={**(init_options or {}), **self.init_options},
        )

    def params_for(self, seed: int) -> dict[str, np.ndarray]:
        """The parameters for ``seed``."""
        given = self.params(seed) if callable(self.params) else self.params
        if given is not None:
            if not isinstance(given, Mapping):
                raise ModelSpecError(
                    f"model {self.graph.name!r}: params must be a mapping of names to "
                    f"arrays (or a function of the seed returning one), got {type(given).__name__}"
                )
            return dict(given)
        self.check_init_options()
        try:
            scheme = self.init or "torch"
            return init_params(self.graph, seed=seed, scheme=scheme, **self.init_options)
        except UnrollError:
            raise
        except (TypeError, ValueError) as e:  # a value of the wrong type for an init option
            raise ModelSpecError(f"model {self.graph.name!r}: bad init option ({e})") from None

    def drawn(self) -> bool:
        """Whether the parameters are drawn by an init scheme (not given)."""
        return self.params is None

    def check_init_options(self) -> None:
        """Each init option is one :func:`unroll.init_params` takes, and a number or None."""
        for key, value in self.init_options.items():
            if key not in INIT_OPTIONS:
                close = difflib.get_close_matches(str(key), INIT_OPTIONS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ModelSpecError(
                    f"model {self.graph.name!r}: unknown init option {key!r}{hint}; "
                    f"options: {', '.join(INIT_OPTIONS)}"
                )
            real = isinstance(value, int | float | np.integer | np.floating)
            if value is not None and (isinstance(value, bool) or not real):
                raise ModelSpecError(
                    f"model {self.graph.name!r}: init option {key}={value!r} must be a number"
                )

    def describe(self) -> dict:
        """How the parameters are drawn, as plain JSON-able data."""
        if self.params is not None:
            return {"params": "given"}
        init = self.init or "torch"
        return {"init": init, "init_options": dict(sorted(self.init_options.items()))}


def by_label(models) -> dict[str, ModelSpec]:
    """``{label: spec}`` of the models in order; a label given twice gets ``#2``, ``#3``,
    ... so no model is dropped.

    Examples
    --------
    >>> list(by_label([load_model("elman"), load_model("elman"), load_model("gru")]))
    ['elman', 'elman#2', 'gru']
    """
    out: dict[str, ModelSpec] = {}
    for model in models:
        label, k = model.label, 1
        while label in out:
            k += 1
            label = f"{model.label}#{k}"
        out[label] = replace(model, label=label)
    return out


#: Short names for preset options: ``elman:hidden=16`` is ``elman:hidden_size=16``.
OPTION_ALIASES = {"hidden": "hidden_size", "input": "input_size", "output": "output_size"}

# Options whose values must be a key of a registry; checked with a suggestion.
_CHOICES: dict[str, dict] = {
    "activation": ACTIVATIONS,
    "output_activation": ACTIVATIONS,
    "cell": CELLS,
}
# Cell parameters the stacking presets set themselves.
_SET_BY_PRESET = ("suffix", "reverse", "bias")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


# ---- presets ----------------------------------------------------------------------------


def parse_preset_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``"name:key=value,key=value"`` into the name and the raw option strings.

    Examples
    --------
    >>> parse_preset_spec("elman:hidden=16,activation=relu")
    ('elman', {'hidden': '16', 'activation': 'relu'})
    >>> parse_preset_spec("lstm")
    ('lstm', {})
    """
    if not isinstance(spec, str):
        raise ModelSpecError(f"a MODEL is named by a string, got {spec!r}")
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ModelSpecError(
                f"{spec!r}: option {item!r} needs a value, as in {name.strip()}:hidden=16"
            )
        options[key.strip()] = value.strip()
    return name.strip(), options


def _takes_cell_options(name: str) -> bool:
    params = inspect.signature(PRESETS[name]).parameters.values()
    return any(p.kind is p.VAR_KEYWORD for p in params)


def _cell_options(cell: str) -> dict[str, object]:
    params = inspect.signature(CELLS[cell]).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.kind is p.KEYWORD_ONLY and p.name not in _SET_BY_PRESET
    }


def _option_defaults(name: str, cell: str | None) -> dict[str, object]:
    """Every option preset ``name`` takes (with the chosen cell's options), and defaults."""
    options = dict(preset_options(name))
    if _takes_cell_options(name):
        options.update(_cell_options(str(cell or options["cell"])))
    return options


def _parse_bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError("expected true or false")


def parse_scalar(text: str):
    """Read ``text`` as a bool, int, float or ``None`` (``none``), else keep the string.

    Examples
    --------
    >>> [parse_scalar(s) for s in ["0.9", "3", "true", "none", "relu"]]
    [0.9, 3, True, None, 'relu']
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text.strip()


def _expected(kind: str) -> Callable[[str], object]:
    def parse(text: str):
        try:
            return {"int": int, "float": float}[kind](text)
        except ValueError:
            raise ValueError(f"expected {'an integer' if kind == 'int' else 'a number'}") from None

    return parse


# How to read an option's value, by the type of its default.
_VALUE_PARSERS: dict[type, Callable[[str], object]] = {
    bool: _parse_bool,
    int: _expected("int"),
    float: _expected("float"),
    str: str,
    type(None): parse_scalar,
}


def _parse_value(preset: str, key: str, text, default):
    """Read an option's text by its default's type (a non-string value via its text)."""
    text = text if isinstance(text, str) else str(text)
    try:
        value = _VALUE_PARSERS.get(type(default), parse_scalar)(text)
    except ValueError as e:
        raise ModelSpecError(f"preset {preset!r}: option {key}={text!r}: {e}") from None
    choices = _CHOICES.get(key)
    if choices is not None and value not in choices:
        raise ModelSpecError(
            f"preset {preset!r}: unknown {key} {value!r}{suggest(value, choices)}"
            f"; known: {', '.join(choices)}"
        )
    return value


def _option_text(value) -> str:
    """A grid value as the text of a MODEL option (``3.0`` stays ``3.0``, not ``3``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


def _check_preset_name(name: str) -> None:
    if name not in PRESETS:
        raise ModelSpecError(
            f"unknown preset {name!r}{suggest(name, PRESETS)}; presets: {', '.join(PRESETS)} "
            "(or give a .toml file, a .pt state_dict or package.module:function)"
        )


def build_preset(
    name: str, options: dict | None = None, max_nodes: int | None = MAX_GRAPH_NODES
) -> Graph:
    """Build preset ``name`` from option strings, each read by its default's type.

    Parameters
    ----------
    name : str
        A key of :data:`unroll.presets.PRESETS`.
    options : dict
        Option names (or :data:`OPTION_ALIASES`) to their text, ``{"hidden": "16"}``, or
        to values, ``{"hidden": 16}``; each is read by the type of the option's default.

    Returns
    -------
    Graph

    Raises
    ------
    ModelSpecError
        For an unknown preset, option or choice (suggesting the closest), a value of
        the wrong type, or options the preset rejects.
    LimitError
        When the graph would have more than ``max_nodes`` nodes (estimated from a
        one- and a two-layer build before building it).

    Examples
    --------
    >>> build_preset("elman", {"hidden": "16", "activation": "relu"}).nodes["h"].size
    16
    >>> build_preset("stacked", {"cell": "elman", "activation": "relu"}).nodes["h_l1"].activation
    'relu'
    >>> build_preset("elman", {"hiden": "16"})  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    unroll.models.ModelSpecError: preset 'elman': unknown option 'hiden'
    (did you mean 'hidden'?); options: ...
    """
    _check_preset_name(name)
    raw = {OPTION_ALIASES.get(k, k): v for k, v in (options or {}).items()}
    stacking = _takes_cell_options(name) and "cell" in raw
    cell = _parse_value(name, "cell", raw["cell"], "") if stacking else None
    defaults = _option_defaults(name, cell)
    values = {}
    for key, text in raw.items():
        if key not in defaults:
            known = [*defaults, *(a for a, full in OPTION_ALIASES.items() if full in defaults)]
            raise ModelSpecError(
                f"preset {name!r}: unknown option {key!r}{suggest(key, known)}"
                f"; options: {', '.join(defaults)}"
            )
        values[key] = _parse_value(name, key, text, defaults[key])
    layers = values.get("layers")
    if isinstance(layers, int) and layers > 2 and max_nodes is not None:
        nodes = extrapolate(
            lambda k: len(_call_preset(name, {**values, "layers": k}).nodes), layers
        )
        check_graph_size(f"preset {name!r} with {layers:,} layers", int(nodes), 0, max_nodes)
    return _call_preset(name, values)


def _call_preset(name: str, values: dict) -> Graph:
    try:
        return PRESETS[name](**values)
    except (UnrollError, ValueError, TypeError) as e:
        raise ModelSpecError(f"preset {name!r}: {e}") from None


@dataclass(frozen=True)
class PresetInfo:
    """One row of ``unroll presets``: the name, the options with defaults, one line of doc."""

    name: str
    options: dict[str, object]
    doc: str


def preset_catalog() -> list[PresetInfo]:
    """Every preset with its options (the default cell's options for stacking presets).

    Examples
    --------
    >>> row = preset_catalog()[0]
    >>> row.name, row.options
    ('neuron', {'activation': 'tanh', 'bias': True})
    """
    return [
        PresetInfo(name, _option_defaults(name, None), (inspect.getdoc(fn) or name).splitlines()[0])
        for name, fn in PRESETS.items()
    ]


# ---- the other sources ------------------------------------------------------------------


@dataclass(frozen=True)
class LoadLimits:
    """The limits a MODEL is loaded under: graph nodes, and bytes of declared parameters."""

    max_nodes: int | None = MAX_GRAPH_NODES
    max_memory: int | None = MAX_PARAM_BYTES


def _load_toml(spec: str, limits: LoadLimits) -> ModelSpec:
    path = Path(spec)
    if not path.is_file():
        raise ModelSpecError(f"no such model file: {spec!r}")
    loaded = load_toml(path, max_nodes=limits.max_nodes)
    return ModelSpec(loaded.graph, params=loaded.params, label=spec)


# How to read the options of a state_dict MODEL (``rnn.pt:batch_first=true``).
_STATE_DICT_OPTIONS: dict[str, Callable[[str], object]] = {
    "batch_first": _parse_bool,
    "nonlinearity": str,
    "prefix": str,
    "head": str,
    "kind": str,
}


def _state_dict_options(path: str, raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in _STATE_DICT_OPTIONS:
            raise ModelSpecError(
                f"{path}: unknown option {key!r}{suggest(key, _STATE_DICT_OPTIONS)}; "
                f"options: {', '.join(_STATE_DICT_OPTIONS)}"
            )
        try:
            out[key] = _STATE_DICT_OPTIONS[key](text)
        except ValueError as e:
            raise ModelSpecError(f"{path}: option {key}={text!r}: {e}") from None
    return out


def _load_state_dict(spec: str, limits: LoadLimits) -> ModelSpec:
    path, _, rest = spec.partition(":")
    if not Path(path).is_file():
        raise ModelSpecError(f"no such state_dict file: {path!r}")
    options = _state_dict_options(path, parse_preset_spec(f"x:{rest}")[1])
    try:
        from .interop import load_state_dict

        loaded = load_state_dict(path, max_memory=limits.max_memory, **options)
    except ImportError as e:
        raise ModelSpecError(f"{path}: reading a state_dict needs PyTorch ({e})") from None
    return ModelSpec(loaded.graph, params=dict(loaded.params), label=spec)


def _framework_loader(what: str, extra: str, loader: str) -> Callable[[str, LoadLimits], ModelSpec]:
    """A MODEL source for a framework's file: ``loader`` of :mod:`unroll.interop`, which
    needs the ``extra``; a missing file or a missing extra is a usage error."""

    def load(spec: str, limits: LoadLimits) -> ModelSpec:
        if not Path(spec).is_file():
            raise ModelSpecError(f"no such {what} file: {spec!r}")
        from . import interop

        try:
            loaded = getattr(interop, loader)(spec)
        except ImportError as e:
            raise ModelSpecError(
                f"{spec}: reading a {what} model needs the {extra} extra ({e})"
            ) from None
        graph = loaded.graph
        check_graph_size(spec, len(graph.nodes), len(graph.edges), limits.max_nodes)
        return ModelSpec(graph, params=dict(loaded.params), label=spec)

    return load


def _failure(spec: str, doing: str, error: BaseException) -> ModelSpecError:
    """``spec: <doing> raised <Type>: <message>`` (``SystemExit``: the exit status)."""
    if isinstance(error, SystemExit):
        return ModelSpecError(f"{spec}: {doing} called sys.exit({error.code!r})")
    return ModelSpecError(f"{spec}: {doing} raised {type(error).__name__}: {error}")


def _load_function(spec: str, limits: LoadLimits) -> ModelSpec:
    module_name, _, function_name = spec.partition(":")
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelSpecError(f"{spec}: cannot import {module_name!r} ({e})") from None
    except (Exception, SystemExit) as e:  # the module's own code failed on import
        raise _failure(spec, f"importing {module_name!r}", e) from None
    finally:
        if added:
            sys.path.remove(here)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelSpecError(
            f"{spec}: module {module_name!r} has no function "
            f"{function_name!r}{suggest(function_name, dir(module))}"
        )
    _check_no_arguments(spec, function)
    try:
        made = function()
    except UnrollError as e:
        raise ModelSpecError(f"{spec}: {e}") from None
    except (Exception, SystemExit) as e:  # whatever the user's function raises, named
        raise _failure(spec, "the function", e) from None
    graph = made if isinstance(made, Graph) else getattr(made, "graph", None)
    if isinstance(graph, Graph):
        check_graph_size(spec, len(graph.nodes), len(graph.edges), limits.max_nodes)
        params = None if graph is made else getattr(made, "params", None)
        return ModelSpec(graph, params=params, label=spec)
    raise ModelSpecError(
        f"{spec} returned a value of type {type(made).__name__}, not an unroll.Graph"
    )


def _check_no_arguments(spec: str, function) -> None:
    try:
        inspect.signature(function).bind()
    except TypeError:
        raise ModelSpecError(f"{spec}: the function must be callable without arguments") from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass


#: Options of a preset spec that say how to draw its parameters rather than what it is:
#: ``lstm:hidden=32,forget_bias=1`` is an LSTM whose forget gates start at bias 1.
#: (``bias`` is left out: presets take ``bias=`` for whether to have biases at all.)
SPEC_INIT_OPTIONS = {"init": str, **{k: float for k in INIT_OPTIONS if k != "bias"}}


def _load_preset(spec: str, limits: LoadLimits) -> ModelSpec:
    name, options = parse_preset_spec(spec)
    if name not in PRESETS and (os.sep in spec or Path(spec).suffix):
        raise ModelSpecError(
            f"no such preset or model file: {spec!r} (model files end in "
            ".toml, state_dicts in .pt or .pth)"
        )
    init = {k: options.pop(k) for k in list(options) if k in SPEC_INIT_OPTIONS}
    graph = build_preset(name, options, max_nodes=limits.max_nodes)
    drawn = _init_options(name, init)
    scheme = drawn.pop("init", None)
    return ModelSpec(graph, None if scheme is None else str(scheme), drawn, label=spec)


def _init_options(name: str, raw: dict[str, str]) -> dict[str, object]:
    out = {}
    for key, text in raw.items():
        try:
            out[key] = SPEC_INIT_OPTIONS[key](text)
        except ValueError:
            raise ModelSpecError(
                f"preset {name!r}: option {key!r} takes a number, got {text!r}"
            ) from None
    return out


_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _is_function(spec: str) -> bool:
    return bool(_FUNCTION.match(spec)) and spec.partition(":")[0] not in PRESETS


def _has_suffix(*suffixes: str) -> Callable[[str], bool]:
    return lambda spec: spec.partition(":")[0].lower().endswith(suffixes)


@dataclass(frozen=True)
class ModelSource:
    """One way to name a model: how to recognise the argument, and how to load it."""

    name: str
    matches: Callable[[str], bool]
    load: Callable[[str, LoadLimits], ModelSpec]
    example: str


#: The kinds of MODEL argument, tried in order; the last (presets) takes everything else.
MODEL_SOURCES: list[ModelSource] = [
    ModelSource("toml", lambda s: s.lower().endswith(".toml"), _load_toml, "examples/gru.toml"),
    ModelSource("state_dict", _has_suffix(".pt", ".pth"), _load_state_dict, "rnn.pt"),
    ModelSource(
        "keras",
        lambda s: s.lower().endswith(".keras"),
        _framework_loader("Keras", "keras", "load_keras"),
        "model.keras",
    ),
    ModelSource(
        "onnx",
        lambda s: s.lower().endswith(".onnx"),
        _framework_loader("ONNX", "onnx", "load_onnx"),
        "model.onnx",
    ),
    ModelSource("function", _is_function, _load_function, "mypackage.models:make_graph"),
    ModelSource("preset", lambda s: True, _load_preset, "elman:hidden=16"),
]


def load_model(
    spec: str | Graph | ModelSpec,
    *,
    max_nodes: int | None = MAX_GRAPH_NODES,
    max_memory: int | None = MAX_PARAM_BYTES,
) -> ModelSpec:
    """Resolve a MODEL argument to its graph, parameters (or ``None``) and label.

    Parameters
    ----------
    spec : str, Graph or ModelSpec
        A preset spec, a ``.toml`` path, ``package.module:function``, a ``.pt``
        state_dict path (see the module docstring), or a graph.
    max_nodes : int or None
        Refuse a graph of more nodes (counted before it is built where the source
        allows: a model file's tables, a preset's layers); ``None`` for no limit.
    max_memory : int or None
        Refuse a weight file whose declared shapes need more bytes (read from its
        metadata before any tensor is built); ``None`` for no limit.

    Returns
    -------
    ModelSpec
        The label is the argument as given (a graph's name for a graph).

    Raises
    ------
    ModelSpecError
        When the argument names nothing that exists, with the closest valid name.
    unroll.files.ModelFileError
        When a model file is malformed (naming the line).
    unroll.errors.LimitError
        Above ``max_nodes`` or ``max_memory``.

    Examples
    --------
    >>> m = load_model("gru:hidden=4")
    >>> m.graph.nodes["h"].size, m.params, m.label
    (4, None, 'gru:hidden=4')
    >>> load_model("lstn")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.models.ModelSpecError: unknown preset 'lstn' (did you mean 'lstm'?); presets: ...
    """
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, Graph):
        return ModelSpec(spec)
    if not isinstance(spec, str | os.PathLike):
        raise ModelSpecError(
            f"a MODEL is a preset name, a file or module:function, got {type(spec).__name__}"
        )
    spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise ModelSpecError(f"a MODEL path must be text, got {spec!r}")
    spec = spec.strip()
    source = next(s for s in MODEL_SOURCES if s.matches(spec))
    return source.load(spec, LoadLimits(max_nodes, max_memory))


def load_model_for_task(spec, task) -> ModelSpec:
    """Resolve a MODEL argument (see :func:`load_model`) for a task's inputs.

    A preset spec that does not set its input size gets the task's (``lstm:hidden=32``
    reads the adding problem's 2 inputs); any other model must already match it.

    Raises
    ------
    ModelSpecError
        For an unknown model, or an input size that does not match the task.

    Examples
    --------
    >>> from unroll.tasks import copy_memory
    >>> load_model_for_task("gru:hidden=4", copy_memory(5)).graph.nodes["x"].size
    10
    """
    if isinstance(spec, str) and next(s for s in MODEL_SOURCES if s.matches(spec)).name == "preset":
        name, options = parse_preset_spec(spec)
        given = {OPTION_ALIASES.get(k, k) for k in options}
        if name in PRESETS and "input_size" in preset_options(name) and "input_size" not in given:
            sized = f"{spec}{',' if ':' in spec else ':'}input_size={task.input_size}"
            return replace(load_model(sized), label=spec)
    model = load_model(spec)
    inputs = model.graph.input_nodes()
    sizes = [model.graph.nodes[n].size for n in inputs]
    if sizes != [task.input_size]:
        have = ", ".join(f"{n} of size {s}" for n, s in zip(inputs, sizes, strict=True))
        raise ModelSpecError(
            f"{model.label}: the {task.name} task feeds one input of size {task.input_size}, "
            f"the model has {have or 'no input'}"
        )
    return model


# ---- a preset spec with its settings changed (a sweep's grid point) ---------------------


def _preset_of(spec: str) -> tuple[str | None, dict]:
    """The preset name and raw options of a preset spec; ``(None, {})`` for a file."""
    source = next(s for s in MODEL_SOURCES if s.matches(spec))
    return parse_preset_spec(spec) if source.name == "preset" else (None, {})


def preset_settings(spec: str) -> list[str]:
    """The settings that change the graph of a MODEL spec: its preset's options and their
    short names (none for a file or function).

    Examples
    --------
    >>> preset_settings("elman:input=2")[:3]
    ['input_size', 'hidden_size', 'activation']
    >>> preset_settings("examples/elman.toml")
    []
    """
    name, options = _preset_of(spec)
    if name is None:
        return []
    _check_preset_name(name)
    cell = options.get("cell") if _takes_cell_options(name) else None
    if cell is not None:
        _parse_value(name, "cell", cell, "")  # an unknown cell, with a suggestion
    defaults = _option_defaults(name, cell)
    return [*defaults, *(a for a, full in OPTION_ALIASES.items() if full in defaults)]


def check_preset_values(spec: str, grid: dict) -> None:
    """Raise :class:`ModelSpecError` for a value of ``grid`` (``{setting: values}``) that a
    graph setting of ``spec`` cannot take, read as the preset reads it."""
    name, options = _preset_of(spec)
    if name is None:
        return
    cell = options.get("cell") if _takes_cell_options(name) else None
    defaults = _option_defaults(name, cell)
    graph_keys = preset_settings(spec)
    for key, values in grid.items():
        if key in graph_keys:
            full = OPTION_ALIASES.get(key, key)
            for value in values:
                _parse_value(name, full, _option_text(value), defaults[full])


def preset_at(spec: str, settings: dict) -> ModelSpec:
    """The model of ``spec`` with its preset options changed by ``settings``."""
    name, options = _preset_of(spec)
    if name is None:
        raise ModelSpecError(f"{spec}: not a preset, so no graph setting can change")
    return ModelSpec(build_preset(name, {**options, **settings}), label=spec)
