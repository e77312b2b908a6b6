"""The gallery's animation: the gradient of a tanh RNN flowing back in time, as a GIF."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .pictures import Plot

__all__ = ["Animation", "backward_flow"]

#: The animated model and its steps: a tanh RNN, 8 steps, the loss at the last.
MODEL, STEPS = "elman:input=2,hidden=8", 8


@dataclass(frozen=True)
class Animation(Plot):
    """An animation already encoded as GIF, shown as ``<stem>.gif`` (a :class:`Plot` whose
    bytes, in its ``png`` field, are a GIF's)."""

    @property
    def shown(self) -> str:
        """The file the gallery's README shows."""
        return f"{self.stem}.gif"


def backward_flow(fast: bool) -> list[Animation]:
    """One frame per step: the gradient front moving back through a tanh RNN (the same
    picture in a fast build)."""
    from ..explore.movie import animate

    movie = animate(MODEL, steps=STEPS, fps=1.5)
    with tempfile.TemporaryDirectory() as folder:
        gif = movie.save(Path(folder) / "flow.gif").read_bytes()
    alt = (
        "an unrolled tanh RNN whose copies turn from pale to dark red one step at a time, "
        "from the last step back to the first, above a plot of the gradient norm per step"
    )
    return [Animation("backward_flow", gif, alt)]
