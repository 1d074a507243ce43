"""Figures and code displays for chapter 4 (hand-written, imported by gpt_model.ipynb).

Each function draws or prints one thing, so a notebook cell shows a single call.
"""

import difflib
import inspect
import textwrap

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# One colour per kind of part, used in the architecture diagram.
COLOURS = {
    "data": "#f2f2f2",
    "embedding": "#cfe2f3",
    "norm": "#fff2cc",
    "attention": "#f4cccc",
    "feed_forward": "#d9ead3",
    "dropout": "#eeeeee",
    "head": "#d9d2e9",
    "block": "#fbfbfb",
}


def _box(ax, x, y, width, height, text, colour, fontsize=9):
    """A rounded box centred at (x, y) with a centred label."""
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colour,
            edgecolor="#444444",
            linewidth=1,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, style="-|>", connection="arc3"):
    """An arrow (or, with ``style="-"``, a plain line) from ``start`` to ``end``."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=12,
            color="#333333",
            linewidth=1.2,
            connectionstyle=connection,
            shrinkA=0,
            shrinkB=0,
        )
    )


def _plus(ax, x, y):
    """The circle where a shortcut is added back: x + branch(x)."""
    ax.plot(x, y, "o", markersize=15, markerfacecolor="white", markeredgecolor="#333333", zorder=3)
    ax.text(x, y, "+", ha="center", va="center", fontsize=11, zorder=4)


def draw_gpt_architecture(vocab_size=50_257, context_length=1_024, emb_dim=768, n_heads=12, n_layers=12):
    """Draw GPT's data flow, top to bottom, with the tensor shape at each stage (GPT-2 small's sizes by default).

    Token ids -> token + position embeddings -> dropout -> a transformer block repeated
    ``n_layers`` times (pre-LayerNorm attention and feed-forward, each wrapped in a
    shortcut) -> final LayerNorm -> output head -> logits. Returns the figure.
    """
    fig, ax = plt.subplots(figsize=(8.5, 9.5))
    ax.set_xlim(0, 10)
    ax.set_ylim(2.4, 21)
    ax.axis("off")
    cx, w, h = 4.2, 3.6, 0.62  # centre column, box width and height
    shape = dict(ha="left", va="center", fontsize=8.5, family="monospace", color="#555555")
    d, v = emb_dim, vocab_size

    _box(ax, cx - 1.0, 20.3, 1.9, h, "token ids", COLOURS["data"], fontsize=8.5)
    _box(ax, cx + 1.1, 20.3, 1.9, h, "positions\n0, 1, ..., T-1", COLOURS["data"], fontsize=8)
    ax.text(7.1, 20.3, "(batch, T)", **shape)
    _box(ax, cx - 1.0, 19.0, 1.9, h, "token\nembedding", COLOURS["embedding"], fontsize=8)
    _box(ax, cx + 1.1, 19.0, 1.9, h, "position\nembedding", COLOURS["embedding"], fontsize=8)
    ax.text(7.1, 19.0, f"{v:,} × {d} and\n{context_length:,} × {d} tables", **shape)
    _arrow(ax, (cx - 1.0, 20.0), (cx - 1.0, 19.33))
    _arrow(ax, (cx + 1.1, 20.0), (cx + 1.1, 19.33))
    _plus(ax, cx, 18.0)
    _arrow(ax, (cx - 1.0, 18.68), (cx - 0.12, 18.1), connection="arc3,rad=0.2")
    _arrow(ax, (cx + 1.1, 18.68), (cx + 0.12, 18.1), connection="arc3,rad=-0.2")
    _box(ax, cx, 17.1, w, 0.5, "dropout", COLOURS["dropout"], fontsize=8)
    _arrow(ax, (cx, 17.8), (cx, 17.36))
    ax.text(7.1, 17.1, f"(batch, T, {d})", **shape)

    # The transformer block, drawn once and labelled with how often it repeats.
    top, bottom = 16.4, 6.3
    ax.add_patch(
        FancyBboxPatch(
            (0.9, bottom),
            6.3,
            top - bottom,
            boxstyle="round,pad=0.05,rounding_size=0.2",
            facecolor=COLOURS["block"],
            edgecolor="#777777",
            linewidth=1.4,
            linestyle="--",
        )
    )
    ax.text(1.1, top - 0.25, f"transformer block  × {n_layers}", fontsize=10, weight="bold", va="top")
    _arrow(ax, (cx, 16.84), (cx, 15.3))
    halves = [  # the stages of each half of the block, top to bottom: (y, label, colour)
        [
            (14.9, "LayerNorm 1", COLOURS["norm"]),
            (13.9, f"masked multi-head attention\n({n_heads} heads)", COLOURS["attention"]),
            (12.9, "dropout", COLOURS["dropout"]),
        ],
        [
            (10.9, "LayerNorm 2", COLOURS["norm"]),
            (9.5, f"feed forward\nLinear {d}→{4 * d}, GELU, Linear {4 * d}→{d}", COLOURS["feed_forward"]),
            (8.1, "dropout", COLOURS["dropout"]),
        ],
    ]
    height = {label: 0.78 if "\n" in label else 0.5 for half in halves for _, label, _ in half}
    for half in halves:
        for y, label, colour in half:
            _box(ax, cx, y, w, height[label], label, colour, fontsize=8.5)
        for (y1, above, _), (y2, below, _) in zip(half, half[1:]):
            _arrow(ax, (cx, y1 - height[above] / 2), (cx, y2 + height[below] / 2))
    # Two shortcuts: the block's input skips each half and is added back.
    for branch_from, branch_to, plus_y, label in [
        (15.45, 12.65, 11.9, "tokens mix"),
        (11.5, 7.85, 6.9, "each token alone"),
    ]:
        _plus(ax, cx, plus_y)
        _arrow(ax, (cx, branch_to), (cx, plus_y + 0.2))
        _arrow(ax, (cx, branch_from), (1.6, branch_from), style="-")
        _arrow(ax, (1.6, branch_from), (1.6, plus_y), style="-")
        _arrow(ax, (1.6, plus_y), (cx - 0.12, plus_y))
        ax.text(
            1.5,
            (branch_from + plus_y) / 2,
            "shortcut",
            rotation=90,
            ha="right",
            va="center",
            fontsize=8,
            color="#555555",
        )
        ax.text(
            6.15,
            (branch_from + branch_to) / 2,
            label,
            rotation=90,
            ha="center",
            va="center",
            fontsize=8,
            style="italic",
            color="#555555",
        )
    _arrow(ax, (cx, 11.74), (cx, 11.15))
    ax.text(7.5, 10.9, f"every stage keeps\n(batch, T, {d})", **shape)
    _arrow(ax, (cx, 6.74), (cx, 5.75))

    _box(ax, cx, 5.45, w, 0.6, "final LayerNorm", COLOURS["norm"])
    _arrow(ax, (cx, 5.15), (cx, 4.6))
    _box(ax, cx, 4.3, w, 0.6, f"output head\nLinear {d} → {v:,}", COLOURS["head"], fontsize=8.5)
    ax.text(7.1, 4.3, "no bias; GPT-2 ties it\nto the token embedding", **shape)
    _arrow(ax, (cx, 4.0), (cx, 3.45))
    _box(ax, cx, 3.15, w, 0.6, "logits", COLOURS["data"])
    ax.text(7.1, 3.15, f"(batch, T, {v:,})", **shape)
    ax.set_title("GPT: token ids in, one score per vocabulary entry out, at every position", fontsize=10)
    fig.tight_layout()
    return fig


def plot_activations(activations, xs):
    """Plot each activation function ``{title: fn}`` over ``xs`` side by side; returns the figure."""
    fig, axes = plt.subplots(1, len(activations), figsize=(4.5 * len(activations), 3))
    for ax, (title, fn) in zip(axes, activations.items()):
        ax.plot(xs, fn(xs))
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set(title=title, xlabel="x", ylabel="activation")
    fig.tight_layout()
    return fig


def plot_gradients_per_layer(grads):
    """Mean |gradient| per layer on a log scale, one line per ``{label: [value per layer]}``."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (label, values), marker in zip(grads.items(), "os^v"):
        ax.semilogy(range(1, len(values) + 1), values, marker + "-", label=label)
    ax.set(xlabel="layer (1 = closest to the input)", ylabel="mean |gradient| (log scale)")
    ax.legend()
    fig.tight_layout()
    return fig


def show_diff(simple, full):
    """Print the lines that turn function ``simple`` into ``full``: a unified diff of their source.

    Lines starting with ``+`` are added, ``-`` removed, the others are shared by both.
    """
    lines = [textwrap.dedent(inspect.getsource(fn)).splitlines() for fn in (simple, full)]
    diff = difflib.unified_diff(*lines, lineterm="", n=max(map(len, lines)))
    print("\n".join(line.rstrip() for line in diff if not line.startswith(("---", "+++", "@@"))))
