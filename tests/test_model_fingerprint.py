"""A resume checks what the model computes, not its name: a lambda or function whose model or
preprocessing changed is refused; a model whose outputs are random cannot be checked and is
refused unless the caller names it (``model_fingerprint=`` / ``--model-fingerprint``); the
probe leaves the model as it was."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.cli import main
from jsma_fast.runner import ChunkError, attack_dataset
from jsma_fast.runner.fingerprint import ModelUnverifiable, model_fingerprint

N = 12


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4)).eval()


NET = _net()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(N, 1, 4, 4, generator=g), torch.randint(0, 4, (N,), generator=g)


def _interrupted_run(model, out, **kwargs):
    """A finished run with its last chunk deleted, as a run killed before its last chunk."""
    x, y = _data()
    attack_dataset(model, (x, y), JSMA(gamma=0.3), out=out, batch_size=4, progress=False, **kwargs)
    (out / "chunks" / "attack" / "chunk-00002.npz").unlink()
    (out / "results.npz").unlink()


def _resume(model, out, **kwargs):
    x, y = _data()
    return attack_dataset(
        model, (x, y), JSMA(gamma=0.3), out=out, batch_size=4, resume=True, progress=False, **kwargs
    )


def scaled(z):
    return NET(z * 0.5)


def test_a_lambda_whose_computation_changed_is_refused(tmp_path):
    net = _net()
    _interrupted_run(lambda z: net(z), tmp_path)
    with pytest.raises(ChunkError, match=r"differs in \['model'\]"):
        _resume(lambda z: net(z * 0.5), tmp_path)  # same name, "<lambda>"
    assert _resume(lambda z: net(z), tmp_path).summary["data_set_rows_computed"] == 4


def test_a_function_whose_global_model_changed_is_refused(tmp_path):
    _interrupted_run(scaled, tmp_path)
    state = copy.deepcopy(NET.state_dict())
    try:
        with torch.no_grad():
            NET[3].bias.add_(0.25)
        with pytest.raises(ChunkError, match=r"differs in \['model'\]"):
            _resume(scaled, tmp_path)
    finally:
        NET.load_state_dict(state)
    assert _resume(scaled, tmp_path).summary["data_set_rows_computed"] == 4


def test_parameters_held_in_a_closure_count_even_when_the_probe_does_not_see_them():
    net = _net()
    net.unused = nn.Parameter(torch.zeros(3))  # not used by forward: outputs unchanged
    model = (lambda m: lambda z: m(z))(net)
    probe = _data()[0][:2]
    before = model_fingerprint(model, probe)
    with torch.no_grad():
        net.unused.add_(1)
    assert before is not None and model_fingerprint(model, probe) != before
    bound = model_fingerprint(net.forward, probe)
    assert bound is not None and bound != model_fingerprint(_net().forward, probe)


def noisy(z):
    return NET(z) + 1e-3 * torch.randn(z.shape[0], 4)


def test_a_random_model_resumes_only_when_the_caller_names_it(tmp_path):
    _interrupted_run(noisy, tmp_path / "a")
    with pytest.raises(ModelUnverifiable) as info:
        _resume(noisy, tmp_path / "a")
    message = str(info.value)
    assert "different outputs in two calls" in message and "model_fingerprint=" in message
    assert "--" not in message
    _interrupted_run(noisy, tmp_path / "b", model_fingerprint="noisy net v1")
    with pytest.raises(ChunkError, match=r"differs in \['model'\]"):
        _resume(noisy, tmp_path / "b", model_fingerprint="noisy net v2")
    again = _resume(noisy, tmp_path / "b", model_fingerprint="noisy net v1")
    assert again.summary["data_set_rows_computed"] == 4


def test_the_probe_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Linear(8, 4))
    model.train()  # its running statistics would change in a forward pass
    state = copy.deepcopy(model.state_dict())
    threads = torch.get_num_threads()
    assert model_fingerprint(model, _data()[0][:2]) is not None
    assert model.training and torch.get_num_threads() == threads
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())
    x = _data()[0]
    x0 = x.clone()
    model_fingerprint(lambda z: model(z.mul_(2)), x[:2])  # a model that changes its input
    assert torch.equal(x, x0)


NOISY_NET = """
import torch
from torch import nn


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4))

    def forward(self, z):
        return self.net(z) + 1e-3 * torch.randn(z.shape[0], 4)


def build():
    return Noisy()
"""


def test_cli_names_model_fingerprint_option(tmp_path, capsys):
    (tmp_path / "noisy.py").write_text(NOISY_NET)
    x, y = _data()
    np.savez(tmp_path / "data.npz", x=x.numpy(), y=y.numpy())
    args = [
        "attack",
        "--model",
        f"{tmp_path / 'noisy.py'}:build",
        "--data",
        str(tmp_path / "data.npz"),
        "--batch-size",
        "4",
        "--gamma",
        "0.3",
        "--no-progress",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(args) == 0
    (tmp_path / "r" / "chunks" / "attack" / "chunk-00001.npz").unlink()
    capsys.readouterr()
    assert main(args + ["--resume"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--model-fingerprint TEXT" in line and "model_fingerprint=" not in line, line
