"""The chunk store trusts only chunks that identify themselves: copied, truncated, damaged or
foreign chunks and broken manifests are detected, named, and recomputed or refused; a resumed
run of attack_dataset then equals an uninterrupted one (``jsma-fast reproduce``:
test_reproduce_resume.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_same_arrays, rewrite_npz
from torch import nn

from jsma_fast import JSMA
from jsma_fast.runner import ChunkError, ChunkStore, attack_dataset

CONFIG = {"digits": 6, "gamma": 0.1}


def _columns(start: int, stop: int) -> dict:
    rows = stop - start
    return {
        "source_index": np.arange(start, stop, dtype=np.int64),
        "success": np.arange(rows) % 2 == 0,
        "x_adv": np.linspace(0, 1, rows * 6, dtype=np.float32).reshape(rows, 2, 3) + start,
    }


@pytest.fixture
def store(tmp_path):
    s = ChunkStore(tmp_path, CONFIG, resume=False)
    for i in range(3):
        s.save("increase", i, _columns(4 * i, 4 * i + 4), span=(4 * i, 4 * i + 4))
    return s


def _reopen(root: Path, on_bad: str = "raise") -> ChunkStore:
    return ChunkStore(root, CONFIG, resume=True, on_bad=on_bad)


def test_good_chunks_load_with_their_identity(store, tmp_path):
    again = _reopen(tmp_path)
    for i in range(3):
        cols = again.load("increase", i, span=(4 * i, 4 * i + 4))
        assert cols["source_index"].tolist() == list(range(4 * i, 4 * i + 4))
        np.testing.assert_array_equal(cols["x_adv"], _columns(4 * i, 4 * i + 4)["x_adv"])
    assert again.load("increase", 3, span=(12, 16)) is None
    assert again.indices("increase") == [0, 1, 2]


def _damage_copy(tmp_path):
    chunks = tmp_path / "increase"
    shutil.copyfile(chunks / "chunk-00001.npz", chunks / "chunk-00000.npz")


def _damage_truncate_column(tmp_path):
    rewrite_npz(
        tmp_path / "increase" / "chunk-00000.npz", lambda a: a.update(success=a["success"][:2])
    )


def _damage_drop_column(tmp_path):
    rewrite_npz(tmp_path / "increase" / "chunk-00000.npz", lambda a: a.pop("success"))


def _damage_values(tmp_path):
    rewrite_npz(
        tmp_path / "increase" / "chunk-00000.npz", lambda a: a.update(success=~a["success"])
    )


def _damage_truncate_file(tmp_path):
    p = tmp_path / "increase" / "chunk-00000.npz"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _damage_random_bytes(tmp_path):
    (tmp_path / "increase" / "chunk-00000.npz").write_bytes(np.random.default_rng(0).bytes(900))


def _damage_empty(tmp_path):
    (tmp_path / "increase" / "chunk-00000.npz").write_bytes(b"")


def _damage_no_identity(tmp_path):
    np.savez(tmp_path / "increase" / "chunk-00000.npz", **_columns(0, 4))


def _damage_meta_rows(tmp_path):
    def change(a):
        meta = json.loads(bytes(a["__chunk__"]))
        meta["rows"] = 2
        meta["columns"] = {k: [d, [2] + shape[1:]] for k, (d, shape) in meta["columns"].items()}
        a["__chunk__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        a.update({k: v[:2] for k, v in a.items() if k != "__chunk__"})

    rewrite_npz(tmp_path / "increase" / "chunk-00000.npz", change)


def _damage_other_run(tmp_path):
    other = tmp_path.parent / (tmp_path.name + "-other")
    s = ChunkStore(other, {"digits": 7}, resume=False)
    s.save("increase", 0, _columns(0, 4), span=(0, 4))
    shutil.copyfile(
        other / "increase" / "chunk-00000.npz", tmp_path / "increase" / "chunk-00000.npz"
    )


DAMAGES = {
    "copied over another": (_damage_copy, "is chunk 1"),
    "column truncated": (_damage_truncate_column, "column 'success' has 2 rows"),
    "column missing": (_damage_drop_column, "missing the column"),
    "values changed": (_damage_values, "checksum"),
    "file truncated": (_damage_truncate_file, "not a readable NPZ"),
    "random bytes": (_damage_random_bytes, "not a readable NPZ"),
    "empty file": (_damage_empty, "not a readable NPZ"),
    "no identification": (_damage_no_identity, "no identification"),
    "rows rewritten with the identity": (_damage_meta_rows, "checksum"),
    "from another run": (_damage_other_run, "another configuration"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_bad_chunk_is_refused_with_its_file_named(store, tmp_path, damage):
    apply, words = DAMAGES[damage]
    apply(tmp_path)
    again = _reopen(tmp_path)
    with pytest.raises(ChunkError) as info:
        again.load("increase", 0, span=(0, 4))
    message = str(info.value)
    assert "chunk-00000.npz" in message and words in message, message
    assert "--resume" in message  # says what to do
    assert again.load("increase", 2, span=(8, 12)) is not None  # the others are still good


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_bad_chunk_is_deleted_for_a_rerun(store, tmp_path, damage):
    DAMAGES[damage][0](tmp_path)
    again = _reopen(tmp_path, on_bad="rerun")
    with pytest.warns(RuntimeWarning, match="chunk-00000.npz.*computed again"):
        assert again.load("increase", 0, span=(0, 4)) is None
    assert not again.path("increase", 0).exists()
    assert again.load("increase", 0, span=(0, 4)) is None  # simply missing now, no warning


def test_span_and_required_columns_are_checked(store, tmp_path):
    again = _reopen(tmp_path)
    with pytest.raises(ChunkError, match=r"covers input rows \[4, 8\], expected \[4, 9\]"):
        again.load("increase", 1, span=(4, 9))
    with pytest.raises(ChunkError, match=r"missing the column\(s\) \['l0'\]"):
        again.load("increase", 1, span=(4, 8), columns=["l0", "success"])
    with pytest.raises(ChunkError, match="leaves its input rows"):
        bad = _columns(0, 4)
        bad["source_index"] = bad["source_index"] + 100
        again.save("increase", 0, bad, span=(0, 4))
        again.load("increase", 0, span=(0, 4))


def test_received_bytes_are_checked_before_they_are_stored(store, tmp_path):
    again = _reopen(tmp_path)
    data = again.read_raw("increase", 1)
    with pytest.raises(ChunkError, match="chunk 0 of 'increase' received"):
        again.write_raw("increase", 0, data, span=(0, 4))
    with pytest.raises(ChunkError, match="not a readable NPZ"):
        again.write_raw("increase", 3, data[:100], span=(12, 16))
    assert not again.path("increase", 3).exists()


MANIFESTS = {
    "broken JSON": (b'{"kind": "jsma-fast chunk', "damaged"),
    "empty": (b"", "damaged"),
    "not UTF-8": (b"\xff\xfe\x00", "damaged"),
    "a list": (b"[1, 2]", "not a manifest"),
    "a string": (b'"config"', "not a manifest"),
    "an older version's": (json.dumps(CONFIG).encode(), "older version"),
}


@pytest.mark.parametrize("name", MANIFESTS, ids=list(MANIFESTS))
def test_a_damaged_manifest_refuses_the_resume_with_a_clear_message(store, tmp_path, name):
    content, words = MANIFESTS[name]
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(ChunkError) as info:
        _reopen(tmp_path)
    message = str(info.value)
    assert "manifest.json" in message and words in message and "without --resume" in message
    ChunkStore(tmp_path, CONFIG, resume=False)  # a fresh run replaces it
    assert not list(tmp_path.glob("*/chunk-*.npz"))


@pytest.mark.parametrize(
    "field, value",
    [
        ("config", [1]),
        ("config_hash", 5),
        ("format", 1),
        ("token", None),
        ("config", {"digits": 5}),
    ],
)
def test_wrong_typed_or_edited_manifest_fields(store, tmp_path, field, value):
    path = tmp_path / "manifest.json"
    body = json.loads(path.read_text())
    body[field] = value
    path.write_text(json.dumps(body))
    with pytest.raises(ChunkError, match="manifest.json"):
        _reopen(tmp_path)


def test_missing_manifest_keeps_only_chunks_of_this_configuration(store, tmp_path):
    (tmp_path / "manifest.json").unlink()
    again = _reopen(tmp_path)
    assert again.load("increase", 1, span=(4, 8)) is not None
    (tmp_path / "manifest.json").unlink()
    other = ChunkStore(tmp_path, {"digits": 9}, resume=True, on_bad="raise")
    with pytest.raises(ChunkError, match="another configuration"):
        other.load("increase", 1, span=(4, 8))


def test_root_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ChunkError, match="is a file"):
        ChunkStore(tmp_path / "f", CONFIG, resume=True)


def test_save_rejects_bad_columns(tmp_path):
    s = ChunkStore(tmp_path, CONFIG, resume=False)
    with pytest.raises(ValueError, match="same number of rows"):
        s.save("a", 0, {"x": np.zeros(3), "y": np.zeros(2)})
    with pytest.raises(ValueError, match="array of numbers"):
        s.save("a", 0, {"x": np.array([object()])})
    with pytest.raises(ValueError, match="column names"):
        s.save("a", 0, {"__chunk__": np.zeros(3)})


# ----------------------------------------------------------------------------- attack_dataset


def _problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4)).eval()
    g = torch.Generator().manual_seed(1)
    return model, torch.rand(20, 1, 4, 4, generator=g), torch.randint(0, 4, (20,), generator=g)


def test_attack_dataset_resume_recomputes_copied_and_truncated_chunks(tmp_path):
    model, x, y = _problem()
    attack = JSMA(gamma=0.5)
    kwargs = dict(batch_size=4, progress=False, keep_adv=True)
    reference = attack_dataset(model, (x, y), attack, "random", **kwargs).columns
    out = tmp_path / "run"
    attack_dataset(model, (x, y), attack, "random", out=out, **kwargs)
    chunks = out / "chunks" / "attack"
    shutil.copyfile(chunks / "chunk-00003.npz", chunks / "chunk-00001.npz")
    rewrite_npz(chunks / "chunk-00002.npz", lambda a: a.update(l0=a["l0"][:1]))
    with pytest.warns(RuntimeWarning) as caught:
        again = attack_dataset(model, (x, y), attack, "random", out=out, resume=True, **kwargs)
    named = " ".join(str(w.message) for w in caught)
    assert "chunk-00001.npz" in named and "chunk-00002.npz" in named
    assert again.summary["data_set_rows_computed"] == 8  # only the two bad chunks
    assert_same_arrays(again.load(), reference)


def test_attack_dataset_refuses_to_resume_another_configuration(tmp_path):
    model, x, y = _problem()
    kwargs = dict(out=tmp_path, progress=False)
    attack_dataset(model, (x, y), JSMA(gamma=0.5), batch_size=4, **kwargs)
    kwargs["resume"] = True
    with pytest.raises(ChunkError, match=r"configuration \(differs in \['batch_size'\]\)"):
        attack_dataset(model, (x, y), JSMA(gamma=0.5), batch_size=5, **kwargs)
    with pytest.raises(ChunkError, match=r"differs in \['attack'\]"):
        attack_dataset(model, (x, y), JSMA(gamma=0.4), batch_size=4, **kwargs)
    with pytest.raises(ChunkError, match=r"differs in \['data'\]"):
        attack_dataset(model, (x * 0.5, y), JSMA(gamma=0.5), batch_size=4, **kwargs)
