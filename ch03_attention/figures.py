"""Figures and code displays for chapter 3 (used by attention.ipynb).

Drawing code lives here so that a notebook cell shows one call. Every function draws
on a new figure (or on the axes it is given) and leaves ``plt.show()`` to the cell.
"""

import ast
import difflib
import inspect
import textwrap

import matplotlib.pyplot as plt
from matplotlib.colors import Normalize


def plot_bottleneck_vs_attention(illustrative_weights=(0.1, 0.75, 0.1, 0.05)):
    """Two decoders writing the German word "Reise": from the last encoder state alone
    (left), or from a weighted look at every source word (right).

    The right panel's weights are made up for the picture, not computed by a model.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 3))
    _draw_seq2seq(axes[0], "RNN encoder-decoder: a bottleneck")
    _draw_seq2seq(axes[1], "with attention (illustrative weights, made up for the picture)", illustrative_weights)
    fig.tight_layout()
    return fig


def _draw_seq2seq(ax, title, weights=None):
    # Encoder (bottom) reads the source; decoder (top) writes the translation.
    source, target = ["Your", "journey", "starts", "here"], ["Deine", "Reise", "beginnt", "hier"]
    for i, (src, tgt) in enumerate(zip(source, target)):
        ax.text(i, 0, src, ha="center", va="center", bbox=dict(boxstyle="round", fc="#dbe9f6"))
        ax.text(i, 2, tgt, ha="center", va="center", bbox=dict(boxstyle="round", fc="#fde2c8"))
    for i in range(len(source) - 1):
        for y in (0, 2):
            ax.annotate("", xy=(i + 0.62, y), xytext=(i + 0.38, y), arrowprops=dict(arrowstyle="->"))
    if weights is None:
        ax.annotate("", xy=(1, 1.75), xytext=(3, 0.25), arrowprops=dict(arrowstyle="->", lw=2.5, color="crimson"))
        ax.text(2.1, 1.0, "only the last state:\none fixed-size vector", color="crimson", fontsize=9)
    else:
        for i, w in enumerate(weights):
            ax.annotate(
                "",
                xy=(1, 1.75),
                xytext=(i, 0.25),
                arrowprops=dict(arrowstyle="->", lw=1 + 7 * w, color="crimson", alpha=0.3 + 0.7 * w),
            )
            ax.text(i + 0.08, 0.45, f"{w:.2f}", color="crimson", fontsize=9)
    ax.set_xlim(-0.7, 3.7)
    ax.set_ylim(-0.5, 2.5)
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def text_colour(rgba):
    """Black on light backgrounds, white on dark ones (by the colour's relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def plot_attention(weights, labels, title, ax=None):
    """Heatmap of attention weights (num_queries, num_keys), one row per query, each cell labelled."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    weights = weights.detach().cpu()
    cmap, norm = plt.get_cmap("Blues"), Normalize(vmin=0, vmax=max(float(weights.max()), 1e-6))
    ax.imshow(weights, cmap=cmap, norm=norm)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    ax.set_title(title, fontsize=10)
    for i in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            value = float(weights[i, j])
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=text_colour(cmap(norm(value))))
    ax.figure.tight_layout()
    return ax


def plot_attention_heads(weights, labels):
    """One heatmap per head, side by side: weights (num_heads, num_queries, num_keys)."""
    num_heads = weights.shape[0]
    fig, axes = plt.subplots(1, num_heads, figsize=(3.75 * num_heads, 3.8))
    for head, ax in enumerate(axes):
        plot_attention(weights[head], labels, f"head {head}", ax=ax)
    return fig


def plot_softmax_sharpness(unscaled, scaled):
    """Bar charts of one query's attention weights without and with the 1/sqrt(d_k) scaling."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), sharey=True)
    axes[0].bar(range(len(unscaled)), unscaled)
    axes[0].set_title("softmax(q.k): nearly one-hot", fontsize=10)
    axes[1].bar(range(len(scaled)), scaled, color="tab:orange")
    axes[1].set_title("softmax(q.k / sqrt(d_k)): spread out", fontsize=10)
    for ax in axes:
        ax.set_xlabel("key")
    axes[0].set_ylabel("attention weight")
    fig.tight_layout()
    return fig


def _method_lines(function):
    """Source lines of a method, dedented, without its docstring."""
    source = textwrap.dedent(inspect.getsource(function))
    body = ast.parse(source).body[0].body
    lines = source.splitlines()
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        del lines[body[0].lineno - 1 : body[0].end_lineno]
    return lines


def code_diff(old_class, new_class, context=1):
    """What ``new_class`` adds to ``old_class``, method by method, as diff lines.

    Lines are matched ignoring indentation, so code that only moved into a new block counts
    as unchanged. Returned lines start with "+ " (added), "- " (removed) or "  " (context);
    docstrings are left out.
    """
    out = []
    methods = [name for name, value in vars(new_class).items() if inspect.isfunction(value)]
    methods += [name for name, value in vars(old_class).items() if inspect.isfunction(value) and name not in methods]
    for name in methods:
        old = _method_lines(vars(old_class)[name]) if name in vars(old_class) else []
        new = _method_lines(vars(new_class)[name]) if name in vars(new_class) else []
        matcher = difflib.SequenceMatcher(
            a=[line.strip() for line in old], b=[line.strip() for line in new], autojunk=False
        )
        if matcher.ratio() == 1.0 and len(old) == len(new):
            continue
        out.append(f"@@ {name} @@")
        for group in matcher.get_grouped_opcodes(context):
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    out += [f"  {line}".rstrip() for line in new[j1:j2]]
                    continue
                out += [f"- {line}".rstrip() for line in old[i1:i2]]
                out += [f"+ {line}".rstrip() for line in new[j1:j2]]
            if group[-1][4] < len(new):  # more lines follow, unchanged
                out.append("  ...")
    return out


def print_code_diff(old_class, new_class):
    """Print ``code_diff(old_class, new_class)``."""
    print("\n".join(code_diff(old_class, new_class)))
