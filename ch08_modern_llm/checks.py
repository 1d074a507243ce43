"""Self-checks for the chapter 8 exercises (used by modern_llm.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off, and never raises on a
wrong answer. Expected answers come from the chapter's own code (``rope_tables``/``apply_rope``,
``LlamaConfig``, ``render_chat``), not from stored numbers.
"""

import torch

from ch08_modern_llm.modern_llm import SMOLLM2_135M, apply_rope, rope_tables
from shared import LlamaConfig, render_chat
from shared.exercises import NOT_ANSWERED, call_answer, call_safely, not_a_function, not_answered


def _rope(x, position, base, direction=1):
    cos, sin = rope_tables(x.shape[-1], position + 1, base)
    return apply_rope(x, cos[position].double(), direction * sin[position].double())


def check_exercise_1(my_rope):
    """``my_rope(x, position, base)`` rotates feature pairs (i, i + d/2) by position * base^(-2i/d)."""
    if not_a_function(my_rope, "my_rope(x, position, base)"):
        return
    generator = torch.Generator().manual_seed(0)
    for shape, position, base in [
        ((8,), 1, 10_000.0),
        ((2, 3, 16), 5, 10_000.0),
        ((64,), 1000, 100_000.0),
        ((4, 64), 0, 500.0),
    ]:
        x = torch.randn(*shape, generator=generator, dtype=torch.float64)
        ok, got = call_answer(my_rope, x.clone(), position, base, message=NOT_ANSWERED)
        if not ok:
            return
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            print(f"Return a tensor of the input's shape {tuple(x.shape)}.")
            return
        expected = _rope(x, position, base)
        # rope_tables computes the angles in float32: at position 1000 they carry errors of ~1e-4.
        if torch.allclose(got.double(), expected, atol=1e-3):
            continue
        d = x.shape[-1]
        halves = _rope(torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1), position, base)  # pairs (2i, 2i + 1)
        adjacent_answer = torch.stack([halves[..., : d // 2], halves[..., d // 2 :]], dim=-1).reshape(shape)
        if torch.allclose(got.double(), adjacent_answer, atol=1e-3):
            print(
                "You rotate neighbouring features (0, 1), (2, 3), ...: this chapter pairs feature i with "
                'feature i + d/2 ("rotate half"), as Hugging Face\'s Llama does.'
            )
        elif torch.allclose(got.double(), _rope(x, position, base, direction=-1), atol=1e-3):
            print("You rotate in the wrong direction: the sine term has the wrong sign.")
        elif position == 0:
            print("At position 0 nothing should turn: the output must equal x.")
        else:
            print(
                f"For x of shape {tuple(shape)} at position {position} (base {base}) the result is off: "
                "pair i turns by position * base ** (-2 * i / d), for i = 0 .. d/2 - 1."
            )
        return
    print("Correct!")


def check_exercise_2(kv_cache_bytes):
    """Bytes of all layers' keys and values for one sequence."""
    if not_a_function(kv_cache_bytes, "kv_cache_bytes(config, num_tokens, bytes_per_value=2)"):
        return
    configs = [
        SMOLLM2_135M,
        LlamaConfig(emb_dim=64, n_layers=2, n_heads=8, n_kv_heads=2),
        LlamaConfig(emb_dim=64, n_layers=3, n_heads=4, n_kv_heads=4),
    ]
    for config in configs:
        for num_tokens, bytes_per_value in [(8192, 2), (100, 4)]:
            ok, got = call_answer(kv_cache_bytes, config, num_tokens, bytes_per_value, message=NOT_ANSWERED)
            if not ok:
                return
            per_token = config.n_layers * config.n_kv_heads * config.head_dim * bytes_per_value
            expected = 2 * per_token * num_tokens
            if got == expected:
                continue
            if config.n_heads != config.n_kv_heads and got == expected * config.n_heads // config.n_kv_heads:
                print("That is multi-head attention's cache: only the n_kv_heads key/value heads are stored.")
            elif got * 2 == expected:
                print("Keys *and* values are stored: count both.")
            else:
                print(
                    f"For n_layers={config.n_layers}, n_kv_heads={config.n_kv_heads}, head_dim="
                    f"{config.head_dim}, {num_tokens} tokens, {bytes_per_value} bytes per value: "
                    f"expected {expected:,}, got {got!r}."
                )
            return
    ok, default = call_safely(kv_cache_bytes, SMOLLM2_135M, 8192)
    if ok and default != kv_cache_bytes(SMOLLM2_135M, 8192, 2):
        print("Almost: the default bytes_per_value should be 2 (bfloat16), the dtype SmolLM2 is served in.")
    elif ok:
        print(f"Correct! SmolLM2 at 8,192 tokens in bfloat16: {default / 2**20:.0f} MiB.")


PIRATE = "You are a pirate. Answer like one."
QUESTION = "Where is the treasure?"


def check_exercise_3(messages, template):
    """Messages whose rendered prompt has the pirate system prompt instead of the default one."""
    if not_answered(messages):
        return
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        print('Give a list of dicts, e.g. [{"role": "system", "content": "..."}, ...].')
        return
    ok, prompt = call_safely(render_chat, template, messages)
    if not ok:
        return
    if "SmolLM" in prompt:
        print(
            "The default system prompt is still there: a template adds it only when the first message "
            "is not a system message. Put a system message first."
        )
    elif f"<|im_start|>system\n{PIRATE}<|im_end|>" not in prompt:
        print(f"The system message should be exactly {PIRATE!r}.")
    elif f"<|im_start|>user\n{QUESTION}<|im_end|>" not in prompt:
        print(f"Ask {QUESTION!r} as a user message after the system message.")
    elif prompt.count("<|im_start|>") != 3:
        print("Use exactly two messages: the system prompt and the question.")
    else:
        print("Correct!")
