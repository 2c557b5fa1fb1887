"""JSMA on tabular data: scikit-learn's breast-cancer set (569 tumours, 30 real-valued
measurements, benign or malignant), a small MLP, per-feature bounds from the data, and
features the attacker may not change.

    python -m jsma_fast.examples.tabular [--figure tabular.png]

The model standardises its inputs (per-feature mean and std of the training rows), so the
attack runs in the features' own units with ``normalization=(mean, std)``. Each feature may
move within the range the training rows span (``clip_min`` / ``clip_max`` per feature); with
theta = +1 in range units a changed feature lands on one of its two bounds, a value seen in the
data. The ten "standard error" columns are immutable here (``mask``), as if recorded by a
process the attacker cannot reach. Strength is measured on the test rows the model classifies
correctly; the others are counted apart.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..attack import JSMA
from ..result import AttackResult

#: Attacks compared: name -> JSMA options. The maximal variant moves each feature up or down.
ATTACKS: Dict[str, Dict] = {
    "jsma, theta +1": dict(variant="jsma", theta=1.0),
    "jsma, theta -1": dict(variant="jsma", theta=-1.0),
    "tjsma, theta +1": dict(variant="tjsma", theta=1.0),
    "maximal": dict(variant="maximal", theta=1.0),
}
GAMMA = 0.2  # at most 6 of the 30 features


@dataclass
class Table:
    """The data, split, and what the attack may do with it."""

    x_train: torch.Tensor  #: (n, 30) float32
    y_train: torch.Tensor  #: (n,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    names: List[str]  #: the 30 feature names
    lower: torch.Tensor  #: (30,) smallest training value per feature
    upper: torch.Tensor  #: (30,) largest
    mutable: torch.Tensor  #: (30,) bool, the features the attacker may change


def load_table(seed: int = 0) -> Table:
    """The breast-cancer set, split 70 / 30 (stratified, ``seed``), with per-feature bounds
    from the training rows (test values beyond them are clipped in) and the standard-error
    columns immutable."""
    try:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ImportError(
            "the tabular example needs scikit-learn: pip install scikit-learn"
        ) from None
    data = load_breast_cancer()
    split = train_test_split(
        data.data.astype(np.float32),
        data.target,
        test_size=0.3,
        random_state=seed,
        stratify=data.target,
    )
    x_train, x_test, y_train, y_test = (torch.from_numpy(np.asarray(a)) for a in split)
    lower, upper = x_train.min(dim=0).values, x_train.max(dim=0).values
    names = [str(n) for n in data.feature_names]
    mutable = torch.tensor([not n.endswith(" error") for n in names])
    return Table(
        x_train,
        y_train.long(),
        torch.maximum(torch.minimum(x_test, upper), lower),
        y_test.long(),
        names,
        lower,
        upper,
        mutable,
    )


def train_mlp(table: Table, seed: int = 0, epochs: int = 300) -> Tuple[nn.Module, Tuple]:
    """A 30-32-32-2 MLP trained on standardised features (full batch, Adam); returns it and
    its normalisation ``(mean, std)``."""
    mean, std = table.x_train.mean(dim=0), table.x_train.std(dim=0)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    z = (table.x_train - mean) / std
    for _ in range(epochs):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(z), table.y_train).backward()
        optimiser.step()
    return model.eval(), (mean.tolist(), std.tolist())


def attack(
    table: Table,
    model: nn.Module,
    normalization: Tuple,
    name: str,
    masked: bool,
    gamma: float = GAMMA,
    rows: Optional[torch.Tensor] = None,
) -> AttackResult:
    """One of :data:`ATTACKS`, untargeted, on the test rows ``rows`` (default: every row
    the model classifies correctly)."""
    x, y = table.x_test, table.y_test
    if rows is not None:
        x, y = x[rows], y[rows]
    jsma = JSMA(
        **ATTACKS[name],
        gamma=gamma,
        clip_min=table.lower,
        clip_max=table.upper,
        normalization=normalization,
    )
    return jsma(model, x, "untargeted", y=y, mask=table.mutable if masked else None)


def correct_rows(table: Table, model: nn.Module, normalization: Tuple) -> torch.Tensor:
    """(n,) bool: the test rows the model classifies correctly."""
    mean, std = (torch.tensor(v) for v in normalization)
    with torch.no_grad():
        return model((table.x_test - mean) / std).argmax(dim=1) == table.y_test


def run(seed: int = 0) -> Dict:
    """Every attack with and without the immutable columns; returns the figures."""
    table = load_table(seed)
    model, normalization = train_mlp(table, seed)
    correct = correct_rows(table, model, normalization)
    results = {}
    for name in ATTACKS:
        for masked in (False, True):
            results[name, masked] = attack(table, model, normalization, name, masked, rows=correct)
    return dict(
        table=table, model=model, normalization=normalization, correct=correct, results=results
    )


def report(figures: Dict) -> str:
    """The results as a Markdown table."""
    correct = figures["correct"]
    lines = [
        f"Test rows: {correct.numel()}, classified correctly: {int(correct.sum())} "
        f"({correct.float().mean():.1%}); the {int((~correct).sum())} others are left out.",
        "",
        "| attack | immutable error columns | success | mean features changed | max |",
        "|---|---|---:|---:|---:|",
    ]
    for (name, masked), r in figures["results"].items():
        ok = r.success
        mean = r.l0[ok].float().mean().item() if ok.any() else float("nan")
        top = int(r.l0[ok].max()) if ok.any() else 0
        lines.append(
            f"| {name} | {'yes' if masked else 'no'} | {ok.float().mean():.1%} | {mean:.2f} | "
            f"{top} |"
        )
    return "\n".join(lines)


def plot(figures: Dict, path: str) -> None:
    """How often each feature changes in the successful rows of the maximal variant, with and
    without the immutable columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = figures["table"]
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for ax, masked in zip(axes, (False, True)):
        r = figures["results"]["maximal", masked]
        x = table.x_test[figures["correct"]]
        changed = (r.x_adv != x)[r.success]
        up = ((r.x_adv > x)[r.success]).float().mean(dim=0) if changed.numel() else torch.zeros(30)
        down = (
            ((r.x_adv < x)[r.success]).float().mean(dim=0) if changed.numel() else torch.zeros(30)
        )
        ax.bar(range(30), up.numpy(), color="tab:red", label="raised to its largest value")
        ax.bar(
            range(30),
            down.numpy(),
            bottom=up.numpy(),
            color="tab:blue",
            label="lowered to its smallest value",
        )
        for i in np.flatnonzero(~table.mutable.numpy()) if masked else []:
            ax.axvspan(i - 0.5, i + 0.5, color="0.85", zorder=0)
        title = "error columns immutable (grey)" if masked else "every feature may change"
        ax.set_title(
            f"maximal variant, {title}: success {r.success.float().mean():.0%}, "
            f"mean {r.l0[r.success].float().mean():.2f} features changed"
        )
        ax.set_ylabel("fraction of successful rows")
        ax.set_ylim(0, 1)
    axes[0].legend(loc="upper right")
    axes[1].set_xticks(range(30), table.names, rotation=75, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="split and training seed (default: 0)")
    parser.add_argument("--figure", default=None, help="write the feature figure here (PNG)")
    args = parser.parse_args(argv)
    figures = run(args.seed)
    print(report(figures))
    if args.figure:
        plot(figures, args.figure)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
