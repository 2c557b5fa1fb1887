"""The library's code keeps a readable shape: no function or method under ``jsma_fast/`` is
longer than :data:`MAX_LINES` lines, from its ``def`` to its last line (decorators excluded,
docstring included). Nested functions count on their own, and inside their parent."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Tuple

PACKAGE = Path(__file__).resolve().parents[1] / "jsma_fast"
MAX_LINES = 60

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def function_lengths(source: str) -> Iterator[Tuple[str, int, int]]:
    """``(qualified name, line of the def, lines from the def to the last line)`` of every
    function and method in ``source``, nested ones included."""

    def visit(node: ast.AST, prefix: str) -> Iterator[Tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*_FUNCTIONS, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if isinstance(child, _FUNCTIONS):
                    yield name, child.lineno, child.end_lineno - child.lineno + 1
                yield from visit(child, f"{name}.")
            else:
                yield from visit(child, prefix)

    yield from visit(ast.parse(source), "")


def long_functions() -> List[Tuple[str, int, int]]:
    """``(path::name, line, length)`` of every function under ``jsma_fast/`` longer than
    MAX_LINES."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent).as_posix()
        for name, line, length in function_lengths(path.read_text(encoding="utf-8")):
            if length > MAX_LINES:
                found.append((f"{where}::{name}", line, length))
    return found


def test_the_measure_counts_from_def_to_last_line():
    def body(indent: int) -> str:
        return "\n".join(f"{' ' * indent}x{i} = {i}" for i in range(59))

    source = (
        f"@decorator\n@another\ndef sixty():\n{body(4)}\n\n"
        f"class K:\n    def method(self):\n{body(8)}\n"
        f"        def inner():\n            return 1\n        pass\n"
    )
    lengths = {name: length for name, _, length in function_lengths(source)}
    assert lengths == {"sixty": 60, "K.method": 63, "K.method.inner": 2}


def test_the_package_is_found():
    assert (PACKAGE / "__init__.py").is_file()
    assert any(length > 0 for _, _, length in function_lengths((PACKAGE / "cli.py").read_text()))


def test_no_function_is_longer_than_the_limit():
    found = [f"{name} (line {line}): {length} lines" for name, line, length in long_functions()]
    assert not found, f"functions longer than {MAX_LINES} lines (split them):\n  " + "\n  ".join(
        found
    )
