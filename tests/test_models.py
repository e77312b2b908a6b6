"""Resolving MODEL arguments: presets with options, TOML files, functions, state_dicts."""

import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import unroll
from unroll import presets
from unroll.analysis.probes import probe
from unroll.analysis.sweep import ModelFactory
from unroll.files import ModelFileError, to_toml
from unroll.models import (
    MODEL_SOURCES,
    ModelSpec,
    ModelSpecError,
    build_preset,
    load_model,
    parse_preset_spec,
    preset_catalog,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# ---- preset specs -------------------------------------------------------------------------


def test_parse_preset_spec():
    assert parse_preset_spec("lstm") == ("lstm", {})
    assert parse_preset_spec("lstm:") == ("lstm", {})
    assert parse_preset_spec(" elman : hidden = 16 , activation=relu ") == (
        "elman",
        {"hidden": "16", "activation": "relu"},
    )
    with pytest.raises(ModelSpecError, match="option 'hidden' needs a value"):
        parse_preset_spec("elman:hidden")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("lstm", presets.lstm()),
        ("elman:hidden=16,activation=relu", presets.elman(hidden_size=16, activation="relu")),
        ("elman:input=2,output=4", presets.elman(input_size=2, output_size=4)),
        ("elman:output_size=none", presets.elman(output_size=None)),
        ("elman:bias=false", presets.elman(bias=False)),
        ("lstm:forget_gate=no,hidden_size=3", presets.lstm(hidden_size=3, forget_gate=False)),
        ("stacked:cell=gru,layers=2", presets.stacked("gru", layers=2)),
        (
            "stacked:cell=elman,activation=relu,layers=3",
            presets.stacked("elman", layers=3, activation="relu"),
        ),
        ("stacked:forget_gate=false", presets.stacked(forget_gate=False)),
        ("bidirectional:cell=lstm,hidden=2", presets.bidirectional("lstm", hidden_size=2)),
        ("jordan:output_activation=sigmoid", presets.jordan(output_activation="sigmoid")),
        ("neuron:activation=relu", presets.neuron(activation="relu")),
    ],
)
def test_preset_specs_build_the_preset(spec, expected):
    model = load_model(spec)
    assert model.graph == expected
    assert model.params is None
    assert model.label == spec.strip()


def test_build_preset_accepts_typed_values():
    assert build_preset("elman", {"hidden": 5, "bias": False}) == presets.elman(
        hidden_size=5, bias=False
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lstn", "unknown preset 'lstn' (did you mean 'lstm'?); presets: neuron, elman"),
        ("gur:hidden=3", "unknown preset 'gur' (did you mean 'gru'?)"),
        (
            "elman:hiden=16",
            "unknown option 'hiden' (did you mean 'hidden'?); options: "
            "input_size, hidden_size, activation, bias, output_size",
        ),
        ("lstm:forget=false", "unknown option 'forget' (did you mean 'forget_gate'?)"),
        ("elman:cell=gru", "preset 'elman': unknown option 'cell'"),
        ("elman:hidden=abc", "option hidden_size='abc': expected an integer"),
        ("elman:hidden=2.5", "expected an integer"),
        ("lstm:bias=maybe", "expected true or false"),
        ("elman:activation=rleu", "unknown activation 'rleu' (did you mean 'relu'?)"),
        ("stacked:cell=gur", "unknown cell 'gur' (did you mean 'gru'?)"),
        ("stacked:cell=gru,forget_gate=false", "unknown option 'forget_gate'"),
        ("elman:hidden=0", "preset 'elman': node 'h': size must be a positive integer, got 0"),
        ("stacked:layers=0", "preset 'stacked': layers must be at least 1, got 0"),
    ],
)
def test_bad_preset_specs_say_what_is_valid(spec, message):
    with pytest.raises(ModelSpecError) as info:
        load_model(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_preset_catalog_lists_every_preset_with_its_defaults():
    rows = preset_catalog()
    assert [r.name for r in rows] == list(presets.PRESETS)
    for row in rows:
        assert row.options.items() >= presets.preset_options(row.name).items()
        assert row.doc and "\n" not in row.doc
    stacked = next(r for r in rows if r.name == "stacked")
    assert stacked.options["forget_gate"] is True  # the default cell's (lstm) options


# ---- files, functions, graphs --------------------------------------------------------------


def test_toml_files_resolve_with_their_params(tmp_path):
    assert load_model(str(EXAMPLES / "gru.toml")).graph == presets.gru()
    graph = presets.elman(2, 3)
    params = unroll.init_params(graph, seed=3)
    path = tmp_path / "with_params.toml"
    path.write_text(to_toml(graph, params))
    model = load_model(str(path))
    assert model.graph == graph and model.label == str(path)
    assert all(np.array_equal(model.params[k], v) for k, v in params.items())


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(ModelSpecError, match=r"no such model file: .*nope\.toml"):
        load_model(str(tmp_path / "nope.toml"))
    with pytest.raises(ModelSpecError, match="no such preset or model file"):
        load_model(str(tmp_path / "model.json"))
    with pytest.raises(ModelSpecError, match="no such state_dict file"):
        load_model(str(tmp_path / "rnn.pt"))


def test_a_malformed_file_is_a_model_file_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "x"\n[nodes]\nx = { kind = "input", size = 1 }\n'
        'h = { kind = "layer", size = 1, activation = "tanhh" }\n'
    )
    with pytest.raises(ModelFileError, match=r"bad\.toml, line 4: node 'h': unknown activation"):
        load_model(str(path))


@pytest.fixture
def models_module(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "import unroll\n"
        "def tiny():\n    return unroll.presets.elman(2, 2)\n"
        "def not_a_graph():\n    return 42\n"
        "def needs_args(n):\n    return unroll.presets.elman(n, n)\n"
        "class Imported:\n"
        "    graph = unroll.presets.gru(1, 1)\n"
        "    params = unroll.init_params(graph, seed=0)\n"
        "def with_params():\n    return Imported()\n"
    )
    monkeypatch.chdir(tmp_path)
    yield "my_models"
    sys.modules.pop("my_models", None)


def test_module_functions_resolve_from_the_current_folder(models_module):
    path_before = list(sys.path)
    model = load_model(f"{models_module}:tiny")
    assert model.graph == presets.elman(2, 2) and model.label == "my_models:tiny"
    assert sys.path == path_before
    imported = load_model(f"{models_module}:with_params")
    assert imported.graph == presets.gru(1, 1) and sorted(imported.params) == sorted(
        imported.graph.params()
    )


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("not_a_graph", "returned a value of type int, not an unroll.Graph"),
        ("needs_args", "callable without arguments"),
        ("tinyy", "has no function 'tinyy' (did you mean 'tiny'?)"),
    ],
)
def test_bad_module_functions(models_module, function, message):
    with pytest.raises(ModelSpecError, match=re.escape(message)):
        load_model(f"{models_module}:{function}")


def test_unimportable_module():
    with pytest.raises(ModelSpecError, match="cannot import 'no_such_module_xyz'"):
        load_model("no_such_module_xyz:make")


def test_graphs_and_models_pass_through():
    graph = presets.neuron()
    assert load_model(graph) == ModelSpec(graph, label="neuron")
    model = ModelSpec(graph, label="mine")
    assert load_model(model) is model


def test_sources_are_tried_in_order():
    names = [s.name for s in MODEL_SOURCES]
    assert names == ["toml", "state_dict", "keras", "onnx", "function", "preset"]
    assert next(s for s in MODEL_SOURCES if s.matches("my/Model.KERAS")).name == "keras"
    assert next(s for s in MODEL_SOURCES if s.matches("lstm.onnx")).name == "onnx"
    assert next(s for s in MODEL_SOURCES if s.matches("unroll.presets:gru")).name == "function"
    assert next(s for s in MODEL_SOURCES if s.matches("gru:hidden=2")).name == "preset"
    assert next(s for s in MODEL_SOURCES if s.matches("a/b.PT:kind=gru")).name == "state_dict"


@pytest.mark.torch
def test_state_dicts_resolve_with_their_params(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(3, 4, num_layers=2)
    path = tmp_path / "gru.pt"
    torch.save(module.state_dict(), path)
    model = load_model(str(path))
    assert model.graph == presets.stacked("gru", 3, 4, layers=2)
    weight = module.state_dict()["weight_hh_l1"].double().numpy()
    np.testing.assert_array_equal(model.params["W_hn_l1"], weight[8:12])
    rnn = torch.nn.RNN(2, 3, nonlinearity="relu")
    torch.save(rnn.state_dict(), tmp_path / "rnn.pt")
    relu = load_model(f"{tmp_path / 'rnn.pt'}:nonlinearity=relu")
    assert relu.graph.nodes["h"].activation == "relu"


# ---- sweeps and probes ---------------------------------------------------------------------


def test_model_factory_splits_graph_and_init_settings():
    factory = ModelFactory("lstm:input=2", init="orthogonal", init_options=(("bias", 0.0),))
    spec = factory(hidden=3, forget_bias=1.0)
    assert spec.graph == presets.lstm(2, 3)
    assert (spec.init, spec.init_options) == ("orthogonal", {"bias": 0.0, "forget_bias": 1.0})
    spec = factory(init="glorot", bias=False)  # the preset's bias wins
    assert spec.graph == presets.lstm(2, bias=False) and spec.init == "glorot"
    assert pickle.loads(pickle.dumps(factory)) == factory


def test_model_factory_for_files_varies_init_only():
    factory = ModelFactory(str(EXAMPLES / "elman.toml"))
    spec = factory(spectral_radius=0.5, bias=0.1)
    assert spec.graph == presets.elman()
    assert (spec.init, spec.init_options) == ("torch", {"spectral_radius": 0.5, "bias": 0.1})
    with pytest.raises(ModelSpecError, match="cannot vary 'hidden'"):
        factory.check(["hidden"])


def test_probe_puts_ones_on_the_outputs_at_the_last_step():
    unrolled, result = probe("elman:input=2,hidden=3,output=2", steps=5, seed=7)
    assert unrolled.steps == 5
    np.testing.assert_array_equal(result.node_grads[("y", 4)], np.ones((1, 2)))
    again = probe("elman:input=2,hidden=3,output=2", steps=5, seed=7)[1]
    np.testing.assert_array_equal(again.param_grads["W_hh"], result.param_grads["W_hh"])
    other = probe("elman:input=2,hidden=3,output=2", steps=5, seed=8)[1]
    assert not np.array_equal(other.param_grads["W_hh"], result.param_grads["W_hh"])


def test_probe_uses_the_models_own_params():
    graph = presets.neuron(activation="identity", bias=False)
    params = {"W_ih": np.zeros((1, 1)), "W_hh": np.full((1, 1), 0.5)}
    _, result = probe(ModelSpec(graph, params=params, label="fixed"), steps=3, mode="many-to-one")
    # with W_ih = 0 every value is 0, and dL/dh_t = 0.5 ** (2 - t) exactly
    assert all(result.values[("h", t)][0, 0] == 0 for t in range(3))
    assert [float(result.node_grads[("h", t)][0, 0]) for t in range(3)] == [0.25, 0.5, 1.0]


def test_a_preset_spec_may_say_how_to_draw_its_parameters():
    m = load_model("lstm:hidden=4,forget_bias=3,init=orthogonal")
    assert m.graph.nodes["h"].size == 4
    assert (m.init, m.init_options) == ("orthogonal", {"forget_bias": 3.0})
    assert (load_model("lstm").init, load_model("lstm").init_options) == (None, {})
    with pytest.raises(ModelSpecError, match="option 'spectral_norm' takes a number, got 'x'"):
        load_model("elman:spectral_norm=x")


def test_probe_draws_parameters_as_the_spec_says():
    _, plain = probe("lstm:hidden=3", steps=2)
    _, biased = probe("lstm:hidden=3,forget_bias=3", steps=2)
    np.testing.assert_array_equal(biased.values[("f", 0)] > 0.9, True)  # sigma(3) = 0.95
    assert not np.all(plain.values[("f", 0)] > 0.9)
