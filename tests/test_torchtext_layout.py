"""torchtext's module layout after a bare `import textpipe` (how scripts for torchtext 0.12-0.17 read).

Run: python3 -m pytest -q tests/test_torchtext_layout.py
"""
import doctest
import subprocess
import sys

import pytest

import textpipe


def fresh(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.splitlines()


def test_bare_import_imports_no_submodule_and_attribute_access_imports_each_on_first_use():
    out = fresh(
        "import sys, textpipe\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('textpipe.'))\n"
        "print(loaded())\n"
        "print(textpipe.data.utils.get_tokenizer('basic_english')('Hi, there'))\n"
        "print(textpipe.datasets.AG_NEWS.__name__, textpipe.vocab.GloVe.__name__, textpipe.utils.extract_archive.__name__)\n"
        "print(textpipe.functional.truncate([1, 2], 1), textpipe.transforms.MaskTransform.__name__)\n"
        "print(textpipe.data.functional.simple_space_split.__name__, 'torch' in sys.modules)\n")
    assert out == ["[]", "['hi', ',', 'there']", "AG_NEWS GloVe extract_archive", "[1] MaskTransform",
                   "simple_space_split True"]


@pytest.mark.parametrize("name", ["data", "datasets", "functional", "transforms", "utils", "vocab"])
def test_submodules_are_attributes_and_listed(name):
    assert getattr(textpipe, name).__name__ == f"textpipe.{name}" and name in dir(textpipe)


def test_torchtext_submodules_textpipe_does_not_provide_say_so():
    with pytest.raises(AttributeError, match=r"no attribute .nn.; torchtext.nn is not provided: use "
                                             r"torch.nn.MultiheadAttention"):
        textpipe.nn
    assert not hasattr(textpipe, "experimental")


def test_data_submodules_after_importing_the_package_only():
    assert textpipe.data.utils.ngrams_iterator is textpipe.data.ngrams_iterator
    assert textpipe.data.functional.load_sp_model is textpipe.data.load_sp_model
    with pytest.raises(AttributeError, match="module 'textpipe.data' has no attribute 'nope'"):
        textpipe.data.nope


@pytest.mark.parametrize("name", ["textpipe.utils", "textpipe._pure_transforms"])
def test_docstring_examples_run(name):
    import importlib
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
