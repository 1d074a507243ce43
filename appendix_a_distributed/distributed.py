# GENERATED from distributed.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Appendix A — Training on several processes: DDP with torchrun"""

__all__ = [
    "DistributedRandomSampler",
    "MULTI_NODE_HELP",
    "build_course_model",
    "build_pretrain_parser",
    "course_base_loaders",
    "course_command",
    "distributed_loader",
    "init_distributed",
    "pretrain",
    "pretrain_main",
    "resolve_config",
    "weights_checksum",
    "wrap_model",
]


# appendix_a_distributed/distributed.ipynb, setup
import argparse
import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from ch05_pretraining.pretraining import COURSE_BASE_RECIPE, course_base_texts, train_course_base_tokenizer
from shared import (
    GPT_CONFIGS,
    GPTConfig,
    GPTDataset,
    GPTModel,
    atomic_write,
    course_base_config,
    get_device,
    load_checkpoint,
    save_checkpoint,
    set_sdpa,
    set_seed,
    settings,
    train_model,
)


# appendix_a_distributed/distributed.ipynb, A.3 Splitting the data: the distributed sampler
class DistributedRandomSampler(DistributedSampler):
    """Each rank's share of a shuffled data set: every example goes to exactly one rank per epoch.

    Like torch's ``DistributedSampler``, rank r takes every ``num_replicas``-th example of
    one permutation, starting at r. Unlike it, the permutation of each epoch is drawn from
    torch's global random generator, as ``RandomSampler`` does, instead of from
    ``seed + epoch``. So no ``set_epoch`` call is needed, every rank draws the same
    permutation as long as all ranks seed alike, and chapter 5's exact resume, which
    replays an epoch's random state, replays the shuffle too. With one replica it yields
    exactly ``RandomSampler``'s order.

    A data set that does not divide evenly among the ranks is refused unless
    ``drop_last=True``, which leaves out ``len(dataset) % num_replicas`` examples of each
    epoch (different ones every epoch). torch's sampler would instead repeat examples.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, drop_last=False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, drop_last=drop_last)
        left_over = len(dataset) % self.num_replicas
        if left_over and not drop_last:
            raise ValueError(
                f"{len(dataset)} examples do not divide evenly among {self.num_replicas} ranks ({left_over} left "
                f"over): pass drop_last=True to leave {left_over} out of each epoch, or use a data set whose size "
                f"is a multiple of {self.num_replicas}"
            )
        if self.num_samples == 0:
            raise ValueError(
                f"{len(dataset)} examples are fewer than the {self.num_replicas} ranks: every rank needs at least one"
            )

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())  # as RandomSampler draws it
            indices = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        else:
            indices = list(range(n))
        return iter(indices[self.rank : self.total_size : self.num_replicas])


# appendix_a_distributed/distributed.ipynb, A.3 Splitting the data: the distributed sampler
def distributed_loader(dataset, global_batch, rank, world_size):
    """This rank's training loader: ``global_batch // world_size`` windows per step.

    The global batch (what one optimizer step averages over) stays the same whatever the
    number of ranks, and so does the sequence of global batches: step s uses examples
    s * global_batch ... (s + 1) * global_batch - 1 of the epoch's permutation, split
    among the ranks. Raises ValueError when the global batch does not split evenly or
    the data set is too small to give every rank one batch (instead of a rank with no
    batches, which would leave the others waiting for it forever).
    """
    if global_batch < 1 or global_batch % world_size:
        raise ValueError(
            f"the global batch ({global_batch}) must be a positive multiple of the number of "
            f"processes ({world_size}): each rank takes global_batch / {world_size} windows per step"
        )
    per_rank = global_batch // world_size
    sampler = DistributedRandomSampler(dataset, world_size, rank, shuffle=True, drop_last=True)
    if len(sampler) < per_rank:
        raise ValueError(
            f"{len(dataset)} training windows give each of the {world_size} ranks {len(sampler)}, "
            f"fewer than one batch of {per_rank}: use more text, a shorter context or a smaller "
            "global batch"
        )
    return DataLoader(dataset, batch_size=per_rank, sampler=sampler, drop_last=True)


# appendix_a_distributed/distributed.ipynb, A.5 The course's entry point: `-m llm_course pretrain`
def init_distributed():
    """Join the process group that ``torchrun`` describes; return (rank, world_size, device).

    torchrun starts one process per rank and tells each one RANK, WORLD_SIZE, LOCAL_RANK
    and where rank 0 listens (MASTER_ADDR, MASTER_PORT). Each process takes GPU
    LOCAL_RANK and the nccl backend when CUDA is present, else the CPU and gloo.
    Started without torchrun, it is a single process: (0, 1, get_device()), no group.
    """
    if "RANK" not in os.environ:
        return 0, 1, get_device()
    if sys.platform == "win32":  # PyTorch's Windows builds have no libuv for the rendezvous store
        os.environ.setdefault("USE_LIBUV", "0")
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = "nccl" if device.type == "cuda" and dist.is_nccl_available() else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    return rank, world_size, device


def wrap_model(model, device):
    """``model`` wrapped in DistributedDataParallel (unchanged in a single process).

    Wrapping copies rank 0's parameters and buffers to every rank, and from then on each
    ``backward`` averages the gradients over all ranks (an all-reduce, bucketed and
    overlapped with the backward pass), so every rank's optimizer takes the same step.
    On the CPU, DDP gets ``device_ids=None``; on a GPU, the one this rank owns.
    """
    if not dist.is_initialized():
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


# appendix_a_distributed/distributed.ipynb, A.5.1 The pretraining run
def build_course_model(config, recipe=COURSE_BASE_RECIPE):
    """A fresh GPTModel initialised as course-base is (same random draws, in the same order).

    Embeddings ~ N(0, recipe.embedding_std), the output head tied to the token embedding,
    and the attention fast path chosen by the recipe. Seed torch before calling it.
    """
    model = GPTModel(config)
    torch.nn.init.normal_(model.tok_emb.weight, std=recipe.embedding_std)
    torch.nn.init.normal_(model.pos_emb.weight, std=recipe.embedding_std)
    model.out_head.weight = model.tok_emb.weight
    set_sdpa(model, recipe.sdpa)
    return model


def course_base_loaders(config, global_batch, rank, world_size):
    """(train_loader, val_loader) over course-base's texts, in windows of ``config.context_length`` tokens.

    The training loader yields this rank's share of each global batch (``distributed_loader``);
    the validation loader is the same on every rank, so every rank measures the same loss.
    """
    train_text, val_text = course_base_texts()
    tokenizer = train_course_base_tokenizer()  # course-base's own BPE: about a second, the same on every rank
    train_set = GPTDataset(train_text, config.context_length, stride=config.context_length, tokenizer=tokenizer)
    val_set = GPTDataset(val_text, config.context_length, stride=config.context_length, tokenizer=tokenizer)
    return distributed_loader(train_set, global_batch, rank, world_size), DataLoader(val_set, batch_size=global_batch)


def weights_checksum(model):
    """Sum of every parameter, in float64: equal on every rank when the replicas agree."""
    return sum(p.detach().double().sum().item() for p in model.parameters())


def _run_folder_log(out_dir, run, resume, fresh):
    """The saved log of the run in ``out_dir`` when resuming it (None for a new run).

    Refuses to resume a missing run or one started with other settings (only the number of
    processes may change), and to overwrite a finished run without ``fresh``.
    """
    checkpoint = out_dir / "checkpoint.pt"
    if not resume:
        if checkpoint.exists() and not fresh:
            raise ValueError(
                f"{out_dir} already holds a run: add --resume to continue it, --fresh to start "
                "again, or choose another --out"
            )
        return None
    if not checkpoint.exists():
        raise ValueError(f"nothing to resume: {checkpoint} does not exist (start the run without --resume)")
    log = json.loads((out_dir / "log.json").read_text(encoding="utf-8"))
    saved, wanted = log["run"], json.loads(json.dumps(run))
    differ = [f"{key}={saved.get(key)!r} (now {wanted[key]!r})" for key in wanted if saved.get(key) != wanted[key]]
    if differ:
        raise ValueError(
            f"the run in {out_dir} was started with {', '.join(differ)}: resume it with the same "
            "settings (the number of processes may change)"
        )
    return log


def _write_log(out_dir, run, history, previous, segment):
    """Rank 0: the run's settings, its whole history (earlier segments included) and timings."""
    keys = ("steps", "tokens_seen", "train_losses", "val_losses", "lrs")
    merged = {key: (previous["history"][key] if previous else []) + history[key] for key in keys}
    position = {k: v for k, v in history["position"].items() if k != "epoch_rng_state"}  # that is in the checkpoint
    segments = (previous["segments"] if previous else []) + [segment]
    log = {"run": run, "position": position, "history": merged, "segments": segments}
    atomic_write(out_dir / "log.json", json.dumps(log, indent=1))


def pretrain(config, out_dir, steps, global_batch=None, stop_at=None, resume=False, fresh=False):
    """Pretrain ``config`` with course-base's recipe on this process's rank; return the history.

    Run it on every rank (``torchrun ... -m llm_course pretrain``) or alone. Every rank seeds
    alike, builds the model and the loaders, wraps the model in DDP and calls chapter 5's
    ``train_model``; rank 0 alone writes ``out_dir/checkpoint.pt`` and ``out_dir/log.json``
    (atomically), after the last step or at ``stop_at``. ``resume`` continues the run saved
    in ``out_dir``, on any number of processes: the checkpoint holds the weights, AdamW's
    state, the position in the data and the random state, and the sequence of global
    batches does not depend on the number of processes.
    """
    recipe = COURSE_BASE_RECIPE
    global_batch = global_batch or recipe.batch_size
    out_dir = Path(out_dir)
    run = {
        "config": dataclasses.asdict(config),
        "steps": steps,
        "global_batch": global_batch,
        "recipe": dataclasses.asdict(recipe),
    }
    previous = _run_folder_log(out_dir, run, resume, fresh)  # before joining the group: errors end every rank alike
    rank, world_size, device = init_distributed()

    def say(text):  # one write per line, so that lines of different ranks never interleave
        sys.stdout.write(f"[rank {rank}/{world_size}] {text}\n")
        sys.stdout.flush()

    try:
        set_seed(recipe.seed)  # the same on every rank: the same initial weights and the same shuffles
        model = build_course_model(config, recipe).to(device)
        train_loader, val_loader = course_base_loaders(config, global_batch, rank, world_size)
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=recipe.learning_rate,
            weight_decay=recipe.weight_decay,
            fused=recipe.fused_adamw and device.type in ("cpu", "cuda"),
        )
        position = load_checkpoint(out_dir / "checkpoint.pt", model, optimizer) if resume else None
        ddp_model = wrap_model(model, device)
        first = position["step"] if position else 0
        say(
            f"{dist.get_backend() if dist.is_initialized() else 'single process'} on {device}: "
            f"{len(train_loader.sampler)} of {len(train_loader.dataset)} windows per epoch, {train_loader.batch_size} per step; "
            f"steps {first + 1}..{stop_at or steps}"
        )
        start = time.perf_counter()
        history = train_model(
            ddp_model,
            train_loader,
            val_loader,
            optimizer,
            device,
            math.ceil(steps / len(train_loader)),
            recipe.eval_freq,
            recipe.eval_iter,
            start_context=None,
            tokenizer=None,
            warmup_steps=min(recipe.warmup_steps, steps),
            cosine_decay=True,
            min_lr=recipe.min_learning_rate,
            grad_clip=recipe.grad_clip,
            max_steps=steps,
            stop_at_step=stop_at,
            resume=position,
            progress=rank == 0,
        )
        seconds = time.perf_counter() - start
        done = history["position"]["step"] - first
        tokens_per_s = done * global_batch * config.context_length / seconds
        say(
            f"{done} steps in {seconds:.1f} s, {tokens_per_s:,.0f} tokens/s; weights checksum {weights_checksum(model):.6f}"
        )
        if rank == 0:
            save_checkpoint(out_dir / "checkpoint.pt", model, optimizer, history["position"])
            segment = {
                "processes": world_size,
                "device": str(device),
                "steps": done,
                "seconds": seconds,
                "tokens_per_s": tokens_per_s,
                "threads_per_process": torch.get_num_threads(),
            }
            _write_log(out_dir, run, history, previous, segment)
            say(f"wrote {out_dir / 'checkpoint.pt'} at step {history['position']['step']}")
        if dist.is_initialized():
            dist.barrier()  # nobody leaves before the checkpoint is on disk
        return history
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# appendix_a_distributed/distributed.ipynb, A.5.2 The command line
MULTI_NODE_HELP = """\
one machine, N processes (N GPUs, or N CPU processes):
  torchrun --standalone --nproc_per_node=N -m llm_course pretrain --steps 20
several machines (run on each; node 0's address reachable by all):
  torchrun --nnodes=2 --node_rank=R --nproc_per_node=N \\
           --master_addr=NODE0_ADDRESS --master_port=29500 -m llm_course pretrain
  or, with rendezvous and restarts:
  torchrun --nnodes=2 --nproc_per_node=N --rdzv_backend=c10d \\
           --rdzv_endpoint=NODE0_ADDRESS:29400 --rdzv_id=JOB_ID -m llm_course pretrain
Windows: set USE_LIBUV=0 before torchrun (PyTorch's Windows builds lack libuv).
"""


def resolve_config(profile, config=None):
    """The GPTConfig to pretrain: the profile's model (quick: course-base; book: GPT-2 124M
    with a 256-token context), replaced by a preset name or changed by a JSON object of
    GPTConfig fields, e.g. '{"n_layers": 2, "emb_dim": 64}'."""
    base = (
        course_base_config()
        if profile == "quick"
        else dataclasses.replace(GPT_CONFIGS["gpt2-small (124M)"], context_length=256)
    )
    if config is None:
        return base
    if config == "course-base":
        return course_base_config()
    if config in GPT_CONFIGS:
        return GPT_CONFIGS[config]
    try:
        changes = json.loads(config)
    except json.JSONDecodeError:
        changes = None
    if not isinstance(changes, dict):
        raise ValueError(
            f"--config must be 'course-base', one of {', '.join(map(repr, GPT_CONFIGS))} or a JSON "
            f"object of GPTConfig fields such as '{{\"n_layers\": 2}}', got {config!r}"
        )
    fields = {f.name for f in dataclasses.fields(GPTConfig)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ValueError(f"--config: GPTConfig has no field {', '.join(unknown)} (fields: {', '.join(sorted(fields))})")
    return dataclasses.replace(base, **changes)


def build_pretrain_parser():
    parser = argparse.ArgumentParser(
        prog="llm-course pretrain",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MULTI_NODE_HELP,
        description="Pretrain course-base (or any GPTConfig) with chapter 5's train_model, on one process or, "
        "launched by torchrun, on several with DistributedDataParallel. Rank 0 writes "
        "OUT/checkpoint.pt and OUT/log.json.",
    )
    parser.add_argument("--profile", help="quick (course-base) or book (GPT-2 124M); default: LLM_COURSE_PROFILE")
    parser.add_argument(
        "--config",
        help="'course-base', a GPT-2 preset name, or a JSON object of GPTConfig fields changing the profile's model",
    )
    parser.add_argument(
        "--steps",
        type=_positive,
        default=COURSE_BASE_RECIPE.max_steps,
        help=f"optimizer steps of the run (default {COURSE_BASE_RECIPE.max_steps})",
    )
    parser.add_argument("--stop-at", type=_positive, help="stop after this step as if interrupted (resume later)")
    parser.add_argument(
        "--global-batch",
        type=_positive,
        default=COURSE_BASE_RECIPE.batch_size,
        help="windows per optimizer step over all processes (default "
        f"{COURSE_BASE_RECIPE.batch_size}); each process takes global-batch / N",
    )
    parser.add_argument("--out", help="run folder (default: CACHE/runs/pretrain-PROFILE)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--fresh", action="store_true", help="start again even if --out holds a run")
    return parser


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def pretrain_main(argv=None):
    """``llm-course pretrain ...`` / ``python -m llm_course pretrain ...``: parse, pretrain; the exit status."""
    args = build_pretrain_parser().parse_args(argv)
    if args.profile:
        os.environ["LLM_COURSE_PROFILE"] = args.profile
    cfg = settings()
    out = Path(args.out) if args.out else cfg.cache_dir / "runs" / f"pretrain-{cfg.profile}"
    try:
        if args.stop_at is not None and args.stop_at >= args.steps:
            raise ValueError(f"--stop-at ({args.stop_at}) must be below --steps ({args.steps})")
        pretrain(
            resolve_config(cfg.profile, args.config),
            out,
            args.steps,
            args.global_batch,
            stop_at=args.stop_at,
            resume=args.resume,
            fresh=args.fresh,
        )
    except ValueError as exc:
        if os.environ.get("RANK", "0") == "0":
            print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# appendix_a_distributed/distributed.ipynb, A.6 Two processes, launched from this notebook
def course_command(args, nproc_per_node=None, threads_per_process=1, timeout=600):
    """Run ``python -m llm_course ARGS`` from the course folder and return the finished process.

    nproc_per_node: start it under torchrun (``python -m torch.distributed.run --standalone``,
    the same program as the ``torchrun`` script) with that many ranks; None = one plain process.
    Each process gets ``threads_per_process`` threads (OMP_NUM_THREADS), and on Windows
    USE_LIBUV=0. Output is captured as text: ``.returncode``, ``.stdout``, ``.stderr``.
    """
    from shared.export import REPO_ROOT

    launcher = (
        []
        if nproc_per_node is None
        else ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}"]
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(threads_per_process), MKL_NUM_THREADS=str(threads_per_process))
    if sys.platform == "win32":
        env.setdefault("USE_LIBUV", "0")
    return subprocess.run(
        [sys.executable, *launcher, "-m", "llm_course", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
