"""Parameter initialisation: determinism, each scheme's defining property, the options."""

import numpy as np
import pytest

from unroll import InputError, init_params, presets
from unroll.init import SCHEMES


def test_same_seed_same_arrays_other_seed_other_arrays():
    g = presets.lstm(3, 4)
    a, b, c = init_params(g, seed=1), init_params(g, seed=1), init_params(g, seed=2)
    assert list(a) == sorted(g.params())
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].shape == g.params()[k]
    assert not np.array_equal(a["W_hf"], c["W_hf"])


def test_adding_a_parameter_leaves_the_others_unchanged():
    small = init_params(presets.elman(3, 4), seed=0)
    large = init_params(presets.elman(3, 4, output_size=2), seed=0)
    for k in small:
        np.testing.assert_array_equal(small[k], large[k])


def test_torch_default_bounds():
    p = init_params(presets.gru(5, 16), seed=0)
    for k, v in p.items():
        assert np.all(np.abs(v) <= 1 / np.sqrt(16)), k
        assert np.max(np.abs(v)) > 0.8 / np.sqrt(16), k  # the draw fills the range


def test_orthogonal_and_spectral_scaling():
    g = presets.elman(3, 6)
    q = init_params(g, seed=0, scheme="orthogonal")["W_hh"]
    np.testing.assert_allclose(q @ q.T, np.eye(6), atol=1e-12)
    w = init_params(g, seed=0, scheme="normal", spectral_radius=0.9)["W_hh"]
    assert np.max(np.abs(np.linalg.eigvals(w))) == pytest.approx(0.9, rel=1e-12)
    w = init_params(g, seed=0, scheme="normal", spectral_norm=1.3)["W_hh"]
    assert np.linalg.norm(w, 2) == pytest.approx(1.3, rel=1e-12)


def test_identity_scheme_is_irnn():
    p = init_params(presets.elman(3, 5, activation="relu"), seed=0, scheme="identity")
    np.testing.assert_array_equal(p["W_hh"], np.eye(5))
    assert not np.any(p["b_hh"])


def test_glorot_bound_and_zero_biases():
    p = init_params(presets.elman(3, 5), seed=0, scheme="glorot")
    assert np.all(np.abs(p["W_ih"]) <= np.sqrt(6 / 8))
    assert not np.any(p["b_ih"])


def test_forget_bias_sets_the_gate_sum():
    g = presets.stacked("lstm", 3, 4, layers=2)
    p = init_params(g, seed=0, forget_bias=2.0)
    for layer in ("_l0", "_l1"):
        np.testing.assert_array_equal(p[f"b_if{layer}"] + p[f"b_hf{layer}"], np.full(4, 2.0))


def test_constant_bias_and_float32():
    p = init_params(presets.gru(2, 3), seed=0, bias=0.0, dtype=np.float32)
    assert all(v.dtype == np.float32 for v in p.values())
    assert not np.any(p["b_hn"])


@pytest.mark.parametrize(
    ("graph", "kwargs", "message"),
    [
        (presets.elman(), {"scheme": "kaiming"}, "unknown init scheme 'kaiming' (known: torch,"),
        (
            presets.elman(),
            {"spectral_norm": 1, "spectral_radius": 1},
            "give spectral_radius or spectral_norm, not both",
        ),
        (presets.gru(), {"forget_bias": 1.0}, "forget_bias: graph 'gru' has no forget gate"),
        (
            presets.lstm(bias=False),
            {"forget_bias": 1.0},
            "forget_bias: forget gate 'f' has no bias",
        ),
    ],
)
def test_errors(graph, kwargs, message):
    with pytest.raises(InputError) as e:
        init_params(graph, **kwargs)
    assert str(e.value).startswith(message)


def test_every_scheme_is_documented():
    assert all(s.doc for s in SCHEMES.values())


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("elman",), {}, "init_params takes an unroll.Graph, got str"),
        ((presets.elman(),), {"seed": -1}, "seed must be a non-negative integer, got -1"),
        ((presets.elman(),), {"seed": 1.5}, "seed must be a non-negative integer, got 1.5"),
        ((presets.elman(),), {"scheme": 3}, "unknown init scheme 3"),
        ((presets.elman(),), {"spectral_norm": "big"}, "spectral_norm must be a finite number"),
        ((presets.elman(),), {"spectral_radius": -1.0}, "spectral_radius must not be negative"),
        ((presets.lstm(),), {"forget_bias": float("nan")}, "forget_bias must be a finite number"),
    ],
)
def test_bad_arguments_get_one_line_errors(args, kwargs, message):
    with pytest.raises(InputError) as e:
        init_params(*args, **kwargs)
    assert str(e.value).startswith(message)
