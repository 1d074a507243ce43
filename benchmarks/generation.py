"""P3: greedy text generation with chapter 5's key/value cache, GPT-2 small (124M), batch of one.

A 10-token prompt (the start of Tiny Shakespeare) is extended by 200 tokens, greedily, by:
    course cache:  ``generate(model, prompt, 200, context_size=1024, use_cache=True)``
    course plain:  the same without the cache (each step re-reads the whole sequence)
    Hugging Face:  ``GPT2LMHeadModel.generate(prompt, max_new_tokens=200, do_sample=False,
                   use_cache=True, min_new_tokens=200)`` (SDPA attention)
GPTModel uses SDPA attention too, and holds the same weights as the HF model (HF's GPT-2
initialisation, loaded with ``load_gpt2_weights``), so all three must produce identical
tokens; that is checked before timing. Each is run once (check + warmup), then timed in turn.

P3a: cache vs no cache. Ratio: no-cache time / cache time. Target: >= 5x.
P3b: cache vs Hugging Face. Ratio: HF time / course time. Target: >= 1.0x.

Run: python benchmarks/generation.py [--quick]   (--quick: one timed run instead of three)
"""

from dataclasses import replace

import torch
from common import Result, gpt2_pair, interleaved_medians, run_script, shakespeare_tokens

from shared import END_OF_TEXT_ID, GPT_CONFIGS, generate

PROMPT_TOKENS, NEW_TOKENS = 10, 200
CACHE_TARGET, HF_TARGET = 5.0, 1.0


def first_difference(a, b) -> str:
    if a.shape != b.shape:
        return f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    position = (a != b).nonzero()[0, -1].item()
    return f"first difference at position {position}: {a[0, position].item()} vs {b[0, position].item()}"


def main(quick: bool = False, config=None) -> list:
    config = replace(config or GPT_CONFIGS["gpt2-small (124M)"], use_sdpa=True, drop_rate=0.0)
    ours, hf = gpt2_pair(config)
    ours.eval(), hf.eval()
    prompt = shakespeare_tokens(PROMPT_TOKENS).unsqueeze(0)  # (1, 10)
    runs = {
        "cache": lambda: generate(ours, prompt, NEW_TOKENS, config.context_length, use_cache=True),
        "no cache": lambda: generate(ours, prompt, NEW_TOKENS, config.context_length),
        "hf": lambda: hf.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            use_cache=True,
            pad_token_id=END_OF_TEXT_ID,  # HF's padding id (a batch of one needs none)
            min_new_tokens=NEW_TOKENS,
        ),
    }
    tokens = {name: run() for name, run in runs.items()}  # also the warmup
    for name in ("no cache", "hf"):
        if not torch.equal(tokens["cache"], tokens[name]):
            raise AssertionError(
                f"generate(use_cache=True) and {name} produce different tokens "
                f"(greedy, same weights): {first_difference(tokens['cache'], tokens[name])}"
            )

    t = interleaved_medians(runs, repeats=1 if quick else 3, warmup=0)
    speed = {name: NEW_TOKENS / seconds for name, seconds in t.items()}
    same = f"all three produce the same {NEW_TOKENS} tokens"
    return [
        Result(
            "P3a",
            f"generate {NEW_TOKENS} tokens: KV cache vs no cache",
            t["no cache"] / t["cache"],
            CACHE_TARGET,
            f"cache {speed['cache']:.1f} tok/s, no cache {speed['no cache']:.1f} tok/s; {same}",
        ),
        Result(
            "P3b",
            f"generate {NEW_TOKENS} tokens: KV cache vs HF generate",
            t["hf"] / t["cache"],
            HF_TARGET,
            f"course {speed['cache']:.1f} tok/s, HF {speed['hf']:.1f} tok/s",
        ),
    ]


if __name__ == "__main__":
    run_script(main, quick_help="one timed run instead of three: a smoke run, noisier")
