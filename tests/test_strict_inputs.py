"""Issue 20 #5-#7: the coercions that silently changed values are clear TypeError/ValueError/IndexError now.

Run: python3 -m pytest -q tests/test_strict_inputs.py
"""
import numpy as np
import pytest
import torch

from textpipe.batches.collate import CorpusBatch, pad_collate
from textpipe.batches.sampler import BucketBatchSampler
from textpipe.batches.text_collate import TextCollate
from textpipe.corpus.encoded import EncodedCorpus
from textpipe.text.vocabulary import Vocab

U64_MAX = np.array([2**64 - 1], np.uint64)


@pytest.fixture
def corpus():
    return EncodedCorpus([1, 2, 3, 4, 5], [0, 1, 3, 5], [7, 8, 9])  # rows [1] [2 3] [4 5], labels 7 8 9


@pytest.fixture
def vocab():
    return Vocab(["<pad>", "<unk>", "a"], default_index=1)


def test_getitems_negative_index_keeps_ids_and_label_of_one_row(corpus):
    """#5: __getitems__([-2]) gave the last row's ids with the second-to-last row's label."""
    for idx in ([-2], [1], np.array([-2]), torch.tensor([-2])):
        ids, lengths, labels = pad_collate(corpus.__getitems__(idx))
        assert ids.tolist() == [[2, 3]] and labels.tolist() == [8]
        assert corpus[-2][0].tolist() == [2, 3] and corpus[-2][1] == 8
    ids, _, labels = pad_collate(corpus.__getitems__([-1, 0, -3]))
    assert labels.tolist() == [9, 7, 7] and ids[0].tolist() == [4, 5]


@pytest.mark.parametrize("bad, err", [([1.5], TypeError), ([True], TypeError), (np.array([1.0]), TypeError),
                                      ([3], IndexError), ([-4], IndexError), (U64_MAX, IndexError)])
def test_getitems_refuses_non_int_and_out_of_range(corpus, bad, err):
    with pytest.raises(err):
        corpus.__getitems__(bad)


def test_float_labels_are_refused_not_truncated(vocab):
    """#7: from_texts turned 1.7 into 1; TextCollate turned 1.5 into 1."""
    with pytest.raises(TypeError, match="labels must be a 1-D integer array"):
        EncodedCorpus.from_texts(["a"], [1.7], vocab)
    with pytest.raises(TypeError, match=r"batch\[0\] label must be an int class index, got float 1.5"):
        TextCollate(vocab)([(1.5, "a")])
    with pytest.raises(TypeError, match=r"batch\[1\] label"):
        TextCollate(vocab)([(1, "a"), (True, "a")])
    assert TextCollate(vocab)([(np.int64(2), "a"), (torch.tensor(1), "a")])[2].tolist() == [2, 1]


def test_text_collate_refuses_a_three_field_sample(vocab):
    with pytest.raises(TypeError, match=r"batch\[0\] must be a \(label, text\) pair, got tuple of length 3"):
        TextCollate(vocab)([(1, "a", "extra")])


def test_uint64_ids_beyond_int64_are_refused_not_wrapped():
    with pytest.raises(ValueError, match="beyond int64"):
        EncodedCorpus(U64_MAX, [0, 1], [0])
    with pytest.raises(ValueError, match="beyond int64"):
        pad_collate(CorpusBatch(np.array([2**64 - 1, 0], np.uint64), np.array([0]), np.array([1]), np.array([0])))
    ok = pad_collate(CorpusBatch(np.array([5, 0], np.uint64), np.array([0]), np.array([1]), np.array([0])))
    assert ok[0].tolist() == [[5]]


def test_sampler_refuses_negative_lengths_and_costs_nothing_per_replica():
    with pytest.raises(ValueError, match=r"lengths must be >= 0, got lengths\[1\] = -1"):
        BucketBatchSampler([3, -1], 2)
    # #11: 2**70 replicas built a list of 2**70 batches; now only this rank's share is built
    s = BucketBatchSampler([1] * 10, 2, num_replicas=2**70, rank=5, seed=0)
    assert len(s) == 1 and len(list(s)) == 1
    # the shares are what the full padded list gave
    for drop_last in (False, True):
        full = BucketBatchSampler([1, 2, 3, 4, 5, 6, 7], 2, num_replicas=3, rank=0, drop_last=drop_last)
        everything = [b.tolist() for b in full.epoch_batches()]
        for r in range(3):
            mine = BucketBatchSampler([1, 2, 3, 4, 5, 6, 7], 2, num_replicas=3, rank=r, drop_last=drop_last)
            assert list(mine) == everything[r::3]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_labels_are_canonicalised_the_same_way_in_every_format(tmp_path, fmt):
    """#6: CSV `1` and `1.0` (and `pos`, `pos `) were separate classes; JSONL and Parquet refused floats."""
    import json

    from textpipe.data.table import read_table

    def write(name, labels):
        path = tmp_path / f"{name}.{fmt}"
        rows = [{"label": y, "text": f"t{i}"} for i, y in enumerate(labels)]
        if fmt == "csv":
            path.write_text("label,text\n" + "".join(f"{r['label']},{r['text']}\n" for r in rows))
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            pq.write_table(pa.Table.from_pylist(rows), path)
        return path

    labels, _ = read_table(write("strip", ["pos", "pos ", " neg"]))
    assert labels == ["pos", "pos", "neg"]
    with pytest.raises(ValueError, match=rf"float\.{fmt}.*is a float|float\.{fmt}.*holds floats"):
        read_table(write("float", ["1", "1.0"] if fmt == "csv" else [1.0, 2.0]))


@pytest.mark.parametrize("name, data, match", [
    ("dup.csv", b"text,text,label\na,b,1\n", "dup.csv: duplicate column names"),
    ("notgz.csv.gz", b"label,text\n1,a\n", "notgz.csv.gz: its name ends in .gz but it is not gzip data"),
    ("notgz.jsonl.gz", b'{"text": "a", "label": 1}\n', "notgz.jsonl.gz: its name ends in .gz but it is not gzip"),
    ("bad.parquet", b"PAR1garbagegarbagePAR1", "bad.parquet: cannot read it .*truncated or corrupt"),
])
def test_unreadable_tables_name_the_file(tmp_path, name, data, match):
    """Issue 20: these messages did not say which file."""
    from textpipe.data.table import read_table

    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match):
        read_table(path)


def test_dangling_symlink_output_dir_says_so(tmp_path, capsys):
    from textpipe.train import main

    csv = tmp_path / "ok.csv"
    csv.write_text("label,text\n1,a b\n2,c d\n1,a\n2,d\n")
    (tmp_path / "out").symlink_to(tmp_path / "missing")
    assert main(["--train", str(csv), "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "is a symbolic link to" in capsys.readouterr().err
