"""The README's quickstart and the examples are code users paste or run: run them as written.

Run: python -m pytest -q tests/test_docs.py
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "ag_news"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_a_quickstart():
    blocks = _python_blocks()
    assert blocks and "load_ag_news" in blocks[0]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"AG_NEWS stand-in not found at {DATA}")
def test_quickstart_runs(tmp_path):
    code = _python_blocks()[0].replace('"../shared/data/ag_news"', repr(str(DATA)))
    script = tmp_path / "quickstart.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "vocab.txt").is_file() and (tmp_path / "train.corpus").is_file()


@pytest.mark.skipif(not DATA.is_dir(), reason=f"AG_NEWS stand-in not found at {DATA}")
def test_dataloader_example_runs_and_reports_padding(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(REPO / "examples" / "ag_news_dataloader.py"),
                             "--data-dir", str(DATA)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    random, bucketed = map(float, re.search(r"random batches ([\d.]+)%, bucketed batches ([\d.]+)%",
                                            result.stdout).groups())
    assert bucketed < 5.0 < random
