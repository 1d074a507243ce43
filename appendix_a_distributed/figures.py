"""The appendix's figures: how a global batch is split among ranks, how gradients are averaged."""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Rectangle

RANK_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52"]


def _box(ax, x, y, w, h, text, color, text_color="white", size=10):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black", linewidth=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", color=text_color, fontsize=size)


def plot_batch_split(permutation, global_batch, world_size):
    """One optimizer step of data parallelism: the step's slice of the epoch's permutation
    (``global_batch`` example ids) dealt out round-robin, each rank's model copy taking its share.

    permutation: the epoch's shuffled example ids (at least ``global_batch`` of them).
    """
    if global_batch % world_size:
        raise ValueError(f"global_batch ({global_batch}) must be a multiple of world_size ({world_size})")
    per_rank = global_batch // world_size
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.text(-0.2, 3.05, "global batch of step 1\n(this epoch's shuffle)", ha="right", va="center", fontsize=9)
    for i, example in enumerate(permutation[:global_batch]):
        _box(ax, i, 2.6, 0.9, 0.9, str(example), RANK_COLORS[i % world_size % len(RANK_COLORS)])
    width = global_batch / world_size
    for rank in range(world_size):
        x0 = rank * width
        color = RANK_COLORS[rank % len(RANK_COLORS)]
        ax.add_patch(Rectangle((x0 + 0.1, 0), width - 0.3, 1.7, facecolor="#f4f4f4", edgecolor=color, linewidth=2))
        ax.text(x0 + width / 2 - 0.05, 1.45, f"rank {rank}: model copy + optimizer", ha="center", fontsize=9)
        share = permutation[rank:global_batch:world_size]
        for j, example in enumerate(share):
            _box(ax, x0 + 0.3 + j * (width - 0.6) / per_rank, 0.25, 0.8, 0.8, str(example), color)
        for i in range(rank, global_batch, world_size):
            ax.add_patch(
                FancyArrowPatch(
                    (i + 0.45, 2.6),
                    (x0 + width / 2 - 0.05, 1.7),
                    arrowstyle="->",
                    mutation_scale=10,
                    color=color,
                    linewidth=0.8,
                )
            )
    ax.set_xlim(-3.2, global_batch + 0.2)
    ax.set_ylim(-0.2, 3.7)
    ax.set_axis_off()
    ax.set_title(f"{world_size} ranks, global batch {global_batch}: each rank gets {per_rank} examples per step")
    fig.tight_layout()
    return fig


def plot_gradient_averaging(rank_grads, averaged):
    """Each rank's gradient of its own loss (left) and what the all-reduce leaves on every rank.

    rank_grads: one 1-D sequence per rank (the same few entries of each rank's gradient);
    averaged: their element-wise mean, the gradient every rank's optimizer then uses.
    """
    entries = range(len(averaged))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    width = 0.8 / len(rank_grads)

    def bars(ax, per_rank, **style):
        """One group of bars per gradient entry, one bar per rank, side by side."""
        for rank, values in enumerate(per_rank):
            color = RANK_COLORS[rank % len(RANK_COLORS)]
            ax.bar([e + rank * width for e in entries], list(values), width, label=f"rank {rank}", color=color, **style)

    bars(axes[0], rank_grads)
    axes[0].set_title("before: each rank's gradient\n(its own examples)")
    bars(axes[1], [averaged] * len(rank_grads), hatch="//", edgecolor="white")
    axes[1].set_title("after all-reduce (sum, then / world size):\nthe same average on every rank")
    for ax in axes:
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks([e + 0.4 - width / 2 for e in entries], [f"w[{e}]" for e in entries])
        ax.legend(fontsize=8)
    axes[0].set_ylabel("gradient")
    fig.tight_layout()
    return fig
