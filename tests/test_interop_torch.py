"""Imported torch.nn recurrent modules: graphs, layouts, errors, saved weights, and gradient
parity with torch autograd."""

import itertools
import pickle
import sys
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import unroll  # noqa: E402
from unroll.errors import InputError  # noqa: E402
from unroll.interop import (  # noqa: E402
    SUPPORTED,
    MissingTorchError,
    TorchInteropError,
    from_torch,
    load_state_dict,
)

pytestmark = pytest.mark.torch
nn = torch.nn

INPUT, HIDDEN = 3, 4
FORWARD_ABS, GRAD_REL = 1e-12, 1e-10
WORST = {"forward (abs)": 0.0, "gradient (rel)": 0.0}


@pytest.fixture(scope="module", autouse=True)
def _one_thread_and_report_worst():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny problems: threads cost more than they give
    yield
    torch.set_num_threads(threads)
    print("\nlargest errors against torch:", ", ".join(f"{k} {v:.2e}" for k, v in WORST.items()))


MODULES = {
    "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}
CELL_MODULES = {
    "rnn_cell_tanh": lambda **kw: nn.RNNCell(nonlinearity="tanh", **kw),
    "rnn_cell_relu": lambda **kw: nn.RNNCell(nonlinearity="relu", **kw),
    "lstm_cell": nn.LSTMCell,
    "gru_cell": nn.GRUCell,
}


# ---- the configuration matrix ---------------------------------------------------------------
# Structure (kind, layers, bias, bidirectional) x layout (batch_first, batch, steps, h0): the
# default run takes, for every structure, 3 layouts such that each kind meets all 24 layouts
# and every pair of settings occurs; the rest of the product is marked slow.

STRUCTURES = list(itertools.product(MODULES, [1, 2], [True, False], [False, True]))
LAYOUTS = list(itertools.product([False, True], [None, 1, 3], [1, 6], [False, True]))


def _sampled():
    picked = []
    for i, structure in enumerate(STRUCTURES):
        kind_index = i // 8
        for m in range(3):
            picked.append(structure + LAYOUTS[(7 * (3 * (i % 8) + m) + 5 * kind_index) % 24])
    return picked


SAMPLED = _sampled()
REST = sorted(
    set(
        itertools.product(
            MODULES,
            [1, 2],
            [True, False],
            [False, True],
            [False, True],
            [None, 1, 3],
            [1, 6],
            [False, True],
        )
    )
    - set(SAMPLED),
    key=str,
)


def _case_id(case):
    kind, layers, bias, bidir, batch_first, batch, steps, h0 = case
    return "-".join(
        [
            kind,
            f"L{layers}",
            "bias" if bias else "nobias",
            "bi" if bidir else "uni",
            "bf" if batch_first else "tf",
            "unbatched" if batch is None else f"B{batch}",
            f"T{steps}",
            "h0" if h0 else "zero",
        ]
    )


def test_sample_covers_every_pair_of_settings():
    values = [
        list(MODULES),
        [1, 2],
        [True, False],
        [False, True],
        [False, True],
        [None, 1, 3],
        [1, 6],
        [False, True],
    ]
    for a, b in itertools.combinations(range(len(values)), 2):
        seen = {(case[a], case[b]) for case in SAMPLED}
        assert seen == set(itertools.product(values[a], values[b]))
    assert len(SAMPLED) + len(REST) == 4 * 2 * 2 * 2 * 2 * 3 * 2 * 2


# ---- the reference: torch autograd ----------------------------------------------------------


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _sparse_in_time(gen, like, steps, time_axis):
    """Random cotangents on a few steps (never only the last), zero elsewhere."""
    g = _randn(gen, *like.shape)
    if steps > 1:
        keep = torch.zeros(steps, dtype=torch.bool)
        keep[torch.randperm(steps, generator=gen)[: max(2, steps // 2)]] = True
        keep[0] = True
        shape = [1] * g.dim()
        shape[time_axis] = steps
        g = g * keep.reshape(shape)
    return g


def _run_torch(module, x, hx, is_cell):
    """Forward with torch: (output, finals); a cell is called once per step."""
    if not is_cell:
        output, finals = module(x, hx)
        return output, finals if isinstance(finals, tuple) else (finals,)
    state, outs = hx, []
    for t in range(x.shape[0]):
        state = module(x[t], state)
        outs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outs), state if isinstance(state, tuple) else (state,)


def _parity(module, x, initial, is_cell, batched, gen):
    """Run torch and unroll on the same module, cotangents and states; check and record."""
    has_c = isinstance(module, (nn.LSTM, nn.LSTMCell))
    x = x.clone().requires_grad_(True)
    leaves = [s.clone().requires_grad_(True) for s in initial]
    hx = None if not leaves else (tuple(leaves) if has_c else leaves[0])
    output, finals = _run_torch(module, x, hx, is_cell)
    steps = (
        x.shape[0]
        if is_cell or not getattr(module, "batch_first", False) or not batched
        else x.shape[1]
    )
    time_axis = 1 if getattr(module, "batch_first", False) and batched and not is_cell else 0
    grad_output = _sparse_in_time(gen, output, steps, time_axis)
    grad_finals = [_randn(gen, *f.shape) for f in finals]
    loss = (output * grad_output).sum() + sum(
        (f * g).sum() for f, g in zip(finals, grad_finals, strict=True)
    )
    names = [n for n, _ in module.named_parameters()]
    wrt = [x, *leaves, *module.parameters()]
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    ref = {
        "x": grads[0],
        **{f"s{i}": g for i, g in enumerate(grads[1 : 1 + len(leaves)])},
        **dict(zip(names, grads[1 + len(leaves) :], strict=True)),
    }

    imp = from_torch(module)
    u = unroll.unroll(imp.graph, steps=steps)
    r = unroll.bptt(
        u,
        imp.params,
        imp.inputs(x),
        imp.cotangents(*[grad_output, *grad_finals]),
        initial_states=imp.initial_states(*initial),
    )
    our_output, our_finals = imp.outputs(r, batched=batched)
    our_finals = our_finals if has_c else (our_finals,)
    _close_forward(our_output, output)
    for ours, theirs in zip(our_finals, finals, strict=True):
        _close_forward(ours, theirs)
    ours = {"x": imp.input_grads(r, batched=batched), **imp.torch_grads(r)}
    if leaves:
        state_grads = imp.initial_state_grads(r, batched=batched)
        ours.update({f"s{i}": g for i, g in enumerate(state_grads if has_c else (state_grads,))})
    assert sorted(ours) == sorted(ref)
    for name in ref:
        _close_grad(ours[name], ref[name], name)


def _close_forward(ours, theirs):
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    err = float(np.max(np.abs(ours - theirs)))
    WORST["forward (abs)"] = max(WORST["forward (abs)"], err)
    assert err <= FORWARD_ABS


def _close_grad(ours, theirs, name):
    theirs = np.zeros(ours.shape) if theirs is None else theirs.numpy()  # unused: zero
    assert ours.shape == theirs.shape, name
    scale = float(np.max(np.abs(theirs)))
    if scale == 0.0:  # e.g. W_hh over one step from a zero state
        assert not np.any(ours), name
        return
    rel = float(np.max(np.abs(ours - theirs))) / scale
    WORST["gradient (rel)"] = max(WORST["gradient (rel)"], rel)
    assert rel <= GRAD_REL, f"{name}: relative error {rel:.2e}"


def _module_case(kind, layers, bias, bidir, batch_first, batch, steps, h0):
    seed = zlib.crc32(_case_id((kind, layers, bias, bidir, batch_first, batch, steps, h0)).encode())
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the module's own initialisation
    module = MODULES[kind](
        input_size=INPUT,
        hidden_size=HIDDEN,
        num_layers=layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidir,
    ).double()
    if batch is None:
        x_shape = (steps, INPUT)
    else:
        x_shape = (batch, steps, INPUT) if batch_first else (steps, batch, INPUT)
    x = _randn(gen, *x_shape)
    n_states = 2 if kind == "lstm" else 1
    state_shape = (layers * (2 if bidir else 1),) + (() if batch is None else (batch,)) + (HIDDEN,)
    initial = [_randn(gen, *state_shape) for _ in range(n_states)] if h0 else []
    _parity(module, x, initial, is_cell=False, batched=batch is not None, gen=gen)


@pytest.mark.parametrize("case", SAMPLED, ids=_case_id)
def test_module_parity_with_torch(case):
    _module_case(*case)


@pytest.mark.slow
def test_module_parity_with_torch_full_product():
    """The rest of the product, in one test (a parametrized case each costs more than it)."""
    failures = []
    for case in REST:
        try:
            _module_case(*case)
        except AssertionError as e:
            failures.append(f"{_case_id(case)}: {str(e).splitlines()[0]}")
    assert not failures, f"{len(failures)} of {len(REST)} cases differ: {failures[:5]}"


CELL_CASES = list(
    itertools.product(CELL_MODULES, [True, False], [None, 1, 3], [1, 6], [False, True])
)


@pytest.mark.parametrize("kind,bias,batch,steps,h0", CELL_CASES)
def test_cell_parity_with_torch_called_once_per_step(kind, bias, batch, steps, h0):
    gen = torch.Generator().manual_seed(CELL_CASES.index((kind, bias, batch, steps, h0)))
    torch.manual_seed(7)
    module = CELL_MODULES[kind](input_size=INPUT, hidden_size=HIDDEN, bias=bias).double()
    x = _randn(gen, steps, INPUT) if batch is None else _randn(gen, steps, batch, INPUT)
    state_shape = (HIDDEN,) if batch is None else (batch, HIDDEN)
    n_states = 2 if kind == "lstm_cell" else 1
    initial = [_randn(gen, *state_shape) for _ in range(n_states)] if h0 else []
    _parity(module, x, initial, is_cell=True, batched=batch is not None, gen=gen)


def test_eval_mode_lstm_with_dropout_matches_torch():
    torch.manual_seed(3)
    module = nn.LSTM(INPUT, HIDDEN, num_layers=2, dropout=0.5).double().eval()
    gen = torch.Generator().manual_seed(3)
    _parity(module, _randn(gen, 5, 2, INPUT), [], is_cell=False, batched=True, gen=gen)


def test_float32_module_is_imported_as_exact_float64_copies():
    module = nn.GRU(INPUT, HIDDEN)
    imp = from_torch(module)
    assert imp.params["W_hz"].dtype == np.float64
    np.testing.assert_array_equal(
        imp.params["W_hz"], module.weight_hh_l0.detach().numpy()[HIDDEN : 2 * HIDDEN]
    )


# ---- graphs and names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "module,graph",
    [
        (lambda: nn.LSTM(3, 8), lambda: unroll.presets.lstm(3, 8)),
        (lambda: nn.LSTM(3, 8, bias=False), lambda: unroll.presets.lstm(3, 8, bias=False)),
        (lambda: nn.GRU(3, 8), lambda: unroll.presets.gru(3, 8)),
        (lambda: nn.RNN(3, 8), lambda: unroll.presets.elman(3, 8)),
        (
            lambda: nn.RNN(3, 8, nonlinearity="relu"),
            lambda: unroll.presets.elman(3, 8, activation="relu"),
        ),
        (lambda: nn.LSTMCell(3, 8), lambda: unroll.presets.lstm(3, 8)),
        (lambda: nn.GRUCell(3, 8, bias=False), lambda: unroll.presets.gru(3, 8, bias=False)),
        (
            lambda: nn.RNNCell(3, 8, nonlinearity="relu"),
            lambda: unroll.presets.elman(3, 8, activation="relu"),
        ),
        (lambda: nn.LSTM(3, 8, num_layers=2), lambda: unroll.presets.stacked("lstm", 3, 8, 2)),
        (
            lambda: nn.GRU(3, 8, num_layers=3, batch_first=True),
            lambda: unroll.presets.stacked("gru", 3, 8, 3),
        ),
        (
            lambda: nn.RNN(3, 8, bidirectional=True),
            lambda: unroll.presets.bidirectional("elman", 3, 8),
        ),
        (
            lambda: nn.GRU(3, 8, num_layers=2, bidirectional=True, bias=False),
            lambda: unroll.presets.bidirectional("gru", 3, 8, layers=2, bias=False),
        ),
    ],
)
def test_graph_equals_the_preset(module, graph):
    assert from_torch(module()).graph == graph()


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True),
        lambda: nn.GRU(3, 5, bias=False, num_layers=3),
        lambda: nn.RNN(3, 5, bidirectional=True, batch_first=True),
        lambda: nn.LSTMCell(3, 5),
        lambda: nn.GRUCell(3, 5, bias=False),
        lambda: nn.RNNCell(3, 5),
    ],
)
def test_torch_grads_are_keyed_and_shaped_like_named_parameters(make):
    module = make().double()
    imp = from_torch(module)
    xs = imp.inputs(torch.randn(4, 2, 3, dtype=torch.float64))
    u = unroll.unroll(imp.graph, steps=xs["x"].shape[0])
    r = unroll.bptt(u, imp.params, xs, loss="sum")
    grads = imp.torch_grads(r)
    assert list(grads) == [n for n, _ in module.named_parameters()]
    for name, p in module.named_parameters():
        assert grads[name].shape == tuple(p.shape)
    assert set(imp.params) == set(imp.graph.params())


def test_packed_rows_split_into_gates_in_torch_order():
    module = nn.LSTM(2, 3)
    imp = from_torch(module)
    w = module.weight_ih_l0.detach().numpy()
    for i, gate in enumerate("ifgo"):
        np.testing.assert_array_equal(imp.params[f"W_i{gate}"], w[3 * i : 3 * i + 3])
    gru = from_torch(nn.GRU(2, 3, num_layers=2, bidirectional=True))
    b = gru.module.bias_hh_l1_reverse.detach().numpy()
    for i, gate in enumerate("rzn"):
        np.testing.assert_array_equal(gru.params[f"b_h{gate}_l1_reverse"], b[3 * i : 3 * i + 3])


def test_bidirectional_cotangent_goes_on_the_joined_output():
    imp = from_torch(nn.GRU(2, 3, bidirectional=True))
    cots = imp.cotangents(np.ones((4, 1, 6)))
    assert sorted(cots) == [("y", t) for t in range(4)]
    finals = imp.cotangents(grad_h_n=np.ones((2, 1, 3)), steps=4)
    assert sorted(finals) == [("h", 3), ("h_reverse", 0)]
    assert sorted(imp.initial_states(np.zeros((2, 1, 3)))) == ["h", "h_reverse"]


def test_unidirectional_output_and_h_n_cotangents_add_on_the_last_step():
    imp = from_torch(nn.RNN(2, 3, num_layers=2))
    cots = imp.cotangents(np.ones((3, 1, 3)), np.full((2, 1, 3), 2.0))
    np.testing.assert_array_equal(cots[("h_l1", 2)], np.full((1, 3), 3.0))
    np.testing.assert_array_equal(cots[("h_l0", 2)], np.full((1, 3), 2.0))
    np.testing.assert_array_equal(cots[("h_l1", 1)], np.ones((1, 3)))


# ---- errors ---------------------------------------------------------------------------------


def _one_line(excinfo, *phrases):
    message = str(excinfo.value)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message
    return message


def test_proj_size_is_refused():
    with pytest.raises(TorchInteropError) as e:
        from_torch(nn.LSTM(3, 8, proj_size=4))
    _one_line(e, "proj_size=4")


def test_dropout_between_layers_in_training_mode_is_refused():
    module = nn.GRU(3, 8, num_layers=2, dropout=0.25)
    with pytest.raises(TorchInteropError) as e:
        from_torch(module)
    _one_line(e, "dropout=0.25", "training mode", "eval()")
    assert from_torch(module.eval()).num_layers == 2


def test_unsupported_module_names_its_type_and_the_supported_ones():
    with pytest.raises(TorchInteropError) as e:
        from_torch(nn.Linear(3, 4))
    _one_line(e, "'Linear'", *SUPPORTED)
    assert issubclass(TorchInteropError, InputError)


def test_subclass_of_a_supported_module_is_accepted():
    class MyLSTM(nn.LSTM):
        pass

    assert from_torch(MyLSTM(3, 4)).kind.name == "LSTM"


def test_missing_torch_says_how_to_install(monkeypatch, tmp_path):
    module = nn.LSTM(3, 4)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingTorchError) as e:
        from_torch(module)
    _one_line(e, "pip install rnn-unroll[torch]")
    assert isinstance(e.value, ImportError) and isinstance(e.value, InputError)
    with pytest.raises(MissingTorchError, match=r"rnn-unroll\[torch\]"):
        load_state_dict(tmp_path / "any.pt")


def test_inputs_of_the_wrong_width_name_the_expected_layout():
    imp = from_torch(nn.LSTM(3, 4, batch_first=True))
    with pytest.raises(TorchInteropError) as e:
        imp.inputs(np.zeros((2, 5, 4)))
    _one_line(e, "(2, 5, 4)", "(B, T, 3)")
    with pytest.raises(TorchInteropError) as e:
        imp.initial_states(np.zeros((2, 1, 4)))
    _one_line(e, "h0", "(1, B, 4)")


def test_misuse_of_states_and_results_is_named():
    gru = from_torch(nn.GRU(2, 3))
    with pytest.raises(TorchInteropError, match="no cell state"):
        gru.initial_states(np.zeros((1, 1, 3)), np.zeros((1, 1, 3)))
    with pytest.raises(TorchInteropError, match="steps="):
        gru.cotangents(grad_h_n=np.zeros((1, 1, 3)))
    other = from_torch(nn.RNN(2, 3))
    r = unroll.bptt(
        unroll.unroll(other.graph, steps=2), other.params, other.inputs(np.zeros((2, 1, 2)))
    )
    with pytest.raises(TorchInteropError, match="not on this import's graph"):
        gru.outputs(r)
    with pytest.raises(TorchInteropError, match="batch size 1"):
        r3 = unroll.bptt(
            unroll.unroll(other.graph, steps=2), other.params, other.inputs(np.zeros((2, 3, 2)))
        )
        other.outputs(r3, batched=False)


# ---- saved weights --------------------------------------------------------------------------


def _grads_of(imp, x, grad_output):
    u = unroll.unroll(imp.graph, steps=x.shape[0] if not imp.batch_first else x.shape[1])
    r = unroll.bptt(u, imp.params, imp.inputs(x), imp.cotangents(grad_output))
    return imp.outputs(r), imp.torch_grads(r)


@pytest.mark.parametrize(
    "make,options",
    [
        (lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True), {}),
        (lambda: nn.GRU(3, 5, bias=False, batch_first=True), {"batch_first": True}),
        (lambda: nn.RNN(3, 5, nonlinearity="relu", num_layers=2), {"nonlinearity": "relu"}),
        (lambda: nn.RNN(3, 5, bidirectional=True), {}),
        (lambda: nn.LSTMCell(3, 5), {}),
        (lambda: nn.GRUCell(3, 5), {}),
        (lambda: nn.RNNCell(3, 5, bias=False, nonlinearity="relu"), {"nonlinearity": "relu"}),
    ],
)
def test_load_state_dict_round_trip(tmp_path, make, options):
    torch.manual_seed(11)
    module = make().double()
    path = tmp_path / "weights.pt"
    torch.save(module.state_dict(), path)
    loaded = load_state_dict(path, **options)
    direct = from_torch(module)
    assert loaded.kind == direct.kind and loaded.graph == direct.graph
    assert loaded.batch_first == direct.batch_first
    assert sorted(loaded.params) == sorted(direct.params)
    for name, value in direct.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)
    gen = torch.Generator().manual_seed(5)
    shape = (2, 4, 3) if direct.batch_first else (4, 2, 3)
    x = _randn(gen, *shape)
    width = 5 * direct.num_directions
    g = _randn(gen, *shape[:2], width)
    (out_l, _), grads_l = _grads_of(loaded, x, g)
    (out_d, _), grads_d = _grads_of(direct, x, g)
    np.testing.assert_array_equal(out_l, out_d)
    assert list(grads_l) == list(grads_d)
    for name in grads_d:
        np.testing.assert_array_equal(grads_l[name], grads_d[name])
    assert not loaded.module.training


def test_load_state_dict_keeps_the_saved_dtype_and_checks_kind(tmp_path):
    module = nn.GRU(3, 4, num_layers=2)  # float32
    path = tmp_path / "gru32.pt"
    torch.save({"epoch": 3, "model_state_dict": module.state_dict()}, path)
    imp = load_state_dict(path, kind="gru")
    assert imp.module.weight_hh_l0.dtype == torch.float32
    np.testing.assert_array_equal(imp.params["W_hn_l1"], module.weight_hh_l1.detach().numpy()[8:12])
    with pytest.raises(TorchInteropError) as e:
        load_state_dict(path, kind="LSTM")
    _one_line(e, "gru32.pt", "kind='LSTM'", "GRU")


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 4)
        self.head = nn.Linear(4, 2)


def test_load_state_dict_picks_a_submodule(tmp_path):
    model = _Model()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    imp = load_state_dict(path, prefix="rnn.")
    np.testing.assert_array_equal(
        imp.params["W_ho"], model.rnn.weight_hh_l0.detach().numpy()[12:16]
    )
    found = load_state_dict(path)  # the LSTM and its Linear head, by names and shapes
    assert found.graph == imp.graph and found.graph.output_nodes() == ["head"]
    assert load_state_dict(path, prefix="rnn", head="").graph == unroll.presets.lstm(3, 4)
    only_rnn = tmp_path / "wrapped.pt"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in model.rnn.state_dict().items()}}, only_rnn
    )
    assert load_state_dict(only_rnn).graph == unroll.presets.lstm(3, 4)


class _Arbitrary:
    pass


def _save(path, obj):
    torch.save(obj, path)
    return path


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


BAD_FILES = {
    "not a torch file": (lambda p: _write(p, b"hello"), "not a torch file"),
    "arbitrary pickle": (
        lambda p: _write(p, pickle.dumps({"a": _Arbitrary()})),
        "objects other than tensors",
    ),
    "whole module": (lambda p: _save(p, nn.LSTM(3, 4)), "objects other than tensors"),
    "missing file": (lambda p: p.parent / "nowhere.pt", "cannot read"),
    "a tensor": (lambda p: _save(p, torch.zeros(3)), "holds a Tensor, not a state_dict"),
    "non-tensor entry": (
        lambda p: _save(p, {"weight_ih_l0": [1.0, 2.0]}),
        "'weight_ih_l0' is a list, not a tensor",
    ),
    "integer tensor": (
        lambda p: _save(p, {"weight_ih": torch.zeros(4, 3, dtype=torch.int64)}),
        "expected floating point",
    ),
    "wrong key": (
        lambda p: _save(p, {"weight": torch.zeros(4, 3)}),
        "unexpected parameter 'weight'",
    ),
    "proj_size": (lambda p: _save(p, nn.LSTM(3, 8, proj_size=2).state_dict()), "proj_size > 0"),
    "mixed names": (
        lambda p: _save(p, {"weight_ih": torch.zeros(4, 3), "weight_hh_l0": torch.zeros(4, 4)}),
        "mixes cell names",
    ),
    "no weight_hh": (lambda p: _save(p, {"weight_ih_l0": torch.zeros(4, 3)}), "no 'weight_hh_l0'"),
    "bad gate count": (
        lambda p: _save(p, {"weight_ih_l0": torch.zeros(8, 3), "weight_hh_l0": torch.zeros(8, 4)}),
        "not 1, 3 or 4 times the hidden size 4",
    ),
    "inconsistent shapes": (
        lambda p: _save(
            p, {**nn.GRU(3, 4, num_layers=2).state_dict(), "weight_ih_l1": torch.zeros(12, 5)}
        ),
        "'weight_ih_l1' has shape (12, 5), a 2-layer GRU (input 3, hidden 4, bias=True) "
        "needs (12, 4)",
    ),
    "missing layer": (
        lambda p: _save(
            p, {k: v for k, v in nn.LSTM(3, 4, num_layers=3).state_dict().items() if "_l1" not in k}
        ),
        "missing 'weight_ih_l1'",
    ),
    "half the biases": (
        lambda p: _save(
            p, {k: v for k, v in nn.RNN(3, 4).state_dict().items() if k != "bias_hh_l0"}
        ),
        "missing 'bias_hh_l0'",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_state_dict_files_get_one_line_naming_the_file(tmp_path, name):
    make, phrase = BAD_FILES[name]
    path = make(tmp_path / "bad.pt")
    with pytest.raises(TorchInteropError) as e:
        load_state_dict(path)
    _one_line(e, path.name, phrase)


def test_load_state_dict_rejects_unknown_and_misplaced_options(tmp_path):
    path = _save(tmp_path / "lstm.pt", nn.LSTM(3, 4).state_dict())
    with pytest.raises(TorchInteropError, match="unknown option 'hidden'"):
        load_state_dict(path, hidden=4)
    with pytest.raises(TorchInteropError, match="nonlinearity applies to RNN and RNNCell"):
        load_state_dict(path, nonlinearity="relu")
    cell = _save(tmp_path / "cell.pt", nn.GRUCell(3, 4).state_dict())
    with pytest.raises(TorchInteropError, match="batch_first does not apply to GRUCell"):
        load_state_dict(cell, batch_first=True)
    with pytest.raises(TorchInteropError, match="kind='Transformer' is not one of"):
        load_state_dict(cell, kind="Transformer")
