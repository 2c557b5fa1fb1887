"""attack_dataset in one process: the same rows and targets as direct attack calls on each
batch, results on disk equal to those in memory, resume, per-row random targets, Dataset
inputs, bounded merge, and clear errors."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.runner import COLUMNS, attack_dataset, iter_attack_dataset
from jsma_fast.targets import random_targets

N, CLASSES = 22, 4


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, CLASSES)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(N, 1, 4, 4, generator=g)
    y = torch.randint(0, CLASSES, (N,), generator=g)
    return model, x, y


class Pairs(torch.utils.data.Dataset):
    """A map-style Dataset of (x_i, y_i) with a NumPy image and a Python int label."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i].numpy(), int(self.y[i])


def _equal(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("targets", ["next", "all", "least_likely"])
def test_rows_equal_direct_attack_calls_on_each_batch(problem, targets):
    model, x, y = problem
    attack = JSMA(gamma=0.5)
    got = attack_dataset(
        model, (x, y), attack, targets, batch_size=5, keep_adv=True, progress=False
    ).columns
    for start in range(0, N, 5):
        part = attack(model, x[start : start + 5], targets, y=y[start : start + 5])
        rows = (got["source_index"] >= start) & (got["source_index"] < start + 5)
        for name in COLUMNS:
            want = getattr(part, name).numpy() + (start if name == "source_index" else 0)
            np.testing.assert_array_equal(got[name][rows], want, err_msg=name)
    per_source = CLASSES - 1 if targets == "all" else 1
    assert got["source_index"].tolist() == np.repeat(np.arange(N), per_source).tolist()
    with torch.no_grad():
        clean = model(x).argmax(1).numpy()
    np.testing.assert_array_equal(got["clean_predicted"], clean[got["source_index"]])


def test_random_targets_depend_on_the_row_only(problem):
    model, x, y = problem
    attack = JSMA(gamma=0.5)
    runs = [
        attack_dataset(model, (x, y), attack, "random", batch_size=b, progress=False).columns
        for b in (3, 7, N)
    ]
    for other in runs[1:]:
        np.testing.assert_array_equal(other["target"], runs[0]["target"])
    assert (runs[0]["target"] != y.numpy()).all()
    rows = torch.arange(10_000)
    t = random_targets(rows, torch.zeros(10_000, dtype=torch.int64), 5, seed=3)
    counts = np.bincount(t.numpy(), minlength=5)
    assert counts[0] == 0 and counts[1:].min() > 2300  # uniform over the 4 other classes
    assert not torch.equal(t, random_targets(rows, torch.zeros_like(rows), 5, seed=4))
    np.testing.assert_array_equal(
        random_targets(rows[5000:], torch.zeros(5000, dtype=torch.int64), 5, seed=3), t[5000:]
    )
    seeded = attack_dataset(
        model, (x, y), attack, "random", batch_size=5, seed=9, progress=False
    ).columns
    assert not np.array_equal(seeded["target"], runs[0]["target"])
    # One rule: JSMA's own "random" strategy draws the runner's targets for the same seed.
    direct = JSMA(gamma=0.5, seed=9)(model, x, "random", y=y).target
    np.testing.assert_array_equal(direct.numpy(), seeded["target"])


def test_results_on_disk_equal_memory_and_resume_computes_nothing(problem, tmp_path):
    model, x, y = problem
    attack = JSMA(gamma=0.5)
    memory = attack_dataset(
        model, (x, y), attack, "random", batch_size=4, keep_adv=True, progress=False
    )
    disk = attack_dataset(
        model, (x, y), attack, "random", batch_size=4, keep_adv=True, out=tmp_path, progress=False
    )
    _equal(disk.load(), memory.columns)
    assert disk.summary["data_set_rows_computed"] == N
    assert (
        disk.summary["success_rate_clean_correct"] == memory.summary["success_rate_clean_correct"]
    )
    assert (tmp_path / "summary.json").exists()
    assert len(list((tmp_path / "chunks" / "attack").glob("chunk-*.npz"))) == 6
    kwargs = dict(batch_size=4, keep_adv=True, out=tmp_path, progress=False)
    again = attack_dataset(model, (x, y), attack, "random", resume=True, **kwargs)
    assert again.summary["data_set_rows_computed"] == 0
    _equal(again.load(), memory.columns)
    shutil.rmtree(tmp_path)  # a fresh start in the same folder: delete it first
    fresh = attack_dataset(model, (x, y), attack, "random", **kwargs)
    assert fresh.summary["data_set_rows_computed"] == N
    _equal(fresh.load(), memory.columns)


def test_dataset_input_equals_tensors_and_streaming_equals_memory(problem):
    model, x, y = problem
    attack = JSMA(gamma=0.5)
    want = attack_dataset(model, (x, y), attack, "next", batch_size=6, progress=False).columns
    _equal(
        attack_dataset(model, Pairs(x, y), attack, "next", batch_size=6, progress=False).columns,
        want,
    )
    parts = list(iter_attack_dataset(model, (x.numpy(), y.numpy()), attack, "next", batch_size=6))
    assert [len(p["success"]) for p in parts] == [6, 6, 6, 4]
    _equal({k: np.concatenate([p[k] for p in parts]) for k in want}, want)
    assert "x_adv" not in want


def test_without_labels_the_clean_prediction_is_the_true_class(problem):
    model, x, _ = problem
    got = attack_dataset(
        model, (x, None), JSMA(gamma=0.5), "random", batch_size=8, progress=False
    ).columns
    np.testing.assert_array_equal(got["true_class"], got["clean_predicted"])
    assert (got["target"] != got["true_class"]).all()


def test_per_row_targets(problem):
    model, x, y = problem
    targets = (y + 1) % CLASSES
    got = attack_dataset(
        model, (x, y), JSMA(gamma=0.5), targets, batch_size=5, progress=False
    ).columns
    np.testing.assert_array_equal(got["target"], targets.numpy())


def test_callers_inputs_and_model_are_not_modified(problem, tmp_path):
    model, x, y = problem
    x0, y0, state = x.clone(), y.clone(), copy.deepcopy(model.state_dict())
    attack_dataset(
        model, (x, y), JSMA(gamma=0.5), "random", batch_size=5, out=tmp_path, progress=False
    )
    assert torch.equal(x, x0) and torch.equal(y, y0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(batch_size=0), ValueError, "batch_size must be an int >= 1, got 0"),
        (dict(batch_size=2.5), ValueError, "batch_size must be an int >= 1, got 2.5"),
        (dict(keep_adv="yes"), TypeError, "keep_adv must be True or False, got 'yes'"),
        (dict(seed=-1), ValueError, "seed must be an int in [0, 2**64), got -1"),
        (
            dict(targets=torch.zeros(3, dtype=torch.int64)),
            ValueError,
            "targets must be a strategy name, one int class, or (22,) int classes",
        ),
        (dict(targets=torch.zeros(N)), ValueError, "dtype torch.float32"),
        (
            dict(on_bad_chunk="ignore"),
            ValueError,
            "on_bad_chunk must be one of ('rerun', 'raise'), got 'ignore'",
        ),
    ],
)
def test_bad_arguments(problem, tmp_path, kwargs, error, words):
    model, x, y = problem
    kwargs = dict(kwargs)
    targets = kwargs.pop("targets", "next")
    with pytest.raises(error) as info:
        attack_dataset(
            model, (x, y), JSMA(gamma=0.5), targets, out=tmp_path / "o", progress=False, **kwargs
        )
    assert words in str(info.value)


@pytest.mark.parametrize(
    "dataset, error, words",
    [
        ([1, 2, 3], TypeError, "dataset must be a tuple (x, y) of tensors or a map-style"),
        ((torch.zeros(4, 3, dtype=torch.int64), None), ValueError, "floating-point tensor"),
        ((torch.zeros(4, 3), torch.zeros(5, dtype=torch.int64)), ValueError, "shape (4,)"),
        ((torch.zeros(0, 3), None), ValueError, "at least one row"),
    ],
)
def test_bad_datasets(problem, dataset, error, words):
    model = problem[0]
    with pytest.raises(error) as info:
        attack_dataset(model, dataset, JSMA(gamma=0.5), progress=False)
    assert words in str(info.value)


def test_out_that_is_a_file(problem, tmp_path):
    model, x, y = problem
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="out must be a directory, got the file"):
        attack_dataset(model, (x, y), JSMA(gamma=0.5), out=tmp_path / "f", progress=False)


def test_inconsistent_dataset_items_are_named(problem):
    model, x, y = problem

    class Ragged(Pairs):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            return (item[0][:, :2], item[1]) if i == 3 else item

    with pytest.raises(ValueError, match=r"dataset rows 0\.\.4 do not form a batch"):
        attack_dataset(model, Ragged(x, y), JSMA(gamma=0.5), batch_size=5, progress=False)


def test_rows_whose_true_class_is_the_target_are_skipped_and_counted(problem, tmp_path):
    model, x, y = problem
    y = y.clone()
    y[:5] = 3  # the whole first chunk
    y[7] = 3
    attack = JSMA(gamma=0.5)
    skipped = int((y == 3).sum())
    result = attack_dataset(
        model, (x, y), attack, 3, batch_size=5, keep_adv=True, out=tmp_path, progress=False
    )
    assert skipped > 5 and result.summary["rows_skipped_target_is_true_class"] == skipped
    assert result.summary["result_rows"] == N - skipped
    got = result.load()
    attacked = torch.nonzero(y != 3).flatten()
    assert got["source_index"].tolist() == attacked.tolist()
    want = attack(model, x[attacked], 3, y=y[attacked])
    for name in COLUMNS:
        value = getattr(want, name).numpy()
        value = attacked.numpy()[value] if name == "source_index" else value
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    with torch.no_grad():
        clean = model(x).argmax(1).numpy()
    np.testing.assert_array_equal(got["clean_predicted"], clean[attacked.numpy()])
    summary = (tmp_path / "summary.json").read_text()
    assert f'"rows_skipped_target_is_true_class": {skipped}' in summary
    # per-row targets, and without labels (the clean prediction is the true class)
    per_row = torch.where(torch.arange(N) % 2 == 0, y, (y + 1) % CLASSES)
    rows = attack_dataset(model, (x, y), attack, per_row, batch_size=5, progress=False)
    assert rows.columns["source_index"].tolist() == list(range(1, N, 2))
    assert rows.summary["rows_skipped_target_is_true_class"] == (N + 1) // 2
    unlabelled = attack_dataset(model, (x, None), attack, 1, batch_size=5, progress=False)
    assert unlabelled.summary["rows_skipped_target_is_true_class"] == int((clean == 1).sum())
    assert (unlabelled.columns["true_class"] != 1).all()
    strategy = attack_dataset(model, (x, y), attack, "next", batch_size=5, progress=False)
    assert strategy.summary["rows_skipped_target_is_true_class"] == 0
