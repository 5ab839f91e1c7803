"""Subword tokenizers (`textpipe.text.subword`): `--tokenizer hf:tokenizer.json` for every model through the Vocab,
`textpipe tokenizer train`, and checkpoints that carry the tokenizer (evaluate/predict without its file).

Run: python -m pytest -q tests/test_subword.py          (about 10 s on 2 CPU cores)
"""
import pickle

import pytest

pytest.importorskip("tokenizers", reason="the hf extra (tokenizers) is not installed")

from textpipe.checkpoint import load_checkpoint  # noqa: E402
from textpipe.cli import main as cli  # noqa: E402
from textpipe.evaluate import evaluate  # noqa: E402
from textpipe.predict import predict  # noqa: E402
from textpipe.text import build_vocab_from_texts, get_tokenizer  # noqa: E402
from textpipe.text.subword import SubwordTokenizer, train_tokenizer  # noqa: E402
from textpipe.text.vocabulary import Vocab  # noqa: E402
from test_train import write_csv  # noqa: E402

TEXTS = ["the cat sat on the mat", "the cats sat down", "a dog and a cat", "dogs chase cats"] * 5


@pytest.mark.parametrize("kind", ["bpe", "wordpiece", "unigram"])
def test_each_kind_trains_and_tokenizes_without_special_tokens(kind):
    tok = train_tokenizer(TEXTS, kind=kind, vocab_size=60, min_frequency=1)
    fn = SubwordTokenizer(tok.to_str())
    tokens = fn("The cats sat")
    assert tokens and all(isinstance(t, str) and t for t in tokens)
    assert not {"[CLS]", "[SEP]", "<s>"} & set(tokens)
    assert pickle.loads(pickle.dumps(fn))("The cats sat") == tokens  # DataLoader workers get it by value


def test_bad_kind_and_size_are_value_errors():
    with pytest.raises(ValueError, match=r"kind must be one of \('bpe', 'wordpiece', 'unigram'\)"):
        train_tokenizer(TEXTS, kind="sentencepiece")
    with pytest.raises(ValueError, match="vocab_size must be an int >= 7"):
        train_tokenizer(TEXTS, kind="wordpiece", vocab_size=3)


def test_hf_name_builds_a_vocab_that_saves_and_loads(tmp_path):
    path = tmp_path / "tok.json"
    train_tokenizer(TEXTS, kind="wordpiece", vocab_size=60, min_frequency=1).save(str(path))
    name = f"hf:{path}"
    vocab = build_vocab_from_texts([TEXTS], tokenizer=name, specials=["<pad>", "<unk>"])
    vocab.set_default_index(1)
    assert vocab.tokenizer_name == name
    assert vocab.encode("the cats") == vocab(get_tokenizer(name)("the cats"))
    vocab.save(tmp_path / "vocab.txt")
    again = Vocab.load(tmp_path / "vocab.txt")
    assert again.tokenizer_name == name and again.encode("the cats") == vocab.encode("the cats")
    with pytest.raises(ValueError, match="no such file"):
        get_tokenizer(f"hf:{tmp_path / 'missing.json'}")


def test_tokenizer_train_command_then_bag_training_and_a_portable_checkpoint(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", 200, seed=0)
    write_csv(data / "test.csv", 40, seed=1)
    tok = tmp_path / "bpe.json"
    assert cli(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "300", str(data / "train.csv"),
                "--out", str(tok)]) == 0
    assert "--tokenizer hf:" in capsys.readouterr().out and tok.is_file()
    out = tmp_path / "run"
    assert cli(["train", "--data-dir", str(data), "--tokenizer", f"hf:{tok}", "--output-dir", str(out),
                "--epochs", "2", "--batch-size", "16", "--lr", "4", "--no-progress"]) == 0
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["data"]["tokenizer"] == f"hf:{tok}" and "json" in ckpt["data"]["tokenizer_state"]
    before = predict(out / "best.pt", ["stocks profit shares", "coach league season"])
    tok.unlink()  # the checkpoint carries the tokenizer: evaluate and predict need no file
    assert predict(out / "best.pt", ["stocks profit shares", "coach league season"]) == before
    assert evaluate(out / "best.pt", data / "test.csv")["n"] == 40


def test_tokenizer_command_errors_are_one_line(tmp_path, capsys):
    assert cli(["tokenizer", "train", str(tmp_path / "nope.txt")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.txt'}: no such file"
