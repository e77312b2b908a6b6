"""The backward flow as an animation for slides: a GIF (or an MP4 where ffmpeg is).

One frame per drawn step, from the last to the first: the gradient front moves back in
time, every copy it has reached painted by ``log10 ||dL/dv||`` on the explorer's colour
scale (:class:`~unroll.explore.runs.LogScale`, with its colour bar), and beneath the
diagram the plot of ``log10 ||dL/ds_t||`` per state node with the front marked. The
diagram is graphviz's layout replayed with matplotlib (:mod:`unroll.explore.xdot`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import RunFailure
from .dot import draw, layout
from .runs import ExploreError, LogScale, Run, as_runs, colour_map, ink
from .svg import copy_of
from .xdot import draw_layout

__all__ = ["ANIMATION_SUFFIXES", "Animation", "MissingProgram", "animate"]


class MissingProgram(ExploreError, RunFailure):
    """A program the output needs (ffmpeg) is not installed: a failure of the run, exit 1."""


#: What :func:`animate` writes, by file suffix: the matplotlib writer and whether it
#: needs ffmpeg.
ANIMATION_SUFFIXES = {".gif": ("pillow", False), ".mp4": ("ffmpeg", True)}

_WIDTH = 10.0  # inches
_DPI = 100
_LINE_STYLES = ("-", "--", ":", "-.")


class Animation:
    """The frames of one run's backward flow; :meth:`save` writes them.

    Made by :func:`animate`. ``fronts`` lists the step of each frame (the drawn steps,
    last first); ``scale`` is the colour scale; ``copies`` maps the DOT id of every drawn
    node copy to its ``(name, t)``.
    """

    def __init__(self, run: Run, *, fps: float = 2.0, **drawing):
        self.run = run
        self.fps = fps
        self.scale = LogScale.of([run])
        self._graph = layout(draw(run, drawing))
        self.copies = {
            node["name"]: copy
            for node in self._graph.get("objects", [])
            if "nodes" not in node and (copy := copy_of(node["name"], run.copies)) is not None
        }
        shown = {t for _, t in self.copies.values() if 0 <= t < run.steps}
        self.fronts = sorted(shown, reverse=True)

    def copy_log10(self, name: str, t: int) -> float:
        """``log10 ||dL/d(name, t)||`` of a drawn copy."""
        return self.run.copy_log10(name, t)

    def figure(self):
        """A figure with the diagram, its colour bar and the norm plot, and the
        :class:`Painter` that draws frame ``i`` on it (``painter(i)``)."""
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure

        x0, y0, x1, y1 = (float(v) for v in self._graph["bb"].split(","))
        zoom = _WIDTH * 72 / (x1 - x0)
        diagram_height = _WIDTH * (y1 - y0) / (x1 - x0)
        figure = Figure(figsize=(_WIDTH, diagram_height + 3.6), dpi=_DPI, layout="constrained")
        # two rows: an array of two SubFigures (matplotlib's stub also allows one SubFigure)
        top, bottom = figure.subfigures(2, 1, height_ratios=[diagram_height + 0.9, 2.7])  # type: ignore[misc]
        ax = top.subplots()
        drawn = draw_layout(ax, self._graph, zoom)
        bar = ScalarMappable(Normalize(self.scale.low, self.scale.high), colour_map())
        colour_bar = top.colorbar(
            bar, ax=ax, orientation="horizontal", fraction=0.05, shrink=0.5, pad=0.02
        )
        colour_bar.set_label("log10 ‖dL/dv‖ of each copy (grey: exactly 0)", fontsize=9)
        front, unreached = self._norm_plot(bottom.subplots())
        return figure, Painter(self, drawn, top.suptitle("", fontsize=12), front, unreached)

    def _norm_plot(self, ax):
        steps = np.arange(1, self.run.steps + 1)
        for state, style in zip(self.run.states, _LINE_STYLES * 4, strict=False):
            values = np.array(self.run.norms[state], dtype=float)
            values[~np.isfinite(values)] = np.nan
            ax.plot(steps, values, style, color="#1f77b4", label=f"{state}")
        ax.set_ylim(self.scale.low, self.scale.high)
        ax.set_xlim(0.5, self.run.steps + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("step (the loss sits at the last)")
        ax.set_ylabel("log10 ‖dL/ds_t‖")
        ax.grid(alpha=0.3)
        ax.legend(title="state", fontsize=8, loc="upper left")
        from matplotlib.patches import Rectangle

        unreached = Rectangle(
            (0.5, 0), 0, 1, transform=ax.get_xaxis_transform(), color="#000000", alpha=0.07
        )
        ax.add_patch(unreached)
        return ax.axvline(self.run.steps, color="#000000", linewidth=1.5), unreached

    def save(self, path) -> Path:
        """Write the animation to ``path``: ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg).

        Raises
        ------
        ExploreError
            For another suffix, or ``.mp4`` without ffmpeg.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in ANIMATION_SUFFIXES:
            known = ", ".join(ANIMATION_SUFFIXES)
            raise ExploreError(
                f"{path}: cannot write {suffix or 'no suffix'!r}; use one of {known}"
            )
        writer_name, needs_ffmpeg = ANIMATION_SUFFIXES[suffix]
        if needs_ffmpeg and shutil.which("ffmpeg") is None:
            raise MissingProgram(
                f"{path}: an .mp4 needs ffmpeg, which is not installed "
                "(apt-get install ffmpeg), or write a .gif"
            )
        atomic_write(path, self._encode(writer_name, suffix))
        return path

    def _encode(self, writer_name: str, suffix: str) -> bytes:
        from matplotlib import animation

        # the writers take a float frame rate (the gallery's 1.5); matplotlib's stub says int
        writer = animation.writers[writer_name](fps=self.fps)  # type: ignore[arg-type]
        figure, paint = self.figure()
        with tempfile.TemporaryDirectory() as folder:
            scratch = os.path.join(folder, f"flow{suffix}")
            with writer.saving(figure, scratch, dpi=_DPI):
                for i in range(len(self.fronts)):
                    paint(i)
                    writer.grab_frame()
            return Path(scratch).read_bytes()

    def frame_png(self, i: int) -> bytes:
        """Frame ``i`` as PNG bytes (to look at one)."""
        import io

        figure, paint = self.figure()
        paint(i)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI)
        return buffer.getvalue()


class Painter:
    """Paints frame ``i`` of an :class:`Animation` on its figure: the copies the front has
    reached in their gradient colour, the others faded; the title; on the plot, the front's
    line and the shaded steps it has not reached.
    ``fills`` and ``texts`` are the drawn shapes and labels of every copy, by DOT id."""

    FADED = 0.35

    def __init__(self, movie: Animation, drawn, title, front, unreached):
        self.movie, self.title, self.front, self.unreached = movie, title, front, unreached
        self.fills, self.texts = drawn.fills, drawn.texts
        self._originals = {k: [a.get_facecolor() for a in v] for k, v in self.fills.items()}
        self._inks = {k: [a.get_color() for a in v] for k, v in self.texts.items()}

    def reached(self, i: int, step: int) -> bool:
        """Whether the gradient front of frame ``i`` has reached copies of ``step``."""
        fronts, steps = self.movie.fronts, self.movie.run.steps
        return step >= fronts[i] or step >= steps or (step < 0 and i == len(fronts) - 1)

    def __call__(self, i: int) -> None:
        movie = self.movie
        t = movie.fronts[i]
        for dot_id, (name, step) in movie.copies.items():
            reached = self.reached(i, step)
            fill = movie.scale.colour(movie.copy_log10(name, step)) if reached else None
            alpha = 1.0 if reached else self.FADED
            for artist, original in zip(
                self.fills.get(dot_id, []), self._originals.get(dot_id, []), strict=True
            ):
                artist.set_facecolor(fill or original)
                artist.set_alpha(alpha)
            labels = zip(self.texts.get(dot_id, []), self._inks.get(dot_id, []), strict=True)
            for text, original in labels:
                text.set_color(ink(fill) if fill else original)
                text.set_alpha(alpha)
        run = movie.run
        self.title.set_text(
            f"{run.label}: the gradient front at step {t + 1} of {run.steps} (t = {t})"
        )
        self.front.set_xdata([t + 1, t + 1])
        self.unreached.set_width(t)  # steps 1 .. t (t = 0 .. t-1) wait for the gradient


def animate(
    model,
    *,
    steps: int = 8,
    seed: int = 0,
    mode: str = "synced",
    fps: float = 2.0,
    detail: str = "op",
    direction: str = "LR",
    steps_shown=None,
    full: bool = False,
    **limits,
) -> Animation:
    """The backward flow of one BPTT run as an animation, one frame per drawn step.

    Parameters
    ----------
    model : str, Graph, ModelSpec or BPTTResult
        A MODEL spec, a graph, or a run of your own.
    steps, seed, mode
        The probe run, as :func:`unroll.explore.explore` makes it.
    fps : float
        Frames per second.
    detail, direction, steps_shown, full
        How the diagram is drawn, as in :func:`unroll.render`.

    Returns
    -------
    Animation
        ``.save("flow.gif")`` (or ``.mp4``) writes it.

    Examples
    --------
    >>> movie = animate("elman:hidden=3", steps=4)
    >>> movie.fronts, (movie.scale.low, movie.scale.high)
    ([3, 2, 1, 0], (-2, 1))
    """
    (run,) = as_runs([model], steps, seed, mode, **limits)
    return Animation(
        run, fps=fps, detail=detail, direction=direction, steps_shown=steps_shown, full=full
    )
