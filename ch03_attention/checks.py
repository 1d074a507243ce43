"""Self-checks for the chapter 3 exercises (used by attention.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check
never raises on a wrong answer: it explains, so the reader can try again.
"""

import torch

from shared.exercises import not_answered


def check_exercise_1(weights, inputs):
    """Attention weights of the query "step" (row 5 of ``inputs``) in simplified self-attention."""
    if not_answered(weights):
        return
    weights = torch.as_tensor(weights, dtype=torch.float32)
    if weights.shape != (6,):
        print(f"Expected 6 weights (one per word), got shape {tuple(weights.shape)}.")
        return
    scores = inputs @ inputs[5]
    expected = torch.softmax(scores, dim=0)
    if torch.allclose(weights, scores, atol=1e-4):
        print("These are the raw scores: normalise them with a softmax.")
    elif abs(weights.sum().item() - 1) > 1e-4:
        print(f"The weights should sum to 1, yours sum to {weights.sum().item():.4f}.")
    elif torch.allclose(weights, expected, atol=1e-4):
        print("Correct!")
    else:
        print("Not quite: score each word with a dot product against the embedding of 'step' (index 5), then softmax.")


def check_exercise_2(param_count):
    """A closed-form parameter count of ``MultiHeadAttention(d_in, d_out, ..., qkv_bias)``."""
    if not_answered(param_count):
        return
    from shared import MultiHeadAttention

    for d_in, d_out, num_heads, qkv_bias in [(3, 4, 2, False), (768, 768, 12, True), (1600, 1600, 25, True), (64, 96, 8, False)]:
        module = MultiHeadAttention(d_in, d_out, context_length=4, dropout=0.0, num_heads=num_heads, qkv_bias=qkv_bias)
        expected = sum(p.numel() for p in module.parameters())
        got = param_count(d_in, d_out, qkv_bias)
        if got is None:
            print("Not answered yet: your function returned None.")
            return
        if got != expected:
            print(f"For d_in={d_in}, d_out={d_out}, qkv_bias={qkv_bias} you give {got:,}, the layer has {expected:,}.")
            return
    print("Correct!")


def check_exercise_3(local_causal_mask):
    """A sliding-window causal mask: True where token i must NOT look at token j."""
    if not_answered(local_causal_mask):
        return
    for num_tokens, window in [(6, 2), (5, 1), (4, 10), (7, 3)]:
        mask = local_causal_mask(num_tokens, window)
        if mask is None:
            print("Not answered yet: your function returned None.")
            return
        i = torch.arange(num_tokens).unsqueeze(1)
        j = torch.arange(num_tokens).unsqueeze(0)
        expected = (j > i) | (j <= i - window)
        if mask.shape != expected.shape or mask.dtype != torch.bool:
            print(f"Expected a bool tensor of shape {tuple(expected.shape)}, got {mask.dtype} {tuple(mask.shape)}.")
            return
        if not torch.equal(mask, expected):
            print(f"Wrong mask for num_tokens={num_tokens}, window={window}: got\n{mask.int()}\nexpected\n{expected.int()}")
            return
    print("Correct!")


def check_exercise_4(offset_causal_mask):
    """The causal mask for new tokens that follow ``num_cached`` cached ones."""
    if not_answered(offset_causal_mask):
        return
    for num_cached, num_new in [(0, 4), (3, 1), (2, 3), (5, 2)]:
        mask = offset_causal_mask(num_cached, num_new)
        if mask is None:
            print("Not answered yet: your function returned None.")
            return
        total = num_cached + num_new
        full = torch.triu(torch.ones(total, total, dtype=torch.bool), diagonal=1)
        expected = full[num_cached:]
        if mask.shape != expected.shape or mask.dtype != torch.bool:
            print(f"Expected a bool tensor of shape {tuple(expected.shape)} (new tokens x all positions), "
                  f"got {mask.dtype} {tuple(mask.shape)}.")
            return
        if not torch.equal(mask, expected):
            print(f"Wrong mask for num_cached={num_cached}, num_new={num_new}: got\n{mask.int()}\nexpected\n{expected.int()}")
            return
    print("Correct!")

