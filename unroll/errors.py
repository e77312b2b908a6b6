"""The exceptions unroll raises for input it cannot accept, and the warning it gives."""

import re
from collections.abc import Iterable

__all__ = [
    "MAX_MESSAGE",
    "GraphError",
    "InputError",
    "LimitError",
    "RunFailure",
    "UnrollError",
    "UnrollWarning",
    "format_shape",
]


#: Longest message an error keeps; a longer one (a huge value's repr) is cut with "...".
MAX_MESSAGE = 1000


class UnrollError(ValueError):
    """Base class of every error unroll raises for bad input; the message is one line.

    A message that quotes a value whose repr spans lines (an array) is joined into one
    line, and cut at :data:`MAX_MESSAGE` characters. ``exit_code`` is what the command
    line exits with: 2, for anything wrong with what the user gave (arguments, model
    files, weight files, input arrays); :class:`RunFailure` says 1.
    """

    exit_code = 2

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_one_line(args[0]),)
        super().__init__(*args)


def _one_line(message: str) -> str:
    text = re.sub(r"\s*\n\s*", " ", message.strip())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class GraphError(UnrollError):
    """A recurrent graph is malformed: unknown node, size mismatch, algebraic loop, ..."""


class InputError(UnrollError):
    """Inputs, parameters, cotangents or settings do not fit the graph they are used with."""


class LimitError(InputError):
    """A run would exceed a size limit (node instances, memory).

    ``problem`` states the estimate and the limit; ``option`` names the argument that
    lifts the limit (``"unroll(..., max_nodes=None)"``); the message joins the two, so a
    command line can name its own option instead (``--force``).
    """

    def __init__(self, problem: str, option: str) -> None:
        self.problem, self.option = problem, option
        super().__init__(f"{problem}; pass {option} to lift the limit")

    def __reduce__(
        self,
    ) -> tuple[
        type["LimitError"], tuple[str, str]
    ]:  # picklable, so a sweep's worker process can raise it
        return type(self), (self.problem, self.option)


class RunFailure(UnrollError):
    """A run failed for a reason other than its input (a program it needs failed); exit 1."""

    exit_code = 1


class UnrollWarning(UserWarning):
    """Something unroll accepted but that is likely not what was meant (one line)."""


def format_shape(shape: Iterable[object]) -> str:
    """A shape as error messages write it.

    Examples
    --------
    >>> format_shape((3, 4))
    '(3, 4)'
    """
    return "(" + ", ".join(str(s) for s in shape) + ")"
