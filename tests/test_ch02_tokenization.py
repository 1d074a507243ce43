"""Chapter 2: tokenizers, byte-level BPE, the sliding-window data set (the specification).

Token ids are integers, so every comparison here is exact: no tolerances. Reference
results come from tiktoken (GPT-2's tokenizer), from merges derived by hand in the
comments, or from deliberately naive re-implementations of the same definitions.
"""

import json
import re
from collections import Counter

import pytest
import tiktoken
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ch02_tokenization.tokenization import (
    GPT2_SPLIT_PATTERN,
    LETTER_RANGES,
    NUMBER_RANGES,
    SPACE_RANGES,
    bpe_encode_piece,
    class_body,
    gpt2_byte_alphabet,
    learn_merges,
    merge_pair,
    pretokenize,
    repair_surrogates,
)
from shared import (
    BPETokenizer,
    GPTDataset,
    SimpleTokenizerV1,
    SimpleTokenizerV2,
    create_dataloader,
    fetch,
    gpt2_encoding,
    set_seed,
)

EOT = "<|endoftext|>"

# Text chosen to be hard for a tokenizer: Korean, emoji (a ZWJ family, a flag, skin tone),
# code with tabs, runs of spaces and newlines (leading, inner, trailing), CRLF, contractions
# (lower and upper case), digits, accents, and symbol runs.
MIXED = (
    "  안녕하세요, 세계! 나는 언어 모델을 만든다.\n\n\n"
    "Emoji: 🙂 👨‍👩‍👧 🇰🇷 👍🏽!!\n"
    "def f(x):\n\treturn x ** 2  # square\n    \n"
    "I'll say they're DON'T won't it's 'quoted' \"double\"\r\n"
    "Numbers 1234567890 3.14159 and    spaces   \t\t tabs\n"
    "naïve café — “curly” … ＦＵＬＬ ｗｉｄｔｈ\n\n   "
)


@pytest.fixture(scope="module")
def gpt2():
    return gpt2_encoding()


@pytest.fixture(scope="module")
def gpt2_bpe():
    return BPETokenizer.from_gpt2()


@pytest.fixture(scope="module")
def verdict():
    return fetch("the-verdict").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def small_bpe(verdict):
    return BPETokenizer().train(verdict, vocab_size=300, special_tokens=[EOT])


# --- word tokenizers ---------------------------------------------------------------------------


def test_simple_tokenizer_v1_round_trips_the_tokens(verdict):
    vocab = {token: i for i, token in enumerate(sorted(set(SimpleTokenizerV1.split(verdict))))}
    tokenizer = SimpleTokenizerV1(vocab)
    passage = '"The height of his glory"--that was what the women called it. (Though I didn\'t.)'
    ids = tokenizer.encode(passage)
    assert [tokenizer.id_to_str[i] for i in ids] == SimpleTokenizerV1.split(passage)
    assert SimpleTokenizerV1.split(tokenizer.decode(ids)) == SimpleTokenizerV1.split(passage)
    assert (
        tokenizer.decode(tokenizer.encode("it was no great surprise, (Though I) thought--so."))
        == "it was no great surprise, (Though I) thought--so."
    )


def test_simple_tokenizer_v1_names_the_unknown_word():
    tokenizer = SimpleTokenizerV1({"the": 0, ".": 1})
    with pytest.raises(ValueError, match="'tea' is not in the vocabulary"):
        tokenizer.encode("the tea.")


def test_simple_tokenizer_v2_maps_unknown_words_and_keeps_endoftext():
    vocab = {"Hello": 0, ",": 1, "world": 2, "<|endoftext|>": 3, "<|unk|>": 4}
    tokenizer = SimpleTokenizerV2(vocab)
    assert tokenizer.encode("Hello, tea <|endoftext|> world") == [0, 1, 4, 3, 2]
    assert tokenizer.decode([0, 1, 4, 3, 2]) == "Hello, <|unk|> <|endoftext|> world"


def test_simple_tokenizer_v2_requires_its_special_tokens():
    with pytest.raises(ValueError, match=r"<\|unk\|>"):
        SimpleTokenizerV2({"a": 0, "<|endoftext|>": 1})


# --- BPE: GPT-2's vocabulary reproduces tiktoken ------------------------------------------------


@pytest.mark.parametrize("name", ["the-verdict", "tinyshakespeare"])
def test_from_gpt2_equals_tiktoken_on_corpora(name, gpt2, gpt2_bpe):
    text = fetch(name).read_text(encoding="utf-8")
    ids = gpt2_bpe.encode(text)
    assert ids == gpt2.encode(text)
    assert gpt2_bpe.decode(ids) == text


@pytest.mark.parametrize("text", [MIXED, "", " ", "\n", "a", "   x", "x   ", "'s's'S", "1 2  3   4"])
def test_from_gpt2_equals_tiktoken_on_awkward_text(text, gpt2, gpt2_bpe):
    assert gpt2_bpe.encode(text) == gpt2.encode(text)
    assert gpt2_bpe.decode(gpt2_bpe.encode(text)) == text


@pytest.mark.parametrize("allowed", ["all", {EOT}])
def test_from_gpt2_allowed_special_equals_tiktoken(allowed, gpt2, gpt2_bpe):
    text = f"{EOT}{MIXED}{EOT}{EOT} next document{EOT}"
    ids = gpt2_bpe.encode(text, allowed_special=allowed)
    assert ids == gpt2.encode(text, allowed_special=allowed)
    assert ids.count(50256) == 4
    assert gpt2_bpe.decode(ids) == text


def test_disallowed_special_raises_like_tiktoken(gpt2, gpt2_bpe):
    text = f"one document{EOT}another"
    with pytest.raises(ValueError):
        gpt2.encode(text)
    with pytest.raises(ValueError, match=r"<\|endoftext\|>.*allowed_special"):
        gpt2_bpe.encode(text)
    as_text = gpt2_bpe.encode(text, disallowed_special=())
    assert as_text == gpt2.encode(text, disallowed_special=())
    assert 50256 not in as_text


def test_from_gpt2_vocabulary_equals_tiktoken(gpt2, gpt2_bpe):
    assert gpt2_bpe.vocab_size == gpt2.n_vocab == 50257
    assert gpt2_bpe.special_tokens == {EOT: 50256}
    assert all(gpt2_bpe.vocab[i] == gpt2.decode_single_token_bytes(i) for i in range(gpt2.n_vocab))


def test_gpt2_byte_alphabet_is_the_files_spelling():
    alphabet = gpt2_byte_alphabet()
    assert sorted(alphabet) == list(range(256))
    assert len(set(alphabet.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in alphabet.values())
    assert (alphabet[ord(" ")], alphabet[ord("\n")], alphabet[ord("a")]) == ("Ġ", "Ċ", "a")  # as in vocab.bpe


# Random Unicode text rarely contains the runs of spaces, contractions and digits that the
# pre-tokenizer treats specially, so a second strategy draws from an alphabet rich in them.
tricky_text = st.lists(st.sampled_from(list(" \n\t\r's12abAB,.-안녕🙂é") + ["'ll", "'re", "  ", EOT]), max_size=40).map(
    "".join
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(), tricky_text))
def test_round_trip_arbitrary_text(gpt2_bpe, small_bpe, text):
    for tokenizer in (gpt2_bpe, small_bpe):
        assert tokenizer.decode(tokenizer.encode(text, disallowed_special=())) == text
    assert "".join(pretokenize(text)) == text


# The Unicode tests below compare every code point; this one adds arbitrary mixtures of them.
@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(), tricky_text))
def test_from_gpt2_equals_tiktoken_on_arbitrary_text(gpt2, gpt2_bpe, text):
    assert gpt2_bpe.encode(text, disallowed_special=()) == gpt2.encode(text, disallowed_special=())


# --- BPE: every code point and surrogates, against tiktoken ----------------------------------------

ALL_CODE_POINTS = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


def tiktoken_class(pattern: str) -> str:
    r"""The code points that tiktoken's Rust regex engine matches with ``pattern``, a
    one-character class such as r"\p{L}", in order, as one string.

    tiktoken keeps only the text its pattern matches, so an encoding whose pattern is the class
    alone and whose tokens are the 256 bytes returns exactly the UTF-8 bytes of those code points.
    """
    probe = tiktoken.Encoding(
        name="class-probe", pat_str=pattern, mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={}
    )
    return bytes(probe.encode_ordinary(ALL_CODE_POINTS)).decode("utf-8")


def tiktoken_class_ranges(pattern: str) -> str:
    """``tiktoken_class(pattern)`` as hex ranges in the format of LETTER_RANGES.

    Run it to regenerate the tables when tiktoken's Unicode version changes.
    """
    runs = []
    for cp in map(ord, tiktoken_class(pattern)):
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return " ".join(f"{a:x}" if a == b else f"{a:x}-{b:x}" for a, b in runs)


@pytest.mark.parametrize(
    "ranges, pattern", [(LETTER_RANGES, r"\p{L}"), (NUMBER_RANGES, r"\p{N}"), (SPACE_RANGES, r"\s")]
)
def test_unicode_classes_are_tiktokens(ranges, pattern):
    expected = tiktoken_class_ranges(pattern)
    assert " ".join(ranges.split()) == expected, f"regenerate the table for {pattern}: tiktoken now has {expected}"
    # the character class that Python's re builds from the table matches exactly those characters
    assert "".join(re.findall(f"[{class_body(ranges)}]", ALL_CODE_POINTS)) == tiktoken_class(pattern)


def code_point_probes(cp: int) -> str:
    """Two contexts in which the class of chr(cp) decides the pre-tokens, and so the ids.

    In "a?'sb" a symbol swallows the apostrophe ("?'" + "sb"), while after a letter, a digit or
    a space "'s" stays one token. In "  ?x" a space joins the run of spaces before it ("  "
    + "?" + "x"), while anything else takes the second space ("␠" + "␠?").
    """
    c = chr(cp)
    return f"a{c}'sb\n  {c}x\n"


# Planes 0-3 and 14: every assigned character (planes 4-13 are unassigned, 15-16 private use).
ASSIGNED_PLANES = [cp for cp in (*range(0x40000), *range(0xE0000, 0xE1000)) if not 0xD800 <= cp <= 0xDFFF]


def test_from_gpt2_equals_tiktoken_on_every_code_point(gpt2, gpt2_bpe):
    tokenizer = BPETokenizer(gpt2_bpe.merges, gpt2_bpe.special_tokens, gpt2_bpe.byte_order)  # keep the shared cache
    for start in range(0, len(ASSIGNED_PLANES), 4096):
        chunk = ASSIGNED_PLANES[start : start + 4096]
        text = "".join(map(code_point_probes, chunk))
        if tokenizer.encode(text) != gpt2.encode(text):
            differ = [
                f"U+{cp:04X}"
                for cp in chunk
                if tokenizer.encode(code_point_probes(cp)) != gpt2.encode(code_point_probes(cp))
            ]
            pytest.fail(f"{len(differ)} code points encode differently from tiktoken: {differ[:20]}")


def test_published_pattern_in_tiktokens_engine_equals_tiktoken(gpt2):
    """GPT2_SPLIT_PATTERN, the form the notebook explains, cuts like tiktoken's own form of it."""
    published = tiktoken.Encoding(
        name="gpt2-published", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=gpt2._mergeable_ranks, special_tokens={}
    )
    text = "".join(map(code_point_probes, ASSIGNED_PLANES)) + MIXED + " 'S'll \n\n x  \t 12"
    assert published.encode(text) == gpt2.encode(text)


def test_repair_surrogates_joins_pairs_and_replaces_lone_ones():
    assert repair_surrogates("plain 👍 text") == "plain 👍 text"
    assert repair_surrogates("\ud83d\udc4d") == "👍"
    assert repair_surrogates("a\ud83d b\udc4d") == "a\ufffd b\ufffd"
    assert repair_surrogates("\udc4d\ud83d") == "\ufffd\ufffd"  # low before high is no pair


@pytest.mark.parametrize(
    "text",
    [
        "\ud83d\udc4d",  # a pair: the UTF-16 spelling of 👍
        "\ud83d",  # a lone high surrogate
        "\udc4d",  # a lone low surrogate
        "I like it \ud83d\udc4d, alone \ud83d and \udc4d, x\udc4d\ud83dy, 'sb\ud83d's \ud83d\ud83d\udc4d 12",
    ],
)
def test_surrogates_are_repaired_like_tiktoken(text, gpt2, gpt2_bpe):
    ids = gpt2_bpe.encode(text)
    assert ids == gpt2.encode(text)
    assert gpt2_bpe.decode(ids) == gpt2.decode(ids) == repair_surrogates(text)
    assert gpt2_bpe.encode(f"{EOT}{text}{EOT}", allowed_special="all") == gpt2.encode(
        f"{EOT}{text}{EOT}", allowed_special="all"
    )


def test_surrogate_pair_is_the_character(gpt2, gpt2_bpe):
    assert gpt2_bpe.encode("\ud83d\udc4d") == gpt2_bpe.encode("👍") == gpt2.encode("👍")
    assert gpt2_bpe.encode("\ud83d") == gpt2_bpe.encode("\ufffd") == [gpt2.encode_single_token("\ufffd".encode())]


def test_training_repairs_surrogates():
    text = "ab\ud83d\udc4d ab\ud83d ab \udc4d\ud83d\udc4d " * 3
    tokenizer = BPETokenizer().train(text, vocab_size=265)
    assert tokenizer.merges == BPETokenizer().train(repair_surrogates(text), vocab_size=265).merges
    assert tokenizer.decode(tokenizer.encode(text)) == repair_surrogates(text)


high_surrogate = st.characters(categories=["Cs"], min_codepoint=0xD800, max_codepoint=0xDBFF)
low_surrogate = st.characters(categories=["Cs"], min_codepoint=0xDC00, max_codepoint=0xDFFF)
# lone surrogates, pairs and ordinary characters, mixed in equal shares
surrogate_text = st.lists(
    st.one_of(
        high_surrogate,
        low_surrogate,
        st.tuples(high_surrogate, low_surrogate).map("".join),
        st.characters(),
        st.sampled_from(" 'sa1\n"),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(surrogate_text)
def test_text_with_surrogates_equals_tiktoken(gpt2, gpt2_bpe, text):
    ids = gpt2_bpe.encode(text, disallowed_special=())
    assert ids == gpt2.encode(text, disallowed_special=())
    assert gpt2_bpe.decode(ids) == repair_surrogates(text)


def naive_rank_merge(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """The definition: merge the neighbouring pair of lowest rank (leftmost on ties), rescanning."""
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while True:
        candidates = [(ranks[a + b], i) for i, (a, b) in enumerate(zip(parts, parts[1:])) if a + b in ranks]
        if not candidates:
            return [ranks[p] for p in parts]
        _, i = min(candidates)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=40), st.text(alphabet=" ab0\n", max_size=40).map(str.encode)))
def test_heap_encoding_equals_the_rank_definition(gpt2_bpe, piece):
    assert bpe_encode_piece(piece, gpt2_bpe._ranks) == naive_rank_merge(piece, gpt2_bpe._ranks)


# --- BPE: training -----------------------------------------------------------------------------


def test_merge_pair_replaces_left_to_right_without_overlap():
    assert merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]
    assert merge_pair([1, 2, 3], (2, 1), 9) == [1, 2, 3]


def test_training_learns_the_hand_derived_merges():
    # "aaabdaaabac" is one pre-token. Pairs: aa 4, ab 2, bd 1, da 1, ba 1, ac 1 -> merge (a, a) = 256:
    # aa a b d aa a b a c. Now (aa, a) and (a, b) both occur twice; the tie goes to the smaller
    # ids (97, 98) -> 257: aa ab d aa ab a c. Then (aa, ab) occurs twice -> 258 = "aaab".
    tokenizer = BPETokenizer().train("aaabdaaabac", vocab_size=259)
    assert tokenizer.merges == [(97, 97), (97, 98), (256, 257)]
    assert [tokenizer.vocab[i] for i in (256, 257, 258)] == [b"aa", b"ab", b"aaab"]
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_merges_never_cross_pretoken_borders():
    # Pre-tokens "low", " lower", " lowest". Pairs: lo 3, ow 3, " l" 2, we 2, er/es/st 1.
    # Tie lo/ow -> (108, 111) "lo"; then (lo, w) 3 -> "low"; then " low" and "lowe" tie at 2,
    # (32, 257) < (257, 101) -> " low". A merge across the space ("w l") never happens.
    tokenizer = BPETokenizer().train("low lower lowest", vocab_size=259)
    assert [tokenizer.vocab[256 + i] for i in range(3)] == [b"lo", b"low", b" low"]
    # "ab ab ab": pre-tokens "ab", " ab", " ab" -> (a, b) 3 first, then (" ", ab) 2.
    assert BPETokenizer().train("ab ab ab", vocab_size=258).merges == [(97, 98), (32, 256)]


def naive_learn_merges(word_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """The definition: recount every pair over all words before each merge."""
    words = {tuple(word): count for word, count in word_counts.items()}
    merges = []
    for step in range(num_merges):
        counts = Counter()
        for ids, count in words.items():
            for pair in zip(ids, ids[1:]):
                counts[pair] += count
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        words = {tuple(merge_pair(list(ids), best, 256 + step)): count for ids, count in words.items()}
    return merges


def test_incremental_training_equals_full_recounts(verdict):
    word_counts = Counter(piece.encode("utf-8") for piece in pretokenize(verdict))
    assert learn_merges(word_counts, 150) == naive_learn_merges(word_counts, 150)


def test_special_tokens_only_separate_the_training_text():
    text = f"xy{EOT}" * 50
    # Split on the special token, the text is just "xy" 50 times: one merge is all it allows.
    tokenizer = BPETokenizer().train(text, vocab_size=258, special_tokens=[EOT])
    assert tokenizer.merges == [(120, 121)]
    assert tokenizer.special_tokens == {EOT: 257}
    assert tokenizer.encode(text, allowed_special="all") == [256, 257] * 50
    with pytest.raises(ValueError, match=r"only 1 merges.*at most 258, not 259"):
        BPETokenizer().train(text, vocab_size=259, special_tokens=[EOT])


def test_vocab_size_below_the_byte_tokens_is_an_error():
    with pytest.raises(ValueError, match="vocab_size=256 is too small.*257"):
        BPETokenizer().train("some text", vocab_size=256, special_tokens=[EOT])


def test_trained_tokenizer_round_trips_and_survives_save_load(small_bpe, verdict, tmp_path):
    text = verdict[:2000] + EOT + MIXED
    ids = small_bpe.encode(text, allowed_special="all")
    assert small_bpe.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8"))  # merges compress
    path = small_bpe.save(tmp_path / "sub" / "tok.json")
    assert [p.name for p in path.parent.iterdir()] == ["tok.json"]  # no temporary file left behind
    loaded = BPETokenizer.load(path)
    assert loaded.vocab == small_bpe.vocab
    assert loaded.special_tokens == small_bpe.special_tokens == {EOT: 299}
    assert loaded.encode(text, allowed_special="all") == ids


def test_from_gpt2_survives_save_load(gpt2_bpe, tmp_path):
    loaded = BPETokenizer.load(gpt2_bpe.save(tmp_path / "gpt2.json"))
    assert loaded.vocab == gpt2_bpe.vocab
    assert loaded.encode(MIXED) == gpt2_bpe.encode(MIXED)


def test_load_rejects_files_that_are_not_tokenizers(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"merges": []}))
    with pytest.raises(ValueError, match="not a BPETokenizer file"):
        BPETokenizer.load(other)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON file"):
        BPETokenizer.load(broken)


def test_bad_vocabularies_and_ids_are_errors(small_bpe):
    with pytest.raises(ValueError, match="no earlier token"):
        BPETokenizer(merges=[(97, 300)])
    with pytest.raises(ValueError, match="same bytes"):
        BPETokenizer(merges=[(97, 98), (97, 98)])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        small_bpe.decode([1, 300])
    with pytest.raises(ValueError, match="does not have"):
        small_bpe.encode("text", allowed_special={"<|im_start|>"})


# --- the sliding-window data set -----------------------------------------------------------------


def test_first_batch_of_the_verdict(verdict):
    loader = create_dataloader(verdict, batch_size=8, context_length=4, stride=4, shuffle=False)
    inputs, targets = next(iter(loader))
    assert inputs.shape == targets.shape == (8, 4)
    assert inputs.dtype == targets.dtype == torch.long
    assert inputs[0].tolist() == [40, 367, 2885, 1464]  # "I HAD always" in GPT-2 ids
    ids = gpt2_encoding().encode(verdict)
    for row in range(8):  # stride 4: window k starts at token 4k; targets are shifted by one
        assert inputs[row].tolist() == ids[4 * row : 4 * row + 4]
        assert targets[row].tolist() == ids[4 * row + 1 : 4 * row + 5]


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 5, 7, 256, 5000])
def test_window_count_and_content(stride, verdict):
    ids = gpt2_encoding().encode(verdict)
    dataset = GPTDataset(ids, context_length=4, stride=stride)
    starts = [s for s in range(0, len(ids), stride) if s + 4 + 1 <= len(ids)]  # each window needs 5 tokens
    assert len(dataset) == len(starts)
    for k in (0, len(dataset) - 1):
        inputs, targets = dataset[k]
        assert inputs.tolist() == ids[starts[k] : starts[k] + 4]
        assert targets.tolist() == ids[starts[k] + 1 : starts[k] + 5]
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_text_and_token_ids_give_the_same_dataset(verdict, small_bpe):
    from_text = GPTDataset(verdict, context_length=8, stride=3)
    from_ids = GPTDataset(torch.tensor(gpt2_encoding().encode(verdict)), context_length=8, stride=3)
    assert torch.equal(from_text.token_ids, from_ids.token_ids)
    custom = GPTDataset(verdict, context_length=8, stride=3, tokenizer=small_bpe)
    assert custom.token_ids.tolist() == small_bpe.encode(verdict)


def test_endoftext_in_the_training_text_is_the_special_token():
    dataset = GPTDataset(f"First document.{EOT}Second document.", context_length=2, stride=1)
    assert 50256 in dataset.token_ids.tolist()


def test_shuffling_is_reproducible_with_a_seed(verdict):
    def first_batch():
        set_seed(123)
        return next(iter(create_dataloader(verdict, batch_size=4, context_length=8, stride=8)))[0]

    assert torch.equal(first_batch(), first_batch())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(context_length=256, stride=1), r"has 5 tokens.*context_length \+ 1 = 257"),
        (dict(context_length=4, stride=0), "stride must be at least 1"),
        (dict(context_length=0, stride=1), "context_length must be at least 1"),
    ],
)
def test_bad_windows_are_errors_that_give_the_numbers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GPTDataset("A very short text.", **kwargs)  # 5 GPT-2 tokens


def test_a_text_too_short_for_one_batch_is_an_error():
    text = "A very short text."  # 5 tokens -> 4 windows of 1 token
    with pytest.raises(ValueError, match="only 4 windows, fewer than batch_size=8"):
        create_dataloader(text, batch_size=8, context_length=1, stride=1)
    loader = create_dataloader(text, batch_size=8, context_length=1, stride=1, drop_last=False, shuffle=False)
    assert [inputs.shape for inputs, _ in loader] == [(4, 1)]


# --- the exercise checks: each rejects typical wrong answers and shortcuts, and passes the solution ---

from ch02_tokenization import checks  # noqa: E402


def check_says(capsys, check, answer) -> str:
    """What ``check(answer)`` prints; it must never raise."""
    check(answer)
    return capsys.readouterr().out


def correct(n_tokens, context_length, stride):
    return (n_tokens - context_length - 1) // stride + 1


@pytest.mark.parametrize(
    "answer, expected",
    [
        (correct, "Correct!"),
        (lambda n, c, s: len(range(0, n - c, s)), "Correct!"),  # counting the start positions is a derivation too
        (None, "Not answered"),
        (lambda n, c, s: None, "Not answered"),
        (42, "function itself"),
        (lambda n, c, s: (n - c) // s, "Not yet"),  # forgets the target token after the window
        (lambda n, c, s: (n - c - 1) // s, "Not yet"),  # forgets window 0
        (lambda n, c, s: n // s, "Not yet"),
        (lambda n, c, s: (n - c - 1) / s + 1, "is an int"),  # true division
        (lambda n, c, s: 1 / 0, "raised ZeroDivisionError"),
        (lambda n, c, s: len(GPTDataset(list(range(n)), c, s)), "uses GPTDataset"),  # the shortcut
        (
            lambda n, c, s: len(create_dataloader(list(range(n)), 1, c, s, drop_last=False).dataset),
            "uses create_dataloader",
        ),
    ],
)
def test_check_exercise_1(capsys, answer, expected):
    out = check_says(capsys, checks.check_exercise_1, answer)
    assert expected in out and ("Correct!" in out) == (expected == "Correct!")


def most_frequent_pair_solution(ids):
    counts = Counter(zip(ids, ids[1:]))
    return min(counts, key=lambda pair: (-counts[pair], pair))


def most_frequent_pair_without_overlaps(ids):
    counts, i = Counter(), 0
    while i + 1 < len(ids):
        pair = (ids[i], ids[i + 1])
        counts[pair] += 1
        i += 2 if ids[i] == ids[i + 1] else 1  # "aaa" counted once
    return min(counts, key=lambda pair: (-counts[pair], pair))


@pytest.mark.parametrize(
    "answer, expected",
    [
        (most_frequent_pair_solution, "Correct!"),
        (None, "Not answered"),
        (lambda ids: None, "Not answered"),
        (lambda ids: Counter(zip(ids, ids[1:])).most_common(1)[0][0], "Not yet"),  # ties go to the pair seen first
        (lambda ids: max(Counter(zip(ids, ids[1:])).items(), key=lambda kv: (kv[1], kv[0]))[0], "Not yet"),  # largest
        (most_frequent_pair_without_overlaps, "Not yet"),
        (lambda ids: Counter(zip(ids, ids[1:])).most_common(1)[0][1], "a tuple of two ids"),  # the count, not the pair
        (lambda ids: "aa", "a tuple of two ids"),
        (lambda ids: learn_merges({bytes(ids): 1}, 1)[0], "raised ValueError"),  # bytes only: ids above 255 break it
        ("(97, 97)", "function itself"),
    ],
)
def test_check_exercise_2(capsys, answer, expected):
    out = check_says(capsys, checks.check_exercise_2, answer)
    assert expected in out and ("Correct!" in out) == (expected == "Correct!")


@pytest.mark.parametrize(
    "answer, expected",
    [
        ([b"lo", b"low", b" low"], "Correct!"),
        (["lo", "low", " low"], "Correct!"),
        (None, "Not answered"),
        ([b"ow", b"low", b" low"], "merge 1 is off"),  # tie broken the wrong way
        ([b"lo", b"low", b"lowe"], "merge 3 is off"),  # tie broken the wrong way
        ([b"lo", b"low", b"w l"], "merge 3 is off"),  # a merge across pre-tokens
        ([b"lo", b"low"], "exactly three"),
        (5, "a list of three tokens"),
        ([108, 111, 119], "a list of three tokens"),
    ],
)
def test_check_exercise_3(capsys, answer, expected):
    out = check_says(capsys, checks.check_exercise_3, answer)
    assert expected in out and ("Correct!" in out) == (expected == "Correct!")


def one_hot_solution(ids, weight):
    return torch.nn.functional.one_hot(ids, num_classes=weight.shape[0]).to(weight.dtype) @ weight


@pytest.mark.parametrize(
    "answer, expected",
    [
        (one_hot_solution, "Correct!"),
        (
            lambda ids, w: torch.einsum("btv,vd->btd", torch.nn.functional.one_hot(ids, w.shape[0]).float(), w),
            "Correct!",
        ),
        (None, "Not answered"),
        (lambda ids, w: None, "Not answered"),
        (lambda ids, w: w[ids], "reads rows of weight"),  # the shortcut the exercise forbids
        (lambda ids, w: torch.nn.functional.embedding(ids, w), "reads rows of weight"),
        (lambda ids, w: w.index_select(0, ids.flatten()).view(*ids.shape, -1), "reads rows of weight"),
        (lambda ids, w: torch.nn.Embedding.from_pretrained(w)(ids), "reads rows of weight"),
        (lambda ids, w: torch.stack([torch.stack([w[i] for i in row]) for row in ids]), "reads rows of weight"),
        (lambda ids, w: (torch.nn.functional.one_hot(ids, 10).float() @ w) * 0 + w[ids], "reads rows of weight"),
        (lambda ids, w: torch.nn.functional.one_hot(ids).float() @ w, "raised RuntimeError"),  # one-hot too short
        (lambda ids, w: torch.nn.functional.one_hot(ids, w.shape[0]) @ w, "raised RuntimeError"),  # integer one-hot
        (lambda ids, w: torch.nn.functional.one_hot(ids, w.shape[0]).float() @ w.T.T[:, :3], "reads rows"),
        (
            lambda ids, w: torch.nn.functional.one_hot(ids, w.shape[0]).float().sum(-1, keepdim=True) @ w[:1] * 0,
            "reads rows",
        ),
        (lambda ids, w: torch.zeros(*ids.shape, w.shape[1]), "never enters a matrix product"),
        (lambda ids, w: (torch.nn.functional.one_hot(ids, w.shape[0]).float() @ w).transpose(0, 1), "expected shape"),
        (lambda ids, w: torch.nn.functional.one_hot(ids, w.shape[0]).float() @ (w + 1), "values differ"),
        (lambda ids, w: [[0.0]], "return a tensor"),
        (lambda ids, w: 1 / 0, "raised ZeroDivisionError"),
        ("w[ids]", "function itself"),
    ],
)
def test_check_exercise_4(capsys, answer, expected):
    out = check_says(capsys, checks.check_exercise_4, answer)
    assert expected in out and ("Correct!" in out) == (expected == "Correct!")


def token_pieces_solution(text):
    gpt2 = gpt2_encoding()
    return [gpt2.decode([i]) for i in gpt2.encode(text)]


@pytest.mark.parametrize(
    "answer, expected",
    [
        (token_pieces_solution, "Correct!"),
        (None, "Not answered"),
        (lambda text: None, "Not answered"),
        (lambda text: gpt2_encoding().encode(text), "list of strings"),  # the ids, not their text
        (lambda text: [text], "Not yet: for 'Akwirw ier'"),  # one piece: decoding all ids at once
        (list, "Not yet: for 'Akwirw ier'"),  # characters
        (str.split, "Not yet: for 'Akwirw ier'"),  # words
        (lambda text: "".join(token_pieces_solution(text)), "list of strings"),
        (lambda text: 1 / 0, "raised ZeroDivisionError"),
        (["Ak", "w"], "function itself"),
    ],
)
def test_check_exercise_5(capsys, answer, expected):
    out = check_says(capsys, checks.check_exercise_5, answer)
    assert expected in out and ("Correct!" in out) == (expected == "Correct!")


def test_exercise_1_formula_is_not_given_away_before_the_exercise():
    """The chapter states the rule (window k starts at k * stride) but leaves the formula to exercise 1."""
    from pathlib import Path

    notebook = json.loads((Path(__file__).parent.parent / "ch02_tokenization" / "tokenization.ipynb").read_text())
    before = []
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and text.startswith("## Exercises"):
            break
        before.append(text)
        before += ["".join(o.get("text", "")) for o in cell.get("outputs", [])]
    flat = re.sub(r"\s+", "", "\n".join(before))
    assert "-1)//stride+1" not in flat and "-4-1)//stride+1" not in flat
    assert "context_length-1)//" not in flat


def syllables_solution(text):
    return sum("\uac00" <= char <= "\ud7a3" for char in text)


def ratio_solution(tokenizer, text):
    return len(tokenizer.encode(text)) / syllables_solution(text)


@pytest.fixture(scope="module")
def korean_parts():
    return checks.korean_course_text()


@pytest.fixture(scope="module")
def korean_bpe(korean_parts):
    return BPETokenizer().train(korean_parts[0], vocab_size=256 + 500)


def test_korean_corpus_is_the_course_prose_without_code(korean_parts):
    train, held_out = korean_parts
    for part in (train, held_out):
        assert syllables_solution(part) > 5000, "each part should hold thousands of Hangul syllables"
        assert "=== cell" not in part and "```" not in part and "`" not in part
    assert train.startswith(checks.korean_prose("ch01_intro/intro.md")[:200])
    assert held_out.startswith(checks.korean_prose("ch04_gpt_model/gpt_model.md")[:200])


def test_korean_corpus_names_a_missing_catalogue():
    with pytest.raises(FileNotFoundError, match="translations/ko"):
        checks.korean_prose("ch99_missing/missing.md")


@pytest.mark.parametrize(
    "function, expected",
    [
        (ratio_solution, "Correct!"),
        (None, "Not answered"),
        (lambda tok, text: None, "Not answered"),
        ("3.2", "function itself"),
        (lambda tok, text: len(tok.encode(text)) / len(text), "counts every character"),
        (lambda tok, text: len(tok.encode(text)) / len(text.replace(" ", "")), "except spaces"),
        (lambda tok, text: len(tok.encode(text)) / len(text.encode("utf-8")), "tokens per byte"),
        (lambda tok, text: syllables_solution(text) / len(tok.encode(text)), "upside down"),
        (lambda tok, text: len(tok.encode(text)), "number of tokens"),
        # jamo (ㅋ) counted as syllables
        (
            lambda tok, text: (
                len(tok.encode(text)) / sum("\u3131" <= c <= "\u318e" or "\uac00" <= c <= "\ud7a3" for c in text)
            ),
            "not jamo",
        ),
        (lambda tok, text: tok.encode(text), "as a number"),
        (lambda tok, text: ratio_solution(gpt2_encoding(), text), "expected"),  # ignores the tokenizer it is given
        (lambda tok, text: 1 / 0, "raised ZeroDivisionError"),
    ],
)
def test_check_exercise_6_the_function(capsys, korean_bpe, korean_parts, function, expected):
    held_out = korean_parts[1]
    ratios = (ratio_solution(gpt2_encoding(), held_out), ratio_solution(korean_bpe, held_out))
    out = check_says(capsys, lambda f: checks.check_exercise_6(f, korean_bpe, *ratios), function)
    assert expected in out and ("Correct!" in out) == (expected == "Correct!")


def test_check_exercise_6_the_measurement(capsys, korean_bpe, korean_parts):
    train, held_out = korean_parts
    gpt2 = gpt2_encoding()

    def says(tokenizer, gpt2_ratio, korean_ratio):
        return check_says(
            capsys, lambda f: checks.check_exercise_6(f, tokenizer, gpt2_ratio, korean_ratio), ratio_solution
        )

    right = ratio_solution(gpt2, held_out), ratio_solution(korean_bpe, held_out)
    assert "Correct!" in says(korean_bpe, *right)
    assert "Not answered" in says(None, *right)
    assert "Not answered" in says(korean_bpe, right[0], None)
    assert "a few hundred merges" in says(BPETokenizer(), *right)  # no training at all
    assert "a few hundred merges" in says(gpt2, *right)  # tiktoken's GPT-2 is not a trained Korean BPE
    on_held_out = BPETokenizer().train(held_out, vocab_size=256 + 500)
    assert "trained on the held-out part" in says(on_held_out, right[0], ratio_solution(on_held_out, held_out))
    other = BPETokenizer().train(train + held_out, vocab_size=256 + 500)
    assert "something other than korean_train" in says(other, right[0], ratio_solution(other, held_out))
    # measured on the training part: the trap the held-out part exists for
    assert "measured on korean_train" in says(korean_bpe, right[0], ratio_solution(korean_bpe, train))
    assert "gpt2_ratio was measured on korean_train" in says(korean_bpe, ratio_solution(gpt2, train), right[1])
    assert "swapped" in says(korean_bpe, right[1], right[0])
    assert "unrounded" in says(korean_bpe, round(right[0], 1), right[1])
    assert "should be a number" in says(korean_bpe, str(right[0]), right[1])
    assert "should be a number" in says(korean_bpe, right[0], True)


def test_exercise_6_numbers_show_gpt2_wasting_tokens_on_korean(korean_bpe, korean_parts):
    """The claims of the solution's prose: GPT-2 near three tokens per syllable, a Korean BPE about half."""
    held_out = korean_parts[1]
    gpt2_ratio, korean_ratio = ratio_solution(gpt2_encoding(), held_out), ratio_solution(korean_bpe, held_out)
    assert 2.5 < gpt2_ratio < ratio_solution(BPETokenizer(), held_out)
    assert korean_ratio < gpt2_ratio / 1.8
