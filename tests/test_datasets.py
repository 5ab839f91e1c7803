"""textpipe.datasets.AG_NEWS (torchtext's semantics) on local dirs in torchtext's layout and over local HTTP.

Run: python3 -m pytest -q tests/test_datasets.py
"""
import gzip
import hashlib

import pytest
from _http import local_server
import torch
from torch.utils.data import DataLoader

from textpipe.data.download import DownloadError
from textpipe.data.functional import to_map_style_dataset
from textpipe.datasets import AG_NEWS, SplitError

TRAIN = b'"3","Fed Up","Rates rise, again."\n"1","War","Talks fail."\n"4","Chips","Faster, again."\n'
TEST = b'"2","Goal","A late win."\n'


def torchtext_layout(root, train=TRAIN, test=TEST, gz=False):
    d = root / "datasets" / "AG_NEWS"
    d.mkdir(parents=True)
    for name, data in (("train", train), ("test", test)):
        if gz:
            (d / f"{name}.csv.gz").write_bytes(gzip.compress(data))
        else:
            (d / f"{name}.csv").write_bytes(data)
    return root


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTPIPE_CACHE", str(tmp_path / "tp_cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@pytest.mark.parametrize("gz", [False, True])
def test_torchtext_layout_labels_one_to_four(tmp_path, gz):
    train, test = AG_NEWS(root=torchtext_layout(tmp_path / "data", gz=gz))  # default split: both
    assert list(train) == [(3, "Fed Up Rates rise, again."), (1, "War Talks fail."), (4, "Chips Faster, again.")]
    assert list(test) == [(2, "Goal A late win.")]
    assert len(train) == 3 and len(test) == 1
    assert list(train) == list(train)  # re-iterable


def test_split_forms(tmp_path):
    root = torchtext_layout(tmp_path / "data")
    assert next(iter(AG_NEWS(root=root, split="test"))) == (2, "Goal A late win.")
    one = AG_NEWS(root=root, split=("test",))
    assert isinstance(one, tuple) and len(one) == 1
    test, train = AG_NEWS(root=root, split=("test", "train"))  # in the order asked
    assert len(test) == 1 and len(train) == 3


@pytest.mark.parametrize("split", ["valid", ("train", "dev"), 3, ()])
def test_unknown_split_is_a_value_and_type_error(tmp_path, split):
    with pytest.raises(SplitError, match="split must be 'train', 'test'") as e:
        AG_NEWS(root=tmp_path, split=split)
    assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)  # torchtext raised TypeError


def test_flat_directory_and_textpipe_cache(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "train.csv").write_bytes(TRAIN)
    assert len(AG_NEWS(root=flat, split="train")) == 3
    cache = tmp_path / "tp_cache" / "ag_news"
    cache.mkdir(parents=True)
    (cache / "test.csv").write_bytes(TEST)
    assert len(AG_NEWS(root=flat, split="test")) == 1  # not under root: textpipe's cache
    assert len(AG_NEWS(split="test")) == 1  # no root: the cache first


def test_no_root_finds_torchtexts_default_place(tmp_path):
    torchtext_layout(tmp_path / "torch_home" / "text")
    assert len(AG_NEWS(split="train", download=False)) == 3


def test_not_found_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="AG_NEWS train split not found.*download=False"):
        AG_NEWS(root=tmp_path / "empty", split="train", download=False)


def test_dataloader_uses_it_like_torchtexts_datapipe(tmp_path):
    train = AG_NEWS(root=torchtext_layout(tmp_path / "data"), split="train")
    rows = list(train)
    # workers each get every N-th row (torchtext's sharding_filter): all rows once
    got = [r for batch in DataLoader(train, batch_size=None, num_workers=2) for r in [batch]]
    assert sorted(tuple(x) for x in got) == sorted(tuple(r) for r in rows)
    # shuffle=True shuffles (the datapipe graph holds torchtext's Shuffler)
    torch.manual_seed(1)
    orders = {tuple(b[0].item() for b in DataLoader(train, batch_size=1, shuffle=True)) for _ in range(20)}
    assert len(orders) > 1


def test_seeded_dataloader_draws_the_random_numbers_torchtext_drew(tmp_path):
    # torch's DataLoader draws one extra seed for a datapipe (not for a plain IterableDataset); the
    # tutorial's results depend on it, so AG_NEWS must be a datapipe like torchtext's.
    train = AG_NEWS(root=torchtext_layout(tmp_path / "data"), split="train")
    torch.manual_seed(0)
    next(iter(DataLoader(train, batch_size=2)))
    after_datapipe = torch.rand(1)
    torch.manual_seed(0)
    next(iter(DataLoader(list(train), batch_size=2)))
    after_list = torch.rand(1)
    assert not torch.equal(after_datapipe, after_list)


def test_to_map_style_dataset(tmp_path):
    ds = to_map_style_dataset(AG_NEWS(root=torchtext_layout(tmp_path / "data"), split="train"))
    assert len(ds) == 3 and ds[2] == (4, "Chips Faster, again.")
    train, valid = torch.utils.data.random_split(ds, [2, 1])
    assert len(train) == 2 and len(valid) == 1


def test_malformed_row_names_file_and_line(tmp_path):
    root = torchtext_layout(tmp_path / "data", train=TRAIN + b'"7","x","y"\n')
    train = AG_NEWS(root=root, split="train")
    with pytest.raises(ValueError, match=r"train.csv, line 4: class must be one of 1, 2, 3, 4"):
        list(train)


# --- download into torchtext's layout, over a local HTTP server

@pytest.fixture
def server():
    with local_server() as srv:
        yield srv


def test_download_into_torchtext_layout_checked_against_md5(server, tmp_path):
    server.files = {"/train.csv": TRAIN, "/test.csv": TEST}
    urls = {s: (server.url(f"/{s}.csv"), hashlib.md5(b).hexdigest()) for s, b in (("train", TRAIN), ("test", TEST))}
    root = tmp_path / ".data"
    train, test = AG_NEWS(root=root, urls=urls)
    assert (root / "datasets" / "AG_NEWS" / "train.csv").read_bytes() == TRAIN
    assert list(test) == [(2, "Goal A late win.")] and len(train) == 3
    hits = server.hits
    AG_NEWS(root=root, urls=urls)  # found locally: no second download
    assert server.hits == hits


def test_download_with_wrong_md5_leaves_nothing(server, tmp_path):
    server.files = {"/train.csv": TRAIN}
    with pytest.raises(DownloadError, match="checksum mismatch") as e:
        AG_NEWS(root=tmp_path / ".data", split="train", urls={"train": (server.url("/train.csv"), "0" * 32)})
    assert "by hand" in str(e.value)
    target = tmp_path / ".data" / "datasets" / "AG_NEWS"
    assert [p.name for p in target.iterdir() if not p.name.endswith(".lock")] == []


def test_uses_torchtexts_urls_and_md5s_by_default():
    from textpipe.data.ag_news import AG_NEWS_URLS
    assert AG_NEWS_URLS["train"] == ("https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/"
                                     "ag_news_csv/train.csv", "b1a00f826fdfbd249f79597b59e1dc12")
    assert AG_NEWS_URLS["test"][1] == "d52ea96a97a2d943681189a97654912d"
