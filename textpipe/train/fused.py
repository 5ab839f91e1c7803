"""The fused SGD trainer of `TextClassifier`: each step is a few tensor ops with no autograd graph.

    bags = corpus_bags(model, corpus)                          # words + hashed bigrams, once per corpus
    batches = FlatBatches(bags, sampler)                       # each batch gathered from the bags
    for ids, scale, offsets, labels in batches.epoch(epoch):
        sgd_step(model, ids, scale, offsets, labels, lr=lr, stats=stats)

Why (docs/training-speed.md has the measurements): a step of the autograd loop at batch 16 costs ~0.9 ms,
almost all of it per-call overhead (bigram hashing, autograd, the sparse gradient's sort in
`torch.optim.SGD`), and batches of 128 with the same mean-loss SGD learn rare bigrams 8x slower. Here the
gradient is written out (the model is a mean of embedding rows and one linear layer), and the embedding rows
take the sum of their per-text gradients, each divided by how often the row is expected in a batch (from its
count in the corpus, at least 1): a rare bigram learns as fast as in fastText's one-text-at-a-time SGD, a word
in every text as fast as in a mean-loss step. The output layer takes an ordinary mean-loss SGD step.
Deterministic on CPU.

Run the tests: python -m pytest -q tests/test_fast_sgd.py
"""
from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from textpipe.models.bag import TextClassifier, bag_sums

__all__ = ["corpus_bags", "corpus_bag_chunks", "row_scale", "FlatBatches", "sgd_step", "hogwild_steps", "LRSchedule", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside the block (0: unchanged), restored after it.

    `corpus_bags` and `FlatBatches` work on the whole corpus at once, where threads pay (measured, bags of
    89,600 texts on this quiet 2-core machine: 0.40-0.54 s with 1 thread, 0.22-0.26 s with 2), while the
    steps' small ops are faster on one.
    """
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def corpus_bags(model: TextClassifier, corpus) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every text's bag of embedding rows, as `(bag ids (M,), bag offsets (N + 1,), labels (N,))` CPU tensors.

    Exactly the rows `model.bags` gives for each text (its words, then with bigrams the hashed bigram ids),
    computed once for the whole corpus.
    """
    ids, offsets, labels = (_int64(a) for a in (corpus.ids, corpus.offsets, corpus.labels))
    bag_ids, starts = model.bags(ids, offsets[:-1])
    bag_offsets = torch.cat([starts, torch.tensor([bag_ids.numel()])])
    return bag_ids, bag_offsets, labels


@torch.no_grad()
def corpus_bag_chunks(model: TextClassifier, corpus, *, texts: int = 1 << 16) -> Iterator[tuple[torch.Tensor, ...]]:
    """`corpus_bags` of `texts` texts at a time, each as `(bag ids (M,), bag offsets (B,), labels (B,))` on the
    CPU: for a corpus too large for one `corpus_bags` (the autograd loop's streamed ones)."""
    ids, offsets, labels = corpus.ids, np.asarray(corpus.offsets, dtype=np.int64), corpus.labels
    device = model.fc.weight.device
    for a in range(0, len(offsets) - 1, texts):
        b = min(a + texts, len(offsets) - 1)
        bag_ids, starts = model.bags(_int64(ids[offsets[a]:offsets[b]]).to(device),
                                     torch.from_numpy(offsets[a:b] - offsets[a]).to(device))
        yield bag_ids.cpu(), starts.cpu(), _int64(labels[a:b])


def _int64(array) -> torch.Tensor:
    """`array` as a CPU int64 tensor, sharing its memory where it can. A cached corpus's arrays are read-only
    memory maps; the tensors made of them here are only read, so torch's warning about that is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.asarray(array, dtype=np.int64))


def row_scale(bag_ids: torch.Tensor, num_rows: int, *, batch_texts: int, num_texts: int) -> torch.Tensor:
    """`(M,)` per occurrence: 1 / (expected occurrences of its row in a batch of `batch_texts`, at least 1).

    Example:
        >>> row_scale(torch.tensor([2, 3, 2, 2]), 5, batch_texts=2, num_texts=4)
        tensor([0.6667, 1.0000, 0.6667, 0.6667])
    """
    freq = torch.bincount(bag_ids, minlength=num_rows).to(torch.float32)  # (rows,) occurrences in the corpus
    return 1.0 / torch.clamp(freq[bag_ids] * (batch_texts / max(num_texts, 1)), min=1.0)


class FlatBatches:
    """A batch sampler's batches as `(bag ids (M,), scale (M,), offsets (B,), labels (B,))`.

    `epoch(e)` yields this rank's batches of epoch `e`, in the sampler's order, each gathered on the CPU
    and moved to `device`. Same batches, order and `len()` as
    `make_dataloader(corpus, ...)` with the same sampler. `scale` is `row_scale` for the global batch
    (`batch_size * num_replicas` texts) and, with `concurrent` Hogwild threads, for the `concurrent` batches
    in flight at once (see `hogwild_steps`).

    Attributes:
        batch_sampler: The `BucketBatchSampler` (its seed, epoch and rank/num_replicas decide the batches).
    """

    def __init__(self, bags: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_sampler, *,
                 num_rows: int, device: torch.device | str = "cpu", concurrent: int = 1) -> None:
        self.bag_ids, self.bag_offsets, self.labels = bags
        self.lengths = self.bag_offsets[1:] - self.bag_offsets[:-1]  # (N,) rows per text
        self.scale = row_scale(self.bag_ids, num_rows, num_texts=self.labels.numel(),
                               batch_texts=batch_sampler.batch_size * batch_sampler.num_replicas * concurrent)
        self.batch_sampler, self.device = batch_sampler, torch.device(device)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield the batches of `epoch` on this rank from batch number `start` on (a resume skips the rest)."""
        s = self.batch_sampler
        s.set_epoch(epoch)
        for texts in s.epoch_batches()[s.rank::s.num_replicas][start:]:
            yield self._gather(torch.from_numpy(np.asarray(texts, dtype=np.int64)))

    def _gather(self, texts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One batch: its texts' bags end to end, their scales, where each text starts, the labels.

        Batch by batch, not the whole epoch at once: an epoch-sized gather allocated fresh arrays of
        the whole epoch's rows (8M ids + scales at 89,600 texts) every epoch. Measured there: the gathers
        alone 0.33 -> 0.18 s an epoch, the training loop the same within noise."""
        lengths = self.lengths.index_select(0, texts)  # (B,) rows of each text
        ends = lengths.cumsum(0)
        starts = ends - lengths
        total = int(ends[-1]) if ends.numel() else 0
        # position j of the batch holds bag_ids[start of its text + (j - where its text begins)]
        where = torch.repeat_interleave(self.bag_offsets.index_select(0, texts) - starts, lengths, output_size=total)
        where += torch.arange(total)
        # index_select, not `tensor[where]`: 4x faster for these sizes (15 vs 65 us for 23k ids)
        return tuple(t.to(self.device, non_blocking=True)
                     for t in (self.bag_ids.index_select(0, where), self.scale.index_select(0, where), starts,
                               self.labels.index_select(0, texts)))


@torch.no_grad()
def sgd_step(model: TextClassifier, ids: torch.Tensor, scale: torch.Tensor, offsets: torch.Tensor,
             labels: torch.Tensor, *, lr: float, stats: torch.Tensor | None = None, concurrent: int = 1,
             class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
    """One SGD step on the batch's cross-entropy, in place; no host synchronisation on one process.

    Args:
        model: The (unwrapped) classifier; its embedding and output layer are updated in place.
        ids: The batch's bag ids `(M,)` (see `corpus_bags`), `scale` `(M,)` of each occurrence (see
            `row_scale`), offsets `(B,)` where each text's bag starts, labels `(B,)`.
        lr: Learning rate. The output layer takes `lr` times the mean gradient over the batch; each
            embedding row `lr` times the sum of its per-text gradients, each times its `scale` (and, with the
            model's `weighting="nb"`, each text's vector is its rows' mean weighted by `model.row_weight`).
        stats: Optional float64 `(3,)` accumulator: `+= [loss sum, correct predictions, texts]`.
        concurrent: How many steps run at once (`hogwild_steps`' threads): the output layer takes
            `1 / concurrent` of its step, as one step over those batches together would.
        class_weights: Optional `(C,)`: text i's loss (and gradient) is times `class_weights[labels[i]]`.
        label_smoothing: The target is `1 - label_smoothing` on the label plus `label_smoothing / C` on
            every class (torch's `cross_entropy(label_smoothing=...)`); `stats` keep the plain loss.

    Under `torch.distributed` (world size > 1) every rank applies the update of all ranks' batches
    together, so the replicas stay identical without a DDP wrapper (3 collectives per step).
    """
    # detached: with a tensor that requires grad, embedding_bag takes its slower training path
    E, W, b = model.embedding.weight.detach(), model.fc.weight.detach(), model.fc.bias.detach()
    n, B = ids.numel(), labels.numel()
    lengths = torch.diff(offsets, append=offsets.new_full((1,), n))  # (B,) rows per text
    if model.config.weighting == "nb":  # a weighted mean: row r counts row_weight[r] times (textpipe.models.bag)
        w = model.row_weight.index_select(0, ids)  # (M,)
        norm = bag_sums(w, offsets)  # (B,)
        h = F.embedding_bag(ids, E, offsets, mode="sum", per_sample_weights=w).div_(norm.unsqueeze(1))
        scale = scale * w
    else:
        h, norm = F.embedding_bag(ids, E, offsets, mode="mean"), lengths.clamp(min=1).to(E.dtype)  # (B, D) mean
    logits = torch.addmm(b, h, W.t())  # (B, C)
    logp = torch.log_softmax(logits, 1)
    rows = torch.arange(B, device=ids.device)
    if stats is not None:
        stats[0] -= logp[rows, labels].sum().to(stats.dtype)
        stats[1] += (logits.argmax(1) == labels).sum().to(stats.dtype)
        stats[2] += B
    g = logp.exp_()
    if label_smoothing:
        g[rows, labels] -= 1.0 - label_smoothing
        g -= label_smoothing / g.shape[1]
    else:
        g[rows, labels] -= 1  # (B, C) d(loss of text i)/d(logits of text i)
    if class_weights is not None:
        g.mul_(class_weights.index_select(0, labels).unsqueeze(1))
    # (B, D) -lr x the gradient of each of a text's rows; then one copy per occurrence, times its scale
    step_h = (g @ W).mul_((-lr / norm).unsqueeze(1))
    per_row = step_h.repeat_interleave(lengths, 0, output_size=n).mul_(scale.unsqueeze(1))  # (M, D)
    dW, db, total = g.t() @ h, g.sum(0), B
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        ids, per_row, dW, db, total = _gather_all(ids, per_row, dW, db, B, pad_idx=model.config.pad_idx)
    W.sub_(dW, alpha=lr / (total * concurrent))
    b.sub_(db, alpha=lr / (total * concurrent))
    E.index_put_((ids,), per_row, accumulate=True)  # the rows in the batch, nothing else


def hogwild_steps(model: TextClassifier, batches: Sequence[tuple], *, lr_at: Callable[[int], float],
                  threads: int, **loss) -> torch.Tensor:
    """`sgd_step` on every batch, by `threads` threads that update the model in place without locks.

    Hogwild! (Recht et al., 2011), as fastText's `-thread` trains: thread k takes batches k, k + threads, ...,
    batch j with learning rate `lr_at(j)`. The ops release the GIL, so the threads run on separate cores
    (`benchmarks/hogwild_steps.py`, 350 batches of 256 on this 2-core machine: 1.64x faster with 2 threads
    than with one). Two
    threads may update one row at once and lose one of the updates, so results differ from run to run.

    subtle: the threads' steps overlap, so each reads weights that lack the other threads' step in flight, and
    a row or output weight that every batch updates would move `threads` times as far as one step moves it.
    So the steps are scaled as for one step over the `threads` batches together: the output layer by
    `1 / threads` (`sgd_step(concurrent=threads)`), the embedding rows by their expected count in
    `threads` batches (`FlatBatches(concurrent=threads)`; rare rows keep their whole step). Measured on the
    stand-in cycled 16x, test accuracy for seeds 0-2: unscaled 0.8625 / 0.8615 / 0.8470, scaled 0.8880 /
    0.8795 / 0.8820, one thread 0.8815 / 0.8785 / 0.8765.

    Args:
        batches: `FlatBatches(..., concurrent=threads)`'s batches.
        loss: `sgd_step`'s `class_weights` and `label_smoothing`.

    Returns:
        The batches' `stats` summed: float64 `(3,)` = loss sum, correct predictions, texts.
    """
    stats = [torch.zeros(3, dtype=torch.float64) for _ in range(threads)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(k, len(batches), threads):
                sgd_step(model, *batches[j], lr=lr_at(j), stats=stats[k], concurrent=threads, **loss)
        except BaseException as e:  # noqa: BLE001 - re-raised by the calling thread below
            errors.append(e)

    others = [threading.Thread(target=work, args=(k,), name=f"textpipe-hogwild-{k}") for k in range(1, threads)]
    for t in others:
        t.start()
    work(0)
    for t in others:
        t.join()
    if errors:
        raise errors[0]
    return torch.stack(stats).sum(0)


def _gather_all(ids, per_row, dW, db, B: int, *, pad_idx: int):
    """All ranks' sparse rows (concatenated in rank order) and summed dense gradients and batch sizes."""
    world = dist.get_world_size()
    dense = torch.cat([dW.flatten(), db, torch.tensor([float(B)], dtype=dW.dtype, device=dW.device)])
    dist.all_reduce(dense)
    size = torch.tensor([ids.numel()], device=ids.device)
    dist.all_reduce(size, op=dist.ReduceOp.MAX)
    m = int(size.item())  # subtle: all_gather needs equal shapes; padding rows are zeros on the pad row
    pad = m - ids.numel()
    ids_p = torch.cat([ids, ids.new_full((pad,), pad_idx)])
    rows_p = torch.cat([per_row, per_row.new_zeros((pad, per_row.shape[1]))])
    all_ids = [torch.empty_like(ids_p) for _ in range(world)]
    all_rows = [torch.empty_like(rows_p) for _ in range(world)]
    dist.all_gather(all_ids, ids_p)
    dist.all_gather(all_rows, rows_p)
    k = dW.numel()
    return (torch.cat(all_ids), torch.cat(all_rows), dense[:k].view_as(dW), dense[k:-1],
            float(dense[-1].item()))


class LRSchedule:
    """The fused step's learning rate: `lr * shape(step)`, as `LambdaLR` gives, with the same checkpoint role.

    Why not `torch.optim.SGD` + `LambdaLR`: the fused step needs no optimizer object, and the first
    `torch.optim` optimizer of a process imports `torch._dynamo` (and sympy): 0.5-2 s measured here, more
    than the whole default training run.

    Example:
        >>> sched = LRSchedule(2.0, lambda s: 1 - s / 4)
        >>> sched.step(); sched.get_last_lr()
        [1.5]
    """

    def __init__(self, lr: float, shape: Callable[[int], float]) -> None:
        self.base_lr, self.shape, self.last_epoch = float(lr), shape, 0  # last_epoch: steps done (LambdaLR's name)

    def get_last_lr(self) -> list[float]:
        return [self.lr_at(self.last_epoch)]

    def lr_at(self, step: int) -> float:
        """The learning rate of step number `step` (0-based)."""
        return self.base_lr * float(self.shape(step))

    def step(self) -> None:
        self.last_epoch += 1

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.base_lr, self.last_epoch = float(state["base_lr"]), int(state["last_epoch"])
