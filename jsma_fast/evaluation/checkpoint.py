"""Chunked, resumable storage of attack results.

Each stage (e.g. ``"increase"``) of a run is attacked in chunks of digits; every chunk is saved
as its own NPZ file, written to a temporary name and moved into place with ``os.replace``, so a
run killed at any moment (SIGTERM, Ctrl-C, power loss) leaves only complete chunks. A manifest
holds the run's configuration; resuming with a different configuration is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from .._atomic import write_atomic
from .columns import Columns


class ChunkStore:
    """Directory of completed chunks: ``<root>/<stage>/chunk-00000.npz``.

    Args:
        root: directory (created).
        config: JSON-serialisable configuration of the run (must match on resume).
        resume: keep completed chunks if the stored configuration equals ``config``;
            otherwise (False) every stored chunk is deleted and the run starts afresh.
    """

    MANIFEST = "manifest.json"

    def __init__(self, root: Path, config: Dict[str, Any], resume: bool) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        manifest = self.root / self.MANIFEST
        config = json.loads(json.dumps(config, sort_keys=True))
        if resume and manifest.exists():
            stored = json.loads(manifest.read_text())
            if stored != config:
                diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
                raise ValueError(
                    f"cannot resume in {str(self.root)!r}: the stored run used a different "
                    f"configuration (differs in {diff}); run without --resume to start afresh"
                )
        else:
            for old in self.root.glob("*/chunk-*.npz"):
                old.unlink()
            _write_atomic(manifest, json.dumps(config, sort_keys=True, indent=1).encode())
        for tmp in self.root.glob("*/.*.tmp"):  # left by a hard kill (SIGKILL)
            tmp.unlink()

    def path(self, stage: str, index: int) -> Path:
        return self.root / stage / f"chunk-{index:05d}.npz"

    def load(self, stage: str, index: int) -> Optional[Columns]:
        """The stored chunk, or None when it has not been completed."""
        p = self.path(stage, index)
        if not p.exists():
            return None
        with np.load(p) as data:
            return {k: data[k] for k in data.files}

    def save(self, stage: str, index: int, columns: Columns) -> None:
        """Stores a completed chunk atomically."""
        p = self.path(stage, index)
        p.parent.mkdir(parents=True, exist_ok=True)
        import io

        buf = io.BytesIO()
        np.savez(buf, **columns)
        _write_atomic(p, buf.getvalue())


def _write_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))
