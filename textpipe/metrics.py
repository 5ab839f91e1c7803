"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix, text table, PNG; for two
classes the decision threshold's table (precision, recall and F1 of the positive class at each threshold, and
the threshold of the best F1) and a precision-recall plot.

Plain numpy; the PNG needs matplotlib (`pip install -e ".[plot]"`) and is skipped with a note without it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def classification_report(preds: Sequence[int], labels: Sequence[int], num_classes: int,
                          class_names: Sequence[str] | None = None) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix.

    With `class_names`, each per-class entry names its class (`"class"`) and `class_names` is in the report.

    `confusion[i][j]` counts samples of true class i predicted as j. A class that is never predicted
    (or never present) gets precision (or recall) 0.

    Example:
        >>> r = classification_report([0, 1, 1], [0, 1, 0], num_classes=2)
        >>> r["accuracy"], r["confusion"], round(r["per_class"][1]["precision"], 2)
        (0.6666666666666666, [[1, 1], [0, 1]], 0.5)
    """
    preds, labels = np.asarray(preds, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if preds.shape != labels.shape:
        raise ValueError(f"preds and labels must have the same length, got {preds.shape} and {labels.shape}")
    for name, values in (("labels", labels), ("preds", preds)):
        bad = (values < 0) | (values >= num_classes)
        if bad.any():
            raise ValueError(f"{name} must be class ids in 0..{num_classes - 1}, found {int(values[bad][0])} "
                             f"at position {int(np.flatnonzero(bad)[0])}")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, preds), 1)
    return report_from_confusion(confusion, class_names)


def report_from_confusion(confusion, class_names: Sequence[str] | None = None) -> dict:
    """`classification_report` of a confusion matrix (`confusion[i][j]`: true class i predicted as j): what a
    streamed evaluation accumulates instead of every prediction."""
    confusion = np.asarray(confusion, dtype=np.int64)
    num_classes = confusion.shape[0]
    tp = np.diag(confusion).astype(float)
    predicted, support = confusion.sum(0), confusion.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    n = int(confusion.sum())
    names = [None] * num_classes if class_names is None else [str(c) for c in class_names]
    if len(names) != num_classes:
        raise ValueError(f"expected {num_classes} class names, got {len(names)}")
    report = {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "n": n,
        "macro_f1": float(f1.mean()),
        "per_class": [{**({} if name is None else {"class": name}), "precision": float(p), "recall": float(r),
                       "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(names, precision, recall, f1, support)],
        "confusion": confusion.tolist(),
    }
    if class_names is not None:
        report["class_names"] = names
    return report


GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # the thresholds of the table: 0.05, 0.1, ..., 0.95


def threshold_table(scores: Sequence[float], positive: Sequence[bool], *, name: str = "1") -> dict:
    """Precision, recall and F1 of the positive class when it is predicted at `score >= threshold`.

    Args:
        scores: the probability of the positive class, per sample.
        positive: whether each sample's true class is the positive one.
        name: the positive class's name, for the report.

    Returns:
        `{"positive": name, "table": [{"threshold", "precision", "recall", "f1"}, ...] (at GRID), "best": the
        threshold of the best F1 over every distinct score (midway to the next lower score) with its precision,
        recall and F1, "at_0.5": the figures at 0.5}`.

    Example:
        >>> t = threshold_table([0.9, 0.4, 0.35, 0.1], [True, True, False, False], name="spam")
        >>> t["best"]["threshold"], t["best"]["f1"], t["at_0.5"]["f1"]
        (0.375, 1.0, 0.6666666666666666)
    """
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    if scores.shape != positive.shape:
        raise ValueError(f"scores and positive must have the same length, got {scores.shape} and {positive.shape}")

    def at(threshold: float) -> dict:
        pred = scores >= threshold
        tp = int((pred & positive).sum())
        return _prf(threshold, tp, int(pred.sum()), int(positive.sum()))

    order = np.argsort(-scores, kind="stable")
    s, tp = scores[order], np.cumsum(positive[order])
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1] if len(s) else np.zeros(0, dtype=np.int64)
    best = _prf(0.5, 0, 0, int(positive.sum()))
    for i in last:  # predict positive for the first i+1 samples: the scores >= s[i]
        row = _prf(float(s[i]), int(tp[i]), int(i) + 1, int(positive.sum()))
        if row["f1"] > best["f1"]:
            below = s[i + 1] if i + 1 < len(s) else 0.0
            best = {**row, "threshold": round(float(s[i] + below) / 2, 6)}
    return {"positive": str(name), "table": [at(t) for t in GRID], "best": best, "at_0.5": at(0.5)}


def _prf(threshold: float, tp: int, predicted: int, actual: int) -> dict:
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "precision": precision, "recall": recall, "f1": f1}


def format_thresholds(t: dict) -> str:
    """The threshold table as text (every other row of GRID), with the best-F1 threshold."""
    lines = [f"decision threshold: predict {t['positive']} when its probability >= threshold",
             "threshold  precision  recall      f1"]
    for row in t["table"][1::2]:
        lines.append(f"{row['threshold']:>9.2f}  {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f}")
    b = t["best"]
    lines.append(f"best F1 {b['f1']:.4f} at threshold {b['threshold']:.4g} (precision {b['precision']:.4f}, "
                 f"recall {b['recall']:.4f}); at 0.5: F1 {t['at_0.5']['f1']:.4f}")
    return "\n".join(lines)


def format_report(report: dict, class_names: Sequence[str]) -> str:
    """The report as a text table (per-class rows, then the confusion matrix)."""
    width = max(10, *(len(c) for c in class_names))
    lines = [f"accuracy {report['accuracy']:.4f} on {report['n']} samples, macro F1 {report['macro_f1']:.4f}",
             f"{'class':<{width}} precision  recall      f1  support"]
    for name, row in zip(class_names, report["per_class"]):
        lines.append(f"{name:<{width}} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f} "
                     f"{row['support']:8d}")
    lines.append("confusion matrix (rows: true class, columns: predicted)")
    lines.append(" " * width + "".join(f"{name[:8]:>9}" for name in class_names))
    for name, row in zip(class_names, report["confusion"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:9d}" for v in row))
    if report.get("thresholds"):
        lines.append(format_thresholds(report["thresholds"]))
    return "\n".join(lines)


def save_confusion_png(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path) -> bool:
    """Draw the confusion matrix to a PNG; returns False (and draws nothing) when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.2 * len(class_names) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def save_pr_png(scores: Sequence[float], positive: Sequence[bool], name: str, path, *, best: dict | None = None
                ) -> bool:
    """Draw the precision-recall curve of the positive class `name` to a PNG (False: matplotlib is missing)."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(positive[order])
    precision, recall = tp / np.arange(1, len(tp) + 1), tp / max(int(positive.sum()), 1)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot(recall, precision)
    if best is not None:
        ax.plot([best["recall"]], [best["precision"]], "o", label=f"best F1 {best['f1']:.3f} at {best['threshold']:.3g}")
        ax.legend(loc="lower left")
    ax.set_xlabel(f"recall ({name})")
    ax.set_ylabel(f"precision ({name})")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_title(f"precision-recall, positive class {name}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
