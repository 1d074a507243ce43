# GENERATED from tokenization.ipynb by `llm-course export`. Do not edit by hand:
# change the notebook's `#| export` cells and run `llm-course export` again.
# ruff: noqa: E402 (each cell keeps its own imports, where the notebook needs them)
"""Chapter 2 — Working with text: tokens, windows and embeddings"""

__all__ = [
    "BPETokenizer",
    "GPT2_SPLIT_PATTERN",
    "GPTDataset",
    "LETTER_RANGES",
    "NUMBER_RANGES",
    "SPACE_RANGES",
    "SimpleTokenizerV1",
    "SimpleTokenizerV2",
    "bpe_encode_piece",
    "class_body",
    "create_dataloader",
    "gpt2_byte_alphabet",
    "gpt2_split_regex",
    "learn_merges",
    "merge_pair",
    "pretokenize",
    "repair_surrogates",
]


# ch02_tokenization/tokenization.ipynb, setup
import heapq
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from shared import atomic_write, fetch, gpt2_encoding


# ch02_tokenization/tokenization.ipynb, 2.3 Converting tokens into token IDs
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


# ch02_tokenization/tokenization.ipynb, 2.4 Adding special context tokens
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
            raise ValueError(
                f"the vocabulary lacks {' and '.join(missing)}: add them, e.g. vocab[token] = len(vocab) for each"
            )
        super().__init__(vocab)

    def encode(self, text: str) -> list[int]:
        unk_id = self.str_to_id[self.unk_token]
        return [self.str_to_id.get(token, unk_id) for token in self.split(text)]


# ch02_tokenization/tokenization.ipynb, 2.5.3 Pre-tokenization: where merges may happen
# as published with GPT-2; tiktoken writes an equivalent, faster form of it
GPT2_SPLIT_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into GPT-2's pre-tokens; BPE merges never cross their borders.

    ``"".join(pretokenize(text)) == text`` for every text. The pattern is GPT2_SPLIT_PATTERN
    with its Unicode classes taken from the fixed tables below.
    """
    return _gpt2_split.findall(text)


# ch02_tokenization/tokenization.ipynb, 2.5.3 Pre-tokenization: where merges may happen
# Unicode 16.0 as tiktoken 0.14's Rust regex engine has it: \p{L} (letters), \p{N} (numbers) and
# \s (the White_Space property), as hex code-point ranges "first-last" or single code points,
# over all of U+0000..U+10FFFF. tiktoken_class_ranges() in tests/test_ch02_tokenization.py
# regenerates them from tiktoken's engine, and a test checks that they still agree.
LETTER_RANGES = """
41-5a 61-7a aa b5 ba c0-d6 d8-f6 f8-2c1 2c6-2d1 2e0-2e4 2ec 2ee 370-374 376-377 37a-37d 37f 386
388-38a 38c 38e-3a1 3a3-3f5 3f7-481 48a-52f 531-556 559 560-588 5d0-5ea 5ef-5f2 620-64a 66e-66f
671-6d3 6d5 6e5-6e6 6ee-6ef 6fa-6fc 6ff 710 712-72f 74d-7a5 7b1 7ca-7ea 7f4-7f5 7fa 800-815 81a 824
828 840-858 860-86a 870-887 889-88e 8a0-8c9 904-939 93d 950 958-961 971-980 985-98c 98f-990 993-9a8
9aa-9b0 9b2 9b6-9b9 9bd 9ce 9dc-9dd 9df-9e1 9f0-9f1 9fc a05-a0a a0f-a10 a13-a28 a2a-a30 a32-a33
a35-a36 a38-a39 a59-a5c a5e a72-a74 a85-a8d a8f-a91 a93-aa8 aaa-ab0 ab2-ab3 ab5-ab9 abd ad0 ae0-ae1
af9 b05-b0c b0f-b10 b13-b28 b2a-b30 b32-b33 b35-b39 b3d b5c-b5d b5f-b61 b71 b83 b85-b8a b8e-b90
b92-b95 b99-b9a b9c b9e-b9f ba3-ba4 ba8-baa bae-bb9 bd0 c05-c0c c0e-c10 c12-c28 c2a-c39 c3d c58-c5a
c5d c60-c61 c80 c85-c8c c8e-c90 c92-ca8 caa-cb3 cb5-cb9 cbd cdd-cde ce0-ce1 cf1-cf2 d04-d0c d0e-d10
d12-d3a d3d d4e d54-d56 d5f-d61 d7a-d7f d85-d96 d9a-db1 db3-dbb dbd dc0-dc6 e01-e30 e32-e33 e40-e46
e81-e82 e84 e86-e8a e8c-ea3 ea5 ea7-eb0 eb2-eb3 ebd ec0-ec4 ec6 edc-edf f00 f40-f47 f49-f6c f88-f8c
1000-102a 103f 1050-1055 105a-105d 1061 1065-1066 106e-1070 1075-1081 108e 10a0-10c5 10c7 10cd
10d0-10fa 10fc-1248 124a-124d 1250-1256 1258 125a-125d 1260-1288 128a-128d 1290-12b0 12b2-12b5
12b8-12be 12c0 12c2-12c5 12c8-12d6 12d8-1310 1312-1315 1318-135a 1380-138f 13a0-13f5 13f8-13fd
1401-166c 166f-167f 1681-169a 16a0-16ea 16f1-16f8 1700-1711 171f-1731 1740-1751 1760-176c 176e-1770
1780-17b3 17d7 17dc 1820-1878 1880-1884 1887-18a8 18aa 18b0-18f5 1900-191e 1950-196d 1970-1974
1980-19ab 19b0-19c9 1a00-1a16 1a20-1a54 1aa7 1b05-1b33 1b45-1b4c 1b83-1ba0 1bae-1baf 1bba-1be5
1c00-1c23 1c4d-1c4f 1c5a-1c7d 1c80-1c8a 1c90-1cba 1cbd-1cbf 1ce9-1cec 1cee-1cf3 1cf5-1cf6 1cfa
1d00-1dbf 1e00-1f15 1f18-1f1d 1f20-1f45 1f48-1f4d 1f50-1f57 1f59 1f5b 1f5d 1f5f-1f7d 1f80-1fb4
1fb6-1fbc 1fbe 1fc2-1fc4 1fc6-1fcc 1fd0-1fd3 1fd6-1fdb 1fe0-1fec 1ff2-1ff4 1ff6-1ffc 2071 207f
2090-209c 2102 2107 210a-2113 2115 2119-211d 2124 2126 2128 212a-212d 212f-2139 213c-213f 2145-2149
214e 2183-2184 2c00-2ce4 2ceb-2cee 2cf2-2cf3 2d00-2d25 2d27 2d2d 2d30-2d67 2d6f 2d80-2d96 2da0-2da6
2da8-2dae 2db0-2db6 2db8-2dbe 2dc0-2dc6 2dc8-2dce 2dd0-2dd6 2dd8-2dde 2e2f 3005-3006 3031-3035
303b-303c 3041-3096 309d-309f 30a1-30fa 30fc-30ff 3105-312f 3131-318e 31a0-31bf 31f0-31ff 3400-4dbf
4e00-a48c a4d0-a4fd a500-a60c a610-a61f a62a-a62b a640-a66e a67f-a69d a6a0-a6e5 a717-a71f a722-a788
a78b-a7cd a7d0-a7d1 a7d3 a7d5-a7dc a7f2-a801 a803-a805 a807-a80a a80c-a822 a840-a873 a882-a8b3
a8f2-a8f7 a8fb a8fd-a8fe a90a-a925 a930-a946 a960-a97c a984-a9b2 a9cf a9e0-a9e4 a9e6-a9ef a9fa-a9fe
aa00-aa28 aa40-aa42 aa44-aa4b aa60-aa76 aa7a aa7e-aaaf aab1 aab5-aab6 aab9-aabd aac0 aac2 aadb-aadd
aae0-aaea aaf2-aaf4 ab01-ab06 ab09-ab0e ab11-ab16 ab20-ab26 ab28-ab2e ab30-ab5a ab5c-ab69 ab70-abe2
ac00-d7a3 d7b0-d7c6 d7cb-d7fb f900-fa6d fa70-fad9 fb00-fb06 fb13-fb17 fb1d fb1f-fb28 fb2a-fb36
fb38-fb3c fb3e fb40-fb41 fb43-fb44 fb46-fbb1 fbd3-fd3d fd50-fd8f fd92-fdc7 fdf0-fdfb fe70-fe74
fe76-fefc ff21-ff3a ff41-ff5a ff66-ffbe ffc2-ffc7 ffca-ffcf ffd2-ffd7 ffda-ffdc 10000-1000b
1000d-10026 10028-1003a 1003c-1003d 1003f-1004d 10050-1005d 10080-100fa 10280-1029c 102a0-102d0
10300-1031f 1032d-10340 10342-10349 10350-10375 10380-1039d 103a0-103c3 103c8-103cf 10400-1049d
104b0-104d3 104d8-104fb 10500-10527 10530-10563 10570-1057a 1057c-1058a 1058c-10592 10594-10595
10597-105a1 105a3-105b1 105b3-105b9 105bb-105bc 105c0-105f3 10600-10736 10740-10755 10760-10767
10780-10785 10787-107b0 107b2-107ba 10800-10805 10808 1080a-10835 10837-10838 1083c 1083f-10855
10860-10876 10880-1089e 108e0-108f2 108f4-108f5 10900-10915 10920-10939 10980-109b7 109be-109bf
10a00 10a10-10a13 10a15-10a17 10a19-10a35 10a60-10a7c 10a80-10a9c 10ac0-10ac7 10ac9-10ae4
10b00-10b35 10b40-10b55 10b60-10b72 10b80-10b91 10c00-10c48 10c80-10cb2 10cc0-10cf2 10d00-10d23
10d4a-10d65 10d6f-10d85 10e80-10ea9 10eb0-10eb1 10ec2-10ec4 10f00-10f1c 10f27 10f30-10f45
10f70-10f81 10fb0-10fc4 10fe0-10ff6 11003-11037 11071-11072 11075 11083-110af 110d0-110e8
11103-11126 11144 11147 11150-11172 11176 11183-111b2 111c1-111c4 111da 111dc 11200-11211
11213-1122b 1123f-11240 11280-11286 11288 1128a-1128d 1128f-1129d 1129f-112a8 112b0-112de
11305-1130c 1130f-11310 11313-11328 1132a-11330 11332-11333 11335-11339 1133d 11350 1135d-11361
11380-11389 1138b 1138e 11390-113b5 113b7 113d1 113d3 11400-11434 11447-1144a 1145f-11461
11480-114af 114c4-114c5 114c7 11580-115ae 115d8-115db 11600-1162f 11644 11680-116aa 116b8
11700-1171a 11740-11746 11800-1182b 118a0-118df 118ff-11906 11909 1190c-11913 11915-11916
11918-1192f 1193f 11941 119a0-119a7 119aa-119d0 119e1 119e3 11a00 11a0b-11a32 11a3a 11a50
11a5c-11a89 11a9d 11ab0-11af8 11bc0-11be0 11c00-11c08 11c0a-11c2e 11c40 11c72-11c8f 11d00-11d06
11d08-11d09 11d0b-11d30 11d46 11d60-11d65 11d67-11d68 11d6a-11d89 11d98 11ee0-11ef2 11f02
11f04-11f10 11f12-11f33 11fb0 12000-12399 12480-12543 12f90-12ff0 13000-1342f 13441-13446
13460-143fa 14400-14646 16100-1611d 16800-16a38 16a40-16a5e 16a70-16abe 16ad0-16aed 16b00-16b2f
16b40-16b43 16b63-16b77 16b7d-16b8f 16d40-16d6c 16e40-16e7f 16f00-16f4a 16f50 16f93-16f9f
16fe0-16fe1 16fe3 17000-187f7 18800-18cd5 18cff-18d08 1aff0-1aff3 1aff5-1affb 1affd-1affe
1b000-1b122 1b132 1b150-1b152 1b155 1b164-1b167 1b170-1b2fb 1bc00-1bc6a 1bc70-1bc7c 1bc80-1bc88
1bc90-1bc99 1d400-1d454 1d456-1d49c 1d49e-1d49f 1d4a2 1d4a5-1d4a6 1d4a9-1d4ac 1d4ae-1d4b9 1d4bb
1d4bd-1d4c3 1d4c5-1d505 1d507-1d50a 1d50d-1d514 1d516-1d51c 1d51e-1d539 1d53b-1d53e 1d540-1d544
1d546 1d54a-1d550 1d552-1d6a5 1d6a8-1d6c0 1d6c2-1d6da 1d6dc-1d6fa 1d6fc-1d714 1d716-1d734
1d736-1d74e 1d750-1d76e 1d770-1d788 1d78a-1d7a8 1d7aa-1d7c2 1d7c4-1d7cb 1df00-1df1e 1df25-1df2a
1e030-1e06d 1e100-1e12c 1e137-1e13d 1e14e 1e290-1e2ad 1e2c0-1e2eb 1e4d0-1e4eb 1e5d0-1e5ed 1e5f0
1e7e0-1e7e6 1e7e8-1e7eb 1e7ed-1e7ee 1e7f0-1e7fe 1e800-1e8c4 1e900-1e943 1e94b 1ee00-1ee03
1ee05-1ee1f 1ee21-1ee22 1ee24 1ee27 1ee29-1ee32 1ee34-1ee37 1ee39 1ee3b 1ee42 1ee47 1ee49 1ee4b
1ee4d-1ee4f 1ee51-1ee52 1ee54 1ee57 1ee59 1ee5b 1ee5d 1ee5f 1ee61-1ee62 1ee64 1ee67-1ee6a
1ee6c-1ee72 1ee74-1ee77 1ee79-1ee7c 1ee7e 1ee80-1ee89 1ee8b-1ee9b 1eea1-1eea3 1eea5-1eea9
1eeab-1eebb 20000-2a6df 2a700-2b739 2b740-2b81d 2b820-2cea1 2ceb0-2ebe0 2ebf0-2ee5d 2f800-2fa1d
30000-3134a 31350-323af
"""
NUMBER_RANGES = """
30-39 b2-b3 b9 bc-be 660-669 6f0-6f9 7c0-7c9 966-96f 9e6-9ef 9f4-9f9 a66-a6f ae6-aef b66-b6f b72-b77
be6-bf2 c66-c6f c78-c7e ce6-cef d58-d5e d66-d78 de6-def e50-e59 ed0-ed9 f20-f33 1040-1049 1090-1099
1369-137c 16ee-16f0 17e0-17e9 17f0-17f9 1810-1819 1946-194f 19d0-19da 1a80-1a89 1a90-1a99 1b50-1b59
1bb0-1bb9 1c40-1c49 1c50-1c59 2070 2074-2079 2080-2089 2150-2182 2185-2189 2460-249b 24ea-24ff
2776-2793 2cfd 3007 3021-3029 3038-303a 3192-3195 3220-3229 3248-324f 3251-325f 3280-3289 32b1-32bf
a620-a629 a6e6-a6ef a830-a835 a8d0-a8d9 a900-a909 a9d0-a9d9 a9f0-a9f9 aa50-aa59 abf0-abf9 ff10-ff19
10107-10133 10140-10178 1018a-1018b 102e1-102fb 10320-10323 10341 1034a 103d1-103d5 104a0-104a9
10858-1085f 10879-1087f 108a7-108af 108fb-108ff 10916-1091b 109bc-109bd 109c0-109cf 109d2-109ff
10a40-10a48 10a7d-10a7e 10a9d-10a9f 10aeb-10aef 10b58-10b5f 10b78-10b7f 10ba9-10baf 10cfa-10cff
10d30-10d39 10d40-10d49 10e60-10e7e 10f1d-10f26 10f51-10f54 10fc5-10fcb 11052-1106f 110f0-110f9
11136-1113f 111d0-111d9 111e1-111f4 112f0-112f9 11450-11459 114d0-114d9 11650-11659 116c0-116c9
116d0-116e3 11730-1173b 118e0-118f2 11950-11959 11bf0-11bf9 11c50-11c6c 11d50-11d59 11da0-11da9
11f50-11f59 11fc0-11fd4 12400-1246e 16130-16139 16a60-16a69 16ac0-16ac9 16b50-16b59 16b5b-16b61
16d70-16d79 16e80-16e96 1ccf0-1ccf9 1d2c0-1d2d3 1d2e0-1d2f3 1d360-1d378 1d7ce-1d7ff 1e140-1e149
1e2f0-1e2f9 1e4f0-1e4f9 1e5f1-1e5fa 1e8c7-1e8cf 1e950-1e959 1ec71-1ecab 1ecad-1ecaf 1ecb1-1ecb4
1ed01-1ed2d 1ed2f-1ed3d 1f100-1f10c 1fbf0-1fbf9
"""
SPACE_RANGES = "9-d 20 85 a0 1680 2000-200a 2028-2029 202f 205f 3000"


def class_body(ranges: str) -> str:
    """The inside of a regex character class for hex ranges: "41-5a aa" -> "\\U00000041-\\U0000005a\\U000000aa"."""
    return "".join("-".join(f"\\U{int(cp, 16):08x}" for cp in item.split("-")) for item in ranges.split())


def gpt2_split_regex() -> re.Pattern:
    """GPT2_SPLIT_PATTERN compiled with ``re``, its classes \\p{L}, \\p{N}, \\s and \\S spelled out."""
    L, N, S = class_body(LETTER_RANGES), class_body(NUMBER_RANGES), class_body(SPACE_RANGES)
    return re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+")


_gpt2_split = gpt2_split_regex()


# ch02_tokenization/tokenization.ipynb, 2.5.4 Training: count the pairs, merge the most frequent, repeat
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


# ch02_tokenization/tokenization.ipynb, 2.5.6 GPT-2's merges give tiktoken's ids
def gpt2_byte_alphabet() -> dict[int, str]:
    """How GPT-2's files spell each byte as one printable character: byte value -> character.

    The printable Latin-1 characters "!".."~", "¡".."¬" and "®".."ÿ" stand for their own
    byte; the other 68 bytes (controls, space, ...) get chr(256), chr(257), ... in order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + k) for k, b in enumerate(others)}


# ch02_tokenization/tokenization.ipynb, 2.6 Data sampling with a sliding window
class GPTDataset(Dataset):
    """Sliding-window (inputs, targets) pairs for next-token prediction.

    ``data`` is a text, encoded with ``tokenizer`` (tiktoken's GPT-2 encoding by default;
    anything with tiktoken's ``encode(text, allowed_special=...)``; special tokens in the
    text are allowed), or a 1-D sequence of token ids. Item k is the window that starts at
    token k * stride: ``inputs`` = ids[s : s + context_length] and ``targets`` = the same
    shifted by one, ids[s + 1 : s + context_length + 1], two LongTensors of shape
    (context_length,).
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
                "or a smaller context_length"
            )
        self.context_length, self.stride = context_length, stride

    def __len__(self) -> int:
        # the starts k * stride that leave context_length + 1 tokens (inputs and the last target)
        return len(range(0, len(self.token_ids) - self.context_length, self.stride))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} does not exist: this data set has {len(self)} windows")
        start = index * self.stride
        window = self.token_ids[start : start + self.context_length + 1]
        return window[:-1], window[1:]


def create_dataloader(
    text,
    batch_size: int = 4,
    context_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    tokenizer=None,
) -> DataLoader:
    """A DataLoader of (inputs, targets) batches, each a LongTensor (batch_size, context_length).

    ``text`` and ``tokenizer`` are passed to ``GPTDataset`` (text or token ids; tiktoken's
    GPT-2 encoding by default). Shuffling uses torch's global generator: seed it with
    ``set_seed`` for a reproducible order.
    """
    dataset = GPTDataset(text, context_length, stride, tokenizer)
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"the text gives only {len(dataset)} windows, fewer than batch_size={batch_size}, "
            "so drop_last=True would leave no batch at all: lower batch_size or stride, "
            "or pass drop_last=False"
        )
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=num_workers)


# ch02_tokenization/tokenization.ipynb, 2.9.1 Learning thousands of merges quickly
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


# ch02_tokenization/tokenization.ipynb, 2.9.2 Encoding with a heap
def bpe_encode_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """Token ids of one pre-token: merge the neighbouring pair of lowest rank, repeatedly.

    ``ranks`` maps the bytes of every token to its id; a smaller id was learned earlier
    and is merged first (leftmost first on ties), as in GPT-2 and tiktoken. Candidate
    pairs wait in a heap keyed by (rank, start), so a merge costs O(log n), not a rescan.
    """
    n = len(piece)
    end = list(range(1, n + 1))  # end[i]: end of the part starting at byte i; 0 once merged away
    prev = list(range(-1, n - 1))  # prev[i]: start of the part before the one starting at i
    heap = [(ranks[piece[i : i + 2]], i) for i in range(n - 1) if piece[i : i + 2] in ranks]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = end[i]  # start of the right-hand part
        if j == 0 or j == n or ranks.get(piece[i : end[j]]) != rank:
            continue  # stale: a part of this pair has been merged since it was pushed
        end[i], end[j] = end[j], 0
        if end[i] < n:  # the part after the merged one now follows i
            prev[end[i]] = i
            if (r := ranks.get(piece[i : end[end[i]]])) is not None:
                heapq.heappush(heap, (r, i))
        if prev[i] >= 0:  # the part before the merged one
            if (r := ranks.get(piece[prev[i] : end[i]])) is not None:
                heapq.heappush(heap, (r, prev[i]))
    ids, i = [], 0
    while i < n:
        ids.append(ranks[piece[i : end[i]]])
        i = end[i]
    return ids


# ch02_tokenization/tokenization.ipynb, 2.9.3 The `BPETokenizer` class
def _alternation(strings) -> str:
    """A regex matching any of ``strings`` literally, longest first."""
    return "|".join(re.escape(s) for s in sorted(strings, key=len, reverse=True))


def repair_surrogates(text: str) -> str:
    """``text`` made encodable as UTF-8 the way tiktoken does it; unchanged if it already is.

    A Python str can hold surrogates (U+D800..U+DFFF), e.g. from JSON such as "\\ud83d\\udc4d",
    and UTF-8 cannot encode them. A high surrogate followed by a low one is the UTF-16
    spelling of one character ("\\ud83d\\udc4d" -> "👍"); any other surrogate becomes "\\ufffd" (�).
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class BPETokenizer:
    """Byte-level byte pair encoding (BPE) as in GPT-2: train your own, or load GPT-2's.

    Token ids: 0..255 are the 256 single bytes (``byte_order[i]`` is the byte of id i;
    GPT-2 uses its own order), the i-th of ``merges`` (left_id, right_id) creates id
    256 + i, and the ``special_tokens`` (strings such as "<|endoftext|>") take the ids
    after the merges. Any text can be encoded, and ``decode(encode(text)) == text`` unless
    the text holds surrogates, which are first repaired as tiktoken does (``repair_surrogates``).
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
                raise ValueError(
                    f"merge {len(vocab) - 256} = ({left}, {right}) uses an id that no earlier "
                    f"token has (ids so far: 0..{len(vocab) - 1})"
                )
            vocab.append(vocab[left] + vocab[right])
        ranks = {token: i for i, token in enumerate(vocab)}
        if len(ranks) < len(vocab):
            dup = next(i for i, token in enumerate(vocab) if ranks[token] != i)
            raise ValueError(
                f"tokens {dup} and {ranks[vocab[dup]]} have the same bytes {vocab[dup]!r}: "
                "every merge must create new bytes"
            )
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
        return (
            f"BPETokenizer(vocab_size={self.vocab_size:,}, merges={len(self.merges):,}, "
            f"special_tokens={list(self.special_tokens)})"
        )

    def train(self, text: str, vocab_size: int, special_tokens=()) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``; returns self.

        Replaces any earlier vocabulary. Special tokens found in ``text`` only separate it:
        no merge spans them. Surrogates in ``text`` are repaired first, as in ``encode``.
        """
        text = repair_surrogates(text)
        special_tokens = list(special_tokens)
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: the 256 byte tokens and "
                f"{len(special_tokens)} special tokens alone need {256 + len(special_tokens)}"
            )
        chunks = re.split(_alternation(special_tokens), text) if special_tokens else [text]
        word_counts = Counter(piece.encode("utf-8") for chunk in chunks for piece in pretokenize(chunk))
        merges = learn_merges(word_counts, num_merges)
        if len(merges) < num_merges:
            raise ValueError(
                f"this text allows only {len(merges)} merges, so vocab_size can be at most "
                f"{256 + len(merges) + len(special_tokens)}, not {vocab_size}: "
                "lower vocab_size or train on more text"
            )
        self._set_vocabulary(list(range(256)), merges, special_tokens)
        return self

    def encode(self, text: str, allowed_special=frozenset(), disallowed_special="all") -> list[int]:
        """Token ids of ``text``, with tiktoken's rules for special tokens.

        Special tokens in ``allowed_special`` (a set of names, or "all") become their own
        id. By default any other special token in the text raises ValueError, so that
        text from users cannot smuggle in control tokens; ``disallowed_special=()``
        encodes such tokens as ordinary text instead. Surrogates in ``text`` are repaired
        first, as tiktoken does (``repair_surrogates``).
        """
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        if unknown := allowed - set(self.special_tokens):
            raise ValueError(
                f"allowed_special names {sorted(unknown)}, which this tokenizer does not have "
                f"(its special tokens: {sorted(self.special_tokens)})"
            )
        disallowed = set(self.special_tokens) - allowed if disallowed_special == "all" else set(disallowed_special)
        if disallowed and (found := re.search(_alternation(disallowed), text)):
            raise ValueError(
                f"the text contains the special token {found.group()!r} (at character {found.start()}), "
                f"which is not allowed: pass allowed_special={{{found.group()!r}}} (or 'all') to encode it "
                "as a special token, or disallowed_special=() to encode it as ordinary text"
            )
        text = repair_surrogates(text)
        if not allowed:
            return self._encode_ordinary(text)
        ids, start = [], 0
        for match in re.finditer(_alternation(allowed), text):
            ids += self._encode_ordinary(text[start : match.start()])
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
            raise ValueError(
                f"token id {error.args[0]} is outside the vocabulary (ids 0..{self.vocab_size - 1})"
            ) from None
        return data.decode("utf-8", errors="replace")

    def save(self, path) -> Path:
        """Write the vocabulary to a JSON file, atomically (``atomic_write``: temporary file + rename)."""
        content = {
            "format": self.file_format,
            "version": 1,
            "byte_order": self.byte_order,
            "merges": [list(pair) for pair in self.merges],
            "special_tokens": list(self.special_tokens),
        }
        return atomic_write(path, json.dumps(content))

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        """A tokenizer saved with ``save``."""
        path = Path(path)
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON file ({error})") from None
        if not isinstance(content, dict) or (content.get("format"), content.get("version")) != (cls.file_format, 1):
            raise ValueError(
                f"{path} is not a BPETokenizer file (format {cls.file_format!r}, version 1): "
                "create one with BPETokenizer.save"
            )
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
                raise ValueError(
                    f"vocab.bpe line {i + 2} ({line!r}) should create id {256 + i}, but "
                    f"encoder.json gives {left + right!r} the id {encoder.get(left + right)}"
                )
            merges.append((encoder[left], encoder[right]))
        special_tokens = sorted((t for t, i in encoder.items() if i >= 256 + len(merges)), key=encoder.get)
        tokenizer = cls(merges, special_tokens, byte_order)
        if tokenizer.special_tokens != {t: encoder[t] for t in special_tokens}:
            raise ValueError(
                f"encoder.json's special tokens do not follow the merges: { {t: encoder[t] for t in special_tokens} }"
            )
        return tokenizer
