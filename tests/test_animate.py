"""The backward-flow animation: its frames, its colour scale, its files and its CLI."""

from __future__ import annotations

import shutil

import matplotlib.colors as mcolors
import pytest
from click.testing import CliRunner
from PIL import Image
from unroll.cli.main import main

from unroll.explore import ExploreError, explore
from unroll.explore import movie as movie_module
from unroll.explore.movie import animate

pytestmark = [
    pytest.mark.dot,
    pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed"),
]


@pytest.fixture(scope="module")
def movie():
    return animate("lstm:input=2,hidden=3", steps=12)


def test_one_frame_per_drawn_step_last_first(movie, tmp_path):
    assert movie.fronts == [11, 10, 2, 1, 0]  # 12 steps drawn as the first 3 and last 2
    path = movie.save(tmp_path / "flow.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == len(movie.fronts)
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(gif.convert("RGB").tobytes())
    assert len(set(frames)) == len(frames)  # every frame shows something new


def test_the_colour_scale_is_the_explorers(movie):
    page = explore("lstm:input=2,hidden=3", steps=12)
    assert movie.scale == page.scale


def test_each_frame_paints_exactly_the_copies_the_front_has_reached(movie):
    _, paint = movie.figure()
    paint(2)  # the front at t = 2
    assert {t for _, t in movie.copies.values()} == {-1, 0, 1, 2, 10, 11}
    for dot_id, (name, step) in movie.copies.items():
        shape = paint.fills[dot_id][0]
        if step >= 2:
            assert mcolors.to_hex(shape.get_facecolor()) == movie.scale.colour(
                movie.copy_log10(name, step)
            ), dot_id
            assert shape.get_alpha() == 1.0
        else:
            assert shape.get_alpha() == paint.FADED, dot_id
    paint(len(movie.fronts) - 1)  # the last frame reaches the initial states too
    assert paint.fills["c_m1"][0].get_alpha() == 1.0


def test_mp4_needs_ffmpeg_and_says_so(movie, tmp_path, monkeypatch):
    monkeypatch.setattr(movie_module.shutil, "which", lambda name: None)
    with pytest.raises(ExploreError, match="needs ffmpeg"):
        movie.save(tmp_path / "flow.mp4")
    assert not (tmp_path / "flow.mp4").exists()
    with pytest.raises(ExploreError, match=r"use one of \.gif, \.mp4"):
        movie.save(tmp_path / "flow.avi")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_mp4_where_ffmpeg_is(tmp_path):
    path = animate("elman:hidden=2", steps=3).save(tmp_path / "flow.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 container


def test_cli_animates_and_rejects_bad_input(tmp_path):
    out = tmp_path / "flow.gif"
    result = CliRunner().invoke(main, ["animate", "elman:hidden=2", "--steps", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 frames" in result.output and Image.open(out).n_frames == 3
    bad = CliRunner().invoke(main, ["animate", "elman", "-o", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "unknown suffix '.png'" in bad.output


def test_cli_without_ffmpeg_is_one_line_exit_1(tmp_path, monkeypatch):
    monkeypatch.setattr(movie_module.shutil, "which", lambda name: None)
    result = CliRunner().invoke(
        main, ["animate", "elman:hidden=2", "--steps", "2", "-o", str(tmp_path / "f.mp4")]
    )
    assert result.exit_code == 1 and "needs ffmpeg" in result.output
    assert "Traceback" not in result.output
