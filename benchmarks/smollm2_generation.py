"""P8: SmolLM2-135M-Instruct generation with chapter 8's LlamaModel vs Hugging Face, batch of one.

Both models hold the same weights: chapter 8's loader and ``transformers`` each read the
SmolLM2 GGUF file from the data registry (``transformers`` needs the ``gguf`` package). The
prompt is the chat template applied to one question; each model extends it greedily by the same
number of new tokens, in this process:
    course:        ``generate(model, prompt, NEW_TOKENS, context_size=512, use_cache=True)``
                   (chapter 5's generate and KVCache)
    Hugging Face:  ``LlamaForCausalLM.generate(prompt, max_new_tokens=NEW_TOKENS, do_sample=False,
                   min_new_tokens=NEW_TOKENS)``
The course's tokens must equal Hugging Face's (checked before timing), then each is timed in turn.

P8: ratio HF time / course time. Target: >= 1.0x.

Run: python benchmarks/smollm2_generation.py [--quick]   (--quick: one timed run instead of three)
"""

import torch
from common import Result, interleaved_medians, run_script

from shared import fetch, generate, load_smollm2

NEW_TOKENS = 100
TARGET = 1.0
QUESTION = "Write a short story about a robot who learns to paint."


def main(quick: bool = False) -> list:
    from transformers import AutoModelForCausalLM

    smol = load_smollm2()
    path = fetch("smollm2-135m-instruct")
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    prompt = torch.tensor([smol.prompt_ids([{"role": "user", "content": QUESTION}])])  # (1, prompt_tokens)

    def course():
        return generate(smol.model, prompt, NEW_TOKENS, context_size=512, use_cache=True)

    def huggingface():
        with torch.no_grad():
            return hf.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS,
                do_sample=False,
                pad_token_id=smol.eos_id,
            )

    ours, theirs = course(), huggingface()  # also the warmup
    # min_new_tokens forbids the end-of-text token for HF only, so compare up to the first one.
    new_ours, new_theirs = ours[0, prompt.shape[1] :].tolist(), theirs[0, prompt.shape[1] :].tolist()
    end = new_ours.index(smol.eos_id) if smol.eos_id in new_ours else NEW_TOKENS
    if new_ours[:end] != new_theirs[:end]:
        raise AssertionError("the course model and transformers generate different tokens from the same weights")

    t = interleaved_medians({"course": course, "hf": huggingface}, repeats=1 if quick else 3, warmup=0)
    speed = {name: NEW_TOKENS / seconds for name, seconds in t.items()}
    title = f"SmolLM2-135M: generate {NEW_TOKENS} tokens, course vs HF generate"
    note = f"course {speed['course']:.1f} tok/s, HF {speed['hf']:.1f} tok/s; same tokens"
    return [Result("P8", title, t["hf"] / t["course"], TARGET, note)]


if __name__ == "__main__":
    run_script(main, quick_help="one timed run instead of three: a smoke run, noisier")
