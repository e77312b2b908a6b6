"""Task generators: shapes, the structure of each problem, seeding, and the baselines."""

import math

import numpy as np
import pytest

from unroll.errors import InputError
from unroll.losses import LOSSES
from unroll.tasks import TASKS, adding_problem, copy_memory, make_task

# ---- the adding problem ---------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 10, 51])
def test_adding_shapes_and_sequence_mode(length):
    t = adding_problem(length, batch=5, seed=3)
    assert t.inputs.shape == (length, 5, 2)
    assert t.targets.shape == (1, 5, 1)
    assert (t.steps, t.input_size, t.output_size) == (length, 2, 1)
    assert (t.loss, t.mode) == ("mse", "many-to-one")
    assert t.recall_steps == [length - 1]
    assert t.unroll(_two_input_graph()).loss_steps == t.recall_steps


def _two_input_graph():
    from unroll import presets

    return presets.elman(2, 3, output_size=1)


@pytest.mark.parametrize("length", [2, 7, 40])
def test_adding_has_two_markers_one_in_each_half_and_sums_them(length):
    t = adding_problem(length, batch=400, seed=length)
    values, markers = t.inputs[:, :, 0], t.inputs[:, :, 1]
    half = length // 2
    assert set(np.unique(markers).tolist()) <= {0.0, 1.0}
    assert (markers[:half].sum(axis=0) == 1).all()
    assert (markers[half:].sum(axis=0) == 1).all()
    assert ((values >= 0) & (values < 1)).all()
    np.testing.assert_allclose(t.targets[0, :, 0], (values * markers).sum(axis=0), rtol=1e-15)


def test_adding_markers_fall_on_every_step_of_their_half():
    t = adding_problem(10, batch=3000, seed=0)
    first = t.inputs[:5, :, 1].argmax(axis=0)
    second = 5 + t.inputs[5:, :, 1].argmax(axis=0)
    assert sorted(set(first.tolist())) == [0, 1, 2, 3, 4]
    assert sorted(set(second.tolist())) == [5, 6, 7, 8, 9]


def test_adding_baseline_is_the_mse_of_always_answering_one():
    """Measured on a large sample: the mean target is 1 and ``E(s - 1)^2 = 1/6``."""
    n = 200_000
    sums = adding_problem(20, batch=n, seed=11).targets.ravel()
    # (s - 1) is triangular on [-1, 1]: E(s-1)^4 = 1/15, so Var (s-1)^2 = 1/15 - 1/36.
    se = math.sqrt((1 / 15 - 1 / 36) / n)
    assert abs(float(np.mean((sums - 1.0) ** 2)) - 1 / 6) < 4 * se
    assert abs(float(np.mean(sums)) - 1.0) < 4 * math.sqrt(1 / 6 / n)
    assert adding_problem(20).baseline == pytest.approx(1 / 6, rel=1e-15)


# ---- the copy problem -----------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 5, 30])
def test_copy_layout(length):
    t = copy_memory(length, batch=64, seed=length)
    steps = length + 20
    assert t.inputs.shape == (steps, 64, 10)
    assert t.targets.shape == (steps, 64)
    assert (t.loss, t.mode, t.output_size) == ("xent", "synced", 9)
    assert (t.inputs.sum(axis=2) == 1).all()  # one-hot at every step
    read = t.inputs.argmax(axis=2)
    symbols = read[:10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (read[10 : length + 9] == 0).all()  # length - 1 blanks
    assert (read[length + 9] == 9).all()  # the delimiter
    assert (read[length + 10 :] == 0).all()  # blanks while recalling
    assert (t.targets[: length + 10] == 0).all()
    np.testing.assert_array_equal(t.targets[length + 10 :], symbols)
    assert t.recall_steps == list(range(length + 10, length + 20))
    assert t.source_span == (0, 10)


def test_copy_baseline_is_the_entropy_of_the_targets_per_step():
    """The best answer that ignores the inputs predicts each step's target distribution;
    its cross-entropy, averaged over all T + 20 steps, is the mean per-step entropy."""
    length, n = 15, 100_000
    t = copy_memory(length, batch=n, seed=5)
    entropies = []
    for step in t.targets:
        p = np.bincount(step, minlength=9) / n
        p = p[p > 0]
        entropies.append(float(-(p * np.log(p)).sum()))
    assert entropies[: length + 10] == [0.0] * (length + 10)
    # plug-in entropy of 8 equiprobable classes: sampling error well below 1e-3
    np.testing.assert_allclose(entropies[length + 10 :], math.log(8), atol=1e-3)
    assert np.mean(entropies) == pytest.approx(t.baseline, abs=1e-3 * 10 / (length + 20))
    assert t.baseline == pytest.approx(10 * math.log(8) / (length + 20), rel=1e-15)


def test_copy_baseline_matches_the_engines_averaging():
    """The memoryless answer (blank for sure, then uniform over 1..8) scored by the engine's
    ``xent``, which averages over the batch and every loss step, is 10 ln 8 / (T + 20)."""
    t = copy_memory(7, batch=16, seed=2)
    certain_blank = np.full(9, -800.0)
    certain_blank[0] = 0.0
    uniform = np.zeros(9)
    uniform[0] = -800.0
    ys = [
        np.tile(uniform if step in t.recall_steps else certain_blank, (16, 1))
        for step in range(t.steps)
    ]
    value, _ = LOSSES["xent"].fn(ys, list(t.targets))
    assert value == pytest.approx(t.baseline, rel=1e-12)


# ---- seeding and errors ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_same_batch_and_fresh_samples_differ(name):
    a, b = make_task(name, 8, 4, seed=7), make_task(name, 8, 4, seed=7)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, make_task(name, 8, 4, seed=8).inputs)
    rng = np.random.default_rng(0)
    first, second = a.sample(seed=rng), a.sample(seed=rng)
    assert first.batch == 4 and a.sample(9, seed=1).batch == 9
    assert not np.array_equal(first.inputs, second.inputs)
    assert first.seed is None and a.seed == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("adding", 1, 4), "length must be an integer >= 2"),
        (("copy", 0, 4), "length must be an integer >= 1"),
        (("adding", 5, 0), "batch must be a positive integer"),
        (("adding", 5.0, 4), "length must be an integer"),
        (("adding", 5, True), "batch must be a positive integer"),
        (("addition", 5, 4), "unknown task 'addition' (known: adding, copy)"),
    ],
)
def test_bad_settings(args, message):
    with pytest.raises(InputError) as e:
        make_task(*args)
    assert message in str(e.value)


def test_repr_names_the_problem():
    assert repr(copy_memory(30, 2)) == (
        "Task('copy', length=30, steps=50, batch=2, loss='xent', baseline=0.4159)"
    )


def test_tasks_pickle_by_name():
    import pickle

    t = copy_memory(4, 3, seed=1)
    back = pickle.loads(pickle.dumps(t))
    assert back.kind is TASKS["copy"] and back.baseline == t.baseline
    np.testing.assert_array_equal(back.inputs, t.inputs)
