"""Check what the caller passed to :func:`~unroll.engine.bptt`, each fault in one line."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import InputError

__all__ = [
    "as_batch",
    "check_arguments",
    "check_flags",
    "check_inputs",
    "check_params",
    "float_dtype",
    "initial_value",
    "peek_batch",
]


def real_array(value, what: str) -> np.ndarray:
    """``value`` as an array of real numbers (integers or floats), else an InputError."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists, objects numpy refuses
        raise InputError(f"{what} is not a rectangular array of numbers") from None
    if array.dtype.kind not in "iuf":  # not bool, complex, strings or objects
        raise InputError(f"{what} has dtype {array.dtype}, expected real numbers")
    return array


def all_finite(array: np.ndarray) -> bool:
    """Whether every entry is finite: one sum (NaN and infinities make it non-finite), and
    the entrywise test only where the sum of finite entries overflowed."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(array)):
            return True
    return bool(np.isfinite(array).all())


def check_finite(array: np.ndarray, what: str, axes=None) -> None:
    """Raise an InputError naming the first NaN or infinite entry of ``array``, if any."""
    if all_finite(array):
        return
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
    if axes and len(axes) == len(index):
        where = ", ".join(f"{axis} {i}" for axis, i in zip(axes, index, strict=True))
        raise InputError(f"{what} has non-finite values, the first at {where} ({array[index]})")
    raise InputError(f"{what} has a non-finite value at index {list(index)} ({array[index]})")


def check_params(shapes, params, dtype) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """The parameters as arrays of ``dtype``, and the ensemble's leading shape.

    A parameter may carry one leading axis of ``S`` models (an ensemble); all that do
    must agree on ``S``, and the others are shared by every model.
    """
    for name in params:
        if name not in shapes:
            raise InputError(f"unknown parameter {name!r} (the graph has: {', '.join(shapes)})")
    out, models = {}, None
    for name, shape in shapes.items():
        if name not in params:
            raise InputError(f"missing parameter {name!r} of shape {fmt(shape)}")
        with np.errstate(over="ignore"):  # a float32 overflow is named just below
            value = real_array(params[name], f"parameter {name!r}").astype(dtype, copy=False)
        if value.shape == shape:
            pass
        elif value.ndim == len(shape) + 1 and value.shape[1:] == shape and value.shape[0] >= 1:
            if models is not None and value.shape[0] != models[1]:
                raise InputError(
                    f"parameter {name!r} holds {value.shape[0]} models, parameter "
                    f"{models[0]!r} holds {models[1]}"
                )
            models = (name, value.shape[0])
        else:
            raise InputError(
                f"parameter {name!r} has shape {fmt(value.shape)}, the graph needs {fmt(shape)}"
            )
        check_finite(value, f"parameter {name!r}")
        out[name] = value
    lead = () if models is None else (models[1],)
    for name, shape in shapes.items():
        if lead and out[name].shape == shape:
            out[name] = np.broadcast_to(out[name], lead + shape)
    return out, lead


def check_inputs(unrolled, inputs, lead, dtype):
    """Inputs as ``(rows, B, n)`` arrays (or ``(S, rows, B, n)`` per model), and the batch."""
    g = unrolled.graph
    for name in inputs:
        if name not in g.nodes or not g.nodes[name].op.has("fed"):
            raise InputError(f"unknown input {name!r} (inputs: {', '.join(g.input_nodes())})")
    xs, batch = {}, None
    for name in g.input_nodes():
        if name not in inputs:
            raise InputError(f"missing input {name!r}: give an array (T, B, {g.nodes[name].size})")
        x = real_array(inputs[name], f"input {name!r}")
        steps = unrolled.input_steps(name)
        per_model = lead and x.ndim == 4 and x.shape[0] == lead[0]
        seq = x[0] if per_model else x
        if (
            seq.ndim != 3
            or seq.shape[2] != g.nodes[name].size
            or seq.shape[0] not in (len(steps), unrolled.steps)
        ):
            raise InputError(
                f"input {name!r} has shape {fmt(x.shape)}, expected "
                f"({unrolled.steps}, B, {g.nodes[name].size})"
            )
        if seq.shape[0] != len(steps):
            x = x[:, steps] if per_model else x[steps]
        b = x.shape[-2]
        if batch is not None and b != batch:
            raise InputError(f"input {name!r} has batch {b}, other inputs {batch}")
        batch = b
        if batch == 0:
            raise InputError(f"input {name!r} has batch 0: give at least one sequence")
        xs[name] = np.ascontiguousarray(x, dtype=dtype)
        check_input_finite(xs[name], name, steps)
    return xs, batch


def check_input_finite(x: np.ndarray, name: str, steps: list[int]) -> None:
    """Name the first NaN or infinite entry by the step its row feeds, batch and unit."""
    if all_finite(x):
        return
    *model, row, b, k = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
    where = f"model {model[0]}, " if model else ""
    raise InputError(
        f"input {name!r} has a non-finite value at {where}step {steps[row]}, batch {b}, "
        f"unit {k} ({x[(*model, row, b, k)]})"
    )


def batch_from(*mappings) -> int:
    """The batch size of the first ``(B, n)`` (or ``(S, B, n)``) value found, else 1."""
    for m in mappings:
        for v in (m or {}).values() if isinstance(m, Mapping) else ():
            try:
                shape = np.shape(v)
            except ValueError:  # ragged: the shape checks name it later
                continue
            if len(shape) in (2, 3):
                return shape[-2]
    return 1


def peek_batch(inputs, cotangents, initial_states) -> int:
    """The batch size the caller means, read without checking (the checks come later)."""
    for value in inputs.values() if isinstance(inputs, Mapping) else ():
        try:
            shape = np.shape(value)
        except ValueError:
            continue
        if len(shape) in (3, 4):
            return max(1, int(shape[-2]))
    return max(1, batch_from(cotangents, initial_states))


def check_initial_states(unrolled, initial_states) -> None:
    """Every key names a boundary node, or one boundary instance."""
    known = {name for name, _ in unrolled.boundary}
    instances = set(unrolled.boundary)
    for key in initial_states:
        name = key[0] if isinstance(key, tuple) else key
        if name not in known or (isinstance(key, tuple) and key not in instances):
            raise InputError(
                f"initial state {key!r}: no such boundary node (boundary: "
                f"{', '.join(map(str, unrolled.boundary))})"
            )


def initial_value(initial_states, name, t, batch, size, lead, dtype):
    """The given value of boundary instance ``(name, t)``, or ``None`` (zero)."""
    value = initial_states.get((name, t), initial_states.get(name))
    if value is None:
        return None
    return as_batch(value, batch, size, f"initial state {name!r}", dtype, lead, check=True)


def as_batch(value, batch, size, what, dtype, lead=(), check=False):
    """``value`` as ``(B, size)`` or ``(*lead, B, size)``; a ``(size,)`` vector broadcasts."""
    if type(value) is np.ndarray and value.dtype == dtype:
        v = value  # never written to: the engine only makes new arrays from it
    else:
        v = real_array(value, what).astype(dtype, copy=False)
    if v.shape == (size,):
        v = np.broadcast_to(v, (batch, size))
    if v.shape != (batch, size) and v.shape != (*lead, batch, size):
        raise InputError(f"{what} has shape {fmt(v.shape)}, expected ({batch}, {size})")
    if check:
        check_finite(v, what, ("batch", "unit"))
    return v


def check_arguments(params, inputs, cotangents, initial_states, loss, targets, truncate):
    """Refuse arguments of the wrong type before any work, each with its own message."""
    for name, value in (
        ("params", params),
        ("inputs", inputs),
        ("cotangents", cotangents),
        ("initial_states", initial_states),
    ):
        if value is not None and not isinstance(value, Mapping):
            raise InputError(f"{name} must be a mapping (a dict), got {type(value).__name__}")
    keys = [k for k in cotangents or () if not isinstance(k, str)]  # str: a node's sequence
    if set(map(type, keys)) - {tuple} or set(map(len, keys)) - {2}:  # one pass each
        bad = [k for k in keys if not (isinstance(k, tuple) and len(k) == 2)]
        if bad:
            raise InputError(
                f"cotangent keys are node instances (name, t) or node names, got {bad[0]!r}"
            )
    if loss is not None and not isinstance(loss, str):
        raise InputError(f"loss must be the name of a loss, got {type(loss).__name__}")
    named: list[tuple[str | None, object]] = (
        list(targets.items()) if isinstance(targets, Mapping) else [(None, targets)]
    )
    for node, value in named:
        what = "targets" if node is None else f"targets for {node!r}"
        if value is not None and real_array(value, what).ndim == 0:
            raise InputError(f"{what} must be an array with one row per loss step, got a scalar")
    pair = isinstance(truncate, tuple | list) and len(truncate) == 2
    if truncate is not None and not (pair and all(is_int(k) and k >= 1 for k in truncate)):
        raise InputError(f"truncate=(k1, k2) takes two positive integers, got {truncate!r}")


def check_flags(**flags) -> None:
    """Each flag is a bool."""
    for name, value in flags.items():
        if not isinstance(value, bool | np.bool_):
            raise InputError(f"{name} must be True or False, got {type(value).__name__}")


def is_int(value) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as a numpy float dtype, else an InputError."""
    try:
        found = np.dtype(dtype)
    except (TypeError, ValueError):
        found = None
    if found is None or found.kind != "f":
        raise InputError(f"dtype must be a float type (float64 or float32), got {dtype!r}")
    return found


def fmt(shape) -> str:
    """``(2, 3)``-style text of a shape."""
    return "(" + ", ".join(str(s) for s in shape) + ")"
