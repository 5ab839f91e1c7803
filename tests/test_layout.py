"""The package's layout goals (docs/DESIGN.md): no import cycle (imports inside functions count), no private name
imported from another module, no private module imported from outside its folder, at most 30 entries at the top
level, no module over 400 lines. The figures come from tools/layout.py, which reads the imports."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("layout", ROOT / "tools" / "layout.py")
layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layout)


def test_the_package_meets_its_layout_goals():
    f = layout.figures(ROOT)
    assert f["cycles"] == []
    assert f["upward"] == []  # nothing imports a stage after its own (docs/DESIGN.md's order)
    assert f["private_names"] == []
    assert f["private_modules"] == []
    assert len(f["top_level"]) <= layout.MAX_TOP, f["top_level"]
    assert f["over_400"] == {}


def test_the_checker_sees_each_kind_of_violation(tmp_path):
    pkg = tmp_path / "textpipe"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "_hidden.py").write_text("def _f(): pass\n")
    (pkg / "x.py").write_text("from textpipe.a._hidden import _f\n")
    (pkg / "y.py").write_text("def g():\n    from textpipe.z import h\n")  # inside a function: still an edge
    (pkg / "z.py").write_text("import textpipe.y\n" + "\n" * 401)
    f = layout.figures(tmp_path)
    assert f["cycles"] == [["textpipe.y", "textpipe.z"]]
    (pkg / "core").mkdir()
    (pkg / "core" / "__init__.py").write_text("import textpipe.train\n")
    (pkg / "train.py").write_text("")
    assert layout.figures(tmp_path)["upward"] == ["textpipe.core -> textpipe.train"]
    assert f["private_names"] == ["textpipe.x <- textpipe.a._hidden._f"]
    assert f["private_modules"] == ["textpipe.x <- textpipe.a._hidden"]
    assert list(f["over_400"]) == ["textpipe.z"]
