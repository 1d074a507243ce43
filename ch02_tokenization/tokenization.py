# GENERATED from tokenization.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
"""Chapter 2 — Working with text: tokens, windows and embeddings"""

import heapq
import json
import os
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import regex
import torch
from torch.utils.data import DataLoader, Dataset

from shared import fetch, gpt2_encoding

class SimpleTokenizerV1:
    """A word-level tokenizer with a fixed vocabulary: words and punctuation <-> ids.

    ``vocab`` maps each token string to its id. Encoding a token that is not in the
    vocabulary raises ``ValueError`` naming it: this tokenizer cannot represent text
    it has not seen. Decoding does not restore the original spacing exactly.
    """

    # a special token like <|endoftext|>, a word (didn't), a "--" dash, any other symbol
    token_pattern = re.compile(r"<\|\w+\|>|\w+(?:'\w+)*|--|[^\w\s]")

    def __init__(self, vocab: dict[str, int]):
        self.str_to_id = dict(vocab)
        self.id_to_str = {i: s for s, i in self.str_to_id.items()}

    @classmethod
    def split(cls, text: str) -> list[str]:
        """The token strings of ``text`` (whitespace is dropped)."""
        return cls.token_pattern.findall(text)

    def encode(self, text: str) -> list[int]:
        tokens = self.split(text)
        for token in tokens:
            if token not in self.str_to_id:
                raise ValueError(
                    f"{token!r} is not in the vocabulary ({len(self.str_to_id):,} tokens): add it to "
                    "the vocabulary, or use SimpleTokenizerV2, which maps unknown tokens to <|unk|>"
                )
        return [self.str_to_id[token] for token in tokens]

    def decode(self, ids: list[int]) -> str:
        unknown = [i for i in ids if i not in self.id_to_str]
        if unknown:
            raise ValueError(f"token id {unknown[0]} is not in the vocabulary ({len(self.id_to_str):,} ids)")
        text = " ".join(self.id_to_str[i] for i in ids)
        text = re.sub(r" ([,.:;?!)])", r"\1", text)  # no space before closing punctuation
        text = re.sub(r"\( ", "(", text)  # nor after an opening parenthesis
        return re.sub(r" ?-- ?", "--", text)  # nor around a dash

class SimpleTokenizerV2(SimpleTokenizerV1):
    """SimpleTokenizerV1 with two special tokens, which ``vocab`` must contain.

    ``<|unk|>`` replaces every token missing from the vocabulary, so any text can be
    encoded (the word itself is lost); ``<|endoftext|>`` marks where one document ends
    and the next begins when texts are joined into one training stream.
    """

    unk_token = "<|unk|>"
    end_of_text_token = "<|endoftext|>"

    def __init__(self, vocab: dict[str, int]):
        missing = [t for t in (self.unk_token, self.end_of_text_token) if t not in vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks {' and '.join(missing)}: add them, "
                             "e.g. vocab[token] = len(vocab) for each")
        super().__init__(vocab)

    def encode(self, text: str) -> list[int]:
        unk_id = self.str_to_id[self.unk_token]
        return [self.str_to_id.get(token, unk_id) for token in self.split(text)]

GPT2_SPLIT_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_gpt2_split = regex.compile(GPT2_SPLIT_PATTERN)


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into GPT-2's pre-tokens; BPE merges never cross their borders.

    ``"".join(pretokenize(text)) == text`` for every text.
    """
    return _gpt2_split.findall(text)

def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids`` with ``new_id``, scanning left to right.

    Occurrences do not overlap: with pair (a, a), [a, a, a] becomes [new_id, a].
    """
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged

def learn_merges(word_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """Learn up to ``num_merges`` BPE merges from pre-token counts.

    ``word_counts`` maps each distinct pre-token (UTF-8 bytes) to its number of
    occurrences. Ids 0..255 are the bytes; the i-th merge (left_id, right_id) creates
    id 256 + i. Each step merges the most frequent pair of neighbouring tokens, counted
    over all words; ties go to the smallest (left_id, right_id). Fewer merges are
    returned only when no word has two tokens left.

    Pair counts are updated only for the words that contain the merged pair, and a
    heap finds the most frequent pair (entries whose count has changed are skipped).
    """
    words = [list(word) for word in word_counts]  # each distinct pre-token as a list of ids
    freqs = list(word_counts.values())
    pair_counts = defaultdict(int)  # (left, right) -> occurrences over all words
    words_with = defaultdict(set)  # (left, right) -> indices of the words that contain it
    for w, (ids, freq) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            pair_counts[pair] += freq
            words_with[pair].add(w)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges = []
    while len(merges) < num_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -neg_count:
            continue  # a stale entry: this pair's count has changed since it was pushed
        new_id = 256 + len(merges)
        merges.append(pair)
        changed = set()
        for w in words_with.pop(pair):
            old, freq = words[w], freqs[w]
            new = merge_pair(old, pair, new_id)
            old_pairs, new_pairs = list(zip(old, old[1:])), list(zip(new, new[1:]))
            for p in old_pairs:
                pair_counts[p] -= freq
            for p in new_pairs:
                pair_counts[p] += freq
            for p in set(old_pairs) - set(new_pairs) - {pair}:
                words_with[p].discard(w)
            for p in set(new_pairs) - set(old_pairs):
                words_with[p].add(w)
            changed.update(old_pairs, new_pairs)
            words[w] = new
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                del pair_counts[p]
                words_with.pop(p, None)
    return merges

def bpe_encode_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """Token ids of one pre-token: merge the neighbouring pair of lowest rank, repeatedly.

    ``ranks`` maps the bytes of every token to its id; a smaller id was learned earlier
    and is merged first (leftmost first on ties), as in GPT-2 and tiktoken. Candidate
    pairs wait in a heap keyed by (rank, start), so a merge costs O(log n), not a rescan.
    """
    n = len(piece)
    end = list(range(1, n + 1))  # end[i]: end of the part starting at byte i; 0 once merged away
    prev = list(range(-1, n - 1))  # prev[i]: start of the part before the one starting at i
    heap = [(ranks[piece[i:i + 2]], i) for i in range(n - 1) if piece[i:i + 2] in ranks]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = end[i]  # start of the right-hand part
        if j == 0 or j == n or ranks.get(piece[i:end[j]]) != rank:
            continue  # stale: a part of this pair has been merged since it was pushed
        end[i], end[j] = end[j], 0
        if end[i] < n:  # the part after the merged one now follows i
            prev[end[i]] = i
            if (r := ranks.get(piece[i:end[end[i]]])) is not None:
                heapq.heappush(heap, (r, i))
        if prev[i] >= 0:  # the part before the merged one
            if (r := ranks.get(piece[prev[i]:end[i]])) is not None:
                heapq.heappush(heap, (r, prev[i]))
    ids, i = [], 0
    while i < n:
        ids.append(ranks[piece[i:end[i]]])
        i = end[i]
    return ids

def gpt2_byte_alphabet() -> dict[int, str]:
    """How GPT-2's files spell each byte as one printable character: byte value -> character.

    The printable Latin-1 characters "!".."~", "¡".."¬" and "®".."ÿ" stand for their own
    byte; the other 68 bytes (controls, space, ...) get chr(256), chr(257), ... in order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + k) for k, b in enumerate(others)}


def _alternation(strings) -> str:
    """A regex matching any of ``strings`` literally, longest first."""
    return "|".join(regex.escape(s) for s in sorted(strings, key=len, reverse=True))


class BPETokenizer:
    """Byte-level byte pair encoding (BPE) as in GPT-2: train your own, or load GPT-2's.

    Token ids: 0..255 are the 256 single bytes (``byte_order[i]`` is the byte of id i;
    GPT-2 uses its own order), the i-th of ``merges`` (left_id, right_id) creates id
    256 + i, and the ``special_tokens`` (strings such as "<|endoftext|>") take the ids
    after the merges. Any text can be encoded, and ``decode(encode(text)) == text``.
    ``BPETokenizer()`` has no merges yet: it encodes each UTF-8 byte as one token.
    """

    file_format = "llm-course-bpe"
    cache_size = 100_000  # how many distinct pre-tokens' ids are remembered

    def __init__(self, merges=(), special_tokens=(), byte_order=range(256)):
        self._set_vocabulary([int(b) for b in byte_order], [(int(a), int(b)) for a, b in merges], list(special_tokens))

    def _set_vocabulary(self, byte_order: list[int], merges: list[tuple[int, int]], special_tokens: list[str]):
        if sorted(byte_order) != list(range(256)):
            raise ValueError("byte_order must list each of the 256 byte values exactly once")
        vocab = [bytes([b]) for b in byte_order]
        for left, right in merges:
            if not (0 <= left < len(vocab) and 0 <= right < len(vocab)):
                raise ValueError(f"merge {len(vocab) - 256} = ({left}, {right}) uses an id that no earlier "
                                 f"token has (ids so far: 0..{len(vocab) - 1})")
            vocab.append(vocab[left] + vocab[right])
        ranks = {token: i for i, token in enumerate(vocab)}
        if len(ranks) < len(vocab):
            dup = next(i for i, token in enumerate(vocab) if ranks[token] != i)
            raise ValueError(f"tokens {dup} and {ranks[vocab[dup]]} have the same bytes {vocab[dup]!r}: "
                             "every merge must create new bytes")
        if len(set(special_tokens)) < len(special_tokens):
            raise ValueError(f"special_tokens lists a token twice: {special_tokens}")
        self.byte_order, self.merges = byte_order, merges
        self.special_tokens = {name: len(vocab) + k for k, name in enumerate(special_tokens)}
        self.vocab = dict(enumerate(vocab)) | {i: name.encode("utf-8") for name, i in self.special_tokens.items()}
        self._ranks = ranks
        self._cache = {}  # pre-token -> its ids

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size:,}, merges={len(self.merges):,}, "
                f"special_tokens={list(self.special_tokens)})")

    def train(self, text: str, vocab_size: int, special_tokens=()) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``; returns self.

        Replaces any earlier vocabulary. Special tokens found in ``text`` only separate it:
        no merge spans them.
        """
        special_tokens = list(special_tokens)
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(f"vocab_size={vocab_size} is too small: the 256 byte tokens and "
                             f"{len(special_tokens)} special tokens alone need {256 + len(special_tokens)}")
        chunks = regex.split(_alternation(special_tokens), text) if special_tokens else [text]
        word_counts = Counter(piece.encode("utf-8") for chunk in chunks for piece in pretokenize(chunk))
        merges = learn_merges(word_counts, num_merges)
        if len(merges) < num_merges:
            raise ValueError(f"this text allows only {len(merges)} merges, so vocab_size can be at most "
                             f"{256 + len(merges) + len(special_tokens)}, not {vocab_size}: "
                             "lower vocab_size or train on more text")
        self._set_vocabulary(list(range(256)), merges, special_tokens)
        return self

    def encode(self, text: str, allowed_special=frozenset(), disallowed_special="all") -> list[int]:
        """Token ids of ``text``, with tiktoken's rules for special tokens.

        Special tokens in ``allowed_special`` (a set of names, or "all") become their own
        id. By default any other special token in the text raises ValueError, so that
        text from users cannot smuggle in control tokens; ``disallowed_special=()``
        encodes such tokens as ordinary text instead.
        """
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        if unknown := allowed - set(self.special_tokens):
            raise ValueError(f"allowed_special names {sorted(unknown)}, which this tokenizer does not have "
                             f"(its special tokens: {sorted(self.special_tokens)})")
        disallowed = set(self.special_tokens) - allowed if disallowed_special == "all" else set(disallowed_special)
        if disallowed and (found := regex.search(_alternation(disallowed), text)):
            raise ValueError(
                f"the text contains the special token {found.group()!r} (at character {found.start()}), "
                f"which is not allowed: pass allowed_special={{{found.group()!r}}} (or 'all') to encode it "
                "as a special token, or disallowed_special=() to encode it as ordinary text")
        if not allowed:
            return self._encode_ordinary(text)
        ids, start = [], 0
        for match in regex.finditer(_alternation(allowed), text):
            ids += self._encode_ordinary(text[start:match.start()])
            ids.append(self.special_tokens[match.group()])
            start = match.end()
        return ids + self._encode_ordinary(text[start:])

    def _encode_ordinary(self, text: str) -> list[int]:
        ids, cache = [], self._cache
        for piece in pretokenize(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                piece_ids = bpe_encode_piece(piece.encode("utf-8"), self._ranks)
                if len(cache) < self.cache_size:
                    cache[piece] = piece_ids
            ids += piece_ids
        return ids

    def decode(self, ids) -> str:
        """The text of ``ids``. Bytes that are not valid UTF-8 (e.g. half a character) become "�"."""
        try:
            data = b"".join(self.vocab[int(i)] for i in ids)
        except KeyError as error:
            raise ValueError(f"token id {error.args[0]} is outside the vocabulary "
                             f"(ids 0..{self.vocab_size - 1})") from None
        return data.decode("utf-8", errors="replace")

    def save(self, path) -> Path:
        """Write the vocabulary to a JSON file, atomically (temporary file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {"format": self.file_format, "version": 1, "byte_order": self.byte_order,
                   "merges": [list(pair) for pair in self.merges], "special_tokens": list(self.special_tokens)}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(content, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        """A tokenizer saved with ``save``."""
        path = Path(path)
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON file ({error})") from None
        if not isinstance(content, dict) or (content.get("format"), content.get("version")) != (cls.file_format, 1):
            raise ValueError(f"{path} is not a BPETokenizer file (format {cls.file_format!r}, version 1): "
                             "create one with BPETokenizer.save")
        return cls(content["merges"], content["special_tokens"], content["byte_order"])

    @classmethod
    def from_gpt2(cls) -> "BPETokenizer":
        """GPT-2's tokenizer, built from OpenAI's encoder.json and vocab.bpe (via ``fetch``).

        Checks that the line-i merge of vocab.bpe has id 256 + i in encoder.json, so a
        mismatched pair of files fails loudly instead of encoding wrongly.
        """
        encoder = json.loads(fetch("gpt2-encoder").read_text(encoding="utf-8"))
        lines = fetch("gpt2-vocab-bpe").read_text(encoding="utf-8").splitlines()
        merge_lines = [line for line in lines if line and not line.startswith("#version")]
        alphabet = gpt2_byte_alphabet()
        byte_order = sorted(range(256), key=lambda b: encoder[alphabet[b]])
        if [encoder[alphabet[b]] for b in byte_order] != list(range(256)):
            raise ValueError("encoder.json does not give the 256 single bytes the ids 0..255")
        merges = []
        for i, line in enumerate(merge_lines):
            left, right = line.split(" ")
            if encoder.get(left + right) != 256 + i:
                raise ValueError(f"vocab.bpe line {i + 2} ({line!r}) should create id {256 + i}, but "
                                 f"encoder.json gives {left + right!r} the id {encoder.get(left + right)}")
            merges.append((encoder[left], encoder[right]))
        special_tokens = sorted((t for t, i in encoder.items() if i >= 256 + len(merges)), key=encoder.get)
        tokenizer = cls(merges, special_tokens, byte_order)
        if tokenizer.special_tokens != {t: encoder[t] for t in special_tokens}:
            raise ValueError(f"encoder.json's special tokens do not follow the merges: "
                             f"{ {t: encoder[t] for t in special_tokens} }")
        return tokenizer

class GPTDataset(Dataset):
    """Sliding-window (inputs, targets) pairs for next-token prediction.

    ``data`` is a text, encoded with ``tokenizer`` (tiktoken's GPT-2 encoding by default;
    anything with tiktoken's ``encode(text, allowed_special=...)``; special tokens in the
    text are allowed), or a 1-D sequence of token ids. Item k is the window that starts at
    token k * stride: ``inputs`` = ids[s : s + context_length] and ``targets`` = the same
    shifted by one, ids[s + 1 : s + context_length + 1], two LongTensors of shape
    (context_length,). A text of N tokens gives (N - context_length - 1) // stride + 1 windows.
    """

    def __init__(self, data, context_length: int, stride: int, tokenizer=None):
        if context_length < 1:
            raise ValueError(f"context_length must be at least 1, got {context_length}")
        if stride < 1:
            raise ValueError(f"stride must be at least 1 (how far each window moves), got {stride}")
        if isinstance(data, str):
            data = (tokenizer or gpt2_encoding()).encode(data, allowed_special="all")
        elif tokenizer is not None:
            raise ValueError("a tokenizer is only used with text; data is already token ids")
        self.token_ids = torch.as_tensor(data, dtype=torch.long)
        if self.token_ids.dim() != 1:
            raise ValueError(f"token ids must be a 1-D sequence, got shape {tuple(self.token_ids.shape)}")
        if len(self.token_ids) < context_length + 1:
            raise ValueError(
                f"the text has {len(self.token_ids)} tokens, but one window needs context_length + 1 = "
                f"{context_length + 1} (the inputs plus the target after them): use a longer text "
                "or a smaller context_length")
        self.context_length, self.stride = context_length, stride

    def __len__(self) -> int:
        return (len(self.token_ids) - self.context_length - 1) // self.stride + 1

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} does not exist: this data set has {len(self)} windows")
        start = index * self.stride
        window = self.token_ids[start:start + self.context_length + 1]
        return window[:-1], window[1:]


def create_dataloader(text, batch_size: int = 4, context_length: int = 256, stride: int = 128,
                      shuffle: bool = True, drop_last: bool = True, num_workers: int = 0,
                      tokenizer=None) -> DataLoader:
    """A DataLoader of (inputs, targets) batches, each a LongTensor (batch_size, context_length).

    ``text`` and ``tokenizer`` are passed to ``GPTDataset`` (text or token ids; tiktoken's
    GPT-2 encoding by default). Shuffling uses torch's global generator: seed it with
    ``set_seed`` for a reproducible order.
    """
    dataset = GPTDataset(text, context_length, stride, tokenizer)
    if drop_last and len(dataset) < batch_size:
        raise ValueError(f"the text gives only {len(dataset)} windows, fewer than batch_size={batch_size}, "
                         "so drop_last=True would leave no batch at all: lower batch_size or stride, "
                         "or pass drop_last=False")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers)
