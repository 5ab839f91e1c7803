"""The default DataLoader worker start method (textpipe/_workers.py) and unguarded scripts.

Run: python3 -m pytest -q tests/test_workers.py
"""
import subprocess
import sys
import threading
import types

import pytest

from textpipe.batches import _workers
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]

fork_only = pytest.mark.skipif(sys.platform != "linux", reason="fork is the default only on Linux")


@pytest.mark.parametrize("source, guarded", [
    ('print("hi")\n', False),
    ('def main():\n    pass\n\nif __name__ == "__main__":\n    main()\n', True),
    ("if '__main__' == __name__:\n    pass\n", True),
    ('if __name__ != "__main__":\n    pass\n', False),
    ('def f():\n    if __name__ == "__main__":\n        pass\n', False),  # not at top level
])
def test_guard_detection(tmp_path, monkeypatch, source, guarded):
    script = tmp_path / "script.py"
    script.write_text(source)
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__file__=str(script)))
    assert _workers.main_script_is_guarded() is guarded


def test_no_script_counts_as_guarded(monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace())  # python -c / interactive
    assert _workers.main_script_is_guarded()


@fork_only
def test_a_running_thread_makes_fork_unsafe():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="helper-thread")
    t.start()
    try:
        safe, reason = _workers.fork_is_safe()
    finally:
        stop.set()
        t.join()
    assert not safe and "helper-thread" in reason


@fork_only
@pytest.mark.parametrize("safe, guarded, expected, warns", [
    (True, False, "fork", False),
    (True, True, "fork", False),
    (False, True, "forkserver", False),
    (False, False, "fork", True),
])
def test_decision(monkeypatch, recwarn, safe, guarded, expected, warns):
    monkeypatch.setattr(_workers, "fork_is_safe", lambda: (safe, "" if safe else "CUDA is initialised"))
    monkeypatch.setattr(_workers, "main_script_is_guarded", lambda: guarded)
    assert _workers.default_start_method() == expected
    messages = [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert bool(messages) is warns
    if warns:
        assert "CUDA is initialised" in messages[0] and 'if __name__ == "__main__":' in messages[0]


def test_no_fork_and_unguarded_is_an_error(monkeypatch):
    monkeypatch.setattr(_workers, "fork_is_safe", lambda: (False, "fork is not a safe start method on win32"))
    monkeypatch.setattr(_workers, "main_script_is_guarded", lambda: False)
    monkeypatch.setattr(_workers.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    with pytest.raises(RuntimeError, match="no 'if __name__"):
        _workers.default_start_method()


UNGUARDED = """\
import threading
from textpipe import EncodedCorpus, make_dataloader
print("TOP-LEVEL RAN", flush=True)
{extra}
loader = make_dataloader(EncodedCorpus([5, 6, 7, 8], [0, 2, 3, 4], [1, 0, 1]), batch_size=2, num_workers=2)
print("method", loader.multiprocessing_context.get_start_method(), flush=True)
print("batches", sum(1 for _ in loader), flush=True)
"""


@fork_only
@pytest.mark.parametrize("extra, warns", [
    ("", False),
    ("stop = threading.Event(); threading.Thread(target=stop.wait, daemon=True).start()", True),
])
def test_unguarded_script_runs_its_top_level_once(tmp_path, extra, warns):
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED.format(extra=extra))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("TOP-LEVEL RAN") == 1, out.stdout
    assert "method fork" in out.stdout and "batches 2" in out.stdout
    assert ("has no 'if __name__" in out.stderr) is warns, out.stderr
