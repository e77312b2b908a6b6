"""Imported Keras 3 models: graphs, layouts, errors, files, and parity with Keras on the torch
backend (outputs, final states, every weight gradient, each step's dL/dh_t and dL/dc_t).

float64: ``keras.config.set_floatx("float64")`` and ``keras.config.set_dtype_policy("float64")``
(Keras caches the policy the first time a layer is made, so floatx alone is not enough once
anything has used Keras) give float64 weights and states, but Keras's
type promotion (``keras.backend.result_type``) maps every 64-bit result to 32 bits to match
JAX's default, so ``keras.ops.matmul`` of two float64 tensors computes in float32 (SimpleRNN,
GRU with reset_after=False and Dense go through it; LSTM and GRU reset_after=True do not).
The ``float64`` fixture empties that one table (``BIT64_TO_BIT32_DTYPE``) for these tests:
Keras's formulas are untouched, its products stay float64, and parity holds to 1e-10.
``test_plain_keras_float32_promotion`` checks the unpatched path at float32 tolerance.
"""

import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # the reference gradients come from torch autograd
    pytest.skip("these tests run Keras on the torch backend", allow_module_level=True)

import keras.src.backend.common.dtypes as keras_dtypes  # noqa: E402

import unroll  # noqa: E402
from unroll import presets  # noqa: E402
from unroll.check import check_grads  # noqa: E402
from unroll.interop.keras_models import (  # noqa: E402
    KerasInteropError,
    MissingKerasError,
    from_keras,
    load_keras,
)

L = keras.layers
B, T, N = 2, 5, 3
REL = 1e-10
WORST: dict[str, float] = {}


@pytest.fixture(autouse=True)
def float64(monkeypatch):
    """Keras in float64 end to end: float64 weights, and no 64 -> 32 bit promotion."""
    monkeypatch.setattr(keras_dtypes, "BIT64_TO_BIT32_DTYPE", {})
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # the policy is cached at first use: set it too
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    yield
    print("\nworst relative errors against Keras:")
    for key, value in sorted(WORST.items()):
        print(f"  {key}: {value:.2e}")


def _record(case: str, what: str, ours, theirs, rel: float = REL) -> None:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{case} {what}: {ours.shape} != {theirs.shape}"
    scale = float(np.max(np.abs(theirs)))
    err = float(np.max(np.abs(ours - theirs))) / (scale or 1.0)
    key = f"{case}: {what}"
    WORST[key] = max(WORST.get(key, 0.0), err)
    assert err <= rel, f"{key}: relative error {err:.2e}"


# ---- a reference that exposes every step: Keras's own cells, stepped by hand ------------------


class Trace:
    """Per-step states of each Keras RNN layer (processing order), with gradients kept."""

    def __init__(self):
        self.states: dict[int, list[list]] = {}

    def run_rnn(self, layer, seq, initial):
        steps = seq.shape[1]
        order = range(steps - 1, -1, -1) if layer.go_backwards else range(steps)
        states = initial or [
            torch.zeros(seq.shape[0], layer.units, dtype=seq.dtype) for _ in range(_n_states(layer))
        ]
        outs, kept = [], []
        for p in order:
            h, states = layer.cell(seq[:, p], list(states))
            states = list(states) if isinstance(states, list | tuple) else [states]
            for s in states:
                s.retain_grad()
            kept.append(states)
            outs.append(h)
        self.states[id(layer)] = kept
        out = torch.stack(outs, dim=1) if layer.return_sequences else outs[-1]
        return out, kept[-1]

    def run(self, layer, x, initial=None):
        """One layer of a model on ``x``: ``(output, final states)``."""
        name = type(layer).__name__
        if name == "Bidirectional":
            half = len(initial) // 2 if initial else 0
            f, fs = self.run_rnn(layer.forward_layer, x, initial[:half] if initial else None)
            b, bs = self.run_rnn(layer.backward_layer, x, initial[half:] if initial else None)
            if layer.return_sequences:
                b = torch.flip(b, dims=[1])
            merged = {
                "concat": lambda: torch.cat([f, b], dim=-1),
                "sum": lambda: f + b,
                "mul": lambda: f * b,
                "ave": lambda: (f + b) / 2,
            }[layer.merge_mode]()
            return merged, [*fs, *bs]
        if name in ("SimpleRNN", "LSTM", "GRU"):
            return self.run_rnn(layer, x, initial)
        return layer(x), []


def _n_states(layer) -> int:
    return 2 if type(layer).__name__ == "LSTM" else 1


def _layers(model):
    if isinstance(model, keras.Model):
        return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    return [model]


def _parity(case, model, x, initial=None, grad_rel=REL):
    """Keras (autograd through the torch backend) against unroll, on random cotangents."""
    gen = torch.Generator().manual_seed(len(case))
    xt = torch.tensor(x, requires_grad=True)
    initial = None if initial is None else [s.clone().requires_grad_(True) for s in initial]
    keras_out = model(xt, initial_state=initial) if initial is not None else model(xt)
    outs = list(keras_out) if isinstance(keras_out, list | tuple) else [keras_out]

    trace, value = Trace(), xt
    layers = _layers(model)
    for i, layer in enumerate(layers):
        value, finals = trace.run(layer, value, initial if i == 0 else None)
    stepped = [value, *finals][: len(outs)]
    for ours, theirs in zip(stepped, outs, strict=True):  # the hand-stepped reference is Keras
        assert float(torch.max(torch.abs(ours - theirs)).detach()) < 1e-13

    grads = [torch.randn(o.shape, generator=gen, dtype=torch.float64) for o in outs]
    variables = [w.value for w in model.weights]
    for v in variables:
        v.grad = None
    sum((o * g).sum() for o, g in zip(outs, grads, strict=True)).backward()
    weight_grads = {w.path: w.value.grad.clone() for w in model.weights}
    leaf_grads = [xt.grad.clone(), *(s.grad.clone() for s in initial or [])]
    sum((o * g).sum() for o, g in zip(stepped, grads, strict=True)).backward()

    imp = from_keras(model, steps=x.shape[1])
    u = unroll.unroll(imp.graph, steps=x.shape[1], mode=imp.mode)
    r = unroll.bptt(
        u,
        imp.params,
        imp.inputs(x),
        imp.cotangents(*grads, steps=x.shape[1]),
        initial_states=imp.initial_states(initial) if initial is not None else None,
    )
    ours = imp.outputs(r)
    ours = list(ours) if isinstance(ours, list) else [ours]
    for i, (a, b) in enumerate(zip(ours, outs, strict=True)):
        _record(case, "outputs" if i == 0 else "final states", a, b)
    _record(case, "dL/dx", imp.input_grads(r), leaf_grads[0], grad_rel)
    if initial is not None:
        state_grads = imp.initial_state_grads(r)
        for node, g in zip(state_grads, leaf_grads[1:], strict=True):
            _record(case, "dL/d(initial state)", state_grads[node], g, grad_rel)
    keras_grads = imp.keras_grads(r)
    assert sorted(keras_grads) == sorted(weight_grads)
    for path, g in weight_grads.items():
        _record(case, "weight gradients", keras_grads[path], g, grad_rel)
    for layer in layers:
        for cell in imp.cells.get(layer.name, []):
            kept = trace.states[id(cell.layer)]
            for p, states in enumerate(kept):
                t = T - 1 - p if cell.reverse else p
                for node, s in zip(cell.states, states, strict=True):
                    what = f"dL/d{node.rstrip('_0123456789l').split('_')[0]}_t"
                    _record(case, what, r.node_grads[(node, t)], s.grad, grad_rel)
    return imp, r


def _x(seed=0, steps=T):
    return np.random.default_rng(seed).normal(size=(B, steps, N))


def _states(*sizes, seed=1):
    rng = np.random.default_rng(seed)
    return [torch.tensor(rng.normal(size=(B, n))) for n in sizes]


# ---- parity -----------------------------------------------------------------------------------

LAYER_CASES = {
    "SimpleRNN": lambda: L.SimpleRNN(4, return_sequences=True),
    "SimpleRNN relu, no bias, last step": lambda: L.SimpleRNN(4, activation="relu", use_bias=False),
    "LSTM": lambda: L.LSTM(4, return_sequences=True, return_state=True),
    "GRU reset_after=True": lambda: L.GRU(4, return_sequences=True, return_state=True),
    "GRU reset_after=False": lambda: L.GRU(4, reset_after=False, return_sequences=True),
    "go_backwards LSTM": lambda: L.LSTM(
        4, go_backwards=True, return_sequences=True, return_state=True
    ),
    "go_backwards GRU last step": lambda: L.GRU(4, go_backwards=True, reset_after=False),
    **{
        f"Bidirectional LSTM {mode}": (
            lambda mode=mode: L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode=mode)
        )
        for mode in ("concat", "sum", "mul", "ave")
    },
    "Bidirectional GRU last step, states": lambda: L.Bidirectional(L.GRU(3, return_state=True)),
    "Bidirectional SimpleRNN ave last step": lambda: L.Bidirectional(
        L.SimpleRNN(3), merge_mode="ave"
    ),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layer_parity(case):
    layer = LAYER_CASES[case]()
    layer.build((B, T, N))
    _parity(case, layer, _x())


def test_hard_sigmoid_parity_at_float32_tolerance_and_exact_by_finite_differences():
    """torch's hardsigmoid backward multiplies by 1/6 as a float32 constant (off by 3e-8
    relative), so Keras's gradients through it are float32-accurate; ours are exact."""
    z = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.hardsigmoid(z).sum().backward()
    assert 1e-9 < abs(float(z.grad) - 1 / 6) < 1e-7
    layer = L.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True)
    layer.build((B, T, N))
    imp, _ = _parity("LSTM hard_sigmoid (float32 1/6 in torch)", layer, _x(), grad_rel=1e-7)
    u = unroll.unroll(imp.graph, T)
    cots = imp.cotangents(np.random.default_rng(2).normal(size=(B, T, 4)))
    assert check_grads(u, imp.params, imp.inputs(_x()), cots, directions=3) < 1e-9


@pytest.mark.parametrize(
    ("case", "make", "sizes"),
    [
        ("SimpleRNN initial_state", lambda: L.SimpleRNN(4, return_sequences=True), (4,)),
        ("LSTM initial_state", lambda: L.LSTM(4, return_state=True), (4, 4)),
        (
            "go_backwards GRU initial_state",
            lambda: L.GRU(4, go_backwards=True, return_sequences=True),
            (4,),
        ),
        (
            "Bidirectional LSTM initial_state",
            lambda: L.Bidirectional(L.LSTM(3, return_sequences=True)),
            (3, 3, 3, 3),
        ),
    ],
)
def test_initial_state_parity(case, make, sizes):
    layer = make()
    layer.build((B, T, N))
    _parity(case, layer, _x(), initial=_states(*sizes))


MODEL_CASES = {
    "stacked LSTM + Dense Sequential": lambda: keras.Sequential(
        [keras.Input((T, N)), L.LSTM(4, return_sequences=True), L.LSTM(4), L.Dense(2)]
    ),
    "Bidirectional + Dense per step": lambda: keras.Sequential(
        [
            keras.Input((T, N)),
            L.Bidirectional(L.SimpleRNN(3, return_sequences=True)),
            L.Dropout(0.5),
            L.Dense(2, activation="sigmoid"),
        ]
    ),
    "Bidirectional last step + Dense": lambda: keras.Sequential(
        [
            keras.Input((T, N)),
            L.Bidirectional(L.LSTM(3), merge_mode="sum"),
            L.Dense(2, activation="tanh"),
        ]
    ),
    "go_backwards feeding a forward GRU": lambda: keras.Sequential(
        [
            keras.Input((T, N)),
            L.LSTM(3, go_backwards=True, return_sequences=True),
            L.GRU(2, return_sequences=True),
            L.Dense(1),
        ]
    ),
    "go_backwards last step + Dense": lambda: keras.Sequential(
        [keras.Input((T, N)), L.SimpleRNN(3, go_backwards=True), L.Dense(2, activation="softplus")]
    ),
    "Functional chain": lambda: _functional(),
}


def _functional():
    x = keras.Input((T, N))
    h = L.GRU(4, reset_after=False, return_sequences=True)(x)
    y = L.Dense(3, activation="softsign")(
        L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="mul")(h)
    )
    return keras.Model(x, y)


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_model_parity(case):
    _parity(case, MODEL_CASES[case](), _x())


def test_plain_keras_float32_promotion(monkeypatch):
    """Without the fixture's patch Keras computes matmul in float32: agree to that precision."""
    monkeypatch.undo()
    layer = L.SimpleRNN(4, return_sequences=True)
    x = _x()
    expected = keras.ops.convert_to_numpy(layer(x))
    imp = from_keras(layer)
    r = unroll.bptt(unroll.unroll(imp.graph, T), imp.params, imp.inputs(x))
    err = float(np.max(np.abs(imp.outputs(r) - expected)))
    assert 1e-12 < err < 1e-6  # float32 products, float64 everything else


# ---- graphs -----------------------------------------------------------------------------------


def _same_structure(a, b):
    assert a.nodes == b.nodes
    assert a.edges == b.edges
    assert a.output_nodes() == b.output_nodes()


def test_gru_reset_after_is_torchs_gru():
    layer = L.GRU(4)
    layer.build((B, T, N))
    _same_structure(from_keras(layer).graph, presets.gru(N, 4))


def test_stacked_keras_lstm_is_the_stacked_preset_with_one_bias():
    model = keras.Sequential([keras.Input((T, N)), L.LSTM(4, return_sequences=True), L.LSTM(4)])
    imp = from_keras(model)
    _same_structure(imp.graph, presets.stacked("lstm", N, 4, 2, recurrent_bias=False))
    assert imp.mode == "many-to-one"


def test_bidirectional_concat_is_the_bidirectional_preset():
    layer = L.Bidirectional(L.GRU(4, return_sequences=True))
    layer.build((B, T, N))
    _same_structure(from_keras(layer).graph, presets.bidirectional("gru", N, 4))


def test_last_step_of_a_backward_layer_is_read_through_a_delay_of_T_minus_1():
    model = keras.Sequential([keras.Input((7, N)), L.Bidirectional(L.LSTM(3)), L.Dense(1)])
    g = from_keras(model).graph
    delays = {(e.source, e.target): e.delay for e in g.edges if e.target == "y_l0"}
    assert delays == {("h_l0", "y_l0"): 0, ("h_l0_reverse", "y_l0"): 6}


def test_keras_grads_have_keras_shapes_and_paths():
    layer = L.GRU(4, return_sequences=True)
    layer.build((B, T, N))
    imp = from_keras(layer)
    r = unroll.bptt(
        unroll.unroll(imp.graph, T),
        imp.params,
        imp.inputs(_x()),
        imp.cotangents(np.ones((B, T, 4))),
    )
    grads = imp.keras_grads(r)
    assert {p: g.shape for p, g in grads.items()} == {w.path: tuple(w.shape) for w in layer.weights}
    np.testing.assert_array_equal(grads[layer.cell.bias.path][1, 8:], r.param_grads["b_hn"])


# ---- refusals ---------------------------------------------------------------------------------

REFUSED = [
    (lambda: L.LSTM(3, stateful=True), r"layer 'lstm\w*': stateful=True is not supported"),
    (lambda: L.LSTM(3, activation="gelu"), r"activation 'gelu' has no registry row"),
    (lambda: L.SimpleRNN(3, activation="leaky_relu"), r"activation 'leaky_relu' has no registry"),
    (lambda: L.Bidirectional(L.LSTM(3), merge_mode=None), r"merge_mode=None is not supported"),
    (lambda: L.Conv1D(3, 2), r"\(Conv1D\) is not supported \(supported: SimpleRNN"),
]


@pytest.mark.parametrize(("make", "message"), REFUSED)
def test_refused_layers_are_named(make, message):
    layer = make()
    layer.build((B, T, N))
    with pytest.raises(KerasInteropError, match=message):
        from_keras(layer)


def test_unbuilt_masked_subclassed_and_training_are_refused():
    with pytest.raises(KerasInteropError, match=r"has no weights yet: build it first"):
        from_keras(L.LSTM(3))
    masked = keras.Sequential([keras.Input((T, N)), L.Masking(), L.LSTM(2)])
    with pytest.raises(KerasInteropError, match=r"\(Masking\) is not supported"):
        from_keras(masked)

    class Custom(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(KerasInteropError, match=r"subclassed keras.Model"):
        from_keras(Custom(name="custom"))
    dropped = keras.Sequential([keras.Input((T, N)), L.LSTM(2, recurrent_dropout=0.2)])
    with pytest.raises(KerasInteropError, match=r"recurrent_dropout=0.2 in training mode"):
        from_keras(dropped, training=True)
    from_keras(dropped)  # inference: dropout is off


def test_non_chains_are_refused():
    a = keras.Input((T, N))
    h = L.LSTM(2, return_sequences=True)(a)
    y = L.Add()([L.Dense(2)(h), L.Dense(2)(h)])
    with pytest.raises(KerasInteropError, match=r"layer 'add\w*' takes 2 inputs"):
        from_keras(keras.Model(a, y))
    h0 = keras.Input((2,))
    out = L.SimpleRNN(2)(a, initial_state=[h0])
    with pytest.raises(KerasInteropError, match=r"initial states"):
        from_keras(keras.Model([a, h0], out))


def test_bad_layouts_are_one_line_errors():
    layer = L.LSTM(3, return_sequences=True)
    layer.build((B, T, N))
    imp = from_keras(layer)
    with pytest.raises(KerasInteropError, match=r"x has shape \(5, 3\), expected \(B, T, 3\)"):
        imp.inputs(np.zeros((5, 3)))
    with pytest.raises(KerasInteropError, match=r"takes 2 initial states, got 1"):
        imp.initial_states([np.zeros((B, 3))])
    with pytest.raises(KerasInteropError, match=r"gradient 0 has shape"):
        imp.cotangents(np.zeros((B, T, 4)))
    fixed = from_keras(
        keras.Sequential([keras.Input((4, N)), L.Bidirectional(L.GRU(2)), L.Dense(1)])
    )
    with pytest.raises(KerasInteropError, match=r"built for 4 steps"):
        fixed.inputs(_x())
    free = keras.Sequential([keras.Input((None, N)), L.Bidirectional(L.GRU(2)), L.Dense(1)])
    with pytest.raises(KerasInteropError, match=r"give from_keras\(\.\.\., steps=T\)"):
        from_keras(free)
    assert from_keras(free, steps=T).steps == T


# ---- files ------------------------------------------------------------------------------------


def test_keras_file_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((T, N)), L.GRU(3, return_sequences=True), L.Dense(2)])
    path = tmp_path / "model.keras"
    model.save(path)
    imp = load_keras(path)
    ours = from_keras(model)
    assert imp.graph.nodes == ours.graph.nodes
    for name, value in ours.params.items():
        np.testing.assert_array_equal(imp.params[name], value)
    m = unroll.load_model(str(path))
    assert m.graph.nodes == ours.graph.nodes and sorted(m.params) == sorted(ours.params)


def test_bad_keras_files_are_named(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(KerasInteropError, match=r"junk.keras: not a Keras model file"):
        load_keras(junk)
    model = keras.Sequential([keras.Input((T, N)), L.LSTM(2)])
    good = tmp_path / "good.keras"
    model.save(good)
    cut = tmp_path / "cut.keras"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(KerasInteropError, match=r"cut.keras: not a Keras model file"):
        load_keras(cut)
    empty = tmp_path / "empty.keras"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(KerasInteropError, match=r"no config.json"):
        load_keras(empty)
    with pytest.raises(KerasInteropError, match=r"missing.keras: no such file"):
        load_keras(tmp_path / "missing.keras")
    conv = keras.Sequential([keras.Input((T, N)), L.Conv1D(2, 2)])
    conv.save(tmp_path / "conv.keras")
    with pytest.raises(KerasInteropError, match=r"conv.keras: layer 'conv1d\w*' \(Conv1D\)"):
        load_keras(tmp_path / "conv.keras")


def test_lambda_layers_are_not_executed(tmp_path):
    model = keras.Sequential([keras.Input((T, N)), L.Lambda(lambda x: x * 2), L.LSTM(2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(KerasInteropError, match=r"lambda.keras: Keras cannot load it .*safe"):
        load_keras(path)


def test_missing_keras_names_the_extra(monkeypatch, tmp_path):
    import importlib.util

    from unroll.interop import keras_models

    model = keras.Sequential([keras.Input((T, N)), L.LSTM(2)])
    path = tmp_path / "m.keras"
    model.save(path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        keras_models.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "keras" else real(name, *a),
    )
    with pytest.raises(MissingKerasError, match=r"pip install rnn-unroll\[keras\]"):
        load_keras(path)


def test_cli_reads_a_keras_file_and_names_a_bad_one(tmp_path):
    from click.testing import CliRunner
    from unroll.cli.main import main

    model = keras.Sequential([keras.Input((T, N)), L.Bidirectional(L.GRU(2)), L.Dense(1)])
    model.save(tmp_path / "m.keras")
    (tmp_path / "bad.keras").write_text("junk")
    runner = CliRunner()
    ok = runner.invoke(main, ["export", str(tmp_path / "m.keras"), "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert '"h_l0_reverse"' in ok.output and '"W_y"' in ok.output
    bad = runner.invoke(main, ["export", str(tmp_path / "bad.keras"), "--format", "json"])
    assert bad.exit_code == 2 and "bad.keras: not a Keras model file" in bad.output
    assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1
    missing = runner.invoke(main, ["export", str(tmp_path / "none.keras")])
    assert missing.exit_code == 2 and "no such Keras file" in missing.output


def test_the_gallery_entry_is_skipped_with_a_warning_without_keras(monkeypatch):
    from unroll.gallery import imported
    from unroll.interop import keras_models

    def missing():
        raise MissingKerasError("Keras is not installed; install it with: pip install x")

    monkeypatch.setattr(keras_models, "_require_keras", missing)
    with pytest.warns(unroll.UnrollWarning, match=r"Keras pictures are skipped"):
        assert imported.keras_models() == []


def test_a_keras_model_argument_without_keras_names_the_extra(monkeypatch, tmp_path):
    from unroll.interop import keras_models
    from unroll.models import ModelSpecError

    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((T, N)), L.LSTM(2)]).save(path)

    def missing():
        raise MissingKerasError("Keras is not installed; install it with: pip install x")

    monkeypatch.setattr(keras_models, "_require_keras", missing)
    with pytest.raises(
        ModelSpecError, match=r"m.keras: reading a Keras model needs the keras extra"
    ):
        unroll.load_model(str(path))
