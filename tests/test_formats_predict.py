"""Issue 21: data as it comes (--format, TSV without quoting, fastText files), predictions to act on (streaming
predict, --top-k, --threshold, --output), evaluate --errors and the threshold table, the tokenizer trap, the
default output directory and log-friendly progress.

Run: python -m pytest -q tests/test_formats_predict.py
"""
import csv
import io
import json
import sys

import pytest
import torch

from textpipe.checkpoint import save_checkpoint
from textpipe.core.progress import LineProgress
from textpipe.core.rowfile import unique_keys
from textpipe.data.table import read_table
from textpipe.evaluate import main as evaluate_main
from textpipe.metrics import threshold_table
from textpipe.models.bag import ModelConfig, TextClassifier
from textpipe.predict import main as predict_main
from textpipe.train import TrainConfig, fit
from textpipe.train.config import default_output_dir

ITOS = ["<pad>", "<unk>", "ok", "home", "free", "win"]
NAMES = ["ham", "spam"]
KEYWORD = {"ok": 0, "home": 0, "free": 1, "win": 1}
STRAY = 'ham\t"Wen u miss someone ..." gdeve..\n'  # the line: a quote that no CSV reader accepts


@pytest.fixture
def checkpoint(tmp_path):
    """A two-class model built by hand: ok/home -> ham, free/win -> spam."""
    model = TextClassifier(ModelConfig(vocab_size=len(ITOS), embed_dim=2, num_classes=2, ngrams=1))
    with torch.no_grad():
        model.embedding.weight.zero_()
        model.fc.weight.zero_()
        for word, label in KEYWORD.items():
            model.embedding.weight[ITOS.index(word), label] = 1.0
        model.fc.weight.copy_(torch.eye(2) * 4)
    return save_checkpoint(tmp_path / "m.pt", model=model, model_config=model.config, vocab_itos=ITOS, epoch=1,
                           step=1, class_names=NAMES, data={"label_values": NAMES})


def sms(path, n=60):
    lines = [("spam\tfree win now " if i % 3 == 0 else "ham\tok see you at home ") + str(i) + "\n" for i in range(n)]
    path.write_text("".join(lines[:5]) + STRAY + "".join(lines[5:]))
    return path


# -- formats ---------------------------------------------------------------------------------------------------
def test_tsv_is_unquoted_by_default_and_quoting_csv_names_the_fix(tmp_path):
    path = tmp_path / "sms.tsv"
    path.write_text("ham\tok\n" + STRAY)
    assert read_table(path, text_columns=[1], label_column=0) == (["ham", "ham"], ["ok", STRAY[4:-1]])
    quoted = tmp_path / "quoted.tsv"  # --quoting csv reads quoted TSV fields
    quoted.write_text('label\ttext\nham\t"a ""b"" c"\n')
    assert read_table(quoted, quoting="csv") == (["ham"], ['a "b" c'])
    path.write_text('spam\t"Free entry\n' + "ham\tok\n" * 3)  # an unclosed quote: CSV rules fail, TSV reads
    assert read_table(path, text_columns=[1], label_column=0)[1][0] == '"Free entry'
    with pytest.raises(ValueError, match="malformed quoting.*--quoting none"):
        read_table(path, text_columns=[1], label_column=0, quoting="csv")


def test_a_file_without_extension_needs_format_and_then_trains(tmp_path):
    path = sms(tmp_path / "SMSSpamCollection")
    with pytest.raises(ValueError, match="--format"):
        read_table(path, text_columns=[1], label_column=0)
    summary = fit(TrainConfig(train=str(path), format="tsv", text_columns=[1], label_column=0, epochs=2,
                              val_fraction=0.25, output_dir=str(tmp_path / "run"), progress=False))
    assert summary["rows"]["train"] + summary["rows"]["val"] == 61
    t = summary["val_threshold"]  # two classes and validation data: the best threshold is recorded
    assert t["positive"] == "spam" and 0 <= t["threshold"] <= 1 and 0 <= t["f1"] <= 1 and "f1_at_0.5" in t


def test_default_output_dir_names_the_training_data(tmp_path):
    assert default_output_dir(TrainConfig()) == "runs/ag_news"
    assert default_output_dir(TrainConfig(train=str(tmp_path / "SMSSpamCollection"))) == "runs/SMSSpamCollection"
    assert default_output_dir(TrainConfig(train=str(tmp_path / "sms" / "train.csv.gz"))) == "runs/sms-train"
    assert default_output_dir(TrainConfig(data_dir=str(tmp_path / "trec"))) == "runs/trec"


def test_fasttext_files_train_evaluate_and_predict(tmp_path, capsys):
    rows = ["__label__spam free win now", "__label__ham ok see you at home", "", "__label__ham home ok"] * 10
    train = tmp_path / "train.txt"
    train.write_text("\n".join(rows) + "\n")
    assert read_table(train, format="fasttext")[0][:3] == ["spam", "ham", "ham"]
    fit(TrainConfig(train=str(train), test=str(train), format="fasttext", epochs=2, output_dir=str(tmp_path / "r"),
                    progress=False))
    best = str(tmp_path / "r" / "best.pt")
    capsys.readouterr()
    # evaluate and predict take the checkpoint's --format for a name that says nothing
    assert evaluate_main(["--checkpoint", best, "--data", str(train), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 30 and [c["class"] for c in report["per_class"]] == ["ham", "spam"]
    assert predict_main(["--checkpoint", best, "--data", str(train), "--json", "--device", "cpu"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 40 and out[0]["label"] == "spam" and out[2]["predicted"] is None  # blank in, blank out

    several = tmp_path / "multi.txt"
    several.write_text("__label__a __label__b two labels\n__label__a one\n")
    with pytest.raises(ValueError, match="line 1 has 2 labels.*one __label__ per line"):
        read_table(several, format="fasttext")


# -- predict ---------------------------------------------------------------------------------------------------
def test_predict_headerless_file_one_output_line_per_input_line(checkpoint, tmp_path, capsys):
    lines = ["ham\tok home" if i % 2 else "spam\tfree win" for i in range(100_000)]
    lines[10] = lines[99_999] = ""  # blank lines keep their place
    path = tmp_path / "q.tsv"
    path.write_text("\n".join(lines) + "\n")
    assert predict_main(["--checkpoint", str(checkpoint), "--data", str(path), "--text-column", "1",
                         "--device", "cpu", "--batch-size", "8192"]) == 0
    out = capsys.readouterr().out.split("\n")[:-1]
    assert len(out) == 100_000 and out[10] == "" and out[99_999] == ""
    assert out[0].startswith("spam\t") and out[1].startswith("ham\t")


def test_predict_streams_stdin(checkpoint, monkeypatch):
    """The first answers are written before the input is read to its end."""
    written = io.StringIO()
    seen_before_end = []

    def lines():
        for i in range(300):
            if i == 299:
                seen_before_end.append(written.getvalue().count("\n"))
            yield "free win\n" if i % 2 else "ok home\n"

    monkeypatch.setattr(sys, "stdin", lines())
    monkeypatch.setattr(sys, "stdout", written)
    assert predict_main(["--checkpoint", str(checkpoint), "--device", "cpu", "--batch-size", "100"]) == 0
    assert seen_before_end[0] >= 64 and written.getvalue().count("\n") == 300


def test_predict_top_k_threshold_and_output_files(checkpoint, tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_text("text,predicted,label\nok home,x,ham\nfree,y,spam\n,z,ham\n")  # input columns that clash
    base = ["--checkpoint", str(checkpoint), "--data", str(path), "--device", "cpu"]
    assert predict_main([*base, "--json", "--top-k", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["predicted"] == "x" and rows[0]["predicted_1"] == "ham" and rows[0]["label"] == "ham"
    assert rows[0]["top1"] == "ham" and rows[0]["top2"] == "spam" and set(rows[0]["probabilities"]) == {"ham", "spam"}
    assert rows[2]["predicted_1"] is None and rows[2]["probability"] is None
    # a threshold below the spam probability of "ok home" flips it
    p_spam = rows[0]["probabilities"]["spam"]
    assert predict_main([*base, "--json", "--threshold", str(p_spam / 2), "--positive", "spam"]) == 0
    flipped = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert flipped[0]["predicted_1"] == "spam" and flipped[0]["probability"] == pytest.approx(p_spam)
    for name in ("out.csv", "out.jsonl"):
        assert predict_main([*base, "--top-k", "1", "--output", str(tmp_path / name)]) == 0
    got = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert list(got[0]) == ["text", "predicted", "label", "predicted_1", "probability", "top1", "top1_probability"]
    assert [r["predicted_1"] for r in got] == ["ham", "spam", ""]
    assert [json.loads(x)["predicted_1"] for x in open(tmp_path / "out.jsonl")] == ["ham", "spam", None]
    assert predict_main([*base, "--positive", "spam"]) == 2  # --positive without --threshold
    assert "--threshold" in capsys.readouterr().err


# -- evaluate --------------------------------------------------------------------------------------------------
def test_evaluate_errors_file_and_threshold_table(checkpoint, tmp_path, capsys):
    data = tmp_path / "test.tsv"
    data.write_text("ham\tok home\nspam\tfree win\nham\twin win free\nspam\thome\nham\tok\n")
    errors = tmp_path / "wrong.csv"
    assert evaluate_main(["--checkpoint", str(checkpoint), "--data", str(data), "--text-column", "1",
                          "--label-column", "0", "--errors", str(errors), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["thresholds"]["positive"] == "spam" and len(report["thresholds"]["table"]) == 19
    wrong = list(csv.DictReader(open(errors)))
    assert [(r["row"], r["text"], r["true"], r["predicted"]) for r in wrong] == [
        ("3", "win win free", "ham", "spam"), ("4", "home", "spam", "ham")]
    assert float(wrong[0]["probability"]) > 0.5


def test_threshold_table_best_f1_matches_brute_force():
    scores = [0.95, 0.8, 0.7, 0.55, 0.4, 0.3, 0.3, 0.1]
    truth = [True, False, True, True, False, True, False, False]
    t = threshold_table(scores, truth, name="spam")

    def f1(th):
        pred = [s >= th for s in scores]
        tp = sum(p and y for p, y in zip(pred, truth))
        return 2 * tp / (sum(pred) + sum(truth)) if tp else 0.0

    assert t["best"]["f1"] == pytest.approx(max(f1(s) for s in scores))
    assert f1(t["best"]["threshold"]) == pytest.approx(t["best"]["f1"])


# -- the tokenizer trap, progress ------------------------------------------------------------------------------
def test_vocab_built_from_other_tokens_refuses_to_encode_text():
    from textpipe.data import get_tokenizer
    from textpipe.vocab import build_vocab_from_iterator

    texts = ["Hello, World!", "hello there"]
    v = build_vocab_from_iterator(map(get_tokenizer("split"), texts), specials=["<unk>"])
    v.set_default_index(0)
    assert v.encode(["Hello,", "World!"]) == [1, 2]  # token lists: fine
    with pytest.raises(ValueError, match="tokenizer="):
        v.encode("Hello, World!")
    with pytest.raises(ValueError, match="tokenizer="):
        v.encode_flat(["Hello, World!"])
    split = build_vocab_from_iterator(map(get_tokenizer("split"), texts), specials=["<unk>"], tokenizer="split")
    assert split.encode("Hello, World!") == [1, 2]
    basic = build_vocab_from_iterator(map(get_tokenizer("basic_english"), texts), specials=["<unk>"])
    basic.set_default_index(0)
    assert basic.encode("Hello, World!") == basic.encode(["hello", ",", "world", "!"])


def test_progress_off_a_terminal_is_one_line_per_step():
    out = io.StringIO()
    bar = LineProgress(range(200), desc="epoch 1/1", step=25, file=out)
    for _ in bar:
        bar.set_postfix(loss="0.1")
    assert out.getvalue().splitlines() == [f"epoch 1/1: {p}% ({2 * p}/200) loss=0.1" for p in (25, 50, 75, 100)]
    assert "\r" not in out.getvalue()


def test_unique_keys():
    assert unique_keys(["predicted", "probability"], {"predicted", "predicted_1"}) == {
        "predicted": "predicted_2", "probability": "probability"}
