"""The package's layout figures, read from its imports (module level and inside functions): import cycles,
private names imported from another module, private modules imported from outside their folder, entries at the
package's top level, modules over 400 lines. `python3 tools/layout.py` prints them and exits 1 if a goal is
missed; tests/test_layout.py asserts the same goals."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_TOP, MAX_LINES = 30, 400
# the stages in the order the data flows (docs/DESIGN.md): a module may import its own stage and those before it
STAGES = ["core", "text", "data", "corpus", "batches", "models", "vectors", "checkpoint", "metrics", "evaluate",
          "export", "predict", "train", "tune", "sklearn", "cli", "vocab", "tokenizer", "functional", "_pure_transforms", "transforms", "datasets", "utils",
          "__main__"]


def modules(pkg: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(pkg.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        name = ".".join(p.relative_to(pkg.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def imports(mods: dict[str, Path]):
    """`(edges, private_names, private_modules)`: module -> imported modules, and the two kinds of reach-in."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private_names, private_mods = [], []

    def owner(target: str) -> str | None:
        while target not in mods and "." in target:
            target = target.rsplit(".", 1)[0]
        return target if target in mods else None

    for cur, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = cur.split(".") if path.name == "__init__.py" else cur.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [(f"{base}.{a.name}", a.name) for a in node.names]
            else:
                continue
            for target, name in targets:
                t = owner(target)
                if t is None or t == cur:
                    continue
                edges[cur].add(t)
                if name and name.startswith("_") and not name.startswith("__") and target not in mods:
                    private_names.append(f"{cur} <- {t}.{name}")
                last = t.rsplit(".", 1)[-1]
                if last.startswith("_") and not last.startswith("__"):
                    folder = t.rsplit(".", 1)[0]
                    if not (cur == folder or cur.startswith(folder + ".")):
                        private_mods.append(f"{cur} <- {t}")
    return edges, private_names, private_mods


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                on.discard(w)
                comp.append(w)
            on.discard(v)
            if comp:
                out.append(sorted([v, *comp]))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports of a later stage by an earlier one (`textpipe/__init__.py`, lazy, is no stage)."""
    def stage(m):
        parts = m.split(".")
        return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else None
    return sorted(f"{a} -> {b}" for a, bs in edges.items() for b in bs
                  if stage(a) is not None and stage(b) is not None and stage(b) > stage(a))


def figures(root: Path) -> dict:
    pkg = root / "textpipe"
    mods = modules(pkg)
    edges, private_names, private_mods = imports(mods)
    top = [p.name for p in pkg.iterdir() if p.name != "__pycache__" and (p.suffix == ".py" or p.is_dir())]
    lines = {m: sum(1 for _ in p.open(encoding="utf-8")) for m, p in mods.items()}
    return {"cycles": cycles(edges), "upward": upward(edges), "private_names": private_names, "private_modules": private_mods,
            "top_level": sorted(top), "over_400": {m: n for m, n in lines.items() if n > MAX_LINES},
            "modules": len(mods), "largest": max(lines.values())}


if __name__ == "__main__":
    f = figures(Path(__file__).resolve().parents[1])
    print(f"import cycles: {len(f['cycles'])} {f['cycles'] or ''}\n"
          f"imports up the data flow: {len(f['upward'])} {f['upward'] or ''}\n"
          f"private names imported from another module: {len(f['private_names'])} {f['private_names'] or ''}\n"
          f"private modules imported from outside their folder: {len(f['private_modules'])} "
          f"{f['private_modules'] or ''}\n"
          f"top-level entries: {len(f['top_level'])} (goal <= {MAX_TOP})\n"
          f"modules over {MAX_LINES} lines: {len(f['over_400'])} {f['over_400'] or ''} "
          f"(largest {f['largest']} lines, {f['modules']} modules)")
    ok = not (f["cycles"] or f["upward"] or f["private_names"] or f["private_modules"] or f["over_400"]) and len(f["top_level"]) <= MAX_TOP
    sys.exit(0 if ok else 1)
