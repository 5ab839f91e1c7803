"""The sentencepiece helpers of textpipe.data.functional (torchtext.data.functional), over the optional package.

Without `sentencepiece` installed only the error paths run; the rest train a tiny model under tmp_path.
Run: python3 -m pytest -q tests/test_sentencepiece.py
"""
import io
import sys

import pytest

from textpipe.data import functional as F
from textpipe.data import generate_sp_model, load_sp_model  # also exported by textpipe.data, as by torchtext.data

TEXT = "\n".join(["the cat sat on the mat", "a dog ate the bone", "tokenizers split words into pieces",
                  "sentence piece is an unsupervised text tokenizer"] * 50)


def test_wrong_argument_type_is_torchtexts_type_error_even_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # as if not installed: the type is checked first
    with pytest.raises(TypeError, match="Unsupported type for spm argument: dict. Supported types are: str, "
                                        "io.BufferedReader"):
        load_sp_model(dict())


@pytest.mark.parametrize("call", [lambda: load_sp_model("m.model"), lambda: generate_sp_model("corpus.txt")])
def test_without_the_package_the_error_says_what_to_install(monkeypatch, call):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(ImportError, match="needs the sentencepiece package, .*: pip install sentencepiece"):
        call()


@pytest.fixture
def model(tmp_path):
    pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    generate_sp_model(str(corpus), vocab_size=30, model_prefix=str(tmp_path / "spm_user"))
    return tmp_path / "spm_user.model"


def test_train_load_and_encode(model):
    by_path = load_sp_model(str(model))
    with open(model, "rb") as f:
        by_file = load_sp_model(f)
    assert by_path.GetPieceSize() == by_file.GetPieceSize() == 30
    line = "the cat ate the pieces"
    pieces = list(F.sentencepiece_tokenizer(by_path)([line]))[0]
    ids = list(F.sentencepiece_numericalizer(by_file)([line, line]))
    assert "".join(pieces).replace("\u2581", " ").strip() == line
    assert ids == [[by_path.PieceToId(p) for p in pieces]] * 2


def test_missing_files_are_named(tmp_path):
    pytest.importorskip("sentencepiece")
    with pytest.raises(FileNotFoundError, match="nope.model: no such SentencePiece model file"):
        load_sp_model(str(tmp_path / "nope.model"))
    with pytest.raises(FileNotFoundError, match="nope.txt: no such text file"):
        generate_sp_model(str(tmp_path / "nope.txt"))


def test_training_failure_names_the_file(tmp_path):
    pytest.importorskip("sentencepiece")
    (tmp_path / "tiny.txt").write_text("a b\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="SentencePiece could not train on .*tiny.txt"):
        generate_sp_model(str(tmp_path / "tiny.txt"), vocab_size=5000, model_prefix=str(tmp_path / "m"))


def test_a_bytes_buffer_is_a_binary_file(model):
    assert load_sp_model(io.BytesIO(model.read_bytes())).GetPieceSize() == 30
