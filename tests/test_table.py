"""`textpipe.data.table`: every format, column selection, defaults, bad rows, bounded chunks; and LabelVocab.

Run: python -m pytest -q tests/test_table.py
"""
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textpipe.data.labels import LabelVocab, canonical_label, read_classes
from textpipe.data.table import inspect_table, iter_table, read_table, scan_table, table_format

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ag_news"
LABELS, TEXTS = ["pos", "neg", "pos"], ["great, film", 'a "dull" one', "fine"]


def _csv(path, sep=","):  # TSV has no quoting (IANA): its values are written as they are
    quote = (lambda t: f'"{t.replace(chr(34), 2 * chr(34))}"') if sep == "," else (lambda t: t)
    lines = [f"label{sep}text"] + [f"{y}{sep}{quote(t)}" for y, t in zip(LABELS, TEXTS)]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _jsonl(path):
    data = "".join(json.dumps({"text": t, "label": y, "extra": 1}) + "\n" for y, t in zip(LABELS, TEXTS)).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.tsv", "t.tsv.gz", "t.jsonl", "t.json", "t.jsonl.gz",
                                  "t.parquet"])
def test_every_file_format_reads_the_same_rows(tmp_path, name):
    path = tmp_path / name
    if ".csv" in name or ".tsv" in name:
        _csv(path, "\t" if ".tsv" in name else ",")
    elif ".json" in name:
        _jsonl(path)
    else:
        pq.write_table(pa.table({"text": TEXTS, "label": LABELS}), path)
    assert read_table(path) == (LABELS, TEXTS)


def test_datasets_objects_and_save_to_disk_dirs(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    ds = datasets.Dataset.from_dict({"text": TEXTS, "label": [1, 0, 1]}, features=features)
    assert read_table(ds) == ([1, 0, 1], TEXTS)
    assert inspect_table(ds).class_names == ("neg", "pos")  # ClassLabel names travel with the spec
    dd = datasets.DatasetDict({"train": ds, "test": ds.select([2])})
    assert read_table(dd, split="test") == ([1], ["fine"])
    with pytest.raises(ValueError, match=r"holds the splits \['train', 'test'\]; choose one"):
        read_table(dd)
    ds.save_to_disk(str(tmp_path / "one"))
    dd.save_to_disk(str(tmp_path / "two"))
    assert table_format(tmp_path / "one") == "datasets"
    assert read_table(tmp_path / "one") == ([1, 0, 1], TEXTS)
    assert read_table(tmp_path / "two", split="train") == ([1, 0, 1], TEXTS)


def test_text_columns_are_joined_in_order_and_headerless_files_take_indexes(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("title,body,cat\nHello,world,a\nBye,now,b\n")
    assert read_table(path, text_columns=["body", "title"], label_column="cat") == (["a", "b"], ["world Hello", "now Bye"])
    bare = tmp_path / "bare.csv"
    bare.write_text("x,first text,0\ny,second,1\n")
    assert read_table(bare, text_columns=1, label_column=2) == ([0, 1], ["first text", "second"])
    with pytest.raises(ValueError, match=r"give both --text-column and --label-column"):
        read_table(bare, label_column=2)
    with pytest.raises(ValueError, match="all by name .* or all by 0-based index"):
        read_table(path, text_columns=[0, "body"])


def test_headerless_three_columns_default_to_the_ag_news_layout(tmp_path):
    path = tmp_path / "ag.csv"
    path.write_text('"3","Fed Up","Rates rise, again."\n"1","Talks","resume"\n')
    spec = inspect_table(path)
    assert (spec.header, spec.text_columns, spec.label_column) == (False, ("1", "2"), "0")
    assert read_table(path) == ([3, 1], ["Fed Up Rates rise, again.", "Talks resume"])


@pytest.mark.skipif(not DATA.is_dir(), reason=f"AG_NEWS stand-in not found at {DATA}")
def test_the_stand_in_reads_as_the_ag_news_reader_reads_it():
    from textpipe.data.ag_news import read_ag_news_csv

    labels, texts = read_table(DATA / "train.csv.gz")
    rows = read_ag_news_csv(DATA / "train.csv.gz")
    assert [y - 1 for y in labels] == [y for y, _ in rows] and texts == [t for _, t in rows]


def test_a_missing_column_lists_the_columns_found(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match=r"no column 'category' \(label column\); the columns found are "
                                         r"\['text', 'label', 'extra'\]"):
        read_table(path, label_column="category")
    other = tmp_path / "o.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"cannot tell which columns hold the text and the label"):
        read_table(other)


def test_unclosed_quotes_raise_instead_of_swallowing_rows(tmp_path):
    mid = tmp_path / "mid.csv"
    mid.write_text('label,text\n1,"good one"\n2,"unclosed\n3,"good two"\n4,"good three"\n')
    with pytest.raises(ValueError, match=r"mid.csv, line 4: malformed quoting"):
        read_table(mid)
    end = tmp_path / "end.csv"
    end.write_text('label,text\n1,"good one"\n2,"unclosed\n')
    with pytest.raises(ValueError, match=r"malformed quoting \(unexpected end of data\)"):
        read_table(end)
    ok = tmp_path / "ok.csv"
    ok.write_text('label,text\n1,"two\nlines, ""quoted"""\n')
    assert read_table(ok) == ([1], ['two\nlines, "quoted"'])


def test_bad_rows_raise_or_are_skipped_and_counted(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("label,text\npos,fine\nneg,too,many\n,no label\npos,last\n")
    with pytest.raises(ValueError, match=r"a row with 3 fields, expected 2: 'neg,too,many'"):
        read_table(path)
    with pytest.warns(UserWarning, match=r"skipped 2 malformed row\(s\)"):
        assert read_table(path, on_bad_rows="skip") == (["pos", "pos"], ["fine", "last"])
    nulls = tmp_path / "n.jsonl"
    nulls.write_text('{"text": "a", "label": 1}\n{"text": null, "label": 2}\n')
    with pytest.raises(ValueError, match=r"n.jsonl, row 2: the text is missing"):
        read_table(nulls)
    floats = tmp_path / "f.jsonl"
    floats.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 1.7}\n')
    with pytest.raises(ValueError, match=r"row 2: label 1.7: the label column 'label' holds floats"):
        read_table(floats)


def test_bad_rows_in_later_chunks_keep_their_row_numbers_and_labels_keep_their_types(tmp_path):
    # clean chunks go the column-wise path, a chunk with a bad row the per-row one: same rows either way
    path = tmp_path / "later.csv"
    rows = [(["pos", "neg", "3", "03", " 7"][i % 5], f"t {i}") for i in range(100)]
    rows[57] = ("", "no label")
    path.write_text("label,title,text\n" + "".join(f"{y},{t},x{i}\n" for i, (y, t) in enumerate(rows)))
    with pytest.raises(ValueError, match=r"later.csv, row 58: the label is missing \(an empty string\)"):
        read_table(path, text_columns=["title", "text"], batch_rows=8)
    with pytest.warns(UserWarning, match=r"skipped 1 malformed row\(s\) \(rows 58\)"):
        labels, texts = read_table(path, text_columns=["title", "text"], batch_rows=8, on_bad_rows="skip")
    kept = [(y, f"{t} x{i}") for i, (y, t) in enumerate(rows) if i != 57]
    assert texts == [t for _, t in kept] and labels == [canonical_label(y) for y, _ in kept]
    assert {type(y) for y in labels} == {int, str} and 3 in labels and "03" in labels and 7 in labels
    nulls = tmp_path / "later.jsonl"
    nulls.write_text("".join(json.dumps({"text": None if i == 20 else f"t{i}", "label": i % 2}) + "\n"
                             for i in range(30)))
    with pytest.raises(ValueError, match=r"later.jsonl, row 21: the text is missing"):
        read_table(nulls, batch_rows=8)


def test_scan_table_counts_what_iter_table_yields_with_the_same_errors(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("label,text\n" + "".join(f"{['b', 'a', '2'][i % 3]},t{i}\n" for i in range(40)) + ",x\nb,y\n")
    with pytest.raises(ValueError, match=r"s.csv, row 41: the label is missing"):
        scan_table(path)
    with pytest.warns(UserWarning, match=r"skipped 1 malformed row\(s\) \(rows 41\)"):
        labels, _ = read_table(path, on_bad_rows="skip")
    with pytest.warns(UserWarning, match=r"skipped 1 malformed row\(s\) \(rows 41\)"):
        assert scan_table(path, on_bad_rows="skip") == (len(labels), list(dict.fromkeys(labels))) == (41, ["b", "a", 2])
    clean = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["x", "y", "z"], "label": [3, 1, 3]}), clean)
    assert scan_table(clean) == (3, [3, 1])


def test_chunks_are_bounded_and_in_file_order(tmp_path):
    path = tmp_path / "big.tsv"
    path.write_text("label\ttext\n" + "".join(f"{i % 3}\ttext {i}\n" for i in range(1000)))
    chunks = list(iter_table(path, batch_rows=64))
    assert max(len(t) for _, t in chunks) == 64 and len(chunks) == 16
    assert [t for _, ts in chunks for t in ts] == [f"text {i}" for i in range(1000)]
    with pytest.raises(ValueError, match="batch_rows must be an int >= 1, got 0"):
        next(iter_table(path, batch_rows=0))


def test_unknown_formats_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="unknown table format"):
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="not one written by datasets' save_to_disk"):
        read_table(tmp_path)
    with pytest.raises(TypeError, match="expected a file path"):
        read_table(42)


# -- LabelVocab ----------------------------------------------------------------------------------------------
def test_label_vocab_sorted_or_in_the_classes_order():
    v = LabelVocab.from_labels(["pos", "neg", "pos", "mid"])
    assert v.names == ["mid", "neg", "pos"] and v.encode(["pos", "mid"]).tolist() == [2, 0]
    v = LabelVocab.from_labels(["pos", "neg"], classes=["pos", "neg"])
    assert v.encode(["neg"]).tolist() == [1]
    assert LabelVocab.from_labels([10, 2, 2]).values == [2, 10]  # ints sort numerically
    assert LabelVocab.from_labels(["3", 1]).values == [1, 3]  # an int-valued string is that int


def test_label_vocab_names_int_labels_by_position_like_ag_news():
    names = ["World", "Sports", "Business", "Sci/Tech"]
    v = LabelVocab.from_labels([1, 2, 3, 4], classes=names)
    assert v.values == [1, 2, 3, 4] and v.names == names and v.encode([4, 1]).tolist() == [3, 0]
    v0 = LabelVocab.from_labels([0, 1], classes=["neg", "pos"])
    assert v0.values == [0, 1] and v0.names == ["neg", "pos"]
    with pytest.raises(ValueError, match=r"label 'x' is not one of the classes \['a', 'b'\]"):
        LabelVocab.from_labels(["a", "x"], classes=["a", "b"])


def test_an_unseen_label_names_itself_and_its_row():
    v = LabelVocab.from_labels(["pos", "neg"])
    with pytest.raises(ValueError, match=r"test.csv, row 3: label 'meh' was not seen in training"):
        v.encode(["pos", "neg", "meh"], source="test.csv")
    assert LabelVocab.from_dict(v.to_dict()) == v


def test_labels_are_never_silently_coerced():
    assert canonical_label(np.int64(3)) == 3 and canonical_label("03") == "03"
    for bad, match in [(1.7, "is a float"), (True, "is a bool"), (None, "missing"), ("  ", "missing")]:
        with pytest.raises(ValueError, match=match):
            canonical_label(bad)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LabelVocab.from_labels(["only"])
    with pytest.raises(ValueError, match="listed twice"):
        LabelVocab(["a", "a"])


def test_read_classes(tmp_path):
    (tmp_path / "classes.txt").write_text("World\nSports\n\n")
    assert read_classes(tmp_path / "classes.txt") == ["World", "Sports"]
    (tmp_path / "one.txt").write_text("World\n")
    with pytest.raises(ValueError, match="at least 2 class names"):
        read_classes(tmp_path / "one.txt")


@pytest.mark.parametrize("name", ["textpipe.data.table", "textpipe.data.labels"])
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    import doctest
    import importlib

    monkeypatch.chdir(tmp_path)  # the examples write their small files here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rows_longer_than_the_read_block_are_read_whole(tmp_path, fmt):
    # the reader starts with 1 MiB blocks; a 3 MiB text makes it re-read with larger blocks, losing no row
    long_text = "word " * (600_000) + "end"
    rows = [("a", f"short {i}") for i in range(3000)] + [("b", long_text)] + [("a", "after")]
    path = tmp_path / f"long.{fmt}"
    if fmt == "csv":
        path.write_text("label,text\n" + "".join(f"{lab},{text}\n" for lab, text in rows) + "x,y,z\n")
        with pytest.warns(UserWarning, match=r"skipped 1 malformed row\(s\)"):  # counted once, not per re-read
            labels, texts = read_table(path, on_bad_rows="skip")
    else:
        path.write_text("".join(json.dumps({"label": lab, "text": text}) + "\n" for lab, text in rows))
        labels, texts = read_table(path)
    assert texts == [t for _, t in rows] and labels == [lab for lab, _ in rows]


def test_a_headerless_file_read_with_names_says_to_use_indexes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('"3","Fed Up","Rates rise."\n"1","War","Troops move."\n')
    with pytest.raises(ValueError, match=r"no column 'text'.*given by name; for a file without a header row give "
                                         r"0-based indexes"):
        read_table(path, text_columns=["text"], label_column="label")


def test_label_encode_checks_every_distinct_label_by_type():
    # encode checks each distinct (type, label) once: 1 then True must still refuse the bool, "1" maps to 1
    from textpipe.data.labels import LabelVocab

    lv = LabelVocab([1, 2])
    assert lv.encode([1, "1", 2, 1, "2"]).tolist() == [0, 0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"x, row 3: label True is a bool"):
        lv.encode([1, 1, True], source="x")
    with pytest.raises(ValueError, match=r"row 2: label 3 was not seen in training"):
        lv.encode([1, 3, 1])


@pytest.mark.parametrize("types", [(pa.string(), pa.string()), (pa.large_string(), pa.large_string()),
                                   (pa.string(), pa.large_string())])
def test_text_columns_are_joined_column_wise_whatever_their_string_type(types):
    # the column-wise path (not the row-by-row fallback, which returns None here) joins title and body
    from types import SimpleNamespace

    from textpipe.data._rows import _clean_batch

    batch = pa.record_batch([pa.array(["1", "2"]), pa.array(["a", "b"], type=types[0]),
                             pa.array(["x y", "z"], type=types[1])], names=["label", "title", "body"])
    spec = SimpleNamespace(text_columns=["title", "body"], label_column="label")
    assert _clean_batch(batch, spec, texts=True) == ([1, 2], ["a x y", "b z"])


def test_reading_counting_and_encoding_never_import_pandas(tmp_path):
    # pyarrow imports pandas (0.2-0.3 s) on pa.scalar/pa.array/to_numpy; the read path must avoid all three
    import subprocess
    import sys

    csv = tmp_path / "t.csv"
    csv.write_text("label,title,body\n" + "".join(f"{i % 3},title {i},body words {i}\n" for i in range(50)))
    code = ("import sys\n"
            "from textpipe.data.table import read_table\n"
            "from textpipe.vocab import build_vocab_from_texts\n"
            f"labels, texts = read_table({str(csv)!r}, text_columns=['title', 'body'], label_column='label')\n"
            "assert len(texts) == 50 and texts[0] == 'title 0 body words 0', texts[0]\n"
            "v = build_vocab_from_texts([texts])\n"
            "ids, offsets = v.encode_flat(texts, num_workers=2)\n"
            "print('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_a_first_row_over_the_csv_modules_field_limit_is_read_issue20(tmp_path):
    """Issue 20 #9: a huge first row failed in the header sniff (`field larger than field limit (131072)`)."""
    import csv

    from textpipe.data.table import iter_table

    path = tmp_path / "big.csv"
    path.write_text('"1","t","' + "word " * 60_000 + '"\n"2","t","small"\n')
    rows = [(y, len(t)) for labels, texts in iter_table(path, text_columns=[1, 2], label_column=0)
            for y, t in zip(labels, texts)]
    assert [y for y, _ in rows] == [1, 2] and rows[0][1] > 300_000
    assert csv.field_size_limit() == 131072  # put back
