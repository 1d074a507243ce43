"""Self-checks for the appendix A exercises (used by distributed.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off, and never raises on
a wrong answer. Expected answers come from the exercise's statement, not from stored numbers.
"""

import math

import torch

from shared.exercises import call_safely, is_number, not_a_function, not_answered

SHARD_CASES = [(list(range(8)), 2), (list(range(12)), 3), ([7, 3, 9, 1, 4, 0], 2), ([5, 2, 8, 6], 4), ([3, 1], 1)]


def check_exercise_1(shard):
    """``shard(example_ids, rank, world_size)`` -> this rank's ids: together the ranks get every id once."""
    if not_a_function(shard, "shard(example_ids, rank, world_size)"):
        return
    for ids, world_size in SHARD_CASES:
        shares = []
        for rank in range(world_size):
            ok, share = call_safely(shard, list(ids), rank, world_size)
            if not ok or not_answered(share):
                return
            if not isinstance(share, (list, tuple)):
                print(f"shard returned a {type(share).__name__}; return a list of example ids")
                return
            shares.append(list(share))
        given = sorted(i for share in shares for i in share)
        where = f"for example_ids={ids} and world_size={world_size}"
        if len(set(map(tuple, shares))) == 1 and world_size > 1:
            print(f"Every rank got {shares[0]} {where}: use `rank` so that the ranks get different examples.")
        elif len(given) > len(ids) or len(set(given)) < len(given):
            print(f"Some example goes to two ranks {where} (shares {shares}): each must go to exactly one.")
        elif given != sorted(ids):
            print(
                f"The shares {shares} leave out {sorted(set(ids) - set(given))} {where}: every example "
                "must go to some rank."
            )
        elif len({len(share) for share in shares}) > 1:
            print(f"The shares {shares} differ in size {where}: every rank must take the same number of steps.")
        else:
            continue
        return
    print("Correct!")


def check_exercise_2(all_reduce_mean):
    """``all_reduce_mean(rank_grads)`` -> one tensor per rank, each the mean of all ranks' gradients."""
    if not_a_function(all_reduce_mean, "all_reduce_mean(rank_grads)"):
        return
    generator = torch.Generator().manual_seed(0)
    for world_size in (2, 3):
        grads = [torch.randn(2, 3, generator=generator) for _ in range(world_size)]
        originals = [g.clone() for g in grads]
        ok, result = call_safely(all_reduce_mean, grads)
        if not ok or not_answered(result):
            return
        if (
            not isinstance(result, (list, tuple))
            or len(result) != world_size
            or not all(isinstance(r, torch.Tensor) for r in result)
        ):
            print(f"Return a list of {world_size} tensors, one per rank (got {type(result).__name__}).")
            return
        if any(r.shape != grads[0].shape for r in result):
            print(
                f"Each rank's result must keep the gradient's shape {tuple(grads[0].shape)}, "
                f"got {[tuple(r.shape) for r in result]}."
            )
            return
        mean = torch.stack(originals).mean(dim=0)
        total = torch.stack(originals).sum(dim=0)
        if all(torch.allclose(r, total, atol=1e-5) for r in result):
            print(
                f"That is the sum: divide by the number of ranks ({world_size}). With the sum, every step would "
                f"be {world_size}x too large, as if the learning rate had been multiplied by {world_size}."
            )
        elif any(torch.allclose(r, originals[0], atol=1e-5) for r in result) and not torch.allclose(
            originals[0], mean, atol=1e-5
        ):
            print("Some rank got rank 0's own gradient: average the gradients of *all* ranks.")
        elif not all(torch.allclose(r, mean, atol=1e-5) for r in result):
            print(
                "Not the element-wise mean of the ranks' gradients: stack them along a new first "
                "dimension and average over it (one value per parameter entry)."
            )
        else:
            continue
        return
    print("Correct!")


def check_exercise_3(scaled_lr):
    """``scaled_lr(base_lr, base_batch, new_batch)``: the linear scaling rule."""
    if not_a_function(scaled_lr, "scaled_lr(base_lr, base_batch, new_batch)"):
        return
    for base_lr, base_batch, new_batch in [(2e-3, 2, 8), (1e-3, 16, 4), (0.1, 256, 8192), (5e-4, 8, 8)]:
        ok, lr = call_safely(scaled_lr, base_lr, base_batch, new_batch)
        if not ok or not_answered(lr):
            return
        if not is_number(lr):
            print(f"scaled_lr must return a number, got {type(lr).__name__}")
            return
        expected = base_lr * new_batch / base_batch
        if math.isclose(lr, expected, rel_tol=1e-9):
            continue
        if math.isclose(lr, base_lr * base_batch / new_batch, rel_tol=1e-9):
            print(
                "Upside down: a larger batch averages more examples, so its gradient is less noisy and a "
                "larger rate is safe; multiply by new_batch / base_batch."
            )
        elif math.isclose(lr, base_lr * math.sqrt(new_batch / base_batch), rel_tol=1e-9):
            print("That is the square-root rule (sometimes used with Adam); this exercise asks for the linear one.")
        else:
            print(
                f"scaled_lr({base_lr}, {base_batch}, {new_batch}) = {lr}: scale base_lr by the ratio of the batch sizes."
            )
        return
    print("Correct!")
