"""Migrating is `sed s/torchtext/textpipe/`: torchtext-style scripts, with the word replaced, run on textpipe.

Each test takes a script written for torchtext 0.18, replaces `torchtext` by `textpipe` and nothing else,
and runs it in a fresh interpreter on tiny AG_NEWS files in torchtext's layout under tmp_path.
Run: python3 -m pytest -q tests/test_migration.py
"""
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from _http import local_server

ROOT = Path(__file__).resolve().parents[1]
PORTS = ROOT / "examples" / "torchtext_port"

ROWS = [
    ("1", "War talks", "Leaders meet as the war goes on."), ("2", "Cup final", "The team wins the cup final."),
    ("3", "Stocks fall", "Shares fall as oil prices rise."), ("4", "New chip", "A faster chip for phones."),
]


def ag_news_root(tmp_path, n_train=40, n_test=8):
    """torchtext's layout: root/datasets/AG_NEWS/{train,test}.csv, every class present."""
    d = tmp_path / "root" / "datasets" / "AG_NEWS"
    d.mkdir(parents=True)
    for name, n in (("train", n_train), ("test", n_test)):
        lines = [f'"{c}","{t} {i}","{x}"' for i in range(n // 4) for c, t, x in ROWS]
        (d / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "root"


def run_ported(source: str, tmp_path, *args, **env) -> str:
    """Replace the word, nothing else, and run the script; returns its stdout."""
    script = tmp_path / "ported.py"
    script.write_text(source.replace("torchtext", "textpipe"), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


TORCHTEXT_SCRIPT = r'''
import os, sys
from collections import Counter, OrderedDict
import torch
import torchtext
torchtext.disable_torchtext_deprecation_warning()
from torch.utils.data import DataLoader
from torchtext.data.utils import get_tokenizer, ngrams_iterator
from torchtext.data.functional import to_map_style_dataset, simple_space_split
from torchtext.datasets import AG_NEWS
from torchtext.vocab import vocab, build_vocab_from_iterator, Vectors
from torchtext.functional import to_tensor, truncate
import torchtext.transforms as T

root = sys.argv[1] if len(sys.argv) > 1 else os.environ["ROOT"]
tokenizer = get_tokenizer("basic_english")
train_iter, test_iter = AG_NEWS(root=root, split=("train", "test"))
print("first", next(iter(train_iter)))
v = build_vocab_from_iterator(map(tokenizer, (t for _, t in train_iter)), specials=["<pad>", "<unk>"])
v.set_default_index(v["<unk>"])
print("itos", v.get_itos()[:6])
print("ngrams", list(ngrams_iterator(tokenizer("Oil prices rise"), 2)))
print("vocab", vocab(OrderedDict([("b", 3), ("a", 1)]), specials=["<unk>"]).get_itos())
print("split", list(simple_space_split(["a b"])))

pipe = T.Sequential(T.VocabTransform(v), T.Truncate(4), T.AddToken(v["<unk>"], begin=False),
                    T.ToTensor(padding_value=v["<pad>"]))
print("pipe", pipe([tokenizer("The team wins the cup final."), tokenizer("War")]).tolist())
print("pad", T.PadTransform(4, 0)(torch.tensor([7, 8])).tolist(), to_tensor([[1], [2, 3]], padding_value=0).tolist())
print("labels", T.LabelToIndex(["World", "Sports"])(["Sports"]), T.StrToIntTransform()(["4"]), truncate([1, 2], 1))

ds = to_map_style_dataset(train_iter)
def collate_batch(batch):
    labels = torch.tensor([int(label) - 1 for label, _ in batch])
    ids = [torch.tensor(v(tokenizer(text))) for _, text in batch]
    offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
    return labels, torch.cat(ids), offsets
labels, ids, offsets = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate_batch)))
print("batch", labels.tolist(), offsets.tolist(), len(ds))

with open("tiny.vec", "w") as f:
    f.write("2 3\nthe 0.5 0.25 1\nwar 1 2 3\n")
vec = Vectors("tiny.vec", cache="vc")
print("vectors", vec.dim, vec.get_vecs_by_tokens(["War", "the"], lower_case_backup=True).tolist())
try:
    v.lookup_token(10 ** 6)
except RuntimeError as e:   # torchtext's exception class still catches textpipe's clearer error
    print("caught RuntimeError")
'''


# What torchtext 0.18 (torch 2.3.1) printed for TORCHTEXT_SCRIPT on the same files, in the reference venv
# (benchmarks/make_torchtext_venv.sh; run through examples/torchtext_port/run_torchtext.py).
TORCHTEXT_OUTPUT = """\
first (1, 'War talks 0 Leaders meet as the war goes on.')
itos ['<pad>', '<unk>', '.', 'the', 'as', 'chip']
ngrams ['oil', 'prices', 'rise', 'oil prices', 'prices rise']
vocab ['<unk>', 'b', 'a']
split [['a', 'b']]
pipe [[3, 25, 26, 3, 1], [9, 1, 0, 0, 0]]
pad [7, 8, 0, 0] [[1, 0], [2, 3]]
labels [1] [4] [1]
batch [0, 1, 2, 3] [0, 11, 21, 31] 40
vectors 3 [[1.0, 2.0, 3.0], [0.5, 0.25, 1.0]]
caught RuntimeError
"""


def test_torchtext_style_script_runs_after_the_word_is_replaced(tmp_path):
    out = run_ported(TORCHTEXT_SCRIPT, tmp_path, ROOT=str(ag_news_root(tmp_path)))
    assert out == TORCHTEXT_OUTPUT


# The same program as TORCHTEXT_SCRIPT, written as scripts for torchtext 0.12-0.17 were: a bare `import torchtext`
# (those versions imported data, datasets, vocab, functional, transforms, utils in their __init__) and
# attribute access. It makes the same calls on the same files, so its port must print TORCHTEXT_OUTPUT too.
TORCHTEXT_017_SCRIPT = r'''
import os, sys
from collections import OrderedDict
import torch
import torchtext
from torch.utils.data import DataLoader

root = sys.argv[1] if len(sys.argv) > 1 else os.environ["ROOT"]
tokenizer = torchtext.data.utils.get_tokenizer("basic_english")
train_iter, test_iter = torchtext.datasets.AG_NEWS(root=root, split=("train", "test"))
print("first", next(iter(train_iter)))
v = torchtext.vocab.build_vocab_from_iterator(map(tokenizer, (t for _, t in train_iter)), specials=["<pad>", "<unk>"])
v.set_default_index(v["<unk>"])
print("itos", v.get_itos()[:6])
print("ngrams", list(torchtext.data.utils.ngrams_iterator(tokenizer("Oil prices rise"), 2)))
print("vocab", torchtext.vocab.vocab(OrderedDict([("b", 3), ("a", 1)]), specials=["<unk>"]).get_itos())
print("split", list(torchtext.data.functional.simple_space_split(["a b"])))

T = torchtext.transforms
pipe = T.Sequential(T.VocabTransform(v), T.Truncate(4), T.AddToken(v["<unk>"], begin=False),
                    T.ToTensor(padding_value=v["<pad>"]))
print("pipe", pipe([tokenizer("The team wins the cup final."), tokenizer("War")]).tolist())
print("pad", T.PadTransform(4, 0)(torch.tensor([7, 8])).tolist(),
      torchtext.functional.to_tensor([[1], [2, 3]], padding_value=0).tolist())
print("labels", T.LabelToIndex(["World", "Sports"])(["Sports"]), T.StrToIntTransform()(["4"]),
      torchtext.functional.truncate([1, 2], 1))

ds = torchtext.data.functional.to_map_style_dataset(train_iter)
def collate_batch(batch):
    labels = torch.tensor([int(label) - 1 for label, _ in batch])
    ids = [torch.tensor(v(tokenizer(text))) for _, text in batch]
    offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
    return labels, torch.cat(ids), offsets
labels, ids, offsets = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate_batch)))
print("batch", labels.tolist(), offsets.tolist(), len(ds))

with open("tiny.vec", "w") as f:
    f.write("2 3\nthe 0.5 0.25 1\nwar 1 2 3\n")
vec = torchtext.vocab.Vectors("tiny.vec", cache="vc")
print("vectors", vec.dim, vec.get_vecs_by_tokens(["War", "the"], lower_case_backup=True).tolist())
try:
    v.lookup_token(10 ** 6)
except RuntimeError as e:
    print("caught RuntimeError")
'''


def test_torchtext_017_style_script_with_bare_import_and_attribute_access(tmp_path):
    assert "from torchtext" not in TORCHTEXT_017_SCRIPT and "import torchtext." not in TORCHTEXT_017_SCRIPT
    out = run_ported(TORCHTEXT_017_SCRIPT, tmp_path, ROOT=str(ag_news_root(tmp_path)))
    assert out == TORCHTEXT_OUTPUT


# The AG_NEWS scripts of torchtext 0.4-0.8's era fetch the CSV archive themselves with torchtext.utils.
OLD_AG_NEWS_SCRIPT = r'''
import csv, io, os, sys
from torchtext.utils import download_from_url, extract_archive
from torchtext.data.utils import get_tokenizer
from torchtext.vocab import build_vocab_from_iterator

dataset_tar = download_from_url(sys.argv[1], root=".data")
extracted_files = extract_archive(dataset_tar)
print("files", sorted(os.path.relpath(f, ".data") for f in extracted_files))
train_csv_path = next(f for f in extracted_files if f.endswith("train.csv"))
with io.open(train_csv_path, encoding="utf8") as f:
    rows = list(csv.reader(f))
tokenizer = get_tokenizer("basic_english")
vocab = build_vocab_from_iterator(tokenizer(" ".join(row[1:])) for row in rows)
print("rows", len(rows), "labels", sorted({row[0] for row in rows}), "vocab", len(vocab))
print("again", extract_archive(dataset_tar) == extracted_files, download_from_url(sys.argv[1], root=".data") == dataset_tar)
'''


def ag_news_tar(tmp_path) -> bytes:
    """ag_news_csv.tar.gz as the old download was laid out: ag_news_csv/{train,test}.csv, classes.txt."""
    root = ag_news_root(tmp_path) / "datasets" / "AG_NEWS"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root / "train.csv", "ag_news_csv/train.csv")
        tar.add(root / "test.csv", "ag_news_csv/test.csv")
        info = tarfile.TarInfo("ag_news_csv/classes.txt")
        classes = b"World\nSports\nBusiness\nSci/Tech\n"
        info.size = len(classes)
        tar.addfile(info, io.BytesIO(classes))
    return buf.getvalue()


def test_old_ag_news_script_downloads_and_extracts_with_textpipe_utils(tmp_path):
    words = {w.lower() for c, t, x in ROWS for w in f"{t} {x}".replace(".", " . ").split()}
    words |= {str(i) for i in range(40 // 4)}  # the row numbers in the titles
    with local_server() as srv:
        srv.files["/ag_news_csv.tar.gz"] = ag_news_tar(tmp_path)
        out = run_ported(OLD_AG_NEWS_SCRIPT, tmp_path, srv.url("/ag_news_csv.tar.gz"))
    assert srv.hits == 1  # the second download_from_url found the file
    assert out.splitlines() == [
        "files ['ag_news_csv/classes.txt', 'ag_news_csv/test.csv', 'ag_news_csv/train.csv']",
        f"rows 40 labels ['1', '2', '3', '4'] vocab {len(words)}",
        "again True True"]


FAKE_TORCHTEXT = {
    "torchtext/__init__.py": "from torchtext import datasets  # as torchtext 0.12-0.17 did\n",
    "torchtext/datasets/__init__.py": "from torchtext.datasets.ag_news import AG_NEWS\n",
    "torchtext/datasets/ag_news.py": "MD5 = {'train': 'full-download-md5', 'test': 'full-download-md5'}\n"
                                     "def AG_NEWS(root):\n    return dict(MD5)\n",
}


@pytest.mark.parametrize("script", [
    "import sys\nprint(sorted(m for m in sys.modules if m.startswith('torchtext')))\n"
    "import torchtext\nprint(torchtext.datasets.AG_NEWS('root'))\n",
    "from torchtext.datasets import AG_NEWS\nprint([])\nprint(AG_NEWS('root'))\n",
])
def test_run_torchtext_runs_the_script_as_written_and_patches_md5_on_its_import(tmp_path, script):
    """The harness imports no torchtext module itself (a stand-in package here: torchtext does not import on
    this torch); the MD5 table is patched when the script's own import loads ag_news."""
    for name, text in FAKE_TORCHTEXT.items():
        (tmp_path / "fake" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fake" / name).write_text(text, encoding="utf-8")
    root = ag_news_root(tmp_path)
    (tmp_path / "script.py").write_text(script, encoding="utf-8")
    out = subprocess.run([sys.executable, str(PORTS / "run_torchtext.py"), str(tmp_path / "script.py")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path / "fake"), "AG_NEWS_ROOT": str(root)})
    assert out.returncode == 0, out.stderr
    md5 = {s: hashlib.md5((root / "datasets" / "AG_NEWS" / f"{s}.csv").read_bytes()).hexdigest()
           for s in ("train", "test")}
    assert out.stdout.splitlines() == ["[]", str(md5)]


@pytest.mark.parametrize("name", ["text_classification", "bigram"])
def test_checked_in_ports_are_the_sed_line(name):
    original = (PORTS / f"{name}_torchtext.py").read_text(encoding="utf-8")
    port = (PORTS / f"{name}_textpipe.py").read_text(encoding="utf-8")
    assert "torchtext" in original and port == original.replace("torchtext", "textpipe")


@pytest.mark.parametrize("name, expected", [("text_classification", "test accuracy"), ("bigram", "test accuracy")])
def test_tutorial_ports_run_on_tiny_data(tmp_path, name, expected):
    source = (PORTS / f"{name}_torchtext.py").read_text(encoding="utf-8")
    out = run_ported(source, tmp_path, SEED="0", AG_NEWS_ROOT=str(ag_news_root(tmp_path)))
    assert expected in out and "This is a " in out and " news" in out.splitlines()[-1]
