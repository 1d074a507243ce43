"""Self-checks for the chapter 2 exercises (used by tokenization.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check never
raises on a wrong answer: it calls the reader's code through ``call_safely``, checks the
type of what comes back, and explains, so the reader can try again. The expected answers
come from the course's own code (``GPTDataset``, ``BPETokenizer``, tiktoken), not from
stored numbers.
"""

import math
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import torch

from shared import BPETokenizer, GPTDataset, gpt2_encoding
from shared.exercises import call_safely, is_integer, is_number, names_used, not_a_function, not_answered


def check_exercise_1(num_windows):
    """``num_windows(n_tokens, context_length, stride)`` == len(GPTDataset(...)), without building one."""
    if not_a_function(num_windows, "num_windows(n_tokens, context_length, stride)"):
        return
    if shortcut := sorted({"GPTDataset", "create_dataloader"} & names_used(num_windows)):
        print(
            f"Not yet: your function uses {', '.join(shortcut)}, which counts the windows for you. "
            "Derive the count from 'window k starts at k * stride and needs context_length + 1 tokens'."
        )
        return
    cases = [
        (5, 4, 1),
        (6, 4, 1),
        (100, 4, 4),
        (101, 4, 4),
        (102, 4, 4),
        (20, 4, 6),
        (1000, 256, 128),
        (257, 256, 1),
        (5145, 4, 4),
    ]
    for n_tokens, context_length, stride in cases:
        expected = len(GPTDataset(list(range(n_tokens)), context_length=context_length, stride=stride))
        ok, got = call_safely(num_windows, n_tokens, context_length, stride)
        if not ok or not_answered(got):
            return
        if not is_integer(got):
            print(
                f"Not yet: num_windows({n_tokens}, {context_length}, {stride}) returned "
                f"{type(got).__name__} {got!r}; a number of windows is an int (use // for the division)."
            )
            return
        if got != expected:
            print(
                f"Not yet: num_windows({n_tokens}, {context_length}, {stride}) returned {got}, but GPTDataset "
                f"makes {expected} windows. Which start positions k * stride still leave "
                "context_length + 1 tokens?"
            )
            return
    print("Correct!")


def _most_frequent_pair(ids: list[int]) -> tuple[int, int]:
    """The reference: overlapping pairs counted, ties to the smallest (left, right)."""
    counts = Counter(zip(ids, ids[1:]))
    return min(counts, key=lambda pair: (-counts[pair], pair))


def check_exercise_2(most_frequent_pair):
    """``most_frequent_pair(ids)``: the most frequent neighbouring pair, ties to the smallest pair."""
    if not_a_function(most_frequent_pair, "most_frequent_pair(ids)"):
        return
    # ties where the first pair seen is not the smallest; overlaps (5 5 5); ids above 255, as after merges
    cases = [
        [1, 2, 3, 1, 2],
        [5, 5, 5, 7, 5],
        [9, 4, 1, 2],
        [3, 3, 3, 3, 2, 3, 2, 3],
        list(b"aaabdaaabac"),
        [300, 7, 256, 300, 7, 256, 256, 300],
        [2, 1, 2, 1, 1, 2],
    ]
    for ids in cases:
        expected = _most_frequent_pair(ids)
        ok, got = call_safely(most_frequent_pair, list(ids))
        if not ok or not_answered(got):
            return
        if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(is_integer(i) for i in got)):
            print(
                f"Not yet: for {ids} your function returned {got!r}; return the pair itself, "
                "a tuple of two ids such as (97, 97)."
            )
            return
        if tuple(got) != expected:
            print(
                f"Not yet: for {ids} you gave {tuple(got)}, expected {expected}. Count every neighbouring "
                "position (overlaps too), and break ties by the smallest (left, right), not by the "
                "pair seen first."
            )
            return
    print("Correct!")


def check_exercise_3(merges):
    """The bytes of the first three merges learned from "low lower lowest"."""
    if not_answered(merges):
        return
    if not isinstance(merges, (list, tuple)) or not all(isinstance(m, (bytes, str)) for m in merges):
        print('Not yet: give a list of three tokens, each as bytes (b"..") or as a string.')
        return
    if len(merges) != 3:
        print(f"Not yet: give exactly three merges, got {len(merges)}.")
        return
    tokenizer = BPETokenizer().train("low lower lowest", vocab_size=256 + 3)
    expected = [tokenizer.vocab[256 + i] for i in range(3)]
    merges = [m.encode("utf-8") if isinstance(m, str) else m for m in merges]
    if merges == expected:
        print("Correct!")
        return
    wrong = next(i for i in range(3) if merges[i] != expected[i])
    print(
        f"Not yet: merge {wrong + 1} is off (you gave {merges[wrong]!r}). Recount the pairs inside 'low', "
        "' lower', ' lowest' after the earlier merges; the space belongs to the word after it, and ties "
        "go to the pair with the smallest ids (byte values)."
    )


# Operations that read rows of the weight directly: the exercise asks for a matrix product instead.
_INDEXING = {
    "__getitem__",
    "index_select",
    "embedding",
    "gather",
    "take",
    "take_along_dim",
    "select",
    "narrow",
    "unbind",
    "split",
    "chunk",
    "tolist",
    "numpy",
    "__iter__",
    "masked_select",
    "__index__",
    "item",
}
_PRODUCTS = {
    "__matmul__",
    "__rmatmul__",
    "matmul",
    "mm",
    "bmm",
    "einsum",
    "tensordot",
    "linear",
    "mv",
    "addmm",
    "baddbmm",
    "inner",
    "dot",
}


def _watched(weight: torch.Tensor, calls: list) -> torch.Tensor:
    """``weight`` as a tensor that records the name of every torch operation applied to it."""

    class Watched(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            calls.append(getattr(func, "__name__", str(func)))
            return super().__torch_function__(func, types, args, kwargs or {})

    return weight.as_subclass(Watched)


def check_exercise_4(embed_with_one_hot):
    """``embed_with_one_hot(ids, weight)`` equals an embedding lookup, computed by a one-hot matrix product."""
    if not_a_function(embed_with_one_hot, "embed_with_one_hot(ids, weight)"):
        return
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(10, 5, generator=generator)
    # the second batch never uses the last rows: a one-hot as long as max(ids) + 1 is too short for weight
    for ids in [torch.randint(0, 10, (3, 4), generator=generator), torch.tensor([[0, 6, 2], [3, 3, 1]])]:
        if not _check_embedding(embed_with_one_hot, ids, weight):
            return
    print("Correct!")


def _check_embedding(embed_with_one_hot, ids, weight) -> bool:
    """True if ``embed_with_one_hot(ids, weight)`` is right; otherwise prints what is off."""
    expected = torch.nn.functional.embedding(ids, weight)
    calls = []
    ok, got = call_safely(embed_with_one_hot, ids, _watched(weight, calls))
    calls = list(calls)  # what the reader's function did, before we touch its result
    if not ok or not_answered(got):
        return False
    if not isinstance(got, torch.Tensor):
        print(f"Not yet: return a tensor, not {type(got).__name__}.")
        return False
    got = got.as_subclass(torch.Tensor).detach()
    if indexing := sorted(_INDEXING & set(calls)):
        print(
            f"Not yet: your function reads rows of weight directly ({', '.join(indexing)}). The exercise asks "
            "for a one-hot matrix times weight, with no indexing into weight."
        )
    elif not _PRODUCTS & set(calls):
        print(
            "Not yet: weight never enters a matrix product. Build the one-hot vectors and multiply them "
            "by weight (the @ operator)."
        )
    elif tuple(got.shape) != tuple(expected.shape):
        print(
            f"Not yet: for ids of shape {tuple(ids.shape)} expected shape {tuple(expected.shape)}, "
            f"got {tuple(got.shape)}."
        )
    elif not got.is_floating_point() or not torch.allclose(got.float(), expected, atol=1e-6):
        print(
            "Not yet: the shape is right but the values differ from the lookup. Is the one-hot "
            "vector as long as the vocabulary (weight.shape[0]) and of a float dtype?"
        )
    else:
        return True
    return False


def check_exercise_5(token_pieces):
    """``token_pieces(text)``: the text of each of GPT-2's tokens for ``text``, one string per token id."""
    if not_a_function(token_pieces, "token_pieces(text)"):
        return
    gpt2 = gpt2_encoding()
    for text in ["Akwirw ier", "Zorblingtonian tea!", "someunknownPlace", "  x3.14 Qwerty"]:
        expected = [gpt2.decode([i]) for i in gpt2.encode(text)]
        ok, got = call_safely(token_pieces, text)
        if not ok or not_answered(got):
            return
        if not isinstance(got, (list, tuple)) or not all(isinstance(piece, str) for piece in got):
            print(
                f"Not yet: for {text!r} your function returned {got!r}; return a list of strings, "
                "one per token (decode each id on its own)."
            )
            return
        if list(got) != expected:
            print(
                f"Not yet: for {text!r} you gave {list(got)}, but GPT-2's {len(expected)} tokens are "
                f"{expected}. Encode the text with gpt2.encode, then decode each id on its own."
            )
            return
        if "".join(got) != text:
            print(f"Not yet: the pieces of {text!r} do not join back into the text.")
            return
    print("Correct!")


# The Korean catalogues the corpus of exercise 6 is read from, in this order. Not chapter 2's own: its
# solutions quote the exercise's results, so the numbers would depend on themselves.
KOREAN_TRAINING_PART = [
    "ch01_intro/intro.md",
    "ch01_intro/solutions.md",
    "ch03_attention/attention.md",
    "ch03_attention/solutions.md",
]
KOREAN_HELD_OUT_PART = ["ch04_gpt_model/gpt_model.md", "ch04_gpt_model/solutions.md"]
KOREAN_CATALOGUES = Path(__file__).resolve().parent.parent / "translations" / "ko"


def korean_prose(catalogue: str) -> str:
    """The Korean prose of one translation catalogue: entry headers, comments and code removed.

    Code (fenced blocks and `inline` spans) is the same in both languages, so it is left out.
    """
    path = KOREAN_CATALOGUES / catalogue
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the Korean catalogues come with the course repository "
            "(translations/ko/); run from a full clone of it"
        )
    text = re.sub(r"^```.*?^```[^\n]*$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    lines = [line for line in text.splitlines() if not line.startswith(("=== cell ", "<!--"))]
    return re.sub(r"`[^`\n]*`", "", "\n".join(lines)).strip() + "\n"


@lru_cache(maxsize=1)
def korean_course_text() -> tuple[str, str]:
    """(training part, held-out part): the course's own Korean prose, for exercise 6.

    Training part: the catalogues of chapters 1 and 3; held-out part: chapter 4's
    (``KOREAN_TRAINING_PART``, ``KOREAN_HELD_OUT_PART``, in that order).
    """
    return tuple("".join(korean_prose(name) for name in part) for part in (KOREAN_TRAINING_PART, KOREAN_HELD_OUT_PART))


def _hangul_syllables(text: str) -> int:
    """How many precomposed Hangul syllables (U+AC00 '가' .. U+D7A3 '힣') ``text`` holds."""
    return sum("\uac00" <= char <= "\ud7a3" for char in text)


def _tokens_per_syllable(tokenizer, text: str) -> float:
    """The reference: tokens of ``text`` divided by its Hangul syllables."""
    return len(tokenizer.encode(text)) / _hangul_syllables(text)


@lru_cache(maxsize=8)
def _korean_merges(part: int, num_merges: int):
    """The merges chapter 2's trainer learns from part 0 (training) or 1 (held-out) of the corpus, or None."""
    try:
        return BPETokenizer().train(korean_course_text()[part], vocab_size=256 + num_merges).merges
    except ValueError:  # that part allows fewer merges
        return None


def _is_real(value) -> bool:
    return is_number(value) and math.isfinite(value)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


# Texts with spaces, punctuation, Latin letters, digits and Hangul letters (jamo: ㅋ, ㅎ), which are not syllables.
_RATIO_TEXTS = ["한국어 토큰화, 어렵지 않아요!", "GPT-2는 ㅋㅋ 웃는다 :) ㅎㅎ", "바이트 3개 = 1음절 (UTF-8)"]


def _check_ratio_function(tokens_per_syllable) -> bool:
    """True if ``tokens_per_syllable(tokenizer, text)`` is right; otherwise prints what is off."""
    for tokenizer in [BPETokenizer(), gpt2_encoding()]:
        for text in _RATIO_TEXTS:
            n_tokens, syllables = len(tokenizer.encode(text)), _hangul_syllables(text)
            ok, got = call_safely(tokens_per_syllable, tokenizer, text)
            if not ok or not_answered(got):
                return False
            if not _is_real(got):
                print(
                    f"Not yet: for {text!r} your function returned {type(got).__name__} {got!r}; "
                    "return the ratio as a number (a float)."
                )
                return False
            if _close(got, n_tokens / syllables):
                continue
            wrong = {
                len(text): "counts every character (spaces, punctuation, Latin letters too)",
                len(text.replace(" ", "")): "counts every character except spaces",
                len(text.encode("utf-8")): "divides by the UTF-8 bytes: that is tokens per byte",
            }
            slip = next((why for count, why in wrong.items() if _close(got, n_tokens / count)), None)
            if _close(got, syllables / n_tokens):
                slip = "is upside down: syllables per token"
            elif _close(got, n_tokens):
                slip = "returns the number of tokens, not divided by anything"
            print(
                f"Not yet: for {text!r} ({n_tokens} tokens, {syllables} Hangul syllables) your function "
                f"returned {got:.4f}, expected {n_tokens / syllables:.4f}."
                + (
                    f" Your ratio {slip}."
                    if slip
                    else " Count only the syllables U+AC00..U+D7A3 "
                    "('가' <= char <= '힣'), not jamo such as ㅋ, spaces or other characters."
                )
            )
            return False
    return True


def check_exercise_6(tokens_per_syllable, korean_bpe, gpt2_ratio, korean_ratio):
    """Tokens per Hangul syllable on the held-out Korean text: GPT-2's BPE against one trained on Korean.

    ``tokens_per_syllable(tokenizer, text)``: len(tokenizer.encode(text)) / Hangul syllables;
    ``korean_bpe``: a ``BPETokenizer`` trained on the training part; the two ratios measured
    with the function on the held-out part.
    """
    if not_a_function(tokens_per_syllable, "tokens_per_syllable(tokenizer, text)"):
        return
    if not _check_ratio_function(tokens_per_syllable) or not_answered(korean_bpe):
        return
    if not isinstance(korean_bpe, BPETokenizer) or len(korean_bpe.merges) < 100:
        print(
            "Not yet: korean_bpe should be a BPETokenizer trained on korean_train with a few hundred merges, "
            "e.g. BPETokenizer().train(korean_train, vocab_size=256 + 500)."
        )
        return
    num_merges = len(korean_bpe.merges)
    if korean_bpe.merges != _korean_merges(0, num_merges):
        where = (
            "the held-out part: the test text must be text it never saw"
            if korean_bpe.merges == _korean_merges(1, num_merges)
            else "something other than korean_train"
        )
        print(
            f"Not yet: korean_bpe was trained on {where}. Train it with "
            f"BPETokenizer().train(korean_train, vocab_size={256 + num_merges})."
        )
        return
    train, held_out = korean_course_text()
    gpt2 = gpt2_encoding()
    expected = {
        "gpt2_ratio": _tokens_per_syllable(gpt2, held_out),
        "korean_ratio": _tokens_per_syllable(korean_bpe, held_out),
    }
    on_train = {
        "gpt2_ratio": _tokens_per_syllable(gpt2, train),
        "korean_ratio": _tokens_per_syllable(korean_bpe, train),
    }
    for name, got in [("gpt2_ratio", gpt2_ratio), ("korean_ratio", korean_ratio)]:
        if not_answered(got):
            return
        if not _is_real(got):
            print(
                f"Not yet: {name} should be a number, tokens_per_syllable(..., korean_held_out), "
                f"not {type(got).__name__}."
            )
            return
        if _close(got, expected[name]):
            continue
        if _close(got, on_train[name]):
            print(
                f"Not yet: {name} was measured on korean_train. Measure on korean_held_out: on its own "
                "training text a tokenizer looks better than on new text."
            )
        elif _close(got, expected["korean_ratio" if name == "gpt2_ratio" else "gpt2_ratio"]):
            print("Not yet: gpt2_ratio and korean_ratio are swapped.")
        else:
            print(
                f"Not yet: {name} is {got}; measure it with tokens_per_syllable(tokenizer, korean_held_out) "
                "and give the number unrounded."
            )
        return
    print("Correct!")
