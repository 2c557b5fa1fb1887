"""``import jsma_fast`` needs only NumPy: the searches work without torch, and the attack is
imported (with torch) when first used."""

from __future__ import annotations

import subprocess
import sys

import pytest

WITHOUT_TORCH = r"""
import sys
sys.modules["torch"] = None  # any "import torch" now raises ImportError
import numpy as np
import jsma_fast
alpha = np.array([[0.5, -0.1, 0.3]], dtype=np.float32)
beta = np.array([[-0.2, 0.4, -0.6]], dtype=np.float32)
sel = jsma_fast.select_pairs(alpha, beta)
assert (int(sel.p[0]), int(sel.q[0]), bool(sel.valid[0])) == (0, 2, True)
assert int(jsma_fast.select_top2(alpha).q[0]) == 2
assert jsma_fast.select_features(alpha, beta).index.shape == (1,)
assert "JSMA" in dir(jsma_fast)
try:
    jsma_fast.JSMA
except ImportError:
    print("attack needs torch")
"""


def test_searches_work_without_torch(tmp_path):
    # Run outside the source tree, so that the installed package (with its _C) is imported.
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("attack needs torch")


def test_the_attack_is_imported_on_first_use():
    import jsma_fast
    from jsma_fast import JSMA
    from jsma_fast.attack import JSMA as direct

    assert JSMA is direct is jsma_fast.JSMA
    assert jsma_fast.AttackResult.__name__ == "AttackResult"
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = jsma_fast.no_such_name


def _imported_modules(path) -> set:
    """The absolute names of the jsma_fast modules ``path`` imports (relative imports
    resolved against its package)."""
    import ast

    package = path.parent.relative_to(path.parents[2]).as_posix().replace("/", ".")
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base) if node.level else ""
            full = ".".join(p for p in (module, node.module or "") if p)
            names.add(full)
            names.update(f"{full}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "layer, above",
    [("evaluation", ("jsma_fast.cli",)), ("runner", ("jsma_fast.cli", "jsma_fast.evaluation"))],
)
def test_layers_do_not_import_the_layers_above(layer, above):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "jsma_fast" / layer
    found = {
        path.name: sorted(n for n in _imported_modules(path) if n.startswith(above))
        for path in sorted(root.glob("*.py"))
    }
    assert {name: names for name, names in found.items() if names} == {}
