"""Scope and expected failures of torchtext 0.18's own unit tests, ported by `port.py` into `upstream/`.

The ported files are `sed s/torchtext/textpipe/g` of torchtext's and are not committed (README.md says why
and how to make them). Here, and only here, is what textpipe claims about them:
  * OUT_OF_SCOPE: tests of what textpipe does not replace (pretrained BPE/WordPiece tokenizers, vector
    downloads over the network): skipped with the reason, and not counted.
  * EXPECTED_FAILURES: in-scope tests of a documented difference: xfail(strict=True), so each one must still
    fail for that reason (a pass is an error: update this table and the README).
Everything else in `upstream/` must pass. Without `upstream/` (or without `parameterized`/`expecttest`, which
torchtext's test helpers import) nothing here is collected and the header line says why.

Run: python3 -m pytest -q tests/torchtext_ported
"""
import contextlib
import importlib.util
import unittest
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SUITE = HERE / "upstream" / "textpipe_unittest"
_MISSING = [m for m in ("parameterized", "expecttest") if importlib.util.find_spec(m) is None]
collect_ignore_glob = [] if SUITE.is_dir() and not _MISSING else ["upstream/*"]

_HAVE_SPM = importlib.util.find_spec("sentencepiece") is not None


def _needs(*assets: str) -> str | None:
    """Why a sentencepiece test cannot pass here, or None if it should."""
    missing = ([] if _HAVE_SPM else ["the sentencepiece package (pip install sentencepiece)"]) + [
        f"the asset {a} (copied from the checkout by port.py)" for a in assets if not (SUITE / "asset" / a).is_file()]
    return f"needs {' and '.join(missing)}" if missing else None


_TORCHTEXT_TOKENIZERS = "textpipe's get_tokenizer knows 'basic_english', 'split'/None and callables only"
_SCRIPT_VOCAB = ("torch.jit.script of a Vocab: textpipe's Vocab is a plain Python class (usable without torch), "
                 "not an nn.Module over a TorchBind object; VocabTransform and LabelToIndex do script")
_TORCH_LOAD = ("torch.load of a pickled object: torch >= 2.6 loads with weights_only=True, which refuses "
               "textpipe's classes unless allow-listed with torch.serialization.safe_globals")

# node id after 'textpipe_unittest/' (a prefix matches a class) -> reason
OUT_OF_SCOPE = {
    "test_transforms.py::TestGPT2BPETokenizer": "GPT-2 BPE tokenizer (pretrained vocabulary files): not provided",
    "test_transforms.py::TestCharBPETokenizer": "character BPE tokenizer (pretrained vocabulary files): not provided",
    "test_transforms.py::TestCLIPTokenizer": "CLIP tokenizer (pretrained vocabulary files): not provided",
    "test_transforms.py::TestBERTTokenizer": "BERT tokenizer (pretrained vocabulary files): not provided",
    "test_build.py::TestVocab": "downloads GloVe/FastText/CharNGram vectors over the network; textpipe's tests are "
                                "hermetic (Vectors/GloVe/FastText are tested on local files in tests/test_vectors.py)",
}
EXPECTED_FAILURES = {
    "test_vocab.py::TestVocab::test_default_index_jit": _SCRIPT_VOCAB,
    "test_vocab.py::TestVocab::test_vocab_jit": _SCRIPT_VOCAB,
    "test_vocab.py::TestVocab::test_vocab_forward": _SCRIPT_VOCAB,
    "test_vocab.py::TestVocab::test_vocab_load_and_save": f"{_TORCH_LOAD}; and no TorchBind form of the Vocab "
                                                          f"(__prepare_scriptable__)",
    "test_transforms.py::TestTransforms::test_spmtokenizer": "transforms.SentencePieceTokenizer (a pretrained "
                                                             "SentencePiece model) is not provided",
    "test_transforms.py::TestTransforms::test_spmtokenizer_jit": "transforms.SentencePieceTokenizer is not provided",
    "test_transforms.py::TestRegexTokenizer::test_regex_tokenizer_save_load": (
        f"[pybind] {_TORCH_LOAD}; [torchscript] the scripted RegexTokenizer calls Python's re, which "
        f"torch.jit.save cannot export"),
    "data/test_utils.py::TestUtils::test_get_tokenizer_toktokt": f"get_tokenizer('toktok') (NLTK): {_TORCHTEXT_TOKENIZERS}",
    "test_build.py::TestDataUtils::test_get_tokenizer_spacy": f"get_tokenizer('spacy'): {_TORCHTEXT_TOKENIZERS}",
    "test_build.py::TestDataUtils::test_get_tokenizer_moses": f"get_tokenizer('moses'): {_TORCHTEXT_TOKENIZERS}",
    "data/test_functional.py::TestScriptableSP": "TorchScript SentencePiece: load_sp_model returns the sentencepiece "
                                                "package's Python processor, which TorchScript cannot compile",
    "data/test_functional.py::TestFunctional::test_sentencepiece_numericalizer": _needs("spm_example.model"),
    "data/test_functional.py::TestFunctional::test_sentencepiece_tokenizer": _needs("spm_example.model"),
    "data/test_functional.py::TestFunctional::test_generate_sp_model": _needs("text_normalization_ag_news_test.csv"),
}


def _lookup(table: dict, nodeid: str):
    key = nodeid.split("textpipe_unittest/", 1)[-1]
    return next((reason for prefix, reason in table.items() if key == prefix or key.startswith(prefix + "::")), None)


@pytest.fixture(autouse=True)
def _a_failing_subtest_fails_its_test(monkeypatch):
    """Run each ``self.subTest(...)`` block as plain code, so the first failure fails the whole test.

    pytest 9 reports a unittest test whose subtests failed as PASSED (plus SUBFAILED lines), which would
    count it as passing and turn its strict xfail into an XPASS. A test counts here only if all of it passes.
    """
    monkeypatch.setattr(unittest.TestCase, "subTest", lambda self, msg=None, **params: contextlib.nullcontext())


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "textpipe_unittest/" not in item.nodeid:
            continue
        reason = _lookup(OUT_OF_SCOPE, item.nodeid)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"out of textpipe's scope: {reason}"))
            continue
        reason = _lookup(EXPECTED_FAILURES, item.nodeid)
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def pytest_report_header(config):
    if not SUITE.is_dir():
        return "torchtext 0.18 ported tests: not generated (python3 tests/torchtext_ported/port.py CHECKOUT)"
    if _MISSING:
        return f"torchtext 0.18 ported tests: not collected, missing {', '.join(_MISSING)} (pip install them)"
    return f"torchtext 0.18 ported tests: {SUITE.parent / 'SOURCE.txt'}"
