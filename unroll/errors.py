"""The exceptions unroll raises for input it cannot accept."""

__all__ = ["GraphError", "InputError", "UnrollError"]


class UnrollError(ValueError):
    """Base class of every error unroll raises for bad input; the message is one line."""


class GraphError(UnrollError):
    """A recurrent graph is malformed: unknown node, size mismatch, algebraic loop, ..."""


class InputError(UnrollError):
    """Inputs, parameters, cotangents or settings do not fit the graph they are used with."""
