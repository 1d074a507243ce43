"""Self-checks for the chapter 3 exercises (used by attention.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check never
raises on a wrong answer: it type-checks what it gets, calls the reader's code only through
``call_safely``, and explains, so the reader can try again.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared.exercises import call_answer, call_safely, is_integer, names_used, not_a_function, not_answered

NOT_A_TENSOR = "Expected a torch tensor, got {}."
RETURNED_NONE = "Not answered yet: your function returned None."


def _is_bool_mask(mask, shape):
    """True if ``mask`` is a bool tensor of ``shape``; otherwise print what it is and return False."""
    if not isinstance(mask, torch.Tensor):
        print(NOT_A_TENSOR.format(type(mask).__name__))
        return False
    if mask.dtype != torch.bool or tuple(mask.shape) != shape:
        print(f"Expected a bool tensor of shape {shape}, got {mask.dtype} {tuple(mask.shape)}.")
        return False
    return True


# --- Exercise 1 ---------------------------------------------------------------------------


def check_exercise_1(weights, inputs):
    """Attention weights of the query "step" (row 5 of ``inputs``) in simplified self-attention."""
    if not_answered(weights):
        return
    if not isinstance(weights, torch.Tensor):
        print(NOT_A_TENSOR.format(type(weights).__name__))
        return
    if not isinstance(inputs, torch.Tensor) or tuple(inputs.shape) != (6, 3):
        print("Pass the chapter's toy embeddings `inputs` (a (6, 3) tensor) as the second argument.")
        return
    if tuple(weights.shape) != (6,):
        print(f"Expected 6 weights (one per word), got shape {tuple(weights.shape)}.")
        return
    weights, inputs = weights.detach().float(), inputs.detach().float()
    scores = inputs @ inputs[5]
    expected = torch.softmax(scores, dim=0)
    all_weights = torch.softmax(inputs @ inputs.T, dim=-1)
    if torch.allclose(weights, scores, atol=1e-4):
        print("These are the raw scores: normalise them with a softmax.")
    elif abs(weights.sum().item() - 1) > 1e-4:
        print(f"The weights should sum to 1, yours sum to {weights.sum().item():.4f}.")
    elif torch.allclose(weights, expected, atol=1e-4):
        print("Correct!")
    elif any(torch.allclose(weights, row, atol=1e-4) for row in all_weights[:5]):
        print("These are the weights of another query: use the embedding of 'step' (index 5).")
    else:
        print("Not quite: score each word with a dot product against the embedding of 'step' (index 5), then softmax.")


# --- Exercise 2 ---------------------------------------------------------------------------


class _Projections(nn.Module):
    """The four linear maps of a multi-head attention layer, and nothing else: no forward pass, no mask."""

    def __init__(self, d_in, d_out, num_heads, qkv_bias):
        super().__init__()
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)

    def forward(self, *args, **kwargs):
        raise RuntimeError(
            "calling the layer is the shortcut this exercise forbids: compute the forward "
            "pass yourself from layer.W_query, W_key, W_value and out_proj"
        )


def _attention(layer, x, scale=True, causal=True, project=True, transpose_heads=True, sqrt=True):
    """Causal multi-head attention from ``layer``'s maps; the flags build the typical mistakes."""
    b, T, _ = x.shape
    heads, head_dim = layer.num_heads, layer.head_dim

    def split(t):  # (b, T, d_out) -> (b, heads, T, head_dim)
        if transpose_heads:
            return t.view(b, T, heads, head_dim).transpose(1, 2)
        return t.view(b, heads, T, head_dim)  # the shape is right, the grouping is wrong

    q, k, v = split(layer.W_query(x)), split(layer.W_key(x)), split(layer.W_value(x))
    scores = q @ k.transpose(2, 3)  # (b, heads, T, T)
    if causal:
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), float("-inf"))
    if scale:
        scores = scores / (head_dim**0.5 if sqrt else head_dim)
    context = torch.softmax(scores, dim=-1) @ v  # (b, heads, T, head_dim)
    context = context.transpose(1, 2).reshape(b, T, layer.d_out) if transpose_heads else context.reshape(b, T, -1)
    return layer.out_proj(context) if project else context


_MISTAKES = [
    (dict(scale=False), "the scores are not scaled: divide them by sqrt(head_dim) before the softmax."),
    (dict(sqrt=False), "the scores are divided by head_dim: divide by sqrt(head_dim) instead."),
    (dict(causal=False), "the future is not masked: set the scores above the diagonal to -inf before the softmax."),
    (dict(project=False), "the output projection is missing: finish with layer.out_proj."),
    (dict(transpose_heads=False), "the heads are split wrongly: view (b, T, heads, head_dim), then transpose(1, 2)."),
]

_FORBIDDEN = {  # function name -> where it lives; a call to any of them is the shortcut
    "scaled_dot_product_attention": (F, torch._C._nn),
    "multi_head_attention_forward": (F,),
    "_native_multi_head_attention": (torch,),  # nn.MultiheadAttention's fast path in eval mode
}


def _call_recording_forbidden(fn, *args):
    """``call_answer(fn, *args)``, plus the names of the forbidden PyTorch functions it called."""
    used, originals = [], []
    for name, homes in _FORBIDDEN.items():
        for home in homes:
            original = getattr(home, name, None)
            if original is None:
                continue

            def recording(*a, _name=name, _original=original, **kw):
                used.append(_name)
                return _original(*a, **kw)

            originals.append((home, name, original))
            setattr(home, name, recording)
    try:
        ok, result = call_answer(fn, *args, message=RETURNED_NONE)
    finally:
        for home, name, original in originals:
            setattr(home, name, original)
    return ok, result, sorted(set(used))


def check_exercise_2(attention_forward):
    """``attention_forward(layer, x)``: causal multi-head attention written out, without shortcuts."""
    if not_a_function(attention_forward, "attention_forward(layer, x)"):
        return
    cases = [(3, 4, 2, 2, 6, False), (16, 12, 3, 2, 7, True), (8, 8, 1, 1, 5, False), (10, 12, 4, 3, 1, True)]
    for seed, (d_in, d_out, num_heads, batch, num_tokens, qkv_bias) in enumerate(cases):
        torch.manual_seed(seed)
        layer = _Projections(d_in, d_out, num_heads, qkv_bias)
        x = torch.randn(batch, num_tokens, d_in)
        with torch.no_grad():
            ok, got, used = _call_recording_forbidden(attention_forward, layer, x)
            if not ok:
                return
            if used:
                print(
                    f"Your function calls {', '.join(used)}: that is the shortcut this exercise forbids. "
                    "Write the scores, mask, softmax and weighted sum yourself."
                )
                return
            if not isinstance(got, torch.Tensor):
                print(NOT_A_TENSOR.format(type(got).__name__))
                return
            where = f"for d_in={d_in}, d_out={d_out}, num_heads={num_heads}, x of shape {tuple(x.shape)}"
            if tuple(got.shape) != (batch, num_tokens, d_out):
                print(f"Wrong output shape {where}: expected {(batch, num_tokens, d_out)}, got {tuple(got.shape)}.")
                return
            if torch.allclose(got.float(), _attention(layer, x), atol=1e-5, rtol=0):
                continue
            for flags, hint in _MISTAKES:
                variant = _attention(layer, x, **flags)
                if variant.shape == got.shape and torch.allclose(got.float(), variant, atol=1e-5, rtol=0):
                    print(f"Not quite {where}: {hint}")
                    return
            print(f"Not quite {where}: compare your steps with the minimal MultiHeadAttention of section 3.6.2.")
            return
    print("Correct!")


# --- Exercise 3 ---------------------------------------------------------------------------


def check_exercise_3(wrapper_2d, head_width, batch):
    """Book exercise 3.2: a two-head ``MultiHeadAttentionWrapper`` whose outputs are two-dimensional."""
    if not_answered(wrapper_2d) or not_answered(head_width):
        return
    heads = getattr(wrapper_2d, "heads", None)
    if not isinstance(wrapper_2d, nn.Module) or not isinstance(heads, nn.ModuleList):
        print(
            f"Expected a MultiHeadAttentionWrapper (a module with a list of heads), got {type(wrapper_2d).__name__}. "
            "Change the arguments of the wrapper; do not add layers after it."
        )
        return
    if len(heads) != 2:
        print(f"Your wrapper has {len(heads)} head(s): the exercise keeps num_heads=2.")
        return
    if not isinstance(batch, torch.Tensor) or tuple(batch.shape) != (2, 6, 3):
        print("Pass the chapter's `batch` (a (2, 6, 3) tensor) as the last argument.")
        return
    with torch.no_grad():
        ok, out = call_safely(wrapper_2d, batch)
    if not ok:
        return
    if not isinstance(out, torch.Tensor):
        print(NOT_A_TENSOR.format(type(out).__name__))
        return
    if tuple(out.shape) != (2, 6, 2):
        print(f"The context vectors have shape {tuple(out.shape)}; they should be two-dimensional: (2, 6, 2).")
        return
    widths = {getattr(getattr(head, "W_query", None), "out_features", None) for head in heads}
    if widths != {1}:
        print(f"Each head should produce 1 feature, yours produce {sorted(widths, key=str)}.")
        return
    if not is_integer(head_width):
        print(f"head_width should be an integer, got {type(head_width).__name__}.")
        return
    if head_width != 1:
        print(
            f"head_width = {head_width}? Count the features each head's query, key and value have: d_out // num_heads."
        )
        return
    print("Correct!")


# --- Exercise 4 ---------------------------------------------------------------------------


def check_exercise_4(local_causal_mask):
    """A sliding-window causal mask: True where token i must NOT look at token j."""
    if not_a_function(local_causal_mask, "local_causal_mask(num_tokens, window)"):
        return
    for num_tokens, window in [(6, 2), (5, 1), (4, 10), (7, 3)]:
        ok, mask = call_answer(local_causal_mask, num_tokens, window, message=RETURNED_NONE)
        if not ok:
            return
        if not _is_bool_mask(mask, (num_tokens, num_tokens)):
            return
        i = torch.arange(num_tokens).unsqueeze(1)
        j = torch.arange(num_tokens).unsqueeze(0)
        expected = (j > i) | (j <= i - window)
        if torch.equal(mask, expected):
            continue
        where = f"for num_tokens={num_tokens}, window={window}"
        if torch.equal(mask, j > i):
            print(
                f"Wrong mask {where}: this is the plain causal mask; also hide keys more than window - 1 tokens back."
            )
        elif torch.equal(mask, (j > i) | (j < i - window)) or torch.equal(mask, (j > i) | (j <= i - window + 1)):
            print(f"Off by one {where}: each query should see exactly `window` keys (itself included) when it can.")
        else:
            print(f"Wrong mask {where}: got\n{mask.int()}\nexpected\n{expected.int()}")
        return
    print("Correct!")


# --- Exercise 5 ---------------------------------------------------------------------------


def check_exercise_5(offset_causal_mask):
    """The causal mask for new tokens that follow ``num_cached`` cached ones, built from positions."""
    if not_a_function(offset_causal_mask, "offset_causal_mask(num_cached, num_new)"):
        return
    if "mask" in names_used(offset_causal_mask):
        print(
            "Your function reads a `mask` (a module's buffer, e.g. mha.mask[...]): that is the shortcut the "
            "exercise forbids. Build the mask from the positions of the queries and the keys."
        )
        return
    for num_cached, num_new in [(0, 4), (3, 1), (2, 3), (5, 2), (1500, 3)]:
        ok, mask = call_answer(offset_causal_mask, num_cached, num_new, message=RETURNED_NONE)
        if not ok:
            return
        total = num_cached + num_new
        if isinstance(mask, torch.Tensor) and num_cached and tuple(mask.shape) == (num_new, num_new):
            print(
                f"Shape {(num_new, num_new)} for num_cached={num_cached}, num_new={num_new}: the new tokens also "
                f"attend to the cached ones, so the mask needs one column per position: {(num_new, total)}."
            )
            return
        if not _is_bool_mask(mask, (num_new, total)):
            return
        query_pos = num_cached + torch.arange(num_new).unsqueeze(1)
        expected = torch.arange(total).unsqueeze(0) > query_pos
        if torch.equal(mask, expected):
            continue
        where = f"for num_cached={num_cached}, num_new={num_new}"
        top_left = torch.triu(torch.ones(num_new, total, dtype=torch.bool), diagonal=1)
        if torch.equal(mask, top_left):
            print(
                f"Wrong mask {where}: this is the top-left corner of the causal mask (what SDPA's is_causal "
                "gives), which treats new token i as if it were at position i. It is at num_cached + i."
            )
        else:
            print(f"Wrong mask {where}: got\n{mask.int()}\nexpected\n{expected.int()}")
        return
    print("Correct!")
