"""The catalogue of the gallery: one row per concept, with its title, caption and drawing.

Each :class:`Entry` names the function that draws its pictures; :data:`ENTRIES` lists
them in the order the gallery's README shows them. Captions are for a student who has
read a one-page introduction to recurrent networks: plain words, two or three sentences.
To add a concept, add a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import diagrams, flow, imported, plots
from .pictures import Picture

__all__ = ["ENTRIES", "HERO", "Entry"]


@dataclass(frozen=True)
class Entry:
    """One concept of the gallery: ``draw(fast)`` returns its pictures; ``side_by_side``
    shows them in one row, each half the page wide (for a comparison)."""

    name: str
    title: str
    caption: str
    draw: Callable[[bool], Sequence[Picture]]
    side_by_side: bool = False


_ROWS = [
    Entry(
        "neuron",
        "A neuron that feeds itself",
        "A recurrent neuron reads the input x and its own value from the step before: the "
        "red loop h → h, marked t−1, carries h from one step to the next. Unrolling draws one "
        "copy of the neuron per time step and turns the loop into an edge from each copy to "
        "the next. Every copy uses the same two weights W_ih and W_hh: they are one set of "
        "parameters, shared (*tied*) across time.",
        diagrams.neuron,
    ),
    Entry(
        "window",
        "Why recurrence: a fixed window versus a memory",
        "A feed-forward net can read a sequence only through a fixed window: here h reads x "
        "now, one step back and two steps back (weights W_0, W_1, W_2), so y at step 5 cannot "
        "depend on anything before step 3. The recurrent net reads one input per step and "
        "passes h along the red chain, so y at step 5 depends on every input so far, with the "
        "same few weights however long the sequence is. (In the window net the red edges "
        "bring in earlier inputs, not a state; inputs before step 1 are zeros, drawn as the "
        "dashed x₀ and x₋₁.)",
        diagrams.window_and_recurrence,
    ),
    Entry(
        "sequence-modes",
        "Sequence problems: one-to-one, one-to-many, many-to-one, many-to-many",
        "One recurrent cell serves five kinds of problems; what changes is where inputs "
        "enter and where the loss L reads the outputs. One-to-many turns one input into a "
        "sequence (a caption for an image), many-to-one reads a sequence and answers once "
        "(the mood of a sentence), the encoder-decoder reads its whole input before it "
        "writes (translation), and synced many-to-many answers at every step (tagging each "
        "word). A step without an input has no x node; outputs no loss reads are left out.",
        diagrams.sequence_modes,
    ),
    Entry(
        "elman",
        "Elman network",
        "Elman's simple recurrent network (1990), torch.nn.RNN: h = tanh(W_ih x + W_hh h(t−1) "
        "+ b) with an output y = W_hy h + b. Unrolled over 4 steps, every copy of h names the "
        "same W_ih and W_hh and every red edge carries the same W_hh, so the gradient of W_hh "
        "is the sum of four contributions, one per step. The dashed box h₀ is the initial "
        "state (zero unless given).",
        diagrams.elman_network,
    ),
    Entry(
        "jordan",
        "Jordan network",
        "Jordan's network (1986) feeds back the output y instead of the hidden state: h "
        "reads x and the previous step's y through W_yh. Unrolled, the red edges run from each "
        "step's y into the next step's h, so everything the net remembers has to fit through "
        "the output (here a single number).",
        diagrams.jordan_network,
    ),
    Entry(
        "lstm",
        "LSTM cell, gate by gate",
        "The LSTM keeps a second state, the cell state c. Three sigmoid gates computed from x "
        "and the previous h decide what to forget (f), what to write (i, times the candidate "
        "g) and what to show (o): c = f·c(t−1) + i·g and h = o·tanh(c). Unrolled over 3 steps "
        "(time runs downwards), the blue path is the cell-state highway: from one step to the "
        "next c passes only a multiplication by f and an addition, with no weight matrix and "
        "no squashing tanh in the way.",
        diagrams.lstm_cell,
    ),
    Entry(
        "lstm-1997",
        "The 1997 LSTM and the forget gate",
        "Hochreiter and Schmidhuber's LSTM of 1997 (left) has no forget gate: c = c(t−1) + i·g "
        "carries the cell state with a factor of exactly 1, the *constant error carousel*, so "
        "the gradient along it never fades, but the cell cannot clear what it stored. Gers, "
        "Schmidhuber and Cummins (2000) added the forget gate (right): c = f·c(t−1) + i·g can "
        "reset the memory, and the gradient along c is multiplied by f at every step.",
        diagrams.lstm_1997_and_forget_gate,
        side_by_side=True,
    ),
    Entry(
        "gru",
        "GRU cell",
        "The gated recurrent unit (Cho et al. 2014, torch.nn.GRU) keeps one state h and two "
        "gates: the update gate z mixes the old state with a new candidate n, h = (1−z)·n + "
        "z·h(t−1), and the reset gate r decides how much of the old state the candidate sees. "
        "Its highway (blue) is the z·h(t−1) path: where z is near 1, h and its gradient are "
        "carried to the next step almost unchanged.",
        diagrams.gru_cell,
    ),
    Entry(
        "lstm-peephole",
        "Peephole LSTM",
        "Gers and Schmidhuber (2000) let the gates look at the cell state itself: i and f "
        "read c(t−1), o reads this step's c, each through a vector of per-unit weights "
        "(w_ci, w_cf, w_co; the ⊙ nodes multiply unit by unit). The highway of c (blue) is "
        "the same as in the plain LSTM; the peepholes add short side paths from c into the "
        "gates.",
        diagrams.lstm_peephole_cell,
    ),
    Entry(
        "indrnn",
        "IndRNN: one recurrent weight per unit",
        "The independently recurrent network (Li et al. 2018) replaces the matrix W_hh by "
        "a vector w_hh: unit j reads only its own previous value, h = relu(W_ih x + w_hh ⊙ "
        "h(t−1) + b). Along the red chain the gradient of unit j is multiplied by w_hh[j] "
        "times the slope of relu at every step, so keeping |w_hh[j]| near 1 keeps it "
        "alive over long distances.",
        diagrams.indrnn_cell,
    ),
    Entry(
        "mingru",
        "minGRU",
        "minGRU (Feng et al. 2024, Were RNNs All We Needed?) keeps the GRU's update but "
        "computes its gate z and candidate n from the input alone: h = (1−z)·h(t−1) + z·n. "
        "No weight sits on the blue path, so the gradient from step to step is multiplied "
        "by 1−z only, and since nothing reads h inside the gates, all steps can be "
        "computed in parallel.",
        diagrams.mingru_cell,
    ),
    Entry(
        "minlstm",
        "minLSTM",
        "minLSTM (Feng et al. 2024) computes a forget gate f and an input gate i from the "
        "input alone and normalises them to share one unit of weight, f' = f/(f+i) and "
        "i' = 1 − f' (the ÷ node). The state is h = f'·h(t−1) + i'·n, so along the blue "
        "path the gradient is multiplied by f' at every step.",
        diagrams.minlstm_cell,
    ),
    Entry(
        "lru",
        "A diagonal linear recurrence (the LRU, real)",
        "The linear recurrent unit (Orvieto et al. 2023), here with real eigenvalues, has "
        "no nonlinearity in its loop: h = λ ⊙ h(t−1) + γ ⊙ (W_ih x), with λ = exp(−exp(ν)) "
        "between 0 and 1 per unit and γ = sqrt(1 − λ²) keeping the state's size in check. "
        "Both λ⊙ and γ⊙ read the same trained vector ν. The gradient k steps back is "
        "exactly λ^k times the one at the loss: with λ near 1 it fades very slowly.",
        diagrams.lru_cell,
    ),
    Entry(
        "deep-and-bidirectional",
        "Stacked (deep) LSTM and bidirectional RNN",
        "A stacked LSTM runs a second LSTM on the outputs h of the first; each box here is one "
        "whole LSTM cell at one step, with its own states c and h (layer 1 below, layer 2 "
        "above) and weights tied across time within its layer. A bidirectional RNN runs one chain "
        "forward in time (h) and one backward (h_reverse, red edges pointing left, starting "
        "after the last step) and joins them at every step (⧺ stacks the two vectors), so "
        "each output sees the whole sequence, past and future.",
        diagrams.bidirectional_and_stacked,
    ),
    Entry(
        "bptt",
        "Backpropagation through time, with the numbers",
        "Training runs the unrolled net forward (black edges; the value column holds each "
        "node's numbers for one input sequence) and then backward: the gradient of the loss "
        "L flows along every edge in reverse (dashed blue), and the grad column holds ∂L/∂v "
        "for that copy of the node. Each h adds up the gradient from its own output y and "
        "the gradient arriving from the next step through W_hh, and the gradient of W_hh is "
        "the sum over all four steps. Darker grad cells mean larger gradients.",
        diagrams.bptt_by_hand,
    ),
    Entry(
        "gradient-heat",
        "Vanishing gradients, painted",
        "Three nets over 8 steps with the loss at the last step only, each node painted by "
        "the size of its gradient on one shared scale (legend above each). In the tanh RNN the "
        "colour fades with every step back in time, so the first steps get almost no "
        "training signal. The LSTM at torch's default initialisation fades as well, if more "
        "slowly; with its forget-gate bias set to 3, the cell state c carries the gradient "
        "back to step 1 with little loss.",
        diagrams.gradient_heat,
    ),
    Entry(
        "depth",
        "Depth is time without tied weights: sigmoid, tanh and ReLU in deep nets",
        "A deep feed-forward net is an unrolled recurrent net whose layers do not share "
        "weights, and its gradient fades the same way, layer by layer. Here three nets of 8 "
        "layers of 16 units (weights drawn N(0, 1/16), a loss on the output) are painted by "
        "the size of each layer's gradient on one scale. The sigmoid's slope is at most 1/4, "
        "so its gradient shrinks at every layer, by about four decades from layer 8 down to "
        "layer 1, and the first layers barely learn. ReLU (slope 1 wherever a unit is on) "
        "loses about one decade, tanh (slope up to 1, its units near 0 here) almost none: "
        "why deep nets use ReLU rather than the sigmoid.",
        diagrams.deep_nets,
        side_by_side=True,
    ),
    Entry(
        "depth-and-time",
        "Per layer or per step: one curve for depth and time",
        "`unroll analyze` measures a net without delays layer by layer: here the gradient of "
        "a loss on the output of three MLPs of 20 layers (256 units), against how many layers "
        "below the output it is, and beside them a tanh RNN's gradient against how many steps "
        "before the loss (hidden size 32; median of 10 seeds, bands 10%–90%). Read the "
        "slopes: the sigmoid (slope at most 1/4) loses more than half a decade at every layer "
        "and leaves the first layer some twelve decades below the last; ReLU with He's init "
        "(N(0, 2/n), made for it) keeps the gradient flat across all 20 layers; tanh with "
        "Glorot's init loses only a little (×0.98 per layer). The RNN falls like a deep net "
        "does, because unrolled it is one: 20 layers that share a single W_hh.",
        plots.depth_and_time,
    ),
    Entry(
        "gradient-vs-distance",
        "Gradient norm against distance: RNN, LSTM and GRU",
        "How large the gradient of a loss at the last of 100 steps still is k steps earlier "
        "(hidden size 32; lines: median over 10 random initialisations, bands: 10%–90%). The "
        "tanh RNN loses about half of it per step; the dashed Pascanu bound (γσ_max)^k "
        "guarantees vanishing only when γσ_max < 1. At torch's default initialisation the "
        "forget gate sits near σ(0) = 0.5, and the LSTM vanishes too, like the GRU; with the "
        "forget-gate bias at 3 (f ≈ 0.95) the cell state carries the gradient across all "
        "100 steps.",
        plots.gradient_norms,
    ),
    Entry(
        "all-cells",
        "Eight cells side by side: how far back the gradient reaches",
        "The gradient of a loss at the last of 200 steps, k steps earlier, for every cell "
        "the tool knows (hidden size 32, each at its usual initialisation; median of 10 "
        "seeds). The gated cells (LSTM with and without peepholes, GRU) lose about a third "
        "per step, hardly slower than the tanh RNN: at initialisation their gates sit near "
        "σ(0) = 0.5. minGRU and minLSTM carry h through 1 − z and f/(f + i), also near 0.5, "
        "so they vanish as fast. IndRNN's units each have their own recurrent weight u in "
        "[0, 1): those with u near 1 carry the gradient for dozens of steps, and where a "
        "unit's ReLU is off its path is cut exactly (the cliffs; the axis stops at 10^-60). "
        "The LRU starts its decay λ = exp(−exp(ν)) between 0.9 and 0.999 and scales its "
        "input by √(1 − λ²): its gradient is still near 1/10 after 200 steps. How far back a "
        "cell learns is set by where its carry factor starts, not by gating alone.",
        plots.all_cells,
    ),
    Entry(
        "phase-diagram",
        "Phase diagram: vanishing or exploding, by the size of W_hh",
        "A sweep over the largest singular value σ_max of W_hh (tanh RNN, hidden size 32): "
        "each point is how fast the gradient shrinks (below 0) or grows (above 0) per step. "
        "With zero input the tanh stays in its linear range (slope γ = 1) and the measured "
        "rate lies exactly on the theory line log10(γσ_max): vanishing below γσ_max = 1, "
        "exploding above. With inputs the tanh saturates, its slope falls below 1, and the "
        "border moves to larger weights.",
        plots.phase_diagram,
    ),
    Entry(
        "forget-bias",
        "How far the gradient reaches: the LSTM's forget-gate bias",
        "The same LSTM (hidden size 32, 100 steps) with the forget gate's bias set to 0, 1, "
        "2 and 3, so the gate's typical value σ(bias) is 0.5, 0.73, 0.88 and 0.95. Left: the "
        "gradient on the cell state c against the distance from the loss (dashed: the "
        "product of the forget gates alone); right: how many steps back it stays above 1/1000 "
        "of its value at the loss. This is why LSTMs are usually initialised with a forget "
        "bias of 1 or more (Jozefowicz et al. 2015).",
        plots.forget_bias,
    ),
    Entry(
        "contributions",
        "Which steps a tied weight learns from",
        "The gradient of a shared weight such as W_hh is a sum of one contribution per time "
        "step; this plot shows each step's share of that sum when the loss sits at the last "
        "of 100 steps. In the tanh RNN the first ten steps (grey) together get a share "
        "smaller than 10⁻²⁰: the weight learns only from the last few steps, so the net "
        "cannot learn to use anything older. The LSTM with an open forget gate spreads its "
        "gradient over the whole sequence.",
        plots.step_contributions,
    ),
    Entry(
        "clipping",
        "Exploding gradients and norm clipping",
        "When the recurrent weights are too large (a tanh RNN with σ_max(W_hh) = 3) the "
        "gradient grows with every step back in time (left), and the gradient of a long "
        "sequence is huge: one update would throw the weights far away. Norm clipping "
        "(Pascanu et al. 2013) rescales the whole gradient to length c whenever it is "
        "longer (right): the direction is kept, the step is bounded. It tames exploding "
        "gradients; it does nothing for vanishing ones.",
        plots.clipping,
    ),
    Entry(
        "training",
        "Training on the adding problem: tanh RNN against LSTM",
        "The adding problem (Hochreiter and Schmidhuber 1997): a sequence of random numbers, "
        "two of them marked, and the target is the sum of the marked two, read at the last "
        "step. A net that remembers nothing can do no better than a mean squared error of "
        "1/6 (the dashed baseline). Trained the same way, the LSTM learns the task and the "
        "tanh RNN does not; the right panel shows why: its gradient does not reach back to "
        "the marked numbers.",
        plots.training,
    ),
    Entry(
        "keras-import",
        "A Keras model, imported: its own weights, unrolled",
        "Models written in Keras, the way most tutorials write them, are read by "
        "unroll.from_keras: each LSTM layer becomes the gate-level LSTM cell, a Dense layer "
        "a layer node y. A classifier that answers once (return_sequences=False) has "
        "its Dense head only at the last step (first picture): the gradient enters there "
        "and flows back through both layers. A Bidirectional layer (second) is two cells, "
        "one reading the sequence forward (h, t−1) and one backward (h_reverse, t+1), joined "
        "at every step (here averaged, merge_mode='ave').",
        imported.keras_models,
    ),
    Entry(
        "backward-flow",
        "Watch the gradient flow back in time",
        "Backpropagation through time starts at the loss, at the last step, and works back "
        "one step at a time: each frame paints the copies the gradient has reached by the size "
        "of dL/dv, on a log scale, and the plot beneath marks where the front is. In this tanh "
        "RNN the colour fades as the front goes back: the gradient shrinks at every step. "
        "`unroll animate` makes such a GIF of any model, and `unroll explore` a page where you "
        "can move the front yourself.",
        flow.backward_flow,
    ),
]

#: Every entry by name, in the order the gallery shows them.
ENTRIES: dict[str, Entry] = {entry.name: entry for entry in _ROWS}

#: The diagram rendered as ``hero.png``, the picture for the top of the project's README.
HERO = "gradient_heat_rnn"
