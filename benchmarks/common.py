"""Timing helpers shared by the benchmark scripts.

Every benchmark measures the course code and its baseline in the same process,
interleaved, and reports the ratio of medians, so machine noise cancels.
"""

import statistics
import time
from dataclasses import dataclass


@dataclass
class Result:
    id: str
    what: str
    ratio: float  # higher is better for the course
    target: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{self.id:<4} {self.what:<52} {self.ratio:7.2f}x  (target >= {self.target:g}x)  {verdict}  {self.detail}"
        )


def interleaved_medians(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Median seconds per call for each function, calling them in turn ``repeats`` times."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_peak_flops(size: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 matmul throughput (FLOP/s) of this machine: the utilisation yardstick."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = interleaved_medians({"mm": lambda: a @ b}, repeats=repeats, warmup=2)["mm"]
    return 2 * size**3 / seconds


def gpt2_pair(config, seed: int = 123):
    """(GPTModel, Hugging Face GPT2LMHeadModel) computing the same function, for like-for-like timing.

    Hugging Face draws GPT-2's initialisation (N(0, 0.02) weights; ``seed`` fixes it) and
    ``load_gpt2_weights`` copies it into ours. Identical weights matter for speed too: both
    models then do the same arithmetic on the same numbers, so data-dependent costs (denormals
    from ``nn.Embedding``'s N(0, 1) default init, say) cannot favour either side.
    ``config`` is a GPTConfig with ``qkv_bias=True``; the HF model uses SDPA attention and
    the same dropout rate.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from shared import GPTModel, load_gpt2_weights

    drop = config.drop_rate
    hf_config = GPT2Config(
        n_positions=config.context_length,
        n_embd=config.emb_dim,
        n_layer=config.n_layers,
        n_head=config.n_heads,
        vocab_size=config.vocab_size,
        resid_pdrop=drop,
        embd_pdrop=drop,
        attn_pdrop=drop,
        attn_implementation="sdpa",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = GPT2LMHeadModel(hf_config)
    return load_gpt2_weights(GPTModel(config), hf.state_dict()), hf


def shakespeare_tokens(num_tokens: int):
    """The first ``num_tokens`` GPT-2 token ids of Tiny Shakespeare, a LongTensor (num_tokens,)."""
    import torch

    from shared import fetch, gpt2_encoding

    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    ids = gpt2_encoding().encode(text[: 8 * num_tokens])  # ample: ~3.3 characters per token
    if len(ids) < num_tokens:
        raise ValueError(
            f"Tiny Shakespeare has fewer than {num_tokens} tokens in its first {8 * num_tokens} characters"
        )
    return torch.tensor(ids[:num_tokens])


def report(results: list) -> None:
    print()
    for result in results:
        print(result.line())


def run_script(main, quick_help=None) -> None:
    """The command line of a benchmark script: run ``main``, print the table, exit 0 only if all pass.

    With ``quick_help``, the script takes ``--quick`` (described by that text) and passes it on.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    if quick_help:
        parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    results = main(quick=args.quick) if quick_help else main()
    report(results)
    sys.exit(0 if all(r.passed for r in results) else 1)
