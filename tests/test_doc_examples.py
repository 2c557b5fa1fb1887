"""Every code block of README.md and the Markdown files under docs/ runs as it stands.

Python blocks run, each in a fresh namespace that holds the placeholders the documentation
uses for the reader's own objects (:func:`_placeholders`: ``model``, ``images``, ``labels``,
``x``, ``y``, ``alpha``, ``beta``, ``domain``, ...), in a temporary working directory. A block
that cannot run here is marked, on the line before its opening fence, with
``<!-- doc-test: skip (reason) -->``; a block that takes more than a few seconds with
``<!-- doc-test: slow -->``. Shell blocks (installs, builds, long or multi-node runs) must be
marked skip with their reason: none is left unchecked without one.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Dict, List, NamedTuple

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKER = re.compile(r"<!--\s*doc-test:\s*(skip|slow)\b(.*?)-->")


class Block(NamedTuple):
    path: Path
    line: int
    lang: str
    code: str
    marker: str  # "", "skip" or "slow"
    reason: str


def blocks(path: Path) -> List[Block]:
    """The fenced code blocks of a Markdown file, with the marker before each."""
    found, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARKER.search(before)
        found.append(
            Block(
                path,
                i + 1,
                fence.group(1),
                "\n".join(lines[i + 1 : end]) + "\n",
                mark.group(1) if mark else "",
                mark.group(2).strip(" ()") if mark else "",
            )
        )
        i = end + 1
    return found


ALL = [b for f in FILES for b in blocks(f)]
PYTHON = [b for b in ALL if b.lang == "python"]


def _id(b: Block) -> str:
    return f"{b.path.relative_to(ROOT)}:{b.line}"


def _placeholders() -> Dict[str, object]:
    """The reader's own objects the examples name: a small CNN, a few images, derivatives."""
    from jsma_fast import JSMA
    from jsma_fast.mnist.models import LeNet

    torch.manual_seed(0)
    model = LeNet().eval()
    images = torch.rand(3, 1, 28, 28)
    labels = model(images).argmax(1)

    class MyDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int):
            return images[i], int(labels[i])

    return {
        "model": model,
        "build_model": LeNet,
        "MyDataset": MyDataset,
        "images": images,
        "labels": labels,
        "x": images,
        "y": labels,
        "other_x_adv": images.clone(),
        "attack": JSMA(gamma=0.05),
        "alpha": torch.randn(3, 784),
        "beta": torch.randn(3, 784),
        "domain": torch.ones(3, 784, dtype=torch.bool),
    }


def test_every_block_is_found_and_shell_blocks_are_marked():
    assert len(PYTHON) >= 8
    unmarked = [_id(b) for b in ALL if b.lang in ("bash", "sh") and b.marker != "skip"]
    assert not unmarked, f"shell blocks without <!-- doc-test: skip (reason) -->: {unmarked}"
    no_reason = [_id(b) for b in ALL if b.marker == "skip" and not b.reason]
    assert not no_reason, f"skipped blocks must say why: {no_reason}"


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, marks=[pytest.mark.slow] if b.marker == "slow" else [], id=_id(b))
        for b in PYTHON
    ],
)
def test_python_block_runs(block, tmp_path, monkeypatch, capsys):
    if block.marker == "skip":
        pytest.skip(block.reason)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_example__", **_placeholders()}
    with warnings.catch_warnings():  # a reader's warnings (e.g. torch.compile's) do not fail
        warnings.simplefilter("default")
        exec(compile(block.code, _id(block), "exec"), namespace)  # noqa: S102 (our own docs)
