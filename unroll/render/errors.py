"""The error the renderer raises for a diagram it will not draw or a file it cannot write."""

from ..errors import UnrollError

__all__ = ["RenderError"]


class RenderError(UnrollError):
    """A diagram cannot be drawn or saved as asked; the message names the option to change."""
