"""Figures for chapter 2 (hand-written; the notebook calls one function per figure).

Each function draws one figure and shows it; it computes nothing the notebook's prose relies on.
"""

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Patch, Rectangle


def annotate_cells(ax, matrix, image, fmt="{:.1f}", fontsize=8):
    """Write each value of ``matrix`` (rows, cols) on its cell of ``image``, in black on light
    cells and in white on dark ones, so every number stays readable."""
    for r in range(matrix.shape[0]):
        for c in range(matrix.shape[1]):
            red, green, blue, _ = image.cmap(image.norm(matrix[r, c]))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # perceived brightness
            text = fmt.format(matrix[r, c] + 0.0)
            ax.text(
                c,
                r,
                text.replace("-", "") if float(text) == 0 else text,  # no "-0.00"
                ha="center",
                va="center",
                fontsize=fontsize,
                color="black" if light else "white",
            )


def plot_similarity(words, vectors):
    """Heatmap of the cosine similarities between the unit-length rows of ``vectors`` (len(words), dim)."""
    similarity = (vectors @ vectors.T).numpy()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(similarity, cmap="Blues", vmin=-0.2, vmax=1)
    annotate_cells(ax, similarity, image, fmt="{:.2f}")
    ax.set_xticks(range(len(words)), words, rotation=45, ha="right")
    ax.set_yticks(range(len(words)), words)
    ax.set_title("Cosine similarity of word vectors")
    fig.colorbar(image, ax=ax, shrink=0.8)
    plt.tight_layout()
    plt.show()


def plot_vocabulary(merge_lengths: dict, sizes, bytes_per_token, gpt2_bytes_per_token):
    """Left: histogram of the byte lengths of learned tokens (label -> lengths). Right: bytes per
    token on held-out text against the vocabulary size, with GPT-2's value as a line."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for label, values in merge_lengths.items():
        left.hist(values, bins=range(2, 18), density=True, alpha=0.6, label=label)
    left.set(xlabel="token length (bytes)", ylabel="share of learned tokens", title="Length of learned tokens")
    left.legend()
    right.plot(sizes, bytes_per_token, marker="o", label="ours (trained on Tiny Shakespeare)")
    right.axhline(gpt2_bytes_per_token, color="gray", linestyle="--", label="GPT-2 (50,257 tokens)")
    right.set(
        xscale="log",
        xlabel="vocabulary size",
        ylabel="bytes per token (held-out text)",
        title="More merges, more compression, diminishing returns",
    )
    right.legend()
    plt.tight_layout()
    plt.show()


def plot_windows(labels, context_length, strides):
    """One panel per stride: the (input, target) windows over the tokens ``labels``."""
    window_starts = {stride: list(range(0, len(labels) - context_length, stride)) for stride in strides}
    fig, axes = plt.subplots(
        len(strides),
        1,
        figsize=(11, 11),
        sharex=True,
        gridspec_kw={"height_ratios": [len(s) + 1 for s in window_starts.values()]},
    )
    for ax, (stride, starts) in zip(axes, window_starts.items()):
        never_input = set(range(len(labels))) - {p for s in starts for p in range(s, s + context_length)}
        for p in never_input:
            ax.axvspan(p, p + 1, color="lightgray")
        for row, s in enumerate(starts):
            ax.add_patch(Rectangle((s, -row + 0.05), context_length, 0.4, color="tab:blue"))
            ax.add_patch(
                Rectangle((s + 1, -row - 0.4), context_length, 0.4, facecolor="none", edgecolor="tab:orange", lw=2)
            )
            ax.text(-0.2, -row, f"window {row}", ha="right", va="center", fontsize=8)
        ax.set(xlim=(-1.8, len(labels)), ylim=(-len(starts) + 0.4, 0.6), yticks=[])
        kind = (
            "windows overlap"
            if stride < context_length
            else "windows tile the text"
            if stride == context_length
            else "gray tokens are never an input"
        )
        ax.set_title(f"stride {stride}: {len(starts)} windows, {kind}", fontsize=10)
    axes[-1].set_xticks(
        [p + 0.5 for p in range(len(labels))],
        [repr(t) for t in labels],
        rotation=45,
        ha="right",
        rotation_mode="anchor",
    )
    fig.legend(
        handles=[
            Patch(color="tab:blue", label=f"inputs ({context_length} tokens)"),
            Patch(facecolor="none", edgecolor="tab:orange", label="targets (shifted by one)"),
            Patch(color="lightgray", label="never an input"),
        ],
        loc="upper center",
        ncol=3,
    )
    plt.tight_layout(rect=(0, 0, 1, 0.96))
    plt.show()


def plot_one_hot_product(one_hot, weight, embeddings, ids):
    """The three matrices of ``one_hot @ weight = embeddings``, side by side, values written on the cells."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3), gridspec_kw={"width_ratios": [6, 3, 3]})
    panels = [
        (one_hot, f"one-hot ids ({one_hot.shape[0]} x {one_hot.shape[1]})"),
        (weight, f"× weight W ({weight.shape[0]} x {weight.shape[1]})"),
        (embeddings, f"= embeddings ({embeddings.shape[0]} x {embeddings.shape[1]})"),
    ]
    for ax, (matrix, title) in zip(axes, panels):
        matrix = torch.as_tensor(matrix).detach()
        image = ax.imshow(matrix, cmap="coolwarm", vmin=-2, vmax=2)
        annotate_cells(ax, matrix.numpy(), image)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_yticks(range(len(ids)), [f"id {i}" for i in ids])
    axes[1].set_yticks(range(weight.shape[0]), [f"row {i}" for i in range(weight.shape[0])])
    plt.tight_layout()
    plt.show()
