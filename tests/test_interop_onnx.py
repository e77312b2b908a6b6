"""Imported ONNX models: torch.onnx exports import to from_torch's graph and parameters and
agree with the torch module (float64, 1e-12) and with onnxruntime (float32, 1e-5); hand-built
nodes (GRU linear_before_reset=0, direction reverse, raw Y) agree with onnxruntime; what is
not supported is refused by node name."""

import io
import itertools
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import unroll  # noqa: E402
from unroll.interop.onnx_models import OnnxInteropError, from_onnx, load_onnx  # noqa: E402

nn = torch.nn
T, B, N, H = 5, 2, 3, 4
FORWARD64, FORWARD32, GRAD_REL = 1e-12, 1e-5, 1e-10
WORST: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    yield
    print("\nworst errors of ONNX imports:")
    for key, value in sorted(WORST.items()):
        print(f"  {key}: {value:.2e}")


def _close(what, ours, theirs, tol, relative=False):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, what
    err = float(np.max(np.abs(ours - theirs)))
    if relative:
        err /= float(np.max(np.abs(theirs))) or 1.0
    WORST[what] = max(WORST.get(what, 0.0), err)
    assert err <= tol, f"{what}: {err:.2e}"


def _export(module, args, names) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.onnx's notes on batch sizes and dropout
        torch.onnx.export(
            module, args, f, dynamo=False, input_names=names[0], output_names=names[1]
        )
    return f.getvalue()


def _outputs_of(module) -> list[str]:
    return ["output", "h_n"] + (["c_n"] if isinstance(module, nn.LSTM) else [])


KINDS = {
    "RNN": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "RNN relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "LSTM": nn.LSTM,
    "GRU": nn.GRU,
}
CASES = list(itertools.product(KINDS, [1, 2], [False, True], [True, False]))


@pytest.mark.parametrize(("kind", "layers", "bidirectional", "bias"), CASES)
def test_torch_exports_import_as_from_torch(kind, layers, bidirectional, bias):
    case = f"{kind} layers={layers} bidirectional={bidirectional} bias={bias}"
    torch.manual_seed(len(case))
    module = KINDS[kind](
        input_size=N, hidden_size=H, num_layers=layers, bidirectional=bidirectional, bias=bias
    )
    x = torch.randn(T, B, N)
    data = _export(module, (x,), (["x"], _outputs_of(module)))
    imp, ref = from_onnx(data), unroll.from_torch(module)
    assert imp.graph == ref.graph
    assert sorted(imp.params) == sorted(ref.params)
    for name, value in ref.params.items():
        np.testing.assert_array_equal(imp.params[name], value)  # the same float32 weights

    r = unroll.bptt(unroll.unroll(imp.graph, T), imp.params, **imp.feed({"x": x.numpy()}))
    ours = imp.onnx_outputs(r)
    expected = ort.InferenceSession(data).run(None, {"x": x.numpy()})
    for name, value in zip(_outputs_of(module), expected, strict=True):
        _close("onnxruntime float32 (abs)", ours[name], value, FORWARD32)

    double = module.double()
    out, finals = double(x.double())
    finals = finals if isinstance(finals, tuple) else (finals,)
    for name, value in zip(_outputs_of(module), [out, *finals], strict=True):
        _close("torch float64 (abs)", ours[name], value, FORWARD64)


def test_gradients_through_an_onnx_import_match_torch_autograd():
    torch.manual_seed(3)
    module = nn.LSTM(N, H, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, N)
    imp = from_onnx(_export(module, (x,), (["x"], _outputs_of(module))))
    double = module.double()
    out, (h_n, c_n) = double(x.double())
    g_out, g_h, g_c = (torch.randn(a.shape, dtype=torch.float64) for a in (out, h_n, c_n))
    ((out * g_out).sum() + (h_n * g_h).sum() + (c_n * g_c).sum()).backward()
    u = unroll.unroll(imp.graph, T)
    r = unroll.bptt(u, imp.params, imp.inputs(x), imp.cotangents(g_out, g_h, g_c))
    grads = imp.torch_grads(r)
    for name, p in double.named_parameters():
        _close("weight gradients vs torch (rel)", grads[name], p.grad, GRAD_REL, relative=True)
    packed = imp.onnx_grads(r)
    constants = {i.name: i for i in imp.model.graph.initializer}
    assert sorted(packed) == sorted(
        n.input[i] for n in imp.model.graph.node if n.op_type == "LSTM" for i in (1, 2, 3)
    )
    for name, g in packed.items():
        assert g.shape == tuple(constants[name].dims)
    first = next(n for n in imp.model.graph.node if n.op_type == "LSTM")
    p = dict(double.named_parameters())
    forget_ih = p["weight_ih_l0_reverse"].grad[H : 2 * H]  # torch's f block; ONNX's third (iofc)
    np.testing.assert_allclose(packed[first.input[1]][1, 2 * H : 3 * H], forget_ih, rtol=1e-10)
    b_hh_o = p["bias_hh_l0"].grad[3 * H :]  # torch's o; ONNX's second block of the R half
    np.testing.assert_allclose(packed[first.input[3]][0, 5 * H : 6 * H], b_hh_o, rtol=1e-10)


def test_initial_states_from_graph_inputs_and_batch_first():
    torch.manual_seed(4)
    module = nn.LSTM(N, H, num_layers=2, batch_first=True)
    x, h0, c0 = torch.randn(B, T, N), torch.randn(2, B, H), torch.randn(2, B, H)
    data = _export(module, (x, (h0, c0)), (["x", "h0", "c0"], _outputs_of(module)))
    imp = from_onnx(data)
    assert imp.batch_first and imp.input_names == {"x": "x", "initial_h": "h0", "initial_c": "c0"}
    feeds = {"x": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
    r = unroll.bptt(unroll.unroll(imp.graph, T), imp.params, **imp.feed(feeds))
    ours = imp.onnx_outputs(r)
    for name, value in zip(
        _outputs_of(module), ort.InferenceSession(data).run(None, feeds), strict=True
    ):
        _close("onnxruntime float32 (abs)", ours[name], value, FORWARD32)
    out, (h_n, c_n) = module.double()(x.double(), (h0.double(), c0.double()))
    _close("torch float64 (abs)", ours["output"], out, FORWARD64)
    _close("torch float64 (abs)", ours["h_n"], h_n, FORWARD64)
    _close("torch float64 (abs)", ours["c_n"], c_n, FORWARD64)


# ---- hand-built nodes -------------------------------------------------------------------------


def _node_model(op, direction="forward", bias=True, outputs=("Y", "Y_h"), seed=0, **attrs):
    rng = np.random.default_rng(seed)
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    D = 2 if direction == "bidirectional" else 1
    inits = [
        numpy_helper.from_array(rng.normal(size=(D, G * H, N)).astype(np.float32) / 2, "W"),
        numpy_helper.from_array(rng.normal(size=(D, G * H, H)).astype(np.float32) / 2, "R"),
    ]
    if bias:
        inits.append(
            numpy_helper.from_array(rng.normal(size=(D, 2 * G * H)).astype(np.float32) / 2, "B")
        )
    node = helper.make_node(
        op,
        ["X", "W", "R", "B" if bias else ""],
        list(outputs),
        hidden_size=H,
        direction=direction,
        **attrs,
    )
    shapes = {"Y": [T, D, B, H], "Y_h": [D, B, H], "Y_c": [D, B, H], "Y0": [T, D, B, H]}
    out_infos = [helper.make_tensor_value_info(o, TensorProto.FLOAT, shapes[o]) for o in outputs]
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, N])],
        out_infos,
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)


HAND_BUILT = {
    "GRU linear_before_reset=0": dict(op="GRU", linear_before_reset=0),
    "GRU linear_before_reset=1": dict(op="GRU", linear_before_reset=1),
    "GRU lbr=0 bidirectional": dict(op="GRU", linear_before_reset=0, direction="bidirectional"),
    "LSTM reverse": dict(op="LSTM", direction="reverse", outputs=("Y", "Y_h", "Y_c")),
    "LSTM bidirectional no bias": dict(op="LSTM", direction="bidirectional", bias=False),
    "RNN reverse": dict(op="RNN", direction="reverse"),
    "RNN Relu": dict(op="RNN", activations=["Relu"]),
}


@pytest.mark.parametrize("case", list(HAND_BUILT))
def test_hand_built_nodes_match_onnxruntime(case):
    model = _node_model(**HAND_BUILT[case])
    imp = from_onnx(model)
    x = np.random.default_rng(1).normal(size=(T, B, N)).astype(np.float32)
    r = unroll.bptt(unroll.unroll(imp.graph, T), imp.params, **imp.feed({"X": x}))
    ours = imp.onnx_outputs(r)
    names = [o.name for o in model.graph.output]
    for name, value in zip(
        names, ort.InferenceSession(model.SerializeToString()).run(None, {"X": x}), strict=True
    ):
        _close("onnxruntime float32 (abs)", ours[name], value, FORWARD32)


def test_linear_before_reset_0_is_the_reset_before_gru():
    imp = from_onnx(_node_model("GRU", linear_before_reset=0))
    assert imp.graph.nodes == unroll.presets.gru(N, H, reset_after=False).nodes
    assert from_onnx(_node_model("LSTM", direction="reverse")).graph.state_nodes() == [
        "c_reverse",
        "h_reverse",
    ]


# ---- refusals and bad files -------------------------------------------------------------------

REFUSED = [
    (dict(op="LSTM", clip=1.0), r"node 'Y' \(LSTM\): clip=1.0 is not supported"),
    (dict(op="LSTM", input_forget=1), r"input_forget=1"),
    (
        dict(op="GRU", activations=["HardSigmoid", "Tanh"]),
        r"activations \['HardSigmoid', 'Tanh'\] are not supported",
    ),
    (dict(op="RNN", activations=["Sigmoid"]), r"activations \['Sigmoid'\] are not supported"),
    (dict(op="RNN", layout=1), r"layout=1"),
]


@pytest.mark.parametrize(("options", "message"), REFUSED)
def test_unsupported_attributes_are_refused_by_node(options, message):
    with pytest.raises(OnnxInteropError, match=message):
        from_onnx(_node_model(**options))


def _with_inputs(model, *inputs):
    node = model.graph.node[0]
    del node.input[:]
    node.input.extend(inputs)
    return model


def test_peepholes_sequence_lens_and_other_ops_are_refused():
    model = _node_model("LSTM")
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((1, 3 * H), np.float32), "P"))
    with pytest.raises(OnnxInteropError, match=r"peepholes \(input P\) are not supported"):
        from_onnx(_with_inputs(model, "X", "W", "R", "B", "", "", "", "P"))
    model = _node_model("GRU")
    model.graph.initializer.append(numpy_helper.from_array(np.full((B,), T, np.int32), "lens"))
    with pytest.raises(OnnxInteropError, match=r"sequence_lens"):
        from_onnx(_with_inputs(model, "X", "W", "R", "B", "lens"))
    model = _node_model("GRU", outputs=("Y0", "Y_h"))
    model.graph.node.append(helper.make_node("Relu", ["Y0"], ["Y"], name="relu"))
    model.graph.output[0].name = "Y"
    with pytest.raises(OnnxInteropError, match=r"node 'relu' \(Relu\): op Relu is not supported"):
        from_onnx(model)


def test_glue_that_is_not_a_known_layout_is_refused():
    model = _node_model("GRU", outputs=("Y0", "Y_h"))
    model.graph.node.append(helper.make_node("Transpose", ["Y0"], ["Y"], perm=[2, 1, 0, 3]))
    model.graph.output[0].name = "Y"
    with pytest.raises(OnnxInteropError, match=r"graph output 'Y' is none of the layouts"):
        from_onnx(model)


def test_bad_onnx_files_are_named(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot protobuf at all" * 3)
    with pytest.raises(OnnxInteropError, match=r"junk.onnx: not (an|a valid) ONNX model"):
        load_onnx(junk)
    good = _node_model("GRU").SerializeToString()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(OnnxInteropError, match=r"cut.onnx: not (an|a valid) ONNX model"):
        load_onnx(cut)
    with pytest.raises(OnnxInteropError, match=r"missing.onnx: no such file"):
        load_onnx(tmp_path / "missing.onnx")
    path = tmp_path / "gru.onnx"
    path.write_bytes(good)
    m = unroll.load_model(str(path))
    assert m.graph.nodes == from_onnx(good).graph.nodes and sorted(m.params) == sorted(
        from_onnx(good).params
    )


def test_cli_reads_an_onnx_file_and_names_a_bad_one(tmp_path):
    from click.testing import CliRunner
    from unroll.cli.main import main

    (tmp_path / "gru.onnx").write_bytes(
        _node_model("GRU", linear_before_reset=0).SerializeToString()
    )
    clipped = _node_model("LSTM", clip=3.0).SerializeToString()
    (tmp_path / "clipped.onnx").write_bytes(clipped)
    runner = CliRunner()
    ok = runner.invoke(main, ["export", str(tmp_path / "gru.onnx"), "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert '"r_h"' in ok.output
    bad = runner.invoke(main, ["export", str(tmp_path / "clipped.onnx")])
    assert bad.exit_code == 2 and "clipped.onnx: node 'Y' (LSTM): clip=3.0" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
