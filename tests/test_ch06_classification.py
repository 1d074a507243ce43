"""Chapter 6: the spam data pipeline, SpamDataset, the classifier surgery, training and inference.

Model tests use a tiny random GPTModel, so they need neither course-base nor GPT-2 weights.
The data tests read the SMS Spam Collection through ``fetch`` (cache or mirror).
"""

import dataclasses
from collections import Counter

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from ch06_classification.classification import (
    CLASS_NAMES,
    SPAM_SETTINGS,
    SpamDataset,
    SpamSettings,
    balance_classes,
    calc_accuracy_loader,
    calc_class_loss_loader,
    classify_text,
    confusion_matrix,
    load_sms_spam,
    pad_or_truncate,
    predict_loader,
    prepare_for_classification,
    prepare_spam_splits,
    split_dataset,
    train_classifier,
)
from shared import GPTConfig, GPTModel, fetch, gpt2_encoding, set_seed

TINY = GPTConfig(vocab_size=50257, context_length=16, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.0)


class WordTokenizer:
    """A hand-made tokenizer: each whitespace-separated word is one id from a fixed table.

    Its end-of-text marker has GPT-2's id, 50256: the padding ``SpamDataset`` asks the tokenizer for.
    """

    vocab = {"win": 1, "cash": 2, "now": 3, "see": 4, "you": 5, "at": 6, "lunch": 7, "free": 8, "prize": 9}
    vocab["<|endoftext|>"] = 50256

    def encode(self, text, allowed_special=frozenset()):
        return [self.vocab[word] for word in text.split()]


@pytest.fixture(scope="module")
def sms():
    return load_sms_spam()


# --- data -----------------------------------------------------------------------------------


def test_raw_file_has_the_documented_counts(sms):
    # 4,827 ham + 747 spam is the data set's own documentation (UCI readme), one row per line.
    assert Counter(sms["label"]) == {"ham": 4827, "spam": 747}
    with open(fetch("sms-spam-collection"), encoding="utf-8") as f:
        assert len(sms) == sum(1 for _ in f)


def test_default_csv_quoting_would_merge_rows():
    # The pitfall the chapter shows: with CSV quoting, an unclosed quote swallows later lines.
    naive = pd.read_csv(fetch("sms-spam-collection"), sep="\t", header=None, names=["label", "text"])
    assert len(naive) < 5574
    assert naive["text"].str.contains("\n").any()


def test_balanced_subset_is_747_each_and_seeded(sms):
    balanced = balance_classes(sms, seed=123)
    assert Counter(balanced["label"]) == {"ham": 747, "spam": 747}
    assert balanced.equals(balance_classes(sms, seed=123))
    other = balance_classes(sms, seed=7)

    def ham(df):
        return set(df.loc[df["label"] == "ham", "text"])

    assert ham(other) != ham(balanced)
    # every chosen row is a real row of the collection
    assert set(map(tuple, balanced.values)) <= set(map(tuple, sms.values))


def test_split_sizes_disjoint_and_reproducible(sms):
    balanced = balance_classes(sms, seed=123)
    train, val, test = split_dataset(balanced, seed=123)
    # 70 / 10 / 20 of 1,494 rows: int(1494 * 0.7) = 1045, int(1494 * 0.1) = 149, the rest 300
    assert (len(train), len(val), len(test)) == (1045, 149, 300)

    # the three splits together are exactly the balanced rows (as a multiset)
    def rows(df):
        return Counter(map(tuple, df[["label", "text"]].values))

    assert rows(train) + rows(val) + rows(test) == rows(balanced)
    texts = [set(s["text"]) for s in (train, val, test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    again = split_dataset(balanced, seed=123)
    assert all(a.equals(b) for a, b in zip((train, val, test), again))
    assert not split_dataset(balanced, seed=1)[2].equals(test)


def test_split_keeps_copies_together_on_a_hand_made_frame():
    texts = ["a"] * 3 + ["b"] * 2 + [f"single {i}" for i in range(15)]
    df = pd.DataFrame({"label": ["spam"] * 5 + ["ham"] * 15, "text": texts})
    for seed in range(10):
        parts = split_dataset(df, train_frac=0.5, val_frac=0.25, seed=seed)
        assert [len(p) for p in parts] == [10, 5, 5]
        for text, copies in [("a", 3), ("b", 2)]:
            assert sorted((p["text"] == text).sum() for p in parts) == [0, 0, copies]


def test_split_rejects_bad_fractions():
    df = pd.DataFrame({"label": ["ham"] * 10, "text": [str(i) for i in range(10)]})
    with pytest.raises(ValueError, match="train_frac"):
        split_dataset(df, train_frac=0.8, val_frac=0.3)


def test_prepare_spam_splits_writes_readable_csvs(tmp_path, sms):
    paths = prepare_spam_splits(seed=123, folder=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "test.csv",
        "train.csv",
        "validation.csv",
    ]  # no temp files left
    expected = split_dataset(balance_classes(sms, seed=123), seed=123)
    for name, split in zip(["train", "validation", "test"], expected):
        assert pd.read_csv(paths[name], keep_default_na=False).equals(split)  # exact round trip


def test_prepare_spam_splits_defaults_to_the_course_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path))
    paths = prepare_spam_splits()
    assert paths["train"] == tmp_path / "sms_spam" / "train.csv" and paths["train"].exists()


# --- SpamDataset ----------------------------------------------------------------------------


def frame(*rows):
    return pd.DataFrame(rows, columns=["label", "text"])


def test_pads_to_the_longest_message_with_endoftext():
    ds = SpamDataset(frame(("spam", "win cash now"), ("ham", "see you")), WordTokenizer())
    assert ds.max_length == 3
    assert ds.input_ids.tolist() == [[1, 2, 3], [4, 5, 50256]]
    assert ds.labels.tolist() == [1, 0]
    ids, label = ds[1]
    assert ids.dtype == torch.int64 and label.item() == CLASS_NAMES.index("ham")


def test_given_max_length_pads_and_truncates():
    ds = SpamDataset(frame(("spam", "win cash now free prize"), ("ham", "see")), WordTokenizer(), max_length=3)
    assert ds.input_ids.tolist() == [[1, 2, 3], [4, 50256, 50256]]
    assert pad_or_truncate([7, 8], 4, pad_token_id=0) == [7, 8, 0, 0]


def test_real_gpt2_tokens_and_padding():
    ds = SpamDataset(frame(("ham", "Hello world"), ("spam", "Hello")), gpt2_encoding(), max_length=4)
    # GPT-2's ids: "Hello" = 15496, " world" = 995; <|endoftext|> = 50256
    assert ds.input_ids.tolist() == [[15496, 995, 50256, 50256], [15496, 50256, 50256, 50256]]


def test_reads_a_csv_path(tmp_path):
    path = tmp_path / "d.csv"
    frame(("ham", "NA"), ("spam", "win")).to_csv(path, index=False)
    ds = SpamDataset(path, gpt2_encoding())
    assert len(ds) == 2 and ds.labels.tolist() == [0, 1]  # "NA" is a message, not a missing value


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_message_is_an_error(text):
    with pytest.raises(ValueError, match="empty message"):
        SpamDataset(frame(("ham", "see you"), ("spam", text)), WordTokenizer())


def test_unknown_label_is_an_error():
    with pytest.raises(ValueError, match="unknown label"):
        SpamDataset(frame(("junk", "win")), WordTokenizer())


def test_max_length_beyond_the_context_is_an_error_naming_both():
    with pytest.raises(ValueError, match=r"max_length 20 .* context_length 16"):
        SpamDataset(frame(("ham", "see you")), WordTokenizer(), max_length=20, context_length=16)


def test_message_longer_than_the_context_needs_explicit_truncation():
    long = frame(("spam", " ".join(["win"] * 20)), ("ham", "see you"))
    with pytest.raises(ValueError, match=r"20 tokens .* context_length is 16.*max_length=16"):
        SpamDataset(long, WordTokenizer(), context_length=16)
    ds = SpamDataset(long, WordTokenizer(), max_length=16, context_length=16)
    assert ds.input_ids.tolist()[0] == [1] * 16


# --- the classifier -------------------------------------------------------------------------


def block_param_count(emb, qkv_bias):
    """Parameters of one GPT-2 block, from the architecture (not from the code under test):
    attention 3 E^2 (+3E biases) + out_proj E^2 + E; feed-forward 8 E^2 + 5E; two layer norms 4E."""
    return 12 * emb * emb + 10 * emb + (3 * emb if qkv_bias else 0)


@pytest.mark.parametrize("qkv_bias", [False, True])
@pytest.mark.parametrize("trainable_blocks", [0, 1, 2])
def test_exactly_the_intended_parameters_are_trainable(qkv_bias, trainable_blocks):
    cfg = GPTConfig(
        vocab_size=50257, context_length=16, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=qkv_bias
    )
    model = prepare_for_classification(GPTModel(cfg), num_classes=2, trainable_blocks=trainable_blocks)
    emb = 32
    expected = trainable_blocks * block_param_count(emb, qkv_bias) + 2 * emb + (2 * emb + 2)  # blocks, final norm, head
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert model.out_head.out_features == 2 and model.out_head.bias is not None
    assert not model.tok_emb.weight.requires_grad and not model.pos_emb.weight.requires_grad
    if trainable_blocks == 1:
        assert not any(p.requires_grad for p in model.trf_blocks[0].parameters())


def test_prepare_for_classification_rejects_bad_arguments():
    with pytest.raises(ValueError, match="trainable_blocks"):
        prepare_for_classification(GPTModel(TINY), trainable_blocks=3)
    with pytest.raises(ValueError, match="2 classes"):
        prepare_for_classification(GPTModel(TINY), num_classes=1)


class LastTokenParity(torch.nn.Module):
    """A fixed 'model': class scores at each position say "spam" iff the token id is odd."""

    def forward(self, idx):
        odd = (idx % 2).float()
        return torch.stack([1 - odd, odd], dim=-1)  # (batch, num_tokens, 2)


def test_calc_accuracy_loader_reads_the_last_position():
    # last tokens 1, 3, 2, 4 -> predictions spam, spam, ham, ham; labels spam, ham, ham, ham -> 3/4
    inputs = torch.tensor([[2, 1], [2, 3], [1, 2], [1, 4]])
    labels = torch.tensor([1, 0, 0, 0])
    loader = DataLoader(list(zip(inputs, labels)), batch_size=2)
    assert calc_accuracy_loader(loader, LastTokenParity(), "cpu") == 0.75
    assert calc_accuracy_loader(loader, LastTokenParity(), "cpu", num_batches=1) == 0.5
    with pytest.raises(ValueError, match="empty"):
        calc_accuracy_loader(DataLoader([], batch_size=2), LastTokenParity(), "cpu")


TOY = frame(
    ("spam", "win cash now"),
    ("spam", "free prize now"),
    ("spam", "win free cash"),
    ("spam", "cash prize"),
    ("ham", "see you at lunch"),
    ("ham", "see you"),
    ("ham", "lunch at"),
    ("ham", "you at lunch"),
)


@pytest.fixture(scope="module")
def toy_run():
    """A tiny random GPT fine-tuned on TOY for 8 epochs of 2 steps (100 % from about step 6 on,
    for every seed tried); shared by the tests below to keep the file fast."""
    num_epochs = 8
    set_seed(123)
    model = prepare_for_classification(GPTModel(TINY), trainable_blocks=1)
    dataset = SpamDataset(TOY, WordTokenizer(), context_length=TINY.context_length)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-2)
    loss_before = calc_class_loss_loader(loader, model, "cpu")
    history = train_classifier(model, loader, loader, optimizer, "cpu", num_epochs=num_epochs, eval_freq=4, eval_iter=2)
    return model, loader, history, dataset.max_length, loss_before


def test_training_separates_a_toy_set(toy_run):
    model, loader, history, _, loss_before = toy_run
    assert calc_accuracy_loader(loader, model, "cpu") == 1.0  # all 8 messages right
    assert calc_class_loss_loader(loader, model, "cpu") < loss_before
    # 8 epochs of 2 steps: evaluations after steps 4, 8, 12 and 16, every list one entry each
    assert history["examples_seen"] == [16, 32, 48, 64]
    assert all(len(history[key]) == 4 for key in ("train_loss", "val_loss", "train_acc", "val_acc"))
    assert history["train_acc"][-1] == 1.0  # eval_iter=2 batches of 4 = the whole toy set
    assert not model.training


def test_frozen_parameters_do_not_move():
    set_seed(0)
    model = prepare_for_classification(GPTModel(TINY), trainable_blocks=1)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    loader = DataLoader(SpamDataset(TOY, WordTokenizer()), batch_size=4)
    optimizer = torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-2, weight_decay=0.1)
    train_classifier(model, loader, loader, optimizer, "cpu", num_epochs=1, eval_freq=1, eval_iter=1)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)


def test_classify_text_returns_label_names(toy_run):
    model, _, _, max_length, _ = toy_run
    tokenizer = WordTokenizer()
    assert classify_text("win free cash now", model, tokenizer, "cpu", max_length=max_length) == "spam"
    assert classify_text("see you at lunch", model, tokenizer, "cpu", max_length=max_length) == "ham"
    assert classify_text("cash prize", model, tokenizer, "cpu") in CLASS_NAMES  # unpadded also works


def test_classify_text_errors_and_truncation():
    set_seed(0)
    model = prepare_for_classification(GPTModel(TINY))
    tokenizer = WordTokenizer()
    with pytest.raises(ValueError, match="empty"):
        classify_text("  ", model, tokenizer, "cpu")
    long = " ".join(["win"] * 20)
    with pytest.raises(ValueError, match=r"20 tokens .* context_length is 16"):
        classify_text(long, model, tokenizer, "cpu")
    with pytest.raises(ValueError, match=r"max_length 17 .* context_length 16"):
        classify_text("win", model, tokenizer, "cpu", max_length=17)
    # explicit truncation to the context: same answer as the first 16 tokens
    assert classify_text(long, model, tokenizer, "cpu", max_length=16) == classify_text(
        " ".join(["win"] * 16), model, tokenizer, "cpu"
    )


def test_scheduler_is_stepped_once_per_training_step():
    set_seed(0)
    model = prepare_for_classification(GPTModel(TINY))
    loader = DataLoader(SpamDataset(TOY, WordTokenizer()), batch_size=4)  # 2 steps per epoch
    optimizer = torch.optim.SGD((p for p in model.parameters() if p.requires_grad), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (step + 1))
    train_classifier(
        model, loader, loader, optimizer, "cpu", num_epochs=2, eval_freq=10, eval_iter=1, scheduler=scheduler
    )
    assert scheduler.last_epoch == 4  # 2 epochs x 2 steps
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 5)


def test_predictions_and_confusion_matrix_agree_with_the_accuracy(toy_run):
    model, loader, _, _, _ = toy_run
    predicted, true = predict_loader(model, loader, "cpu")
    assert sorted(true) == sorted(TOY["label"].map(CLASS_NAMES.index).tolist())
    counts = confusion_matrix(predicted, true)
    assert sum(map(sum, counts)) == len(TOY)
    assert counts[0][0] + counts[1][1] == round(calc_accuracy_loader(loader, model, "cpu") * len(TOY))


def test_confusion_matrix_on_a_hand_made_case():
    # true: ham, ham, spam, spam, spam; predicted: ham, spam, spam, spam, ham
    assert confusion_matrix([0, 1, 1, 1, 0], [0, 0, 1, 1, 1]) == [[1, 1], [1, 2]]


def test_every_profile_has_a_frozen_recipe():
    assert set(SPAM_SETTINGS) == {"quick", "book"}
    assert all(isinstance(recipe, SpamSettings) for recipe in SPAM_SETTINGS.values())
    assert SPAM_SETTINGS["book"].base_model == "gpt2-small (124M)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        SPAM_SETTINGS["quick"].learning_rate = 1.0


def test_finetune_spam_classifier_trains_what_the_hook_leaves_trainable(tmp_path, monkeypatch):
    """The one-call recipe: real splits, a tiny base model, one epoch, and a hook that freezes all but the head."""
    import ch06_classification.classification as classification

    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path))
    torch.manual_seed(0)
    base = GPTModel(GPTConfig(vocab_size=50257, context_length=128, emb_dim=8, n_heads=2, n_layers=1, drop_rate=0.0))
    monkeypatch.setattr(classification, "load_pretrained", lambda name: base)
    monkeypatch.setattr(classification, "load_tokenizer", lambda name: gpt2_encoding())
    seen = {}

    def head_only(model):
        seen["classes"] = model.out_head.out_features
        model.requires_grad_(False)
        model.out_head.requires_grad_(True)
        seen["frozen"] = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
        seen["head"] = model.out_head.weight.detach().clone()
        return model

    model, history, loaders = classification.finetune_spam_classifier(
        "quick", "cpu", prepare_model=head_only, recipe=dataclasses.replace(SPAM_SETTINGS["quick"], num_epochs=1)
    )
    params = dict(model.named_parameters())
    assert seen["classes"] == len(CLASS_NAMES)
    assert all(torch.equal(params[name], before) for name, before in seen["frozen"].items())
    assert not torch.equal(model.out_head.weight, seen["head"])
    assert set(loaders) == {"train", "validation", "test"} and len(loaders["test"].dataset) == 300
    assert history["examples_seen"] and not model.training


def test_reinitialise_weights_replaces_everything_but_the_head():
    """The control of section 6.7.3: every weight below the head is new, the head and trainability stay."""
    from ch06_classification.classification import reinitialise_weights

    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel(TINY), trainable_blocks=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # stands for pretraining: weights that a fresh initialisation cannot reproduce
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    assert reinitialise_weights(model, seed=5) is model
    for name, p in model.named_parameters():
        assert p.requires_grad == trainable[name], name
        if name.startswith("out_head."):
            assert torch.equal(p, before[name]), name
        else:
            assert not torch.equal(p, before[name]), name
    torch.manual_seed(1)
    again = reinitialise_weights(prepare_for_classification(GPTModel(TINY)), seed=5)
    assert torch.equal(again.tok_emb.weight, model.tok_emb.weight), "the same seed gives the same random weights"
    assert not torch.equal(reinitialise_weights(GPTModel(TINY), seed=6).tok_emb.weight, model.tok_emb.weight)


def test_finetune_spam_classifier_seed_changes_the_run_not_the_data(tmp_path, monkeypatch):
    import ch06_classification.classification as classification

    monkeypatch.setenv("LLM_COURSE_CACHE", str(tmp_path))
    config = GPTConfig(vocab_size=50257, context_length=128, emb_dim=8, n_heads=2, n_layers=1, drop_rate=0.0)

    def base(name):
        torch.manual_seed(0)
        return GPTModel(config)

    monkeypatch.setattr(classification, "load_pretrained", base)
    monkeypatch.setattr(classification, "load_tokenizer", lambda name: gpt2_encoding())
    FAST = dataclasses.replace(SPAM_SETTINGS["quick"], num_epochs=1, batch_size=64)
    runs = {seed: classification.finetune_spam_classifier("quick", "cpu", seed=seed, recipe=FAST) for seed in (1, 2)}
    again = classification.finetune_spam_classifier("quick", "cpu", seed=1, recipe=FAST)
    assert torch.equal(again[0].out_head.weight, runs[1][0].out_head.weight), "the same seed repeats the run"
    assert not torch.equal(runs[2][0].out_head.weight, runs[1][0].out_head.weight)
    assert runs[1][2]["test"].dataset.input_ids.tolist() == runs[2][2]["test"].dataset.input_ids.tolist()


# --- exercise checks: each measures the reader's models itself -------------------------------
#
# Fine-tuning real classifiers would take minutes, so the checks get stand-ins whose answers are
# known: a tiny GPTModel (prepared for classification, so its trainable parameters are real) that
# answers from a table of the chapter's messages, right on a chosen share of them.

import zlib  # noqa: E402

from torch import nn  # noqa: E402

from ch06_classification import checks  # noqa: E402

PAD = 50256
CONTEXT = 256


def _message_key(row):
    """A message's token ids without the padding, whatever length it was padded to."""
    ids = row.tolist()
    while ids and ids[-1] == PAD:
        ids.pop()
    return tuple(ids)


@pytest.fixture(scope="module", autouse=True)
def gpt2_tokenized_checks():
    """The checks encode with GPT-2's tokenizer here, as the tiny test models and the fixtures below do."""
    checks._dataset.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checks, "chapter_tokenizer", gpt2_encoding)
        yield
    checks._dataset.cache_clear()


@pytest.fixture(scope="module")
def spam_splits():
    """{split: SpamDataset} padded as in the chapter, and {message key: label} over all splits."""
    paths, tokenizer = prepare_spam_splits(seed=123), gpt2_encoding()
    train = SpamDataset(paths["train"], tokenizer)
    splits = {
        "train": train,
        **{name: SpamDataset(paths[name], tokenizer, max_length=train.max_length) for name in ("validation", "test")},
    }
    labels = {_message_key(row): label.item() for ds in splits.values() for row, label in zip(ds.input_ids, ds.labels)}
    return splits, labels


class TableClassifier(GPTModel):
    """A stand-in for a fine-tuned classifier: right on about ``accuracy`` of the chapter's messages.

    Which messages it gets right depends only on the message (a hash of its tokens), so every
    padding and every batch gives the same answers.
    """

    def __init__(self, labels, accuracy, train_all=True):
        torch.manual_seed(0)
        super().__init__(
            GPTConfig(vocab_size=50257, context_length=CONTEXT, emb_dim=8, n_heads=2, n_layers=2, drop_rate=0.0)
        )
        prepare_for_classification(self)
        if train_all:
            self.requires_grad_(True)
        self.labels, self.accuracy = labels, accuracy

    def forward(self, idx):
        answers = []
        for row in idx:
            key = _message_key(row)
            right = zlib.crc32(str(key).encode()) % 1000 < 1000 * self.accuracy
            label = self.labels.get(key, 0)
            answers.append(label if right else 1 - label)
        scores = nn.functional.one_hot(torch.tensor(answers), 2).float()  # (batch, 2)
        return scores[:, None, :].expand(-1, idx.shape[1], -1)  # (batch, num_tokens, 2)


class FirstTokenTable(nn.Module):
    """A stand-in for exercise 2's first-position classifier: the majority label of each first token."""

    def __init__(self, dataset=None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2))
        votes = {}
        for row, label in zip(dataset.input_ids, dataset.labels) if dataset is not None else []:
            votes.setdefault(row[0].item(), Counter())[label.item()] += 1
        self.table = {token: counts.most_common(1)[0][0] for token, counts in votes.items()}

    def forward(self, idx):
        answers = torch.tensor([self.table.get(token, 0) for token in idx[:, 0].tolist()])
        return nn.functional.one_hot(answers, 2).float()[:, None, :] + self.bias  # (batch, 1, 2)


def _accuracy(model, dataset):
    return calc_accuracy_loader(DataLoader(dataset, batch_size=8), model, "cpu")


def _verdict(capsys, check, *answers):
    check(*answers)
    return capsys.readouterr().out


def test_exercise_1_check_measures_the_model_and_accepts_the_solution(capsys, spam_splits):
    splits, labels = spam_splits
    model = TableClassifier(labels, 0.9, train_all=False)  # quick: the chapter trained all, so the top only
    measured = _accuracy(model, splits["test"])
    assert 0.8 < measured < 0.97
    model.train()
    out = _verdict(capsys, checks.check_exercise_1, model, measured, True)
    assert out.startswith("Correct!") and f"{measured:.1%}" in out, out
    assert model.training, "the check puts the model back in the mode it was in"
    book = TableClassifier(labels, 0.9, train_all=True)  # book: the chapter trained the top, so everything
    assert _verdict(capsys, checks.check_exercise_1, book, _accuracy(book, splits["test"]), False).startswith(
        "Correct!"
    )


def test_exercise_1_check_rejects_typed_numbers_and_wrong_recipes(capsys, spam_splits):
    splits, labels = spam_splits
    model = TableClassifier(labels, 0.7, train_all=False)
    measured = _accuracy(model, splits["test"])
    assert "You report 95.0%" in _verdict(capsys, checks.check_exercise_1, model, 0.95, True)  # a number typed in
    assert "You report" in _verdict(capsys, checks.check_exercise_1, model, measured + 2 / 300, True)
    untrained = TableClassifier(labels, 0.5, train_all=False)
    out = _verdict(capsys, checks.check_exercise_1, untrained, _accuracy(untrained, splits["test"]), True)
    assert "hardly better than guessing" in out
    everything = TableClassifier(labels, 0.9, train_all=True)  # the chapter's own recipe again
    out = _verdict(capsys, checks.check_exercise_1, everything, _accuracy(everything, splits["test"]), True)
    assert "below the last block are trainable" in out
    assert "still frozen" in _verdict(capsys, checks.check_exercise_1, model, measured, False)
    assert "not a percentage" in _verdict(capsys, checks.check_exercise_1, model, 100 * measured, True)
    assert "TRAIN_ALL" in _verdict(capsys, checks.check_exercise_1, model, measured, "quick")
    assert "nn.Module" in _verdict(capsys, checks.check_exercise_1, 0.9, measured, True)
    assert "classifier itself" in _verdict(capsys, checks.check_exercise_1, FirstTokenTable(), measured, True)
    assert _verdict(capsys, checks.check_exercise_1, None, None, True).startswith("Not answered yet")


def test_exercise_2_check_measures_both_models_and_accepts_the_solution(capsys, spam_splits):
    splits, labels = spam_splits
    first, last = FirstTokenTable(splits["train"]), TableClassifier(labels, 0.9)
    first_accuracy, last_accuracy = _accuracy(first, splits["validation"]), _accuracy(last, splits["validation"])
    assert 0.55 <= first_accuracy < last_accuracy
    out = _verdict(capsys, checks.check_exercise_2, first, last)
    assert out.startswith("Correct!") and f"{first_accuracy:.1%} vs last position {last_accuracy:.1%}" in out, out


def test_exercise_2_check_rejects_wrong_models_and_numbers(capsys, spam_splits):
    splits, labels = spam_splits
    first, last = FirstTokenTable(splits["train"]), TableClassifier(labels, 0.9)
    assert "does not read the first position" in _verdict(capsys, checks.check_exercise_2, last, last)  # not wrapped
    assert "reads the first position too" in _verdict(capsys, checks.check_exercise_2, first, first)
    assert "little better than guessing" in _verdict(capsys, checks.check_exercise_2, FirstTokenTable(), last)
    assert "reaches only" in _verdict(capsys, checks.check_exercise_2, first, TableClassifier(labels, 0.6))
    assert "nn.Module" in _verdict(capsys, checks.check_exercise_2, 0.65, 0.82)  # typed numbers are no answer
    assert _verdict(capsys, checks.check_exercise_2, None, None).startswith("Not answered yet")

    class Broken(FirstTokenTable):
        def forward(self, idx):
            raise RuntimeError("shapes")

    assert "raised RuntimeError" in _verdict(capsys, checks.check_exercise_2, Broken(splits["train"]), last)


@pytest.fixture(scope="module")
def long_train():
    return SpamDataset(prepare_spam_splits(seed=123)["train"], gpt2_encoding(), max_length=CONTEXT)


def test_exercise_3_check_measures_the_model_and_accepts_the_solution(capsys, spam_splits, long_train):
    _, labels = spam_splits
    model = TableClassifier(labels, 0.85)
    test_long = SpamDataset(prepare_spam_splits(seed=123)["test"], gpt2_encoding(), max_length=CONTEXT)
    measured = _accuracy(model, test_long)
    out = _verdict(capsys, checks.check_exercise_3, long_train, model, CONTEXT)
    assert out.startswith("Correct!") and f"test accuracy {measured:.1%}" in out, out


def test_exercise_3_check_rejects_wrong_datasets_models_and_numbers(capsys, spam_splits, long_train):
    splits, labels = spam_splits
    model = TableClassifier(labels, 0.85)
    assert "pass max_length=context_length" in _verdict(
        capsys, checks.check_exercise_3, splits["train"], model, CONTEXT
    )
    test_split = SpamDataset(prepare_spam_splits(seed=123)["test"], gpt2_encoding(), max_length=CONTEXT)
    assert "build it from the training split" in _verdict(capsys, checks.check_exercise_3, test_split, model, CONTEXT)
    shuffled = SpamDataset(prepare_spam_splits(seed=123)["train"], gpt2_encoding(), max_length=CONTEXT)
    shuffled.input_ids = shuffled.input_ids.flip(0)
    assert "rows differ" in _verdict(capsys, checks.check_exercise_3, shuffled, model, CONTEXT)
    assert "hardly better than guessing" in _verdict(
        capsys, checks.check_exercise_3, long_train, TableClassifier(labels, 0.5), CONTEXT
    )
    assert "nn.Module" in _verdict(capsys, checks.check_exercise_3, long_train, 0.85, CONTEXT)  # a typed accuracy
    assert "context_length (an int)" in _verdict(capsys, checks.check_exercise_3, long_train, model, "256")
    assert _verdict(capsys, checks.check_exercise_3, None, None, CONTEXT).startswith("Not answered yet")
