"""Writing one script's section of ``bench/RESULTS.md`` without touching the others.

Each benchmark script owns the text between its two HTML comment markers
(``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``); everything outside them is kept as is.
"""

from __future__ import annotations

from pathlib import Path

#: The results file the scripts write their sections into.
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

HEADER = """# jsma-fast benchmark results

Each section below is written by the benchmark script it names, between HTML comment
markers; rerun the script to update its section. How to run them: `bench/README.md`.
"""


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` set to ``body`` (appended when it has no markers).

    Raises:
        ValueError: when the markers are present but not exactly once each, in order.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{body.strip()}\n{end}"
    n_begin, n_end = text.count(begin), text.count(end)
    if n_begin == 0 and n_end == 0:
        return text.rstrip("\n") + "\n\n" + section + "\n"
    start, stop = text.find(begin), text.find(end)
    if n_begin != 1 or n_end != 1 or stop < start:
        raise ValueError(f"markers of section {name!r} are not one {begin} before one {end}")
    return text[:start] + section + text[stop + len(end) :]


def write_section(path: Path, name: str, body: str) -> None:
    """Updates the section ``name`` of the Markdown file ``path``, creating the file with a
    short header when it does not exist."""
    text = path.read_text() if path.exists() else HEADER
    path.write_text(replace_section(text, name, body))
