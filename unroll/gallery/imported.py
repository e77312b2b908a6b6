"""Gallery pictures of models imported from other frameworks (Keras), drawn with their weights.

The Keras models are built here layer by layer, as a Keras tutorial writes them, and given
seeded weights, so the pictures do not depend on Keras's own random initialisation or on its
backend. Without Keras the entry draws nothing and says so in a warning.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..engine import bptt
from ..errors import UnrollWarning
from ..render import render
from ..unrolled import unroll
from .pictures import Diagram

__all__ = ["keras_models"]


def _seeded(model, seed: int) -> None:
    """Give every weight of ``model`` a seeded normal value (scale 0.8)."""
    rng = np.random.default_rng(seed)
    model.set_weights([0.8 * rng.normal(size=w.shape) for w in model.get_weights()])


def keras_models(fast: bool = False) -> list[Diagram]:
    """A Keras stacked-LSTM classifier unrolled with its gradients, and a Keras
    bidirectional tagger folded; nothing (and a warning) without Keras."""
    from ..interop import from_keras
    from ..interop.keras_models import MissingKerasError, _require_keras

    try:
        keras = _require_keras()
    except MissingKerasError as e:
        warnings.warn(f"gallery: the Keras pictures are skipped: {e}", UnrollWarning, stacklevel=2)
        return []
    layers = keras.layers
    classifier = keras.Sequential(
        [
            keras.Input((3, 1)),
            layers.LSTM(2, return_sequences=True, name="lstm_lower"),
            layers.LSTM(2, name="lstm_upper"),
            layers.Dense(1, activation="sigmoid", name="head"),
        ],
        name="classifier",
    )
    _seeded(classifier, 0)
    imp = from_keras(classifier)
    u = unroll(imp.graph, 3, mode=imp.mode)
    x = np.random.default_rng(1).normal(size=(1, 3, 1))
    r = bptt(u, imp.params, imp.inputs(x), imp.cotangents(np.ones((1, 1)), steps=3))
    tagger = keras.Sequential(
        [
            keras.Input((None, 1)),
            layers.Bidirectional(
                layers.SimpleRNN(2, return_sequences=True, name="rnn"),
                merge_mode="ave",
                name="both_ways",
            ),
            layers.Dense(1, name="tag"),
        ],
        name="tagger",
    )
    folded = from_keras(tagger).graph
    return [
        Diagram(
            "keras_stacked_lstm_unrolled",
            render(
                r,
                detail="cell",
                grads=True,
                title="Keras LSTM(2, return_sequences=True) → LSTM(2) → Dense(1, sigmoid), "
                "3 steps; dL/dy = 1 at the last",
            ),
            "a Keras two-layer LSTM classifier unrolled over three steps, its Dense head "
            "reading only the last step, every cell coloured by its gradient",
        ),
        Diagram(
            "keras_bidirectional_folded",
            render(
                folded,
                title="keras Bidirectional(SimpleRNN(2), merge_mode='ave') + Dense(1), folded",
            ),
            "a Keras bidirectional tagger folded: h reads t−1, h_reverse reads t+1, their "
            "average feeds a Dense layer at every step",
        ),
    ]
