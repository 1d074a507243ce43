"""Self-checks for the chapter 0 exercises (used by pytorch.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check
never raises on a wrong answer: it explains, so the reader can try again.
"""

import torch
from torch import nn

from shared.exercises import call_safely, is_number, not_a_function, not_answered

# (batch, tokens, heads, head_dim) cases: with one head or one token, a wrong layout can
# look right, so every case has at least two of each.
HEAD_CASES = [(2, 3, 4, 5), (1, 6, 2, 3), (3, 2, 3, 2)]


def _numbered(shape):
    """A float tensor of ``shape`` whose entries 0, 1, 2, ... reveal any reordering."""
    return torch.arange(torch.Size(shape).numel(), dtype=torch.float32).view(shape)


def _tensor_problem(got, expected):
    """None if ``got`` equals ``expected`` exactly, else a sentence saying what is off."""
    if got is None:
        return "Not answered yet: your function returned None."
    if not isinstance(got, torch.Tensor):
        return f"Return a tensor, not a {type(got).__name__}."
    if got.shape != expected.shape:
        return f"Expected shape {tuple(expected.shape)}, got {tuple(got.shape)}."
    if not torch.equal(got, expected):
        return "wrong values"
    return None


def check_exercise_1(split_heads):
    """``split_heads(x, num_heads)``: (batch, tokens, heads * head_dim) -> (batch, heads, tokens, head_dim),
    the layout chapter 3's multi-head attention works in."""
    if not_a_function(split_heads, "split_heads(x, num_heads)"):
        return
    for b, T, h, hd in HEAD_CASES:
        x = _numbered((b, T, h * hd))
        ok, got = call_safely(split_heads, x, h)
        if not ok:
            return
        expected = x.view(b, T, h, hd).transpose(1, 2)
        problem = _tensor_problem(got, expected)
        if problem == "wrong values":
            if torch.equal(got, x.view(b, h, T, hd)):
                print(
                    "Right shape, wrong layout: a single `view` to (batch, heads, tokens, head_dim) cuts the "
                    "memory in the wrong places. First `view` to (batch, tokens, heads, head_dim), then swap "
                    "the tokens and heads dimensions."
                )
            else:
                print(
                    f"Right shape, wrong values for x of shape {tuple(x.shape)} with {h} heads: head i must hold "
                    "columns i*head_dim .. (i+1)*head_dim - 1 of every token."
                )
            return
        if problem:
            print(f"For x of shape {tuple(x.shape)} and {h} heads: {problem}")
            return
    print("Correct!")


def check_exercise_2(model_class):
    """``model_class(d_in, hidden, d_out)``: an ``nn.Module`` whose forward is fc1 -> ReLU -> fc2."""
    if not_answered(model_class):
        return
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        print(f"Pass the class itself (a subclass of nn.Module), not {type(model_class).__name__}.")
        return
    torch.manual_seed(0)
    ok, model = call_safely(model_class, 4, 8, 3)
    if not ok:
        return
    if not all(isinstance(getattr(model, name, None), nn.Linear) for name in ("fc1", "fc2")):
        print("Keep the two layers of the template, `self.fc1` and `self.fc2`, both nn.Linear.")
        return
    x = torch.randn(5, 4)
    ok, got = call_safely(model, x)
    if not ok:
        return
    with torch.no_grad():
        hidden = model.fc1(x)
        expected = model.fc2(torch.relu(hidden))
        linear_only = model.fc2(hidden)
        relu_at_end = torch.relu(expected)
    if got is None:
        print("Not answered yet: your forward returned None (did you forget `return`?).")
    elif not isinstance(got, torch.Tensor):
        print(f"forward should return a tensor, not a {type(got).__name__}.")
    elif got.shape != expected.shape:
        print(f"A batch of shape (5, 4) should give (5, 3), got {tuple(got.shape)}.")
    elif torch.allclose(got, expected, atol=1e-6):  # same operations in the same order: equal up to rounding
        print("Correct!")
    elif torch.allclose(got, linear_only, atol=1e-6):
        print("No ReLU between the layers: two linear layers in a row are just one linear layer.")
    elif torch.allclose(got, relu_at_end, atol=1e-6):
        print("The ReLU belongs between the layers; the output layer stays linear (its values may be negative).")
    else:
        print("Not quite: apply fc1, then torch.relu, then fc2.")


def _sigmoid_grad(x, w, b, t):
    s = torch.sigmoid(torch.tensor(w * x + b, dtype=torch.float64)).item()
    return 2 * (s - t) * s * (1 - s) * x, s


def check_exercise_3(grad_w):
    """``grad_w(x, w, b, t)``: d/dw of (sigmoid(w * x + b) - t) ** 2, derived by hand."""
    if not_a_function(grad_w, "grad_w(x, w, b, t)"):
        return
    for x, w, b, t in [(1.5, 0.8, -0.3, 1.0), (-2.0, 0.5, 0.1, 0.0), (0.7, -1.2, 0.4, 0.25)]:
        ok, got = call_safely(grad_w, x, w, b, t)
        if not ok:
            return
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if got is None:
            print("Not answered yet: your function returned None.")
            return
        if not is_number(got):
            print(f"Return a number (a float or a one-element tensor), not a {type(got).__name__}.")
            return
        expected, s = _sigmoid_grad(x, w, b, t)
        if abs(got - expected) <= 1e-5:  # float32 arithmetic in the answer: ~1e-7 relative error
            continue
        if abs(got - expected / x) <= 1e-5:
            print("You have d/dz with z = w*x + b; the chain rule needs one more factor, dz/dw = x.")
        elif abs(got - expected / (s * (1 - s))) <= 1e-5:
            print("Missing the derivative of the sigmoid: sigmoid'(z) = sigmoid(z) * (1 - sigmoid(z)).")
        elif abs(got - expected / 2) <= 1e-5:
            print("Missing the factor 2 from the square: d/du u**2 = 2u.")
        elif abs(got + expected) <= 1e-5:
            print("The sign is flipped: the inner derivative of (s - t) ** 2 is 2 * (s - t), not 2 * (t - s).")
        else:
            print(f"For x={x}, w={w}, b={b}, t={t} you give {got:.5f}, autograd gives {expected:.5f}.")
        return
    print("Correct!")


def check_exercise_4(merge_heads):
    """``merge_heads(context)``: (batch, heads, tokens, head_dim) -> (batch, tokens, heads * head_dim),
    the inverse of exercise 1."""
    if not_a_function(merge_heads, "merge_heads(context)"):
        return
    for b, T, h, hd in HEAD_CASES:
        context = _numbered((b, h, T, hd))
        ok, got = call_safely(merge_heads, context)
        if not ok:
            print(
                "Hint: after `transpose` the tensor is no longer contiguous; use `.contiguous().view(...)` "
                "or `.reshape(...)`."
            )
            return
        expected = context.transpose(1, 2).reshape(b, T, h * hd)
        problem = _tensor_problem(got, expected)
        if problem == "wrong values":
            if torch.equal(got, context.reshape(b, T, h * hd)):
                print(
                    "Right shape, wrong layout: reshaping (batch, heads, tokens, head_dim) straight to "
                    "(batch, tokens, heads * head_dim) mixes tokens. Swap heads and tokens back first."
                )
            else:
                print(
                    f"Right shape, wrong values for {h} heads: token t must hold head 0's head_dim values, "
                    "then head 1's, and so on."
                )
            return
        if problem:
            print(f"For a context of shape {tuple(context.shape)}: {problem}")
            return
    print("Correct!")
