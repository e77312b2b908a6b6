"""Watch BPTT happen: an interactive offline HTML explorer and backward-flow animations.

:func:`explore` builds one self-contained page (diagrams, numbers, script, all inlined)
of one or more models' BPTT runs; :func:`animate` writes the backward flow as a GIF or
MP4 for slides, one frame per drawn step, on the explorer's colour scale.
"""

from .page import Explorer, explore
from .runs import ExploreError, LogScale, Run, probe_runs


def animate(model, **options):
    """The backward flow of one run as an animation: see :func:`unroll.explore.movie.animate`
    (imported on first use, since it needs matplotlib)."""
    from .movie import animate as build

    return build(model, **options)


__all__ = ["ExploreError", "Explorer", "LogScale", "Run", "animate", "explore", "probe_runs"]
