"""The error the renderer raises for a diagram it will not draw or a file it cannot write."""

from ..errors import RunFailure, UnrollError

__all__ = ["DotFailure", "RenderError"]


class RenderError(UnrollError):
    """A diagram cannot be drawn or saved as asked; the message names the option to change."""


class DotFailure(RenderError, RunFailure):
    """Graphviz's ``dot`` program is missing or failed while writing an image."""
