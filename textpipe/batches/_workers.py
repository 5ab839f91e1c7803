"""Which start method DataLoader workers get by default: ``fork`` where it is safe, else ``forkserver``/``spawn``.

Why it matters: ``spawn`` and ``forkserver`` start each worker by re-importing the main script, so a script
without an ``if __name__ == "__main__":`` guard re-runs its top-level code in every worker (torchtext's
users never noticed, because torch's DataLoader forks on Linux). ``fork`` copies the running process
instead; it is unsafe only when the process holds CUDA state or runs other threads (a forked child can
inherit a lock held by a thread that does not exist in it). The rule, in order:

1. ``fork`` (Linux only) when CUDA is not initialised and the main thread is the only Python thread;
2. otherwise ``forkserver`` (``spawn`` where there is none) when the main script is guarded, or there is no
   script to re-run (interactive, ``python -c``, pytest);
3. otherwise (an unguarded script in a process where fork is not clean) ``fork`` with a warning that says
   why and how to fix it; where fork does not exist, an error that says to add the guard.

Run the tests: python3 -m pytest -q tests/test_workers.py
"""
from __future__ import annotations

import ast
import functools
import multiprocessing
import os
import sys
import threading
import warnings

__all__ = ["default_start_method", "fork_is_safe", "main_script_is_guarded"]


def fork_is_safe() -> tuple[bool, str]:
    """``(True, "")`` if forking this process now is safe, else ``(False, reason)``."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return False, f"fork is not a safe start method on {sys.platform}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return False, "CUDA is initialised in this process"
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        return False, f"other threads are running ({', '.join(others[:3])})"
    return True, ""


@functools.lru_cache(maxsize=8)
def _guarded(path: str, mtime: float) -> bool:
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return True  # cannot tell: assume the script is well-behaved rather than warn wrongly
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test):
            return True
    return False


def _is_main_test(test: ast.expr) -> bool:
    """True for ``__name__ == "__main__"`` (either order, ``==`` only)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def main_script_is_guarded() -> bool:
    """False only when the main module is a script file with no top-level ``if __name__ == "__main__":``.

    A run with no script file (interactive, ``python -c``) counts as guarded: spawn has nothing to re-run.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):
        return True
    return _guarded(os.path.abspath(path), os.path.getmtime(path))


def default_start_method() -> str:
    """The start method for DataLoader workers when the caller did not choose one (see the module doc).

    Returns:
        ``"fork"``, ``"forkserver"`` or ``"spawn"``.

    Raises:
        RuntimeError: An unguarded script on a platform without ``fork``: every worker would re-run it.

    Example:
        >>> default_start_method() in ("fork", "forkserver", "spawn")
        True
    """
    safe, reason = fork_is_safe()
    if safe:
        return "fork"
    if main_script_is_guarded():
        return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    script = getattr(sys.modules["__main__"], "__file__", "the main script")
    if "fork" in multiprocessing.get_all_start_methods():
        warnings.warn(
            f"DataLoader workers are started with fork although {reason}, because {script} has no "
            f"'if __name__ == \"__main__\":' guard and forkserver/spawn would re-run its top-level code in "
            f"every worker. Put the script's work under that guard (textpipe then uses forkserver), or pass "
            f"multiprocessing_context= to choose.", RuntimeWarning, stacklevel=3)
        return "fork"
    raise RuntimeError(
        f"{script} has no 'if __name__ == \"__main__\":' guard, and on {sys.platform} workers can only be started "
        f"with spawn, which re-runs the script's top-level code in every worker; put the script's work under "
        f"that guard, or use num_workers=0")
