"""distributed.py helpers without a process group (the 2-process DDP run is in tests/test_train.py).

Run: python -m pytest -q tests/test_distributed.py
"""
import pytest
import torch

from textpipe.core.distributed import cleanup, init_distributed, is_main, print0, unwrap


def test_helpers_outside_a_process_group(capsys):
    assert is_main()
    print0("hello")
    assert capsys.readouterr().out == "hello\n"
    cleanup()  # no process group: a no-op


def test_unwrap():
    model = torch.nn.Linear(2, 2)
    assert unwrap(model) is model
    assert unwrap(torch.nn.DataParallel(model)) is model


def test_init_outside_torchrun_names_the_variables(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match=r"RANK/LOCAL_RANK/WORLD_SIZE is not set.*torchrun --nproc_per_node"):
        init_distributed("cpu")


def test_weights_digest_is_bitwise():
    from textpipe.core.distributed import weights_digest

    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert weights_digest(a) == weights_digest(torch.nn.DataParallel(b))
    with torch.no_grad():
        b.bias[0] = torch.nextafter(b.bias[0], torch.tensor(1.0))  # one ulp
    assert weights_digest(a) != weights_digest(b)
