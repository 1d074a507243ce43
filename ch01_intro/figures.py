"""The figures of chapter 1 (used by intro.ipynb), so that a notebook cell shows one call.

Each function draws one figure and shows it. The diagrams are drawn with matplotlib
patches in data coordinates; nothing here computes a result the text relies on.
"""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

DARK = "#1f4e79"
LIGHT, MID, DEEP = "#dbe9f6", "#8fbfe0", "#5b9bd0"
GREEN, ORANGE, GREY = "#d9ead3", "#fde9c9", "#eeeeee"


def draw_box(ax, x, y, text, colour, width=2.6, height=0.9, fontsize=9):
    """A rounded box centred on (x, y) with centred text."""
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05", facecolor=colour, edgecolor=DARK
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def draw_arrow(ax, start, end, colour=DARK):
    """An arrow from ``start`` to ``end`` (both (x, y))."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=colour))


def _diagram(figsize, xlim, ylim):
    """A figure with one axis-free axes for a diagram."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_axis_off()
    return ax


def nested_fields():
    """AI ⊃ ML ⊃ DL ⊃ LLMs as nested rounded boxes, each with examples."""
    ax = _diagram((7, 4.5), (-0.3, 10.3), (-0.3, 6.7))
    fields = [
        ("Artificial intelligence", "rules, search, planning, ...", LIGHT),
        ("Machine learning", "logistic regression, decision trees, ...", "#b9d6ee"),
        ("Deep learning", "CNNs for images, RNNs, transformers, ...", MID),
        ("Large language models", "GPT-3, Llama, the GPT of this course", DEEP),
    ]
    for depth, (label, examples, colour) in enumerate(fields):
        inset = 0.6 * depth
        width, height = 10 - 2 * inset, 6.4 - 1.5 * depth
        ax.add_patch(
            FancyBboxPatch((inset, inset), width, height, boxstyle="round,pad=0.1", facecolor=colour, edgecolor=DARK)
        )
        top = inset + height
        ax.text(5, top - 0.35, label, ha="center", va="top", fontsize=12, fontweight="bold")
        ax.text(5, top - 0.8, examples, ha="center", va="top", fontsize=9, style="italic")
    ax.set_title("Each field contains the next: AI ⊃ ML ⊃ DL ⊃ LLMs")
    plt.show()


def spam_accuracies(results):
    """Horizontal bars of ``results["test accuracy"]`` (a DataFrame indexed by approach)."""
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh(results.index, results["test accuracy"], color=["#bbbbbb", MID, DARK])
    for y, acc in enumerate(results["test accuracy"]):
        ax.text(acc + 0.002, y, f"{acc:.1%}", va="center")
    ax.set_xlim(0.8, 1.0)
    ax.set_xlabel("accuracy on held-out messages")
    ax.invert_yaxis()
    plt.show()


def training_stages():
    """Raw text -> pretraining -> foundation model -> two kinds of fine-tuning."""
    ax = _diagram((10, 3.4), (0, 10.6), (0, 4))
    draw_box(ax, 1.4, 2, "raw text\n(billions of tokens,\nno labels)", GREY)
    draw_box(ax, 5.0, 2, "pretrained\nfoundation model", MID)
    draw_box(ax, 9.2, 3.2, "assistant\n(instruction fine-tuning)", GREEN)
    draw_box(ax, 9.2, 0.8, "spam classifier\n(classification fine-tuning)", ORANGE)
    draw_arrow(ax, (2.8, 2), (3.6, 2))
    ax.text(3.2, 2.15, "pretraining", ha="center", va="bottom", fontsize=9, style="italic")
    draw_arrow(ax, (6.4, 2.2), (7.8, 3.1))
    draw_arrow(ax, (6.4, 1.8), (7.8, 0.9))
    ax.text(6.9, 2.95, "fine-tuning on\ninstruction data", ha="center", va="bottom", fontsize=8)
    ax.text(6.9, 1.05, "fine-tuning on\nlabelled texts", ha="center", va="top", fontsize=8)
    plt.show()


def _tower_base(ax, x, text, frame_height):
    """The foot of an encoder or decoder tower centred at ``x``: its text, the embeddings, and the
    dashed frame around the N repeated layers."""
    draw_box(ax, x, 0.6, text, GREY, width=3.2, height=0.6)
    draw_box(ax, x, 1.7, "token embeddings + positions", LIGHT, width=3.2, height=0.6)
    ax.add_patch(
        FancyBboxPatch(
            (x - 1.7, 2.5),
            3.4,
            frame_height,
            boxstyle="round,pad=0.08",
            facecolor="none",
            edgecolor=DARK,
            linestyle="--",
        )
    )


def encoder_decoder():
    """The original transformer (Vaswani et al., 2017) translating English to German.

    Left: the encoder reads the whole input sentence. Right: the decoder writes the
    translation one word at a time, looking at its own output so far and, through
    cross-attention, at the encoder's vectors. BERT keeps the left half, GPT the right half
    without cross-attention.
    """
    ax = _diagram((10, 6.2), (0, 10), (0, 8.4))
    # encoder, bottom to top
    _tower_base(ax, 2.5, "input: “the cat sat”", frame_height=2.6)
    draw_box(ax, 2.5, 3.2, "self-attention\n(every word sees every word)", MID, width=3.0, height=0.8)
    draw_box(ax, 2.5, 4.4, "feed-forward", MID, width=3.0, height=0.6)
    ax.text(4.35, 3.8, "× N", fontsize=11, fontweight="bold", va="center")
    draw_box(ax, 2.5, 6.0, "one vector per input word\n(the encoded input)", LIGHT, width=3.2, height=0.8)
    for y0, y1 in [(0.9, 1.4), (2.0, 2.8), (3.6, 4.1), (4.7, 5.6)]:
        draw_arrow(ax, (2.5, y0), (2.5, y1))
    ax.text(2.5, 7.0, "ENCODER", ha="center", fontsize=12, fontweight="bold")
    ax.text(2.5, 6.6, "BERT keeps only this half", ha="center", fontsize=9, style="italic")
    # decoder, bottom to top
    _tower_base(ax, 7.5, "output so far: “die Katze”", frame_height=3.6)
    draw_box(ax, 7.5, 3.0, "masked self-attention\n(each word sees only earlier ones)", MID, width=3.0, height=0.8)
    draw_box(ax, 7.5, 4.25, "cross-attention\n(looks at the encoded input)", ORANGE, width=3.0, height=0.8)
    draw_box(ax, 7.5, 5.4, "feed-forward", MID, width=3.0, height=0.6)
    ax.text(9.35, 4.3, "× N", fontsize=11, fontweight="bold", va="center")
    draw_box(ax, 7.5, 6.8, "next word: “saß”", GREEN, width=3.2, height=0.6)
    for y0, y1 in [(0.9, 1.4), (2.0, 2.6), (3.4, 3.85), (4.65, 5.1), (5.7, 6.5)]:
        draw_arrow(ax, (7.5, y0), (7.5, y1))
    ax.text(7.5, 7.9, "DECODER", ha="center", fontsize=12, fontweight="bold")
    ax.text(7.5, 7.5, "GPT keeps only this half (without cross-attention)", ha="center", fontsize=9, style="italic")
    draw_arrow(ax, (4.1, 6.0), (6.0, 4.4), colour="#c55a11")
    draw_arrow(ax, (9.1, 6.8), (9.6, 6.8))
    ax.text(9.7, 6.8, "append,\nrepeat", fontsize=8, va="center")
    plt.show()


def model_sizes(sizes):
    """Computed parameter counts (bars) against the published sizes (red marks), log scale.

    ``sizes``: a DataFrame indexed by model name with columns "computed" and "published".
    """
    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = [MID if name.startswith("GPT-2") else DARK for name in sizes.index]
    ax.barh(sizes.index, sizes["computed"], color=colours)
    ax.scatter(sizes["published"], sizes.index, marker="|", s=200, color="#d62728", label="published size", zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.invert_yaxis()
    ax.legend(loc="upper right")
    ax.set_title("Computed parameter counts of the GPT-2 and GPT-3 families")
    plt.show()


def exact_match_curve(model_scale, per_token, answer_length):
    """Per-token accuracy and the exact-match accuracy of an ``answer_length``-token answer."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.plot(model_scale, per_token, label="per-token accuracy (improves smoothly)")
    ax.plot(model_scale, per_token**answer_length, label=f"exact match of a {answer_length}-token answer")
    ax.set_xscale("log")
    ax.set_xlabel("model size (parameters, toy)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    plt.show()


def training_mix(mix):
    """Tokens available and tokens used in training, per source of ``mix`` (a DataFrame)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    y = range(len(mix))
    ax.barh([i - 0.2 for i in y], mix["tokens"] / 1e9, height=0.4, label="tokens available", color=MID)
    ax.barh(
        [i + 0.2 for i in y],
        mix["tokens used in training"] / 1e9,
        height=0.4,
        label="tokens used in training",
        color=DARK,
    )
    ax.set_yticks(list(y), mix.index)
    ax.set_xlabel("billions of tokens")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    plt.show()


def course_plan():
    """The three stages of the course and the chapters in each."""
    stages = [
        ("Stage 1: build", LIGHT, ["ch02  tokens and embeddings", "ch03  attention", "ch04  GPT architecture"]),
        (
            "Stage 2: pretrain",
            MID,
            ["ch05  training loop, pretraining,", "loading GPT-2 weights", "→ a foundation model"],
        ),
        ("Stage 3: fine-tune", GREEN, ["ch06  spam classifier", "ch07  assistant that follows", "instructions"]),
    ]
    ax = _diagram((10, 3.2), (0, 10), (0.6, 3.6))
    for i, (title, colour, chapters) in enumerate(stages):
        x = 1.7 + 3.3 * i
        ax.text(x, 3.3, title, ha="center", fontsize=11, fontweight="bold")
        draw_box(ax, x, 1.8, "\n".join(chapters), colour, width=2.9, height=2.0)
        if i:
            draw_arrow(ax, (x - 1.8, 1.8), (x - 1.5, 1.8))
    plt.show()
