"""A rehearsal of ``llm-course run --profile book`` that needs no download.

The ``book`` profile fine-tunes OpenAI's GPT-2 (124M for chapters 5-6, 355M for chapter 7):
2 GB of weights. A rehearsal checks, before that download, that every stage of the run
works with files of exactly that layout, and measures what one unit of work costs here:

1. ``write_gpt2_weights`` writes randomly initialised weights with GPT-2's real tensor
   names, shapes and dtype, in the Hugging Face hub's ``model.safetensors`` layout, into
   a temporary course cache (the registry's ``relpath``), so chapter 5's
   ``load_pretrained`` reads them exactly as it reads the real files.
2. ``pinned_registry`` pins the registry's GPT-2 entries to those files' sha256 for the
   rehearsal only: ``fetch`` then verifies them like any pinned file, and the stage
   fingerprints name the fake weights. On exit the original entries are back, so a real
   run verifies the real files as before.
3. ``run_pipeline`` runs every ``book`` stage with a step cap (``REHEARSAL_PLAN``), while
   ``UnitClock`` times each optimizer step, evaluation batch, prompt and generated token.

The result, ``book_estimate.json``, holds the seconds per unit of each stage on this
machine; ``llm_course.estimate`` multiplies them by the full run's counts.
"""

import contextlib
import dataclasses
import json
import os
import platform
import re
import shutil
import struct
import tempfile
import time
from pathlib import Path

import torch

from llm_course import PipelineError
from llm_course.stages import PLANS, STAGES, base_models
from shared.data import REGISTRY, local_copy, sha256_of
from shared.files import atomic_write

ESTIMATE_FILE = "book_estimate.json"
COMMITTED_ESTIMATE = Path(__file__).with_name(ESTIMATE_FILE)  # what `--dry-run` reads by default

REHEARSAL_PLAN = dataclasses.replace(  # every stage runs, each on a few units of work
    PLANS["book"],
    max_steps=2,
    eval_batches=1,
    spam_eval_batches=1,
    instruction_examples=1,
    max_new_tokens=8,
    sample_tokens=8,
)


# --- 1. weights with GPT-2's layout ---------------------------------------------------------------


def gpt2_hub_tensors(config):
    """[(name, shape)] of a GPT-2 ``model.safetensors`` on the Hugging Face hub, for a GPTConfig.

    The hub's names have no ``transformer.`` prefix; Conv1D weights are stored (in, out);
    each block also stores its causal mask as ``attn.bias`` (1, 1, context, context); there
    is no ``lm_head.weight`` (GPT-2 ties it to ``wte.weight``).
    """
    d, n, v = config.emb_dim, config.context_length, config.vocab_size
    tensors = [("wte.weight", (v, d)), ("wpe.weight", (n, d))]
    for i in range(config.n_layers):
        tensors += [
            (f"h.{i}.{name}", shape)
            for name, shape in [
                ("ln_1.weight", (d,)),
                ("ln_1.bias", (d,)),
                ("attn.bias", (1, 1, n, n)),
                ("attn.c_attn.weight", (d, 3 * d)),
                ("attn.c_attn.bias", (3 * d,)),
                ("attn.c_proj.weight", (d, d)),
                ("attn.c_proj.bias", (d,)),
                ("ln_2.weight", (d,)),
                ("ln_2.bias", (d,)),
                ("mlp.c_fc.weight", (d, 4 * d)),
                ("mlp.c_fc.bias", (4 * d,)),
                ("mlp.c_proj.weight", (4 * d, d)),
                ("mlp.c_proj.bias", (d,)),
            ]
        ]
    return tensors + [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]


def _initial_value(name, shape, generator):
    """GPT-2's initialisation: N(0, 0.02) matrices and embeddings, zero biases, unit norm scales."""
    if name.endswith(".attn.bias"):
        return torch.tril(torch.ones(shape[-2:])).view(shape)  # the causal mask, as the real file has it
    if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
        return torch.ones(shape)
    if len(shape) == 1:
        return torch.zeros(shape)
    return torch.empty(shape).normal_(0.0, 0.02, generator=generator)


def _header(tensors):
    """The safetensors header (little-endian length + JSON, padded to 8 bytes) and the data size."""
    entries, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors:
        size = 4 * int(torch.Size(shape).numel())
        entries[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, offset


def gpt2_file_size(config):
    """Bytes of a GPT-2 ``model.safetensors`` in the hub's layout (the real file's differ by its header)."""
    header, data = _header(gpt2_hub_tensors(config))
    return len(header) + data


def write_gpt2_weights(config, path, seed=0):
    """Write random GPT-2 weights for ``config`` to ``path`` (safetensors, float32); return the path.

    Written tensor by tensor (a 355M file is 1.4 GB) into a temporary file that is renamed
    once complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = gpt2_hub_tensors(config)
    header, _ = _header(tensors)
    generator = torch.Generator().manual_seed(seed)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rehearsal-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(header)
            for name, shape in tensors:
                out.write(_initial_value(name, shape, generator).numpy().tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- 2. the registry, pinned to the rehearsal's files ---------------------------------------------


@contextlib.contextmanager
def pinned_registry(files):
    """Pin registry entries to the sha256 of the given files, inside the ``with`` block only.

    files: {registry name: path}. ``REGISTRY[name]`` becomes a copy of its entry with the
    file's sha256, so ``fetch`` accepts exactly these bytes (and nothing else) and the stage
    fingerprints carry their hash. The original entries are restored on exit, even after
    an error.
    """
    originals = {name: REGISTRY[name] for name in files}
    try:
        for name, path in files.items():
            REGISTRY[name] = dataclasses.replace(originals[name], sha256=sha256_of(path))
        yield {name: REGISTRY[name].sha256 for name in files}
    finally:
        REGISTRY.update(originals)


@contextlib.contextmanager
def _environment(**values):
    """Set environment variables inside the ``with`` block, then restore them."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _link_local_files(cache, skip):
    """Make the registry files already on this machine visible in the temporary cache.

    A symbolic link each, or a copy where links are not allowed (Windows without developer mode).
    """
    for name in REGISTRY:
        found = None if name in skip else local_copy(name)
        if found is not None and found.suffix != ".whl":  # a wheel is unpacked by fetch, from the mirror
            target = cache / REGISTRY[name].relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.symlink_to(found.resolve())
            except OSError:
                shutil.copyfile(found, target)


# --- 3. timing units of work ----------------------------------------------------------------------


def model_label(module):
    """A model's size as GPT-2's names give it: parameters in millions, e.g. "124M"."""
    return f"{round(sum(p.numel() for p in module.parameters()) / 1e6)}M"


class UnitClock:
    """Times the units of work inside a stage through PyTorch's global hooks.

    Every outermost module call (a model's forward pass) is recorded with its input shape
    and whether gradients were on; every optimizer step with its end time. ``units()``
    turns that log into units:

    - "train step": from the start of the forward pass with gradients to the end of the
      optimizer step that follows (forward, loss, backward, clipping, update);
    - "eval batch": a forward pass without gradients that is not part of generation;
    - "prompt": the first pass of a generation (its prompt), per sequence;
    - "token": each further pass of a generation (one new token), per sequence.
    """

    def __init__(self):
        self.passes, self.steps = [], []
        self._depth, self._open, self._labels, self._handles = 0, None, {}, []

    def __enter__(self):
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handles = [
            register_module_forward_pre_hook(self._before),
            register_module_forward_hook(self._after),
            register_optimizer_step_post_hook(self._stepped),
        ]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()

    def _label(self, module):
        if id(module) not in self._labels:
            self._labels[id(module)] = model_label(module)
        return self._labels[id(module)]

    def _before(self, module, args):
        if self._depth == 0:
            shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else None
            self._open = (module, shape, torch.is_grad_enabled(), time.perf_counter())
        self._depth += 1

    def _after(self, module, args, output):
        self._depth -= 1
        if self._depth == 0 and self._open is not None and self._open[1] is not None:
            module, shape, grad, start = self._open
            self.passes.append(
                {
                    "model": self._label(module),
                    "id": id(module),
                    "shape": shape,
                    "grad": grad,
                    "start": start,
                    "end": time.perf_counter(),
                }
            )
            self._open = None

    def _stepped(self, optimizer, args, kwargs):
        self.steps.append(time.perf_counter())

    def units(self):
        """{unit name: {"count": n, "seconds": total}}; the name is kind and model, e.g. "token, 355M"."""
        units = {}

        def add(kind, model, seconds, count=1):
            unit = units.setdefault(f"{kind}, {model}", {"count": 0, "seconds": 0.0})
            unit["count"] += count
            unit["seconds"] += seconds

        for end in self.steps:
            forward = max(
                (p for p in self.passes if p["grad"] and p["start"] < end), key=lambda p: p["start"], default=None
            )
            if forward is not None:
                add("train step", forward["model"], end - forward["start"])
        timed = [p for p in self.passes if not p["grad"]]
        for i, p in enumerate(timed):
            batch, tokens = p["shape"][0], p["shape"][1]
            follows = i + 1 < len(timed) and timed[i + 1]["id"] == p["id"] and timed[i + 1]["shape"][1] == 1
            if tokens == 1:
                add("token", p["model"], p["end"] - p["start"], batch)
            elif follows:
                add("prompt", p["model"], p["end"] - p["start"], batch)
            else:
                add("eval batch", p["model"], p["end"] - p["start"])
        return units


@contextlib.contextmanager
def _timed_stages(clocks):
    """Wrap every stage's ``run`` in a UnitClock; ``clocks[name]`` receives its units."""
    originals = list(STAGES)

    def timed(stage):
        def run(ctx):
            with UnitClock() as clock:
                result = stage.run(ctx)
            clocks[stage.name] = clock.units()
            return result

        return dataclasses.replace(stage, run=run)

    STAGES[:] = [timed(stage) for stage in originals]
    try:
        yield
    finally:
        STAGES[:] = originals


# --- the rehearsal --------------------------------------------------------------------------------


def machine():
    """What the figures were measured on: CPU model, cores, threads, torch, load average."""
    cpu = platform.processor() or platform.machine()
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), flags=re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "system": platform.system(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def _gpt2_names(profile):
    """{GPT_CONFIGS name: registry name} of the GPT-2 weights the profile loads."""
    from ch05_pretraining import pretraining as ch05

    return {name: ch05.GPT2_WEIGHTS[name] for name in base_models(profile) if name in ch05.GPT2_WEIGHTS}


def rehearse(out=None, plan=REHEARSAL_PLAN, profile="book"):
    """Run every stage of ``profile`` on random GPT-2 weights in a temporary course cache.

    out: the run folder (default: a temporary folder, deleted afterwards); plan: the
    RunPlan with the caps (``REHEARSAL_PLAN``: 2 optimizer steps per fine-tuning, one
    evaluation batch, one test instruction, 8 generated tokens). Writes
    ``out/book_estimate.json`` when ``out`` is given, and returns its content:
    the machine, the plan, the registry pins, and per stage its seconds, its units
    (count and seconds) and its fixed seconds (the rest: loading, saving, data).
    Raises what the stage raises when a stage fails: that is what a rehearsal is for.
    """
    from ch04_gpt_model import gpt_model as ch04
    from llm_course.pipeline import load_record, run_pipeline

    with contextlib.ExitStack() as stack:
        cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="llm-course-rehearsal-cache-")))
        run_dir = (
            Path(out)
            if out is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="llm-course-rehearsal-run-")))
        )
        weights = _gpt2_names(profile)
        _link_local_files(cache, skip=set(weights.values()))
        files = {}
        for name, entry_name in weights.items():
            print(
                f"rehearsal: writing random {name} weights ({gpt2_file_size(ch04.GPT_CONFIGS[name]) / 1e9:.2f} GB, "
                f"the hub's layout) to {cache}",
                flush=True,
            )
            files[entry_name] = write_gpt2_weights(ch04.GPT_CONFIGS[name], cache / REGISTRY[entry_name].relpath)
        pins = stack.enter_context(pinned_registry(files))
        stack.enter_context(_environment(LLM_COURSE_CACHE=str(cache)))
        clocks = {}
        stack.enter_context(_timed_stages(clocks))
        before = machine()
        run_pipeline(profile, run_dir, fresh=True, plan=plan)
        records = {stage.name: load_record(run_dir, stage.name) for stage in STAGES}
        missing = [name for name, record in records.items() if record is None]
        if missing:
            raise PipelineError(f"the rehearsal finished without a record for the stage(s) {', '.join(missing)}")
        figures = {
            "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": before,
            "load_average_after": machine()["load_average"],
            "profile": profile,
            "plan": dataclasses.asdict(plan),
            "registry_pins": pins,
            "stages": {},
        }
        for name, record in records.items():
            units = clocks.get(name, {})
            figures["stages"][name] = {
                "seconds": record["seconds"],
                "units": units,
                "fixed_seconds": max(0.0, record["seconds"] - sum(u["seconds"] for u in units.values())),
            }
        if out is not None:
            atomic_write(run_dir / ESTIMATE_FILE, json.dumps(figures, indent=2) + "\n")
    return figures
