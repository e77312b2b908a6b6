"""Cotangents given per node as whole sequences ``{name: (T, B, n)}``: the same run as the
same cotangents given per instance, for single models, ensembles, truncation and losses,
and a one-line error for each way they can be wrong."""

import numpy as np
import pytest

from unroll import InputError, bptt, init_params, presets, unroll
from unroll.check import check_grads

T, B = 12, 2


def _case(preset="elman", **options):
    g = getattr(presets, preset)(3, 4, **options)
    rng = np.random.default_rng(0)
    xs = {"x": rng.normal(size=(T, B, 3))}
    return g, unroll(g, T), init_params(g, seed=0), xs, rng


def _per_step(name, sequence):
    return {(name, t): sequence[..., t, :, :] for t in range(sequence.shape[-3])}


def _assert_same(a, b):
    for name, grad in a.param_grads.items():
        np.testing.assert_array_equal(grad, b.param_grads[name], err_msg=name)
    for t in range(-1, T):
        for name in ("h", "x"):
            if t >= 0 or name == "h":
                np.testing.assert_array_equal(a.node_grads[(name, t)], b.node_grads[(name, t)])


@pytest.mark.parametrize("preset", ["neuron", "elman", "lstm", "gru"])
@pytest.mark.parametrize("truncate", [None, (5, 7)])
def test_a_sequence_is_the_same_run_as_its_steps(preset, truncate):
    g, u, params, xs, rng = _case(preset) if preset != "neuron" else _neuron()
    d = rng.normal(size=(T, B, g.nodes["h"].size))
    whole = bptt(u, params, xs, {"h": d}, truncate=truncate)
    steps = bptt(u, params, xs, _per_step("h", d), truncate=truncate)
    _assert_same(whole, steps)
    assert dict(whole.run.cotangents.items()).keys() == _per_step("h", d).keys()
    np.testing.assert_array_equal(whole.run.cotangents[("h", 3)], d[3])


def _neuron():
    g = presets.neuron()
    rng = np.random.default_rng(0)
    return g, unroll(g, T), init_params(g, seed=0), {"x": rng.normal(size=(T, B, 1))}, rng


def test_sequences_and_steps_mix_across_nodes():
    _, u, params, xs, rng = _case(output_size=2)
    on_h, on_y = rng.normal(size=(T, B, 4)), rng.normal(size=(T, B, 2))
    mixed = bptt(u, params, xs, {"h": on_h, **_per_step("y", on_y)})
    steps = bptt(u, params, xs, {**_per_step("h", on_h), **_per_step("y", on_y)})
    _assert_same(mixed, steps)


@pytest.mark.parametrize("per_model", [False, True])
def test_an_ensemble_takes_one_sequence_for_all_models_or_one_each(per_model):
    g, u, _, xs, rng = _case("lstm")
    stacked = {k: np.stack([init_params(g, seed=s)[k] for s in range(3)]) for k in g.params()}
    d = rng.normal(size=(3, T, B, 4) if per_model else (T, B, 4))
    whole = bptt(u, stacked, xs, {"h": d})
    steps = bptt(u, stacked, xs, _per_step("h", d))
    _assert_same(whole, steps)


def test_a_loss_adds_to_a_sequence_on_its_own_node():
    _, u, params, xs, rng = _case(output_size=2)
    targets = rng.normal(size=(T, B, 2))
    d = rng.normal(size=(T, B, 2))
    whole = bptt(u, params, xs, {"y": d}, loss="mse", targets=targets)
    steps = bptt(u, params, xs, _per_step("y", d), loss="mse", targets=targets)
    _assert_same(whole, steps)
    assert whole.loss == steps.loss


@pytest.mark.parametrize(
    "cotangents, message",
    [
        (
            {"h": np.ones((T - 1, B, 4))},
            "cotangent for 'h' has shape (11, 2, 4), expected (12, 2, 4)",
        ),
        ({"nope": np.ones((T, B, 4))}, "cotangent for 'nope': no such node"),
        ({"x": np.ones((T, B, 3))}, "cotangent for 'x': input and boundary nodes take no"),
        (
            {"h": np.ones((T, B, 4)), ("h", 2): np.ones((B, 4))},
            "cotangents for 'h' given both as a sequence and per step",
        ),
        ({"h": np.full((T, B, 4), "a")}, "cotangent for 'h' has dtype <U1, expected real"),
        ({("h",): np.ones((B, 4))}, "cotangent keys are node instances (name, t) or node names"),
    ],
)
def test_a_wrong_sequence_is_named_in_one_line(cotangents, message):
    _, u, params, xs, _ = _case()
    with pytest.raises(InputError) as err:
        bptt(u, params, xs, cotangents)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_non_finite_sequence_names_its_step():
    _, u, params, xs, _ = _case()
    d = np.zeros((T, B, 4))
    d[7, 1, 2] = np.nan
    with pytest.raises(InputError, match=r"cotangent for 'h' at step 7 has non-finite values, "):
        bptt(u, params, xs, {"h": d})


@pytest.mark.parametrize("preset", ["elman", "lstm"])
def test_a_sequence_matches_finite_differences(preset):
    _, u, params, xs, rng = _case(preset)
    states = {"h": rng.normal(size=(B, 4))}
    assert check_grads(u, params, xs, {"h": rng.normal(size=(T, B, 4))}, states) < 1e-8


def _per_instance_loss(u, params, xs, loss, targets, extra=None, models=None):
    """The same run with the loss's cotangents taken per instance (loss_cotangents), the
    way the engine took them before it took a loss over all steps at once."""
    from unroll.losses import loss_cotangents

    forward = bptt(u, params, xs, input_grads=False)
    ids = {inst: inst for inst in u.loss_instances}
    if models is None:
        value, cots = loss_cotangents(u, forward.values, ids, loss, targets)
    else:
        per = [
            loss_cotangents(u, {k: forward.values[k][m] for k in ids}, ids, loss, targets)
            for m in range(models)
        ]
        value = np.array([v for v, _ in per])
        cots = {k: np.stack([c[k] for _, c in per]) for k in ids}
    for key, c in (extra or {}).items():
        cots[key] = cots[key] + c if key in cots else c
    return value, bptt(u, params, xs, cots)


@pytest.mark.parametrize("loss", ["sum", "mse", "xent"])
@pytest.mark.parametrize("models", [None, 3])
def test_a_loss_over_all_steps_at_once_is_the_loss_per_instance(loss, models):
    g, u, params, xs, rng = _case(output_size=3)
    if models is not None:
        params = {k: np.stack([init_params(g, seed=s)[k] for s in range(models)]) for k in params}
    targets = {
        "sum": None,
        "mse": rng.normal(size=(T, B, 3)),
        "xent": rng.integers(0, 3, size=(T, B)),
    }[loss]
    whole = bptt(u, params, xs, loss=loss, targets=targets)
    value, steps = _per_instance_loss(u, params, xs, loss, targets, models=models)
    np.testing.assert_allclose(whole.loss, value, rtol=1e-14)
    _assert_same(whole, steps)


@pytest.mark.parametrize("form", ["sequence", "per step", "other node"])
def test_a_loss_joins_cotangents_given_either_way(form):
    _, u, params, xs, rng = _case(output_size=2)
    targets = rng.normal(size=(T, B, 2))
    node, size = ("h", 4) if form == "other node" else ("y", 2)
    d = rng.normal(size=(T, B, size))
    given = {node: d} if form != "per step" else _per_step(node, d)
    whole = bptt(u, params, xs, given, loss="mse", targets=targets)
    _, steps = _per_instance_loss(u, params, xs, "mse", targets, extra=_per_step(node, d))
    _assert_same(whole, steps)
