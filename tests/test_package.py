"""The public surface: `import textpipe` is cheap and side-effect free; every exported name resolves.

Run: python -m pytest -q tests/test_package.py
"""
import doctest
import importlib
import subprocess
import sys

import pytest

import textpipe


def _fresh_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_import_textpipe_and_core_do_not_import_torch():
    # The tokenizer and vocabulary are usable without torch (design rule); the entry points stay unimported.
    out = _fresh_python(
        "import sys, textpipe\n"
        "from textpipe import Vocab, get_tokenizer, build_vocab_from_iterator\n"
        "print(sorted(m for m in ('torch', 'textpipe.train', 'textpipe.core.distributed') if m in sys.modules))")
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", textpipe.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(textpipe, name) is not None
    assert name in dir(textpipe)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        textpipe.nope


# every module whose docstrings hold examples (network/file examples are marked +SKIP in the source)
DOCTEST_MODULES = ["textpipe", "textpipe.text.tokenizer", "textpipe.vocab", "textpipe.corpus", "textpipe.batches.collate",
                   "textpipe.batches.text_collate", "textpipe.batches.loader", "textpipe.batches.sampler", "textpipe.transforms",
                   "textpipe.functional", "textpipe.data.ag_news", "textpipe.models.bag", "textpipe.checkpoint",
                   "textpipe.metrics", "textpipe.data.utils", "textpipe.data.functional", "textpipe.batches._workers",
                   "textpipe.train.fused"]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0
