"""Appendix A: DDP on gloo equals single-process training; the sampler, resume and the command line.

The multi-process tests start real processes: two ranks of a gloo process group on the CPU
(``torch.multiprocessing``), or ``torchrun`` itself, as a reader would.
"""

import json
import math
import os
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from appendix_a_distributed.distributed import (
    DistributedRandomSampler,
    distributed_loader,
    pretrain_main,
    resolve_config,
    wrap_model,
)
from shared import GPTConfig, GPTDataset, GPTModel, load_checkpoint, save_checkpoint, train_model
from shared.export import REPO_ROOT

TINY = GPTConfig(vocab_size=97, context_length=8, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
WORLD, GLOBAL_BATCH, STEPS, STOP_AT = 2, 4, 10, 6  # 16 windows: 4 steps per epoch, so 10 steps cross two epochs
INIT_SEED, SHUFFLE_SEED = 100, 0
# DDP averages the two ranks' gradients (each the mean over 2 windows); one process takes the mean
# over the same 4 windows in another order. Both are float32 sums of the same terms, so they
# differ only by rounding (~1e-7 relative per step), which AdamW can carry into later steps.
# Measured after 10 steps: 2.1e-6 (AVX2 kernels) and 7.6e-7 (generic kernels) at most, while
# training moves weights by 0.066 and a wrong averaging (a sum, one rank's batch) by ~1e-2.
# 1e-5 leaves a 5x margin above rounding and is 1,000x below a real error.
TOLERANCE = 1e-5


def tiny_dataset():
    ids = torch.randint(0, TINY.vocab_size, (16 * TINY.context_length + 1,), generator=torch.Generator().manual_seed(7))
    return GPTDataset(ids, TINY.context_length, stride=TINY.context_length)  # 16 windows


def new_model(seed):
    torch.manual_seed(seed)
    return GPTModel(TINY)


def train_tiny(model, loader, optimizer, stop_at=None, resume=None):
    """Chapter 5's train_model with a schedule, clipping and weight decay, on the tiny data."""
    val_loader = DataLoader(loader.dataset, batch_size=2)
    return train_model(
        model,
        loader,
        val_loader,
        optimizer,
        "cpu",
        math.ceil(STEPS / len(loader)),
        eval_freq=100,
        eval_iter=1,
        start_context=None,
        tokenizer=None,
        warmup_steps=2,
        cosine_decay=True,
        grad_clip=1.0,
        max_steps=STEPS,
        stop_at_step=stop_at,
        resume=resume,
        progress=False,
    )


def adamw(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)


def clone(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _rank_main(rank, folder):
    """One rank: DDP's broadcast, a 10-step run, and the same run stopped at step 6 and resumed."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=WORLD)
    try:
        model = new_model(INIT_SEED + rank)  # different initial weights on purpose: DDP must overwrite rank 1's
        before = clone(model)
        ddp = wrap_model(model, torch.device("cpu"))
        after_wrap = clone(model)
        torch.manual_seed(SHUFFLE_SEED)  # the shuffle's seed: the same on every rank
        optimizer = adamw(model)
        train_tiny(ddp, distributed_loader(tiny_dataset(), GLOBAL_BATCH, rank, WORLD), optimizer)
        final = clone(model)

        model = new_model(INIT_SEED)
        ddp = wrap_model(model, torch.device("cpu"))
        torch.manual_seed(SHUFFLE_SEED)
        optimizer = adamw(model)
        history = train_tiny(
            ddp, distributed_loader(tiny_dataset(), GLOBAL_BATCH, rank, WORLD), optimizer, stop_at=STOP_AT
        )
        if rank == 0:
            save_checkpoint(f"{folder}/checkpoint.pt", model, optimizer, history["position"])
        dist.barrier()
        model = new_model(999 + rank)  # a fresh process would start from other weights and another random state
        optimizer = adamw(model)
        position = load_checkpoint(f"{folder}/checkpoint.pt", model, optimizer)
        ddp = wrap_model(model, torch.device("cpu"))
        train_tiny(ddp, distributed_loader(tiny_dataset(), GLOBAL_BATCH, rank, WORLD), optimizer, resume=position)
        torch.save(
            {"before": before, "after_wrap": after_wrap, "final": final, "resumed": clone(model)},
            f"{folder}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def run_ranks(fn, folder, timeout=240):
    """Run fn(rank, folder) on WORLD processes; fail (not hang) if they take longer than ``timeout`` s."""
    context = mp.start_processes(fn, args=(str(folder),), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {WORLD} ranks did not finish within {timeout} s")


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    run_ranks(_rank_main, folder)
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def max_difference(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_rank0_initial_weights_are_broadcast(two_rank_run):
    rank0, rank1 = two_rank_run
    assert max_difference(rank0["before"], rank1["before"]) > 0.1, "the ranks must start different for this test"
    assert max_difference(rank1["after_wrap"], rank0["before"]) == 0
    assert max_difference(rank0["after_wrap"], rank0["before"]) == 0


def test_ranks_end_with_identical_parameters(two_rank_run):
    rank0, rank1 = two_rank_run
    assert max_difference(rank0["final"], rank0["after_wrap"]) > 1e-3, "training must have moved the weights"
    assert max_difference(rank0["final"], rank1["final"]) == 0


def test_ddp_equals_one_process_on_the_concatenated_batches(two_rank_run):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = new_model(INIT_SEED)
        torch.manual_seed(SHUFFLE_SEED)
        train_tiny(model, distributed_loader(tiny_dataset(), GLOBAL_BATCH, rank=0, world_size=1), adamw(model))
    finally:
        torch.set_num_threads(threads)
    single = clone(model)
    assert max_difference(two_rank_run[0]["final"], single) < TOLERANCE
    assert max_difference(single, two_rank_run[0]["after_wrap"]) > 1e-3


def test_resume_after_step_k_equals_the_uninterrupted_run(two_rank_run):
    for rank in two_rank_run:
        assert max_difference(rank["resumed"], rank["final"]) == 0  # same operations in the same order: bit-identical


def test_sampler_gives_every_example_to_exactly_one_rank_per_epoch():
    dataset = list(range(12))
    epochs = []
    torch.manual_seed(SHUFFLE_SEED)
    for _ in range(2):
        state = torch.get_rng_state()  # every rank has the same random state (same seed, same draws)
        shares = []
        for rank in range(3):
            torch.set_rng_state(state)
            shares.append(list(DistributedRandomSampler(dataset, num_replicas=3, rank=rank)))
        assert sorted(i for share in shares for i in share) == dataset
        assert [len(share) for share in shares] == [4, 4, 4]
        epochs.append(shares)
    assert epochs[0] != epochs[1], "each epoch must draw a new shuffle"


def test_one_replica_follows_random_sampler():
    """With one process the order is chapter 5's (RandomSampler's), so course-base's run is reproduced."""
    torch.manual_seed(3)
    ours = list(DistributedRandomSampler(range(50), num_replicas=1, rank=0))
    torch.manual_seed(3)
    assert ours == list(torch.utils.data.RandomSampler(range(50)))


def test_uneven_dataset_is_refused_or_dropped_evenly():
    with pytest.raises(ValueError, match="do not divide evenly among 2 ranks.*drop_last=True"):
        DistributedRandomSampler(range(15), num_replicas=2, rank=0)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    shares = []
    for rank in range(2):
        torch.set_rng_state(state)
        shares.append(list(DistributedRandomSampler(range(15), num_replicas=2, rank=rank, drop_last=True)))
    assert len(shares[0]) == len(shares[1]) == 7 and not set(shares[0]) & set(shares[1])


def test_too_little_data_is_a_clear_error_not_an_empty_rank():
    """The book's script divided by zero when a rank got no batch; here it is refused up front."""
    dataset = list(range(5))
    with pytest.raises(ValueError, match="fewer than one batch"):
        distributed_loader(dataset, global_batch=8, rank=0, world_size=4)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        distributed_loader(dataset, global_batch=3, rank=0, world_size=2)
    with pytest.raises(ValueError, match="fewer than the 8 ranks"):
        DistributedRandomSampler(dataset, num_replicas=8, rank=0, drop_last=True)


def test_config_option_takes_presets_and_json_and_rejects_the_rest():
    assert resolve_config("quick", '{"n_layers": 1}').n_layers == 1
    assert resolve_config("book").emb_dim == 768
    with pytest.raises(ValueError, match="no field n_layer"):
        resolve_config("quick", '{"n_layer": 1}')
    with pytest.raises(ValueError, match="JSON object"):
        resolve_config("quick", "tiny")


def torchrun(*args, nproc=2, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "llm_course",
            "pretrain",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=timeout,
    )


SMALL = ["--config", '{"n_layers": 1, "emb_dim": 32, "n_heads": 2, "context_length": 32}', "--steps", "6"]


def test_documented_command_trains_and_rank0_writes_one_checkpoint(tmp_path):
    result = torchrun("--profile", "quick", "--steps", "20", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "log.json"]  # no temporary files left
    for rank in range(2):
        assert f"[rank {rank}/2] 20 steps in" in result.stdout
    assert result.stdout.count("wrote ") == 1
    checksums = {line.rsplit(" ", 1)[1] for line in result.stdout.splitlines() if "weights checksum" in line}
    assert len(checksums) == 1, "both ranks must end with the same weights"
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["position"]["step"] == 20 and log["segments"][0]["processes"] == 2
    assert log["history"]["val_losses"][-1] < 8.0, (
        "20 steps must move the loss below a uniform guess (course-base's ln 4096 = 8.3)"
    )


def test_resume_under_torchrun_equals_the_uninterrupted_run(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert torchrun(*SMALL, "--out", str(straight)).returncode == 0
    first = torchrun(*SMALL, "--stop-at", "3", "--out", str(resumed))
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun(*SMALL, "--resume", "--out", str(resumed))
    assert second.returncode == 0, second.stderr[-3000:]
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(resumed / "checkpoint.pt", weights_only=True)["model"]
    assert max_difference(a, b) == 0
    log = json.loads((resumed / "log.json").read_text())
    assert [s["steps"] for s in log["segments"]] == [3, 3] and log["position"]["step"] == 6


def test_pretrain_is_a_course_command_with_its_own_help():
    result = subprocess.run(
        [sys.executable, "-m", "llm_course", "pretrain", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--nproc_per_node" in result.stdout and "--resume" in result.stdout and "USE_LIBUV=0" in result.stdout


def test_a_run_folder_is_never_overwritten_or_resumed_with_other_settings(tmp_path, capsys):
    """Checked before any process group is joined, so every rank stops with the same message."""
    assert pretrain_main([*SMALL, "--resume", "--out", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    (tmp_path / "log.json").write_text(json.dumps({"run": {"steps": 99}}))
    assert pretrain_main([*SMALL, "--out", str(tmp_path)]) == 2
    assert "add --resume to continue it" in capsys.readouterr().err
    assert pretrain_main([*SMALL, "--resume", "--out", str(tmp_path)]) == 2
    assert "steps=99" in capsys.readouterr().err
    assert pretrain_main([*SMALL, "--stop-at", "6", "--out", str(tmp_path / "new")]) == 2
    assert "--stop-at (6) must be below --steps (6)" in capsys.readouterr().err


# --- exercise checks: each rejects the typical wrong answers and accepts the solution ---

from appendix_a_distributed import checks  # noqa: E402


def verdict(check, answer, capsys):
    check(answer)
    return capsys.readouterr().out


def test_exercise_1_check(capsys):
    assert "Not answered" in verdict(checks.check_exercise_1, None, capsys)
    assert "Not answered" in verdict(checks.check_exercise_1, lambda ids, r, w: None, capsys)
    assert "Every rank got" in verdict(checks.check_exercise_1, lambda ids, r, w: ids[: len(ids) // w], capsys)
    assert "Every rank got" in verdict(checks.check_exercise_1, lambda ids, r, w: ids, capsys)
    assert "two ranks" in verdict(checks.check_exercise_1, lambda ids, r, w: ids[r : r + len(ids) // w], capsys)
    assert "leave out" in verdict(checks.check_exercise_1, lambda ids, r, w: ids[r :: w + 1], capsys)
    assert "differ in size" in verdict(
        checks.check_exercise_1,
        lambda ids, r, w: ids[: len(ids) - w + 1] if r == 0 else [ids[len(ids) - w + r]],
        capsys,
    )
    assert "raised ZeroDivisionError" in verdict(checks.check_exercise_1, lambda ids, r, w: 1 / 0, capsys)
    assert verdict(checks.check_exercise_1, lambda ids, r, w: list(ids[r::w]), capsys) == "Correct!\n"
    contiguous = lambda ids, r, w: ids[r * (len(ids) // w) : (r + 1) * (len(ids) // w)]  # noqa: E731
    assert verdict(checks.check_exercise_1, contiguous, capsys) == "Correct!\n"


def test_exercise_2_check(capsys):
    assert "Not answered" in verdict(checks.check_exercise_2, lambda grads: None, capsys)
    assert "That is the sum" in verdict(
        checks.check_exercise_2, lambda grads: [torch.stack(grads).sum(0) for _ in grads], capsys
    )
    assert "rank 0's own gradient" in verdict(checks.check_exercise_2, lambda grads: [grads[0] for _ in grads], capsys)
    assert "element-wise mean" in verdict(
        checks.check_exercise_2, lambda grads: [g.mean().expand_as(g) for g in grads], capsys
    )
    assert "list of 2 tensors" in verdict(checks.check_exercise_2, lambda grads: torch.stack(grads).mean(0), capsys)
    assert "raised ValueError" in verdict(
        checks.check_exercise_2, lambda grads: [dist.all_reduce(g) for g in grads], capsys
    )
    solution = lambda grads: [torch.stack(grads).mean(dim=0).clone() for _ in grads]  # noqa: E731
    assert verdict(checks.check_exercise_2, solution, capsys) == "Correct!\n"


def test_exercise_3_check(capsys):
    assert "Not answered" in verdict(checks.check_exercise_3, None, capsys)
    assert "Upside down" in verdict(checks.check_exercise_3, lambda lr, b, n: lr * b / n, capsys)
    assert "square-root rule" in verdict(checks.check_exercise_3, lambda lr, b, n: lr * math.sqrt(n / b), capsys)
    assert "scale base_lr" in verdict(checks.check_exercise_3, lambda lr, b, n: lr, capsys)
    assert "must return a number" in verdict(checks.check_exercise_3, lambda lr, b, n: str(lr * n / b), capsys)
    assert verdict(checks.check_exercise_3, lambda lr, b, n: lr * n / b, capsys) == "Correct!\n"
