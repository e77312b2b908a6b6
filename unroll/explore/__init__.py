"""Watch BPTT happen: an interactive offline HTML explorer and backward-flow animations.

:func:`explore` builds one self-contained page (diagrams, numbers, script, all inlined)
of one or more models' BPTT runs; :func:`animate` writes the backward flow as a GIF or
MP4 for slides, one frame per drawn step, on the explorer's colour scale.
"""

from .page import Explorer, explore
from .runs import ExploreError, LogScale, Run, probe_runs

__all__ = ["ExploreError", "Explorer", "LogScale", "Run", "explore", "probe_runs"]
