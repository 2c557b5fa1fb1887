"""Prints what this installation of jsma-fast was built with and which backends can run:
``python -m jsma_fast.info``."""

from __future__ import annotations

from typing import Any, Dict

from ._build import build_info


def format_build_info(info: Dict[str, Any]) -> str:
    width = max(len(key) for key in info)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in info.items())


def main() -> None:
    try:
        import torch  # noqa: F401  (reported, and sets the default thread count)
    except ImportError:
        pass
    from . import _openmp, _short_waits

    info = build_info()
    info["openmp_wait"] = _openmp.describe()
    info["openmp_wait_in_calls"] = _short_waits.describe()
    print(format_build_info(info))


if __name__ == "__main__":
    main()
