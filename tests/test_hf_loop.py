"""`--model hf:DIR` goes through the same loop as every other model (issue 19, phase 2): the attention mask
comes from the batch's lengths (not from guessing trailing pads), `--accumulate 2` gives the batch's gradient,
the CUDA out-of-memory backoff (injected) halves the micro-batch and goes on, and the defaults are AdamW with a
linear warmup. Exact resume: tests/test_hf.py. The tiny random BERT of tests/test_hf.py, offline.

Run: python -m pytest -q tests/test_hf_loop.py          (about 10 s on 2 CPU cores)
"""
import json

import pytest
import torch

pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
pytest.importorskip("tokenizers", reason="the hf extra (tokenizers) is not installed")

from textpipe.models import build_model, forward, model_config, takes_lengths  # noqa: E402
from textpipe.models.hf import HFClassifier  # noqa: E402
from textpipe.train import TrainConfig, main  # noqa: E402
from textpipe.train.config import settle_defaults  # noqa: E402
from textpipe.train.setup import make_optimizer  # noqa: E402
from textpipe.train.steps import StepOptions, train_step  # noqa: E402
from test_hf import _args, bert, data_dir  # noqa: E402,F401  (module fixtures: the tiny BERT, the CSVs)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _model(src, **kw):
    torch.manual_seed(0)
    return build_model(model_config(f"hf:{src}", kw, vocab_size=400, num_classes=4)).eval()  # eval: no dropout


def test_attention_mask_comes_from_the_lengths(bert):
    model = _model(bert)
    assert takes_lengths(model) and takes_lengths(torch.nn.DataParallel(model))
    # row 0 ends in a real id 0 ([UNK] of the WordPiece tokenizer, also the collate's pad id): its length says
    # it is a token; a mask guessed from trailing pads would drop it
    ids = torch.tensor([[2, 17, 0, 0, 0], [2, 20, 21, 22, 3]])
    lengths = torch.tensor([3, 5])
    with torch.no_grad():
        batch = forward(model, ids, lengths)
        alone = model.net(input_ids=ids[:1, :3]).logits
        guessed = model(ids)  # no lengths: the trailing-pad guess (length 2 for row 0)
    torch.testing.assert_close(batch[0], alone[0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(guessed[0], alone[0], atol=1e-5)


def test_two_micro_batches_give_the_gradient_of_the_whole_batch(bert):
    g = torch.Generator().manual_seed(0)
    ids, lengths = torch.randint(5, 400, (8, 12), generator=g), torch.randint(2, 13, (8,), generator=g)
    y = torch.randint(0, 4, (8,), generator=g)
    ids[torch.arange(12) >= lengths.unsqueeze(1)] = 0
    grads = []
    for accumulate in (1, 2):
        model = _model(bert)
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
        train_step(model, opt, ids, lengths, y, StepOptions(accumulate=accumulate))
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_out_of_memory_mid_run_halves_the_micro_batch_and_goes_on(bert, data_dir, tmp_path, monkeypatch, capsys):
    real_forward, calls = HFClassifier.forward, []

    def oom_once(self, ids, lengths=None):
        assert lengths is not None  # the loop passes the lengths
        calls.append(ids.shape[0])
        if self.training and len(calls) == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real_forward(self, ids, lengths)

    monkeypatch.setattr(HFClassifier, "forward", oom_once)
    assert main(_args(data_dir, bert, tmp_path, "--epochs", "1")) == 0
    out = capsys.readouterr().out
    assert "out of memory at step 3 with micro-batches of 16 texts: retrying with 8 (2 micro-batches" in out
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 9  # 144 rows / 16, none lost
    assert calls[2:5] == [16, 8, 8]


def test_defaults_are_adamw_with_warmup_and_frozen_weights_stay_out(bert):
    cfg = settle_defaults(TrainConfig(model=f"hf:{bert}", freeze="encoder"))
    assert (cfg.optimizer, cfg.lr, cfg.warmup, cfg.epochs, cfg.batch_size) == ("adamw", 3e-5, 0.1, 3, 32)
    model = _model(bert, freeze="encoder")
    opt, sched = make_optimizer(cfg, model, total_steps=20)  # 2 warmup steps, then linear decay to 0
    assert isinstance(opt, torch.optim.AdamW)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == \
        {id(p) for p in model.parameters() if p.requires_grad} == {id(p) for p in model.net.classifier.parameters()}
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.5e-5, 3e-5, 3e-5, 3e-5 * 17 / 18])


def test_freeze_all_but_more_layers_than_the_model_has_is_an_error(bert):
    with pytest.raises(ValueError, match="has 2 layers, so at most all-but-2"):
        _model(bert, freeze="all-but-3")
