"""Self-checks for the chapter 2 exercises (used by tokenization.ipynb and solutions.ipynb).

Each ``check_exercise_N(answer)`` prints ``Correct!`` or says what is off. A check
never raises on a wrong answer: it explains, so the reader can try again. The expected
answers come from the chapter's own code (``GPTDataset``, ``learn_merges``,
``BPETokenizer``), not from stored numbers.
"""

import torch

from shared import BPETokenizer, GPTDataset


def _not_answered(answer) -> bool:
    if answer is None:
        print("Not answered yet: fill in your answer, then run the check again.")
        return True
    return False


def _call(fn, *args):
    """``fn(*args)``, or a printed explanation (and None) if it raises."""
    try:
        return fn(*args)
    except Exception as error:  # the reader's code: report, don't crash the notebook
        print(f"Your function raised {type(error).__name__}: {error}")
        return None


def check_exercise_1(num_windows):
    """``num_windows(n_tokens, context_length, stride)`` == len(GPTDataset(...))."""
    cases = [(5, 4, 1), (6, 4, 1), (100, 4, 4), (101, 4, 4), (102, 4, 4), (20, 4, 6), (1000, 256, 128), (257, 256, 1)]
    for n_tokens, context_length, stride in cases:
        expected = len(GPTDataset(list(range(n_tokens)), context_length=context_length, stride=stride))
        got = _call(num_windows, n_tokens, context_length, stride)
        if got is None:
            _not_answered(None)
            return
        if got != expected:
            print(f"Not yet: num_windows({n_tokens}, {context_length}, {stride}) returned {got}, but GPTDataset "
                  f"makes {expected} windows. Which start positions k * stride still leave "
                  "context_length + 1 tokens?")
            return
    print("Correct!")


def check_exercise_2(most_frequent_pair):
    """``most_frequent_pair(ids)`` agrees with the first merge ``learn_merges`` would make."""
    from ch02_tokenization.tokenization import learn_merges

    cases = [[1, 2, 3, 1, 2], [5, 5, 5, 7, 5], [9, 4, 1, 2], [3, 3, 3, 3, 2, 3, 2, 3], list(b"aaabdaaabac")]
    for ids in cases:
        expected = learn_merges({bytes(ids): 1}, 1)[0]
        got = _call(most_frequent_pair, list(ids))
        if got is None:
            _not_answered(None)
            return
        if tuple(got) != expected:
            print(f"Not yet: for {ids} you gave {tuple(got)}, expected {expected}. Count every neighbouring "
                  "position (overlaps too), and break ties by the smallest (left, right).")
            return
    print("Correct!")


def check_exercise_3(merges):
    """The bytes of the first three merges learned from "low lower lowest"."""
    if _not_answered(merges):
        return
    tokenizer = BPETokenizer().train("low lower lowest", vocab_size=256 + 3)
    expected = [tokenizer.vocab[256 + i] for i in range(3)]
    merges = [m.encode("utf-8") if isinstance(m, str) else bytes(m) for m in merges]
    if merges == expected:
        print("Correct!")
    elif len(merges) != 3:
        print(f"Give exactly three merges, got {len(merges)}.")
    else:
        wrong = next(i for i in range(3) if merges[i] != expected[i])
        print(f"Merge {wrong} is off (you gave {merges[wrong]!r}). Recount the pairs inside 'low', ' lower', "
              "' lowest' after the earlier merges; the space belongs to the word after it, and ties go "
              "to the pair with the smallest ids (byte values).")


def check_exercise_4(embed_with_one_hot):
    """``embed_with_one_hot(ids, weight)`` equals an embedding lookup, shape (batch, num_tokens, emb_dim)."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(10, 5, generator=generator)
    ids = torch.randint(0, 10, (3, 4), generator=generator)
    got = _call(embed_with_one_hot, ids, weight)
    if got is None:
        _not_answered(None)
        return
    expected = torch.nn.functional.embedding(ids, weight)
    if tuple(got.shape) != tuple(expected.shape):
        print(f"Not yet: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}.")
    elif not torch.allclose(got.float(), expected, atol=1e-6):
        print("Not yet: the shape is right but the values differ from weight[ids]. Is the one-hot "
              "vector as long as the vocabulary (weight.shape[0]) and of a float dtype?")
    else:
        print("Correct!")
