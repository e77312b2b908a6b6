"""The exception the analysis raises for settings or graphs it cannot measure."""

from ..errors import UnrollError

__all__ = ["AnalysisError"]


class AnalysisError(UnrollError):
    """A setting, a model spec or a graph that a measurement cannot use; one-line message."""
