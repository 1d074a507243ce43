"""Chapter 0: the exercise checks accept the solutions and reject the typical wrong answers.

Every check must print ``Correct!`` for a right answer, and for a wrong or unfinished one
print an explanation without raising (a learner's notebook must keep running).
"""

import math

import pytest
import torch
from torch import nn

from ch00_pytorch.checks import check_exercise_1, check_exercise_2, check_exercise_3, check_exercise_4


def verdict(capsys, check, *answer):
    """Run a check on an answer and return what it printed; the check must not raise."""
    check(*answer)
    return capsys.readouterr().out


# Exercise 1: (batch, tokens, heads * head_dim) -> (batch, heads, tokens, head_dim)


def split_heads(x, num_heads):
    b, T, d = x.shape
    return x.reshape(b, T, num_heads, d // num_heads).permute(0, 2, 1, 3)


def split_heads_one_view(x, num_heads):
    b, T, d = x.shape
    return x.view(b, num_heads, T, d // num_heads)


def split_heads_no_transpose(x, num_heads):
    b, T, d = x.shape
    return x.view(b, T, num_heads, d // num_heads)


def split_heads_wrong_swap(x, num_heads):
    b, T, d = x.shape
    return x.view(b, T, d // num_heads, num_heads).permute(0, 3, 1, 2)  # heads interleaved, not blocked


def split_heads_raises(x, num_heads):
    return x.view(-1, num_heads, 7)


def test_exercise_1_accepts_the_solution(capsys):
    assert verdict(capsys, check_exercise_1, split_heads).strip() == "Correct!"


@pytest.mark.parametrize(
    "answer, message",
    [
        (None, "Not answered yet"),
        (split_heads_one_view, "Right shape, wrong layout"),
        (split_heads_no_transpose, "Expected shape"),
        (split_heads_wrong_swap, "Right shape, wrong values"),
        (split_heads_raises, "Your function raised RuntimeError"),
        (lambda x, h: None, "Not answered yet"),
        (lambda x, h: x.view(x.shape[0], h, x.shape[1], -1).tolist(), "Return a tensor"),
        (torch.zeros(2, 3), "pass your function itself"),
    ],
)
def test_exercise_1_rejects_wrong_answers(capsys, answer, message):
    out = verdict(capsys, check_exercise_1, answer)
    assert message in out and "Correct!" not in out


# Exercise 2: forward = fc1 -> ReLU -> fc2


class TwoLayerNet(nn.Module):
    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class NoReLU(TwoLayerNet):
    def forward(self, x):
        return self.fc2(self.fc1(x))


class ReLUAtEnd(TwoLayerNet):
    def forward(self, x):
        return torch.relu(self.fc2(torch.relu(self.fc1(x))))


class Sigmoid(TwoLayerNet):
    def forward(self, x):
        return self.fc2(torch.sigmoid(self.fc1(x)))


class WrongOrder(TwoLayerNet):
    def forward(self, x):
        return self.fc1(torch.relu(self.fc2(x)))


class Unfinished(TwoLayerNet):
    def forward(self, x): ...


class RenamedLayers(nn.Module):
    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))

    def forward(self, x):
        return self.layers(x)


def test_exercise_2_accepts_the_solution(capsys):
    assert verdict(capsys, check_exercise_2, TwoLayerNet).strip() == "Correct!"


@pytest.mark.parametrize(
    "answer, message",
    [
        (None, "Not answered yet"),
        (Unfinished, "Not answered yet: your forward returned None"),
        (NoReLU, "No ReLU between the layers"),
        (ReLUAtEnd, "output layer stays linear"),
        (Sigmoid, "Not quite"),
        (WrongOrder, "Your function raised RuntimeError"),
        (RenamedLayers, "self.fc1"),
        (TwoLayerNet(4, 8, 3), "Pass the class itself"),
    ],
)
def test_exercise_2_rejects_wrong_answers(capsys, answer, message):
    out = verdict(capsys, check_exercise_2, answer)
    assert message in out and "Correct!" not in out


# Exercise 3: d/dw (sigmoid(w x + b) - t)^2


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def grad_w(x, w, b, t):
    s = sigmoid(w * x + b)
    return 2 * (s - t) * s * (1 - s) * x


def test_exercise_3_accepts_the_solution_as_float_or_tensor(capsys):
    assert verdict(capsys, check_exercise_3, grad_w).strip() == "Correct!"
    as_tensor = lambda x, w, b, t: torch.tensor(grad_w(x, w, b, t))  # noqa: E731
    assert verdict(capsys, check_exercise_3, as_tensor).strip() == "Correct!"


@pytest.mark.parametrize(
    "answer, message",
    [
        (None, "Not answered yet"),
        (lambda x, w, b, t: 2 * (sigmoid(w * x + b) - t) * sigmoid(w * x + b) * (1 - sigmoid(w * x + b)), "dz/dw = x"),
        (lambda x, w, b, t: 2 * (sigmoid(w * x + b) - t) * x, "derivative of the sigmoid"),
        (lambda x, w, b, t: grad_w(x, w, b, t) / 2, "factor 2"),
        (lambda x, w, b, t: -grad_w(x, w, b, t), "sign is flipped"),
        (lambda x, w, b, t: 2 * (sigmoid(w * x + b) - t) * x * x, "autograd gives"),
        (lambda x, w, b, t: [grad_w(x, w, b, t)], "Return a number"),
        (lambda x, w, b, t: 1 / 0, "Your function raised ZeroDivisionError"),
        (0.5, "pass your function itself"),
    ],
)
def test_exercise_3_rejects_wrong_answers(capsys, answer, message):
    out = verdict(capsys, check_exercise_3, answer)
    assert message in out and "Correct!" not in out


# Exercise 4: (batch, heads, tokens, head_dim) -> (batch, tokens, heads * head_dim)


def merge_heads(context):
    b, h, T, hd = context.shape
    return context.transpose(1, 2).reshape(b, T, h * hd)


def merge_heads_no_transpose(context):
    b, h, T, hd = context.shape
    return context.reshape(b, T, h * hd)


def merge_heads_view_after_transpose(context):
    b, h, T, hd = context.shape
    return context.transpose(1, 2).view(b, T, h * hd)


def merge_heads_keeps_heads(context):
    return context.transpose(1, 2)


def test_exercise_4_accepts_the_solution(capsys):
    assert verdict(capsys, check_exercise_4, merge_heads).strip() == "Correct!"


@pytest.mark.parametrize(
    "answer, message",
    [
        (None, "Not answered yet"),
        (merge_heads_no_transpose, "Right shape, wrong layout"),
        (merge_heads_view_after_transpose, ".contiguous()"),
        (merge_heads_keeps_heads, "Expected shape"),
        (lambda c: c.transpose(2, 3).reshape(c.shape[0], c.shape[2], -1), "Right shape, wrong values"),
        (merge_heads(torch.zeros(1, 2, 3, 4)), "pass your function itself"),
    ],
)
def test_exercise_4_rejects_wrong_answers(capsys, answer, message):
    out = verdict(capsys, check_exercise_4, answer)
    assert message in out and "Correct!" not in out


def test_exercises_1_and_4_are_inverse_in_the_solutions():
    x = torch.randn(2, 5, 12)
    assert torch.equal(merge_heads(split_heads(x, 3)), x)
