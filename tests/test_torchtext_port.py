"""tests/torchtext_ported/port.py on a made-up pytorch/text checkout under tmp_path: sed, paths, assets, provenance.

Run: python3 -m pytest -q tests/test_torchtext_port.py
"""
import hashlib
import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("port", Path(__file__).parent / "torchtext_ported" / "port.py")
port = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(port)


def checkout(root: Path, skip=()) -> Path:
    suite = root / "test" / "torchtext_unittest"
    for name in port.MODULES:
        if name not in skip:
            (suite / name).parent.mkdir(parents=True, exist_ok=True)
            (suite / name).write_text(f"from torchtext import x  # {name}\nimport torchtext_unittest\n", encoding="utf-8")
    (suite / "asset").mkdir(exist_ok=True)
    (suite / "asset" / "spm_example.model").write_bytes(b"\x00torchtext\xff")  # binary: copied as it is
    (suite / "asset" / "label_names.txt").write_text("torchtext\n", encoding="utf-8")
    (root / "LICENSE").write_text("BSD 3-Clause License\n", encoding="utf-8")
    return root


def test_port_is_the_sed_line_on_code_and_paths(tmp_path):
    src = checkout(tmp_path / "text")
    dest = tmp_path / "upstream"
    lines = port.port(src, dest)
    ported = dest / "textpipe_unittest" / "common" / "textpipe_test_case.py"
    original = src / "test" / "torchtext_unittest" / "common" / "torchtext_test_case.py"
    assert ported.read_text(encoding="utf-8") == original.read_text(encoding="utf-8").replace("torchtext", "textpipe")
    assert "torchtext" not in ported.read_text(encoding="utf-8")
    assert (dest / "textpipe_unittest" / "asset" / "spm_example.model").read_bytes() == b"\x00torchtext\xff"
    assert (dest / "textpipe_unittest" / "asset" / "label_names.txt").read_text() == "torchtext\n"
    assert (dest / "LICENSE").read_text() == "BSD 3-Clause License\n"
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    assert f"{digest}  test/torchtext_unittest/common/torchtext_test_case.py" in lines
    assert (dest / "SOURCE.txt").read_text(encoding="utf-8").splitlines() == lines
    assert "(missing in the checkout)     asset/text_normalization_ag_news_test.csv" in lines


def test_port_replaces_an_old_port(tmp_path):
    dest = tmp_path / "upstream"
    (dest / "stale.py").parent.mkdir(parents=True)
    (dest / "stale.py").write_text("x")
    port.port(checkout(tmp_path / "text"), dest)
    assert not (dest / "stale.py").exists()


def test_missing_package_markers_are_created(tmp_path):
    dest = tmp_path / "upstream"
    port.port(checkout(tmp_path / "text", skip=("data/__init__.py",)), dest)
    assert (dest / "textpipe_unittest" / "data" / "__init__.py").read_text() == ""


@pytest.mark.parametrize("skip, match", [(port.MODULES, "is not a pytorch/text checkout"),
                                         (("test_vocab.py",), "lacks test_vocab.py: is it torchtext 0.18")])
def test_a_wrong_checkout_is_refused_with_what_to_do(tmp_path, skip, match):
    src = tmp_path / "text"
    src.mkdir()
    if skip != port.MODULES:
        checkout(src, skip=skip)
    with pytest.raises(SystemExit, match=match):
        port.port(src, tmp_path / "upstream")
