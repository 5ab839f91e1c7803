"""Port torchtext 0.18's own unit tests to textpipe: copy the in-scope files, then `sed s/torchtext/textpipe/g`.

    git clone --depth 1 --branch v0.18.0 https://github.com/pytorch/text /tmp/text-0.18.0
    python3 tests/torchtext_ported/port.py /tmp/text-0.18.0        # -> tests/torchtext_ported/upstream/
    python3 -m pip install parameterized expecttest               # what torchtext's test suite imports
    python3 -m pytest -q tests/torchtext_ported

The word is replaced in the test code and in the paths (test/torchtext_unittest/common/torchtext_test_case.py
becomes upstream/textpipe_unittest/common/textpipe_test_case.py) and nowhere else; assets are copied as they
are, with torchtext's LICENSE (BSD-3-Clause) and a SOURCE.txt naming the checkout, its commit and each file's
SHA-256. conftest.py beside this file says which tests are out of scope and which are expected to fail, and why.
"""
import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = Path("test") / "torchtext_unittest"
# The modules in textpipe's scope (conftest.py skips the classes inside them that are not), and their helpers.
MODULES = ["__init__.py", "common/__init__.py", "common/assets.py", "common/parameterized_utils.py",
           "common/torchtext_test_case.py", "test_functional.py", "test_transforms.py", "test_vocab.py",
           "test_build.py", "data/__init__.py", "data/test_utils.py", "data/test_functional.py"]
ASSETS = ["asset/label_names.txt", "asset/spm_example.model", "asset/text_normalization_ag_news_test.csv"]


def sed(text: str) -> str:
    """`sed s/torchtext/textpipe/g`, and nothing else."""
    return text.replace("torchtext", "textpipe")


def git(src: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def port(src: Path, dest: Path) -> list[str]:
    """Write the ported suite under `dest` (replaced if it exists); returns the lines of SOURCE.txt."""
    suite = src / SUITE
    if not suite.is_dir():
        raise SystemExit(f"{src} is not a pytorch/text checkout: {suite} does not exist "
                         f"(clone it with: git clone --branch v0.18.0 https://github.com/pytorch/text)")
    missing = [m for m in MODULES if not (suite / m).is_file() and not m.endswith("__init__.py")]
    if missing:
        raise SystemExit(f"{suite} lacks {', '.join(missing)}: is it torchtext 0.18 (tag v0.18.0)?")
    if dest.exists():
        shutil.rmtree(dest)
    lines = [f"source: {src.resolve()}", f"commit: {git(src, 'rev-parse', 'HEAD')}",
             f"describe: {git(src, 'describe', '--tags', '--always')}",
             "ported with: sed s/torchtext/textpipe/g (test code and paths; assets copied as they are)", ""]
    for name in MODULES + ASSETS:
        source, target = suite / name, dest / sed(str(Path("textpipe_unittest") / name))
        target.parent.mkdir(parents=True, exist_ok=True)
        if not source.is_file():
            if name.endswith("__init__.py"):
                target.write_text("", encoding="utf-8")  # a package marker the checkout did not have
                lines.append(f"(empty, not in the checkout)  {target.relative_to(dest)}")
            else:
                lines.append(f"(missing in the checkout)     {name}")
            continue
        data = source.read_bytes()
        target.write_bytes(sed(data.decode("utf-8")).encode("utf-8") if name.endswith(".py") else data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {SUITE / name}")
    for root in (src, *src.parents):  # torchtext's license covers its tests: keep it beside them
        if (root / "LICENSE").is_file():
            shutil.copyfile(root / "LICENSE", dest / "LICENSE")
            break
    else:
        lines.append("LICENSE: not found in the checkout (torchtext is BSD-3-Clause)")
    (dest / "SOURCE.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="a pytorch/text checkout (tag v0.18.0)")
    parser.add_argument("--dest", type=Path, default=HERE / "upstream", help="where the ported suite goes")
    args = parser.parse_args(argv)
    print("\n".join(port(args.src, args.dest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
