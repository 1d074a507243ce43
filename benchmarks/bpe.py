"""P4: the chapter-2 BPE tokenizer written in Python, against tiktoken (Rust), on Tiny Shakespeare.

P4a: encode throughput of ``BPETokenizer.from_gpt2()`` as a ratio of tiktoken's ``gpt2``
     (tiktoken time / ours). Each of our runs starts from a fresh tokenizer, so its
     per-pre-token cache starts empty (a cold encode; a warm one is printed for
     information). Both must produce identical ids. Target: >= 0.1x.
P4b: training 1,000 merges (``BPETokenizer().train``, vocab 256 + 1,000) on all of Tiny
     Shakespeare. Target: <= 10 s on a 2-core CPU, reported as 10 s / measured time
     (so >= 1.0x passes).

Run: python benchmarks/bpe.py
"""

import statistics
import time

from common import Result, interleaved_medians, run_script

from shared import BPETokenizer, fetch, gpt2_encoding

ENCODE_TARGET = 0.1
TRAIN_MERGES, TRAIN_BUDGET_S = 1000, 10.0


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(repeats: int = 3) -> list:
    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    reference = gpt2_encoding()
    expected = reference.encode(text)
    tokenizers = [BPETokenizer.from_gpt2() for _ in range(repeats + 1)]  # one per cold run
    if tokenizers[0].encode(text) != expected:
        raise AssertionError("BPETokenizer.from_gpt2() does not reproduce tiktoken on Tiny Shakespeare")

    cold = [timed(lambda tok=tok: tok.encode(text)) for tok in tokenizers[1:]]
    t = interleaved_medians(
        {"tiktoken": lambda: reference.encode(text), "warm": lambda: tokenizers[0].encode(text)}, repeats=repeats
    )
    ours = statistics.median(cold)
    tokens = len(expected)
    encode = Result(
        "P4a",
        "BPETokenizer.encode vs tiktoken gpt2 (Tiny Shakespeare)",
        t["tiktoken"] / ours,
        ENCODE_TARGET,
        f"cold {tokens / ours:,.0f} tok/s, warm {tokens / t['warm']:,.0f} tok/s, "
        f"tiktoken {tokens / t['tiktoken']:,.0f} tok/s",
    )

    train_s = timed(lambda: BPETokenizer().train(text, vocab_size=256 + TRAIN_MERGES))
    train = Result(
        "P4b",
        f"BPETokenizer.train {TRAIN_MERGES:,} merges within {TRAIN_BUDGET_S:g} s",
        TRAIN_BUDGET_S / train_s,
        1.0,
        f"{train_s:.2f} s",
    )
    return [encode, train]


if __name__ == "__main__":
    run_script(main)
