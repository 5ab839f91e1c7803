"""`textpipe.evaluate` and `textpipe.predict`, as functions and as commands, on a hand-made checkpoint;
plus the metrics helpers.

Run: python -m pytest -q tests/test_evaluate_predict.py
"""
import importlib.util
import json
import sys

import pytest
import torch

from textpipe.checkpoint import save_checkpoint
from textpipe.evaluate import evaluate
from textpipe.evaluate import main as evaluate_main
from textpipe.metrics import classification_report, format_report, save_confusion_png
from textpipe.models.bag import ModelConfig, TextClassifier
from textpipe.predict import main as predict_main
from textpipe.predict import predict

ITOS = ["<pad>", "<unk>", "goal", "stocks", "nasa", "troops"]
NAMES = ["World", "Sports", "Business", "Sci/Tech"]
KEYWORD = {"troops": 0, "goal": 1, "stocks": 2, "nasa": 3}


@pytest.fixture
def checkpoint(tmp_path):
    """A model that maps each keyword to its class, built by hand (no training)."""
    model = TextClassifier(ModelConfig(vocab_size=len(ITOS), embed_dim=4, ngrams=1))
    with torch.no_grad():
        model.embedding.weight.zero_()
        model.fc.weight.zero_()
        for word, label in KEYWORD.items():
            model.embedding.weight[ITOS.index(word), label] = 1.0
            model.fc.weight[label, label] = 10.0
    return save_checkpoint(tmp_path / "m.pt", model=model, model_config=model.config, vocab_itos=ITOS,
                           epoch=1, step=1, class_names=NAMES)


@pytest.fixture
def csv(tmp_path):
    rows = ['"2","Late goal","wins it"', '"3","Stocks","rally"', '"4","NASA","launch"', '"1","Troops","stocks stocks"']
    path = tmp_path / "test.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_predict_function(checkpoint):
    results = predict(checkpoint, ["A goal in the last minute", "NASA and stocks and nasa"])
    assert [r["label_name"] for r in results] == ["Sports", "Sci/Tech"]
    assert abs(sum(results[0]["probs"].values()) - 1) < 1e-6 and list(results[0]["probs"]) == NAMES
    with pytest.raises(TypeError, match="wrap it in a list"):
        predict(checkpoint, "one text")


def test_predict_command_reads_stdin(checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("troops advance\n\nstocks fall\n"))
    assert predict_main(["--checkpoint", str(checkpoint), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # one output per input line: the blank line gets an empty prediction
    assert [(r["text"], r["predicted"]) for r in lines] == [("troops advance", "World"), ("", None),
                                                           ("stocks fall", "Business")]


def test_evaluate_function_and_command(checkpoint, csv, capsys):
    report = evaluate(checkpoint, csv)
    assert report["n"] == 4 and report["accuracy"] == 0.75  # the last row says "stocks" twice: predicted Business
    assert report["confusion"][0] == [0, 0, 1, 0] and report["class_names"] == NAMES
    assert evaluate_main(["--checkpoint", str(checkpoint), "--data", str(csv.parent), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == 0.75 and out["n"] == 4
    assert evaluate_main(["--checkpoint", str(checkpoint), "--data", str(csv)]) == 0
    assert "confusion matrix" in capsys.readouterr().out


def test_evaluate_reports_a_corrupt_checkpoint(tmp_path, csv, capsys):
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert evaluate_main(["--checkpoint", str(tmp_path / "bad.pt"), "--data", str(csv)]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and err.startswith("error: ") and err.count("\n") == 1


def test_classification_report_known_answer():
    r = classification_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], num_classes=3)
    assert r["confusion"] == [[1, 0, 1], [1, 1, 0], [0, 0, 2]]
    assert r["accuracy"] == 4 / 6
    assert [round(c["precision"], 3) for c in r["per_class"]] == [0.5, 1.0, 0.667]
    assert [round(c["recall"], 3) for c in r["per_class"]] == [0.5, 0.5, 1.0]
    assert "accuracy 0.6667 on 6 samples" in format_report(r, ["a", "b", "c"])


def test_confusion_png_is_optional(tmp_path):
    # drawn exactly when matplotlib is installed (the optional "plot" extra), and then a real PNG
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    drawn = save_confusion_png([[1, 0], [0, 1]], ["a", "b"], tmp_path / "c.png")
    assert drawn is has_matplotlib and (tmp_path / "c.png").exists() is has_matplotlib
    if drawn:
        assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classification_report_rejects_out_of_range_class_ids():
    with pytest.raises(ValueError, match=r"labels must be class ids in 0..1, found -1 at position 1"):
        classification_report([0, 1], [0, -1], num_classes=2)
    with pytest.raises(ValueError, match=r"preds must be class ids in 0..1, found 5 at position 0"):
        classification_report([5, 1], [0, 1], num_classes=2)


def test_evaluate_streams_its_metrics_issue20(checkpoint, tmp_path, monkeypatch):
    """Issue 20 #11: evaluate held every row (1M rows: 1.4 GB). Now the table is read in chunks and only the
    confusion matrix and the summed loss are kept: the report equals the one of a single chunk."""
    import random

    import textpipe.data.sources as sources
    import textpipe.data.table as table

    rng = random.Random(0)
    words = list(KEYWORD) + ["the", "a"]
    path = tmp_path / "many.csv"
    path.write_text("".join(f'"{rng.randint(1, 4)}","t","{" ".join(rng.choices(words, k=4))}"\n' for _ in range(500)))
    whole = evaluate(checkpoint, path)

    def no_whole_reads(*a, **k):
        raise AssertionError("evaluate read the whole table")

    monkeypatch.setattr(table, "read_table", no_whole_reads)
    monkeypatch.setattr(sources, "read_source", no_whole_reads)
    sizes, real_iter = [], table.iter_table

    def small_chunks(*a, **k):
        for labels, texts in real_iter(*a, **{**k, "batch_rows": 37}):
            sizes.append(len(labels))
            yield labels, texts

    monkeypatch.setattr(table, "iter_table", small_chunks)
    streamed = evaluate(checkpoint, path)
    assert max(sizes) == 37 and sum(sizes) == 500
    assert streamed["confusion"] == whole["confusion"] and streamed["n"] == 500
    assert streamed["accuracy"] == whole["accuracy"] and abs(streamed["loss"] - whole["loss"]) < 1e-6
