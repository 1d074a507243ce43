"""Self-checks for the appendix E exercises (used by lora.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check never
raises on a wrong answer: it explains, so the reader can try again. Expected answers are
computed here from the exercise's definition, not from stored numbers.
"""

import torch
import torch.nn as nn

from appendix_e_lora.lora import LoRALinear
from shared.exercises import call_safely, not_a_function, not_answered

NOT_ANSWERED = "Not answered yet: fill in your function, then run the check again."


class _NoShortcut(LoRALinear):
    """A LoRALinear whose own merge is switched off: the exercise asks for it by hand."""

    def merged(self):
        raise RuntimeError("merged() is switched off in this check: compute W + (alpha / rank) * B @ A yourself")


def _layers():
    """LoRA layers of several shapes, with a non-zero B (as after training)."""
    torch.manual_seed(0)
    layers = []
    for d_in, d_out, rank, alpha, bias in [(5, 3, 2, 4.0, True), (7, 6, 3, 3.0, False), (4, 4, 1, 16.0, True)]:
        layer = _NoShortcut(nn.Linear(d_in, d_out, bias=bias), rank=rank, alpha=alpha)
        nn.init.normal_(layer.lora_B)
        layers.append(layer)
    return layers


def check_exercise_1(merged_weight_fn):
    """``merged_weight_fn(layer)`` returns W + (alpha / rank) * B @ A, leaving the layer unchanged."""
    if not_a_function(merged_weight_fn, "merged_weight(layer)", NOT_ANSWERED):
        return
    for layer in _layers():
        before = {name: t.detach().clone() for name, t in layer.state_dict().items()}
        W, A, B = before["base.weight"], before["lora_A"], before["lora_B"]
        ok, got = call_safely(merged_weight_fn, layer)
        if not ok:
            return
        if any(not torch.equal(t, layer.state_dict()[name]) for name, t in before.items()):
            print("Not yet: your function changed the layer's weights; return a new tensor instead.")
            return
        if not_answered(got, NOT_ANSWERED):
            return
        if not isinstance(got, torch.Tensor):
            print(f"Expected a tensor, got {type(got).__name__}.")
            return
        if got.shape != W.shape:
            print(f"Expected shape {tuple(W.shape)} (out_features, in_features), got {tuple(got.shape)}.")
            return
        got = got.detach().float()
        if torch.allclose(got, W, atol=1e-6):
            print("Not yet: that is the frozen weight W; add the low-rank update.")
            return
        if torch.allclose(got, W + B @ A, atol=1e-5) and layer.scaling != 1:
            print("Not yet: the update is scaled by alpha / rank (layer.scaling).")
            return
        if not torch.allclose(got, W + layer.scaling * B @ A, atol=1e-5):
            print("Not yet: the values differ from W + (alpha / rank) * B @ A.")
            return
    print("Correct! The merged layer costs no more than the base layer, and computes the fine-tuned outputs.")


def _update(d_out, d_in, true_rank, seed):
    """A matrix of rank ``true_rank`` plus a little noise: like a real fine-tuning update."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(d_out, true_rank, generator=g) @ torch.randn(true_rank, d_in, generator=g)
    return low + 0.05 * torch.randn(d_out, d_in, generator=g)


def check_exercise_2(best_low_rank_fn):
    """``best_low_rank_fn(delta, rank)`` returns (B, A) whose product is the best rank-r approximation."""
    if not_a_function(best_low_rank_fn, "best_low_rank(delta, rank)", NOT_ANSWERED):
        return
    for d_out, d_in, rank, seed in [(12, 10, 3, 0), (8, 20, 1, 1), (16, 16, 8, 2)]:
        delta = _update(d_out, d_in, true_rank=4, seed=seed)
        original = delta.clone()
        ok, got = call_safely(best_low_rank_fn, delta, rank)
        if not ok:
            return
        if not torch.equal(delta, original):
            print("Not yet: your function changed delta; leave the input as it is.")
            return
        if not_answered(got, NOT_ANSWERED):
            return
        if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
            print("Expected a pair of tensors (B, A).")
            return
        B, A = (t.detach().float() for t in got)
        if B.shape != (d_out, rank) or A.shape != (rank, d_in):
            print(
                f"Expected B of shape {(d_out, rank)} and A of shape {(rank, d_in)}, "
                f"got {tuple(B.shape)} and {tuple(A.shape)}."
            )
            return
        singular_values = torch.linalg.svdvals(delta)
        best = singular_values[rank:].square().sum().sqrt().item()  # Eckart-Young: the dropped singular values
        error = torch.linalg.matrix_norm(delta - B @ A).item()
        if error > best * (1 + 1e-3) + 1e-4:
            print(
                f"Not yet: for a {d_out} x {d_in} update at rank {rank}, ||delta - B @ A|| is {error:.3f}, "
                f"but the best rank-{rank} approximation reaches {best:.3f}. Keep the largest singular values."
            )
            return
    delta = _update(128, 128, true_rank=16, seed=3)
    kept = torch.linalg.svdvals(delta)[:8].square().sum() / delta.square().sum()
    print(f"Correct! For a 128 x 128 update of rank about 16, rank 8 keeps {kept.item():.0%} of its squared size.")
