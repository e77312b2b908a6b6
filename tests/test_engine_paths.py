"""Ways the scans may take that must not change a bit of any result: a state's gradient
rows rebuilt when asked for instead of written at every step, a large step's derivative
factors and bias taken at their step instead of for all steps at once, values the backward
pass overwrites tested for NaN at their step, few values kept for their factors instead of
overwritten, arrays left unzeroed where the pass writes them first, a state's first write
written rather than added, a sum's gradient handed on as it is, a state's gradient
carried in two rows when no row of it is asked for, and weights taken column-major by the
products at each step."""

import tracemalloc
import warnings

import numpy as np
import pytest
from test_engine import gated_graph, retimed_graph

from unroll import Graph, InputError, bptt, init_params, presets, unroll
from unroll.engine import backward, codegen, forward

T = 200


def _run(graph, cotangents, radius=0.9, seed=0, models=None, **options):
    u = unroll(graph, T)
    if models is None:
        params = init_params(graph, seed=seed, spectral_radius=radius)
    else:
        draws = [init_params(graph, seed=s, spectral_radius=radius) for s in range(models)]
        params = {k: np.stack([d[k] for d in draws]) for k in draws[0]}
    rng = np.random.default_rng(seed)
    xs = {"x": rng.normal(size=(T, 2, graph.nodes["x"].size))}
    return bptt(u, params, xs, cotangents(rng), **options)


def _assert_identical(a, b, state="h"):
    for name, grad in a.param_grads.items():
        np.testing.assert_array_equal(grad, b.param_grads[name], err_msg=name)
    for t in range(-1, T):
        np.testing.assert_array_equal(a.node_grads[(state, t)], b.node_grads[(state, t)])
    for t in range(T):
        np.testing.assert_array_equal(a.node_grads[("x", t)], b.node_grads[("x", t)])
    np.testing.assert_array_equal(a.log10_grad_norms(state), b.log10_grad_norms(state))


LAZY_CASES = {
    # a vanishing gradient: the scale moves every few dozen steps
    "loss at the last step": (
        presets.elman(3, 8),
        0.5,
        lambda rng: {("h", T - 1): np.ones((2, 8))},
    ),
    # a cotangent at every step, each 2**-400 to 2**400 times as large: moves at every step
    "every step, far apart": (
        presets.elman(3, 8),
        0.9,
        lambda rng: {"h": np.ldexp(rng.normal(size=(T, 2, 8)), rng.integers(-400, 400, (T, 1, 1)))},
    ),
    # gradients from the output layer come in from outside the loop, and one on h itself
    "from the output layer": (
        presets.elman(3, 8, output_size=2),
        1.2,
        lambda rng: {
            **{("y", t): rng.normal(size=(2, 2)) for t in range(0, T, 3)},
            ("h", 5): np.ones((2, 8)),
        },
    ),
    "one neuron, exploding": (presets.neuron(), 3.0, lambda rng: {("h", T - 1): np.ones((2, 1))}),
}


@pytest.mark.parametrize("case", list(LAZY_CASES))
def test_rebuilt_gradient_rows_are_the_rows_the_scan_would_write(case, monkeypatch):
    graph, radius, cotangents = LAZY_CASES[case]
    rebuilt = _run(graph, cotangents, radius, contributions=True)
    assert "h" in rebuilt._store.grads.lazy  # the scan kept its carry only
    monkeypatch.setattr(backward.Backward, "_lazy_nodes", lambda self, part, bottom: set())
    written = _run(graph, cotangents, radius, contributions=True)
    assert not written._store.grads.lazy
    _assert_identical(rebuilt, written)
    for t in (0, T // 2, T - 1):
        np.testing.assert_array_equal(
            rebuilt.weight_contributions("W_hh")[t], written.weight_contributions("W_hh")[t]
        )


@pytest.mark.parametrize("delay", [-1, 1])
def test_a_state_read_at_a_boundary_from_outside_keeps_every_row(delay, monkeypatch):
    """A state that another node reads one step ahead (a boundary row past the end) or
    behind (its initial state's row gets a gradient from outside the loop): its scan
    writes every row as before (a stress run over random graphs found the rows rebuilt
    without the gradient past the end)."""
    g = Graph("ahead")
    g.input("x", 2)
    g.layer("h", 3, "tanh", biases=["b"])
    g.edge("x", "h", weight="W_x")
    g.edge("h", "h", delay=1, weight="W_h")
    g.add_node("s", "add", 3)
    g.edge("h", "s", delay=delay)
    u = unroll(g, 4)
    params = init_params(g, seed=0)
    rng = np.random.default_rng(0)
    xs = {"x": rng.normal(size=(4, 1, 2))}
    cots = {("s", t): rng.normal(size=(1, 3)) for t in range(4)}
    r = bptt(u, params, xs, cots)
    assert not r._store.grads.lazy
    monkeypatch.setattr(backward.Backward, "_lazy_nodes", lambda self, part, bottom: set())
    written = bptt(u, params, xs, cots)
    for t in range(-1, 5 if delay < 0 else 4):
        np.testing.assert_array_equal(r.node_grads[("h", t)], written.node_grads[("h", t)])
    if delay < 0:
        np.testing.assert_array_equal(r.node_grads[("h", 4)], cots[("s", 3)])  # past the end


def _state_cotangents(graph):
    """A state of ``graph`` (``h`` where it has one) and a cotangent at every step of it."""
    state = "h" if "h" in graph.nodes else sorted(graph.state_nodes())[0]
    size = graph.nodes[state].size
    return state, lambda rng: {state: rng.normal(size=(T, 2, size))}


FACTOR_CASES = {
    "elman": presets.elman(3, 8),
    "lstm": presets.lstm(3, 8),
    "gru": presets.gru(3, 8),
    "indrnn": presets.indrnn(3, 8),
    "stacked lstm": presets.stacked("lstm", 3, 8, layers=2),
    "bidirectional elman": presets.bidirectional("elman", 3, 8),
}


@pytest.mark.parametrize("models", [None, 3])
@pytest.mark.parametrize("preset", list(FACTOR_CASES))
def test_factors_and_biases_at_their_step_are_those_of_all_steps_at_once(
    preset, models, monkeypatch
):
    graph = FACTOR_CASES[preset]
    state, cotangents = _state_cotangents(graph)
    monkeypatch.setattr(codegen, "LARGE_STEP", 10**12)
    before = _run(graph, cotangents, models=models)
    monkeypatch.setattr(codegen, "LARGE_STEP", 0)
    per_step = _run(graph, cotangents, models=models)
    _assert_identical(before, per_step, state)


@pytest.mark.parametrize("options", [{}, {"models": 3}, {"contributions": True}])
@pytest.mark.parametrize("preset", [p for p in FACTOR_CASES if p != "indrnn"])  # (no product)
def test_weights_taken_column_major_at_each_step_change_no_bit(preset, options, monkeypatch):
    """(With contributions, a state's rows are rebuilt by products at each step too.)"""
    graph = FACTOR_CASES[preset]
    state, cotangents = _state_cotangents(graph)
    monkeypatch.setattr(codegen, "COLUMN_MAJOR_FROM", 10**12)
    row_major = _run(graph, cotangents, **options)
    taken = []
    monkeypatch.setattr(codegen, "COLUMN_MAJOR_FROM", 0)
    recorded = _recorded(forward.Forward.step_weight, taken)
    monkeypatch.setattr(forward.Forward, "step_weight", recorded)
    column_major = _run(graph, cotangents, **options)
    assert taken and all((w if w.ndim == 2 else w[0]).flags.f_contiguous for w in taken)
    _assert_identical(row_major, column_major, state)


def _recorded(method, taken):
    def step_weight(self, *args, **kwargs):
        taken.append(method(self, *args, **kwargs))
        return taken[-1]

    return step_weight


def test_rows_rebuilt_after_the_run_overflow_as_quietly_as_the_scan():
    graph = presets.neuron(activation="identity")
    params = {k: np.full_like(v, 1e200) for k, v in init_params(graph, seed=0).items()}
    r = bptt(unroll(graph, 6), params, {"x": np.ones((6, 1, 1))}, {("h", 5): np.ones((1, 1))})
    assert "h" in r._store.grads.lazy
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered" would raise
        assert np.isinf(r.node_grads[("h", 2)]).all()
    assert r.warnings  # the run says so once, in words


@pytest.mark.parametrize("large_step", [10**12, 0])
def test_values_the_backward_overwrites_are_tested_at_their_step_as_after_the_pass(
    large_step, monkeypatch
):
    """A large step's overwritten values are summed at their step (one call, in cache)
    instead of tested in one pass afterwards: the same first non-finite value is named,
    for one model and per model of an ensemble, and none where all are finite."""
    monkeypatch.setattr(codegen, "LARGE_STEP", large_step)
    monkeypatch.setattr(codegen, "KEPT_VALUES", -1)  # overwritten, however small
    u = unroll(gated_graph(), 6)
    xs = {"x": np.array([0.0, 0.0, 1e10, 0.0, 0.0, 0.0]).reshape(6, 1, 1)}  # a = inf at 2
    cots = {("h", 5): np.ones((1, 1))}
    p = {"W_xa": np.full((1, 1), 1e300), "W_ha": np.zeros((1, 1))}
    assert bptt(u, p, xs, cots).first_nonfinite() == ("a", 2)
    assert bptt(u, {**p, "W_xa": np.ones((1, 1))}, xs, cots).first_nonfinite() is None
    both = {"W_xa": np.array([[[1.0]], [[1e300]]]), "W_ha": np.zeros((2, 1, 1))}
    r = bptt(u, both, xs, cots)
    assert r.model(0).first_nonfinite() is None
    assert r.model(1).first_nonfinite() == ("a", 2)
    # a step's values summing past float range hold no NaN: each value is then looked at
    big = {"W_xa": np.full((1, 1), 1e308), "W_ha": np.zeros((1, 1))}
    xs_big = {"x": np.full((6, 2, 1), 1.5)}  # a = 1.5e308 twice a step, h = a * a = inf
    assert bptt(u, big, xs_big, {("h", 5): np.ones((2, 1))}).first_nonfinite() == ("h", 0)


POISON_CASES = {
    **FACTOR_CASES,
    "jordan": presets.jordan(3, 8),
    "minlstm": presets.minlstm(3, 8),
    "lru": presets.lru(3, 8),
    "retimed": retimed_graph(),
}


@pytest.mark.parametrize("options", [{}, {"models": 3}, {"checkpoint": "sqrt"}])
@pytest.mark.parametrize("preset", list(POISON_CASES))
def test_rows_left_unzeroed_are_written_before_they_are_read(preset, options, monkeypatch):
    """The forward pass zeroes only the rows it never writes, and so does the backward
    pass where its first writes fill a state's gradient rows: with every array made by
    ``np.empty`` filled with NaN at first, no value or gradient (of a parameter, or of
    any node at any step) changes."""
    graph = POISON_CASES[preset]
    out = (sorted(graph.output_nodes()) or sorted(graph.state_nodes()))[-1]
    size = graph.nodes[out].size

    def cotangents(rng):
        return {out: rng.normal(size=(T, 2, size))}

    def run():
        r = _run(graph, cotangents, **options)
        values = [r.values[(n, t)] for n in sorted(graph.nodes) for t in (0, T - 1)]
        return r, {**r.param_grads, **dict(r.node_grads)}, values

    _, grads, values = run()

    def poisoned(shape, dtype=float):
        return np.full(shape, np.nan, dtype)

    monkeypatch.setattr(forward.np, "empty", poisoned, raising=True)
    r, grads_poisoned, values_poisoned = run()
    for name in grads:
        np.testing.assert_array_equal(grads_poisoned[name], grads[name], err_msg=name)
    for a, b in zip(values_poisoned, values, strict=True):
        np.testing.assert_array_equal(a, b)
    assert r.first_nonfinite() is None


@pytest.mark.parametrize("models", [None, 3])
@pytest.mark.parametrize("preset", list(FACTOR_CASES))
def test_values_kept_for_their_factors_give_what_overwriting_them_gives(
    preset, models, monkeypatch
):
    """Few values the backward pass could overwrite are kept, their factors taken for all
    steps at once: the same bits as overwriting them with their gradients, and a value
    asked for afterwards is the one the forward pass computed."""
    graph = FACTOR_CASES[preset]
    state, cotangents = _state_cotangents(graph)
    monkeypatch.setattr(codegen, "KEPT_VALUES", -1)
    overwritten = _run(graph, cotangents, models=models)
    monkeypatch.setattr(codegen, "KEPT_VALUES", 2**40)
    kept = _run(graph, cotangents, models=models)
    _assert_identical(overwritten, kept, state)
    forward_only = _run(graph, lambda rng: {}, models=models)  # nothing overwritten
    for name in sorted(graph.nodes):
        value = forward_only.values[(name, 7)]
        np.testing.assert_array_equal(kept.values[(name, 7)], value, err_msg=name)
        # overwritten values are computed again, all steps at once: the last bit may differ
        np.testing.assert_allclose(overwritten.values[(name, 7)], value, rtol=1e-14, atol=0)


def _first_writes_off(self, part):
    return set()


def _no_pass_through(self, part):
    return {}


@pytest.mark.parametrize("models", [None, 3])
@pytest.mark.parametrize("preset", list(POISON_CASES))
@pytest.mark.parametrize("last_only", [False, True])
def test_first_writes_and_sums_passing_their_gradient_on_change_no_bit(
    preset, models, last_only, monkeypatch
):
    """A state's gradient row written by its first write rather than added into zero, and a
    sum's gradient taken as it is by its summands rather than copied into their slots:
    every gradient the same to the bit, also where the scale moves (a loss at the last
    step)."""
    graph = POISON_CASES[preset]
    out = (sorted(graph.output_nodes()) or sorted(graph.state_nodes()))[-1]
    size = graph.nodes[out].size

    def cotangents(rng):
        if last_only:
            return {(out, T - 1): rng.normal(size=(2, size))}
        return {out: rng.normal(size=(T, 2, size))}

    fast = _run(graph, cotangents, models=models)
    monkeypatch.setattr(backward.Backward, "_first_writes", _first_writes_off)
    monkeypatch.setattr(backward.Backward, "_passed_through", _no_pass_through)
    plain = _run(graph, cotangents, models=models)
    for name, grad in plain.param_grads.items():
        np.testing.assert_array_equal(fast.param_grads[name], grad, err_msg=name)
    for key, grad in plain.node_grads.items():
        np.testing.assert_array_equal(fast.node_grads[key], grad, err_msg=str(key))


def test_the_lstm_takes_the_shortcuts():
    """What the test above compares is not vacuous: the LSTM's cell state is first
    written by its forget product, and its sum hands its gradient to both products."""
    seen = {}
    first, passed = backward.Backward._first_writes, backward.Backward._passed_through

    def spy_first(self, part):
        seen["first"] = first(self, part)
        return seen["first"]

    def spy_passed(self, part):
        seen["passed"] = passed(self, part)
        return seen["passed"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backward.Backward, "_first_writes", spy_first)
        mp.setattr(backward.Backward, "_passed_through", spy_passed)
        _run(presets.lstm(3, 8), lambda rng: {"h": rng.normal(size=(T, 2, 8))})
    assert {name for name, _ in seen["first"]} >= {"i", "f_c"}  # the gates write h's row
    assert sorted(seen["passed"]) == ["f_c", "i_g"]


STATELESS_OPTIONS = {
    "single": {},
    "models": {"models": 3},
    "sqrt": {"checkpoint": "sqrt"},
    "tbptt": {"truncate": (7, 9)},
    "float32": {"dtype": np.float32},
}


@pytest.mark.parametrize("options", STATELESS_OPTIONS.values(), ids=list(STATELESS_OPTIONS))
@pytest.mark.parametrize("preset", list(POISON_CASES))
def test_without_state_gradients_parameter_and_input_gradients_are_unchanged(preset, options):
    """``state_grads=False``: a loop's carry in two rows, not one a step; every parameter's
    and input's gradient the same to the bit, and a loop node's gradient refused by name."""
    graph = POISON_CASES[preset]
    if "truncate" in options and not graph.is_causal():
        options = {}  # (truncated BPTT needs a causal graph: the plain run again)
    out = (sorted(graph.output_nodes()) or sorted(graph.state_nodes()))[-1]
    size = graph.nodes[out].size

    def cotangents(rng):
        return {out: rng.normal(size=(T, 2, size))}

    full = _run(graph, cotangents, **options)
    light = _run(graph, cotangents, state_grads=False, **options)
    for name, grad in full.param_grads.items():
        np.testing.assert_array_equal(light.param_grads[name], grad, err_msg=name)
    for t in (0, T // 2, T - 1):
        np.testing.assert_array_equal(light.node_grads[("x", t)], full.node_grads[("x", t)])
    state = sorted(graph.state_nodes())[-1]
    with pytest.raises(InputError, match=f"gradient of '{state}'.*state_grads=False"):
        light.node_grads[(state, T - 1)]
    with pytest.raises(InputError, match="state_grads=False"):
        light.log10_grad_norms(state)


def _lstm_case(steps, batch, hidden, seed, last_only):
    """An LSTM (input size = hidden), its parameters (seed 0), inputs and dL/dh at the last
    step or at every step, drawn from ``seed``: ``(u, params, inputs, cotangents)``."""
    g = presets.lstm(hidden, hidden)
    rng = np.random.default_rng(seed)
    xs = {"x": rng.normal(size=(steps, batch, hidden))}
    if last_only:
        cots = {("h", steps - 1): rng.normal(size=(batch, hidden))}
    else:
        cots = {"h": rng.normal(size=(steps, batch, hidden))}
    return unroll(g, steps), init_params(g, seed=0), xs, cots


def test_without_state_gradients_the_rows_of_every_step_are_not_held():
    """The point of ``state_grads=False``: the peak memory of an LSTM run drops by its two
    states' gradient rows (h and c, one row a step each)."""
    steps, batch, hidden = 3000, 4, 16
    u, p, xs, cots = _lstm_case(steps, batch, hidden, seed=0, last_only=False)

    def peak(**options):
        tracemalloc.start()
        try:
            bptt(u, p, xs, cots, input_grads=False, **options)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    rows = 2 * (steps + 1) * batch * hidden * 8
    assert peak() - peak(state_grads=False) > 0.9 * rows


@pytest.mark.parametrize("preset", ["elman", "lstm", "gru"])
def test_runs_of_steps_too_small_to_change_a_weight_gradient_are_left_out(preset, monkeypatch):
    """A vanishing gradient (loss at the last step, contracting weights): the runs of
    steps whose part of a weight gradient lies below half a unit in the last place of the
    sum so far are left out, and every gradient is the same to the bit as the full sum."""
    graph = FACTOR_CASES[preset]
    size = graph.nodes["h"].size

    def cotangents(rng):
        return {("h", T - 1): rng.normal(size=(2, size))}

    terms = {"computed": 0, "runs": 0}
    summed = backward._sum_of_runs

    def counted(runs, term, bound, unscale, work):
        def counted_term(i0, i1):
            terms["computed"] += 1
            return term(i0, i1)

        terms["runs"] += len(runs)
        return summed(runs, counted_term, bound, unscale, work)

    monkeypatch.setattr(backward, "_NEGLIGIBLE_WORTH", 0)  # (small runs tested too,
    monkeypatch.setattr(backward, "_SHIFT_WORTH", 0)  # and left apart, as large ones are)
    monkeypatch.setattr(backward, "_sum_of_runs", counted)
    short = _run(graph, cotangents, radius=0.3)
    assert terms["computed"] < terms["runs"]  # some runs left out
    monkeypatch.setattr(backward, "_NEGLIGIBLE_BELOW", 10**9)  # every run summed
    full = _run(graph, cotangents, radius=0.3)
    for name, grad in full.param_grads.items():
        np.testing.assert_array_equal(short.param_grads[name], grad, err_msg=name)


def test_a_run_is_left_out_only_when_it_cannot_change_a_bit():
    """``_sum_of_runs`` on made-up runs 45 binary orders below the first: the one whose
    part reaches the sum's last bits is added, the one below half its last place is not."""
    values = {0: np.array([1.0, 3.0]), 1: np.array([2.0**44, 2.0**30]), 2: np.full(2, 2.0**-20)}
    runs = [(0, 1, 0), (1, 2, -45), (2, 3, -45)]
    asked = []

    def term(i0, i1):
        asked.append(i0)
        return values[i0]

    def bound(i0, i1):
        return np.abs(values[i0])

    def unscale(value, e):
        return np.ldexp(value, e)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backward, "_NEGLIGIBLE_WORTH", 0)
        total = backward._sum_of_runs(runs, term, bound, unscale, 1)
    assert asked == [0, 1]  # the third run's parts sit below 2**-53 of each entry
    full = values[0] + np.ldexp(values[1], -45) + np.ldexp(values[2], -45)
    np.testing.assert_array_equal(total, full)
    assert total[0] != 1.0  # the second run did change the sum


def test_the_scale_is_not_steered_by_what_earlier_steps_left_in_the_ring(monkeypatch):
    """The LSTM's carry is all in its state rows: its scale moves by them alone, not by the
    stale slots of the ring, so the same bits whether or not the cell sum's gradient is
    copied there (before, the renormalisation read the ring too: at this size the last
    bits of every weight gradient differed)."""
    u, p, xs, cots = _lstm_case(300, 4, 16, seed=1, last_only=True)
    passed = bptt(u, p, xs, cots).param_grads
    monkeypatch.setattr(backward.Backward, "_passed_through", _no_pass_through)
    copied = bptt(u, p, xs, cots).param_grads
    for name, grad in copied.items():
        np.testing.assert_array_equal(passed[name], grad, err_msg=name)
