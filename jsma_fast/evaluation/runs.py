"""The attacks of ``jsma-fast reproduce``: every stage in saved chunks, on every rank.

:func:`run_attacks` loads (or trains) the models, picks the attacked digits once for every
rank, and runs the paper's two attacks, the variants, the paper's algorithm on the other model
and the optional adversarial training, each as a stage of chunks in the run's chunk store
(resumable, see :mod:`jsma_fast.runner.shards`). The same calls happen in the same order
on every rank (they contain collectives); the columns come back on rank 0 only.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..runner.checkpoint import ChunkStore
from ..runner.columns import COLUMNS, Columns, result_columns
from ..runner.distributed import Dist
from ..runner.shards import load_stage, make_chunks, open_store, run_chunks
from .adversarial_training import AdversarialTrainingReport
from .config import MODEL_LABELS, STAGES, ConfigError, ReproduceConfig
from .digits import stratified_first

#: Digits of the before / after comparison of adversarial training (the first ones that the
#: fine-tuned model still classifies correctly).
ADV_EVAL_DIGITS = 50


@dataclass(frozen=True)
class ModelInfo:
    """What the report says about a trained model.

    Attributes:
        architecture: ``"lenet"`` or ``"paper"`` (:data:`~.config.MODEL_LABELS`).
        train_digits: digits it was trained on.
        test_digits: held-out digits.
        test_accuracy: its accuracy on them, in [0, 1].
    """

    architecture: str
    train_digits: int
    test_digits: int
    test_accuracy: float

    @property
    def label(self) -> str:
        return MODEL_LABELS[self.architecture]


@dataclass
class AttackRuns:
    """What the attacks of one run produced (rank 0).

    Attributes:
        model: the attacked classifier (eval mode).
        info: its description.
        x: (N, 1, H, W) the attacked digits, correctly classified held-out ones.
        y: (N,) their classes.
        num_classes: C, the width of the model's output.
        stages: ``"increase"`` / ``"decrease"`` -> columns of N * (C - 1) rows (every digit
            towards every other class).
        variants: variant name -> columns of the same rows (increase).
        other_model: the model of the comparison, or None.
        other_columns: the paper's algorithm (increase) on it, or None.
        adversarial_training: before / after numbers, or None (not asked for, or nothing to
            compare).
        adv_after: columns of the attack on the fine-tuned model, or None.
        attack_seconds: time spent in the paper's attacks and the variants in this run
            (resumed chunks excluded).
    """

    model: nn.Module
    info: ModelInfo
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    stages: Dict[str, Columns]
    variants: Dict[str, Columns]
    other_model: Optional[ModelInfo] = None
    other_columns: Optional[Columns] = None
    adversarial_training: Optional[AdversarialTrainingReport] = None
    adv_after: Optional[Columns] = None
    attack_seconds: float = 0.0


class _StageRunner:
    """Runs one stage (an attack on some digits) as chunks of the run's store."""

    def __init__(self, ctx: Dist, store: ChunkStore, config: ReproduceConfig) -> None:
        self.ctx, self.store, self.config = ctx, store, config
        self.required = list(COLUMNS)

    def __call__(
        self,
        stage: str,
        attack: Any,
        net: nn.Module,
        xs: torch.Tensor,
        ys: torch.Tensor,
        targets: str,
        bar: Any = None,
    ) -> Optional[Columns]:
        """The stage's columns on rank 0 (None on the other ranks)."""
        chunks = make_chunks(xs.shape[0], self.config.chunk_size)

        def compute(chunk: Any) -> Columns:
            res = attack(net, xs[chunk.start : chunk.stop], targets, y=ys[chunk.start : chunk.stop])
            return result_columns(res, index_offset=chunk.start)

        run_chunks(
            self.ctx,
            self.store,
            stage,
            chunks,
            compute,
            gather=self.config.gather,
            bar=bar,
            required=self.required,
        )
        return self.ctx.on_main(
            lambda: load_stage(self.store, stage, chunks, self.required), share=False
        )


def _say(ctx: Dist) -> Callable[..., None]:
    """``print`` on rank 0, nothing on the other ranks."""
    return print if ctx.is_main else (lambda *a, **k: None)


def _skip_hint(config: ReproduceConfig, architecture: str) -> str:
    """How to do without training ``architecture`` (the command line's words)."""
    if architecture != config.model:
        return "to skip it, pass --no-model-comparison"
    other = "lenet" if architecture == "paper" else "paper"
    return f"--model {other} attacks the other model instead"


def load_model(config: ReproduceConfig, ctx: Dist, architecture: str) -> Tuple[nn.Module, Any]:
    """The trained model and its data split (a :class:`~jsma_fast.mnist.training.HoldoutSplit`),
    the same weights on every rank."""
    from ..mnist.training import load_or_train_lenet

    _say(ctx)(f"Loading MNIST ({config.source}) and {MODEL_LABELS[architecture]} ...", flush=True)

    def load() -> Tuple[nn.Module, Any]:
        try:
            return load_or_train_lenet(
                source=config.source,
                n_test=config.n_test,
                seed=config.seed,
                epochs=config.epochs,
                cache_dir=config.cache_dir,
                progress=config.progress and ctx.is_main,
                architecture=architecture,
                announce=lambda line: _say(ctx)(f"{line}; {_skip_hint(config, architecture)}"),
            )
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError("source", str(exc)) from exc

    # Rank 0 first (it may train and fill the cache); the others then read the cache, and
    # take rank 0's weights in any case.
    loaded = ctx.on_main(load, share=False)
    net, data = ctx.each(lambda: loaded if ctx.is_main else load())
    ctx.sync_module(net)
    return net, data


def attacked_digits(
    ctx: Dist, net: nn.Module, data: Any, limit: Optional[int]
) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
    """The first ``limit`` (None: all) correctly classified held-out digits, stratified by
    class when ``limit`` >= C (:func:`~.digits.stratified_first`), chosen on rank 0 for every
    rank.

    Returns:
        ``(x, y, correct, num_classes)``: (n, ...) digits, (n,) classes, how many held-out
        digits the model classifies correctly, and the width C of its output.
    """

    def select() -> Tuple[List[int], int, int]:
        with torch.no_grad():
            logits = net(data.test_x)
        correct = (logits.argmax(1) == data.test_y).nonzero().squeeze(1)
        count, classes = int(correct.numel()), int(logits.shape[1])
        return stratified_first(correct, data.test_y, limit, classes), count, classes

    keep, count, num_classes = ctx.on_main(select)
    return data.test_x[keep], data.test_y[keep], count, num_classes


def _model_info(architecture: str, split: Any) -> ModelInfo:
    return ModelInfo(
        architecture=architecture,
        train_digits=len(split.train_y),
        test_digits=len(split.test_y),
        test_accuracy=split.test_accuracy,
    )


def run_attacks(config: ReproduceConfig, ctx: Dist) -> Optional[AttackRuns]:
    """Every attack of the run, on every rank; the results on rank 0 (None elsewhere)."""
    say = _say(ctx)
    model, split = load_model(config, ctx, config.model)
    x, y, n_all, num_classes = attacked_digits(ctx, model, split, config.digits)
    n = x.shape[0]
    say(
        f"LeNet: held-out accuracy {split.test_accuracy:.2%} on {len(split.test_y)} digits "
        f"({len(split.train_y)} for training); attacking {n} of the {n_all} correctly "
        f"classified held-out digits towards the {num_classes - 1} other classes"
        + (f", on {ctx.world_size} processes" if ctx.distributed else ""),
        flush=True,
    )
    store = open_store(
        ctx,
        config.out / "chunks",
        config.manifest(split.cache_path.name, n),
        resume=config.resume,
        gather=config.gather,
    )
    run_stage = _StageRunner(ctx, store, config)
    stages, variants, seconds = _paper_and_variants(run_stage, config, ctx, model, x, y)
    runs = AttackRuns(
        model=model,
        info=_model_info(config.model, split),
        x=x,
        y=y,
        num_classes=num_classes,
        stages=stages,
        variants=variants,
        attack_seconds=seconds,
    )
    if config.model_comparison:
        runs.other_model, runs.other_columns = _other_model(run_stage, config, ctx, n)
    if config.adv_training:
        runs.adversarial_training, runs.adv_after = _adversarial_training(
            run_stage, config, ctx, model, split, x, y, stages.get("increase")
        )
    return runs if ctx.is_main else None


def _paper_and_variants(
    run_stage: _StageRunner,
    config: ReproduceConfig,
    ctx: Dist,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
) -> Tuple[Dict[str, Columns], Dict[str, Columns], float]:
    """The paper's two attacks and the variants on all targets, under one progress bar.

    Returns:
        ``(stages, variants, seconds)``.
    """
    from tqdm.auto import tqdm

    from ..attack import JSMA

    total = x.shape[0] * (len(STAGES) + len(config.variants))
    t0 = time.perf_counter()
    bar = tqdm(
        total=total,
        desc="attacking",
        unit="row",  # one digit's attack in one stage, as the other commands count rows
        disable=not config.progress or not ctx.is_main,
        smoothing=0.1,
    )
    stages: Dict[str, Columns] = {}
    variants: Dict[str, Columns] = {}
    try:
        for stage, theta in STAGES:
            bar.set_postfix(stage=stage)
            attack = JSMA(theta=theta, gamma=config.gamma, seed=config.seed)
            stages[stage] = run_stage(stage, attack, model, x, y, "all", bar)
        for name in config.variants:
            bar.set_postfix(stage=name)
            attack = JSMA(theta=1.0, gamma=config.gamma, seed=config.seed, variant=name)
            variants[name] = run_stage(f"variant_{name}", attack, model, x, y, "all", bar)
    finally:
        bar.close()
    return stages, variants, time.perf_counter() - t0


def _other_model(
    run_stage: _StageRunner, config: ReproduceConfig, ctx: Dist, digits: int
) -> Tuple[ModelInfo, Optional[Columns]]:
    """The paper's algorithm (increase, all targets) on the other model's first ``digits``
    correctly classified digits."""
    from ..attack import JSMA

    other = config.other_model
    other_model, other_split = load_model(config, ctx, other)
    ox, oy, _, _ = attacked_digits(ctx, other_model, other_split, digits)
    _say(ctx)(
        f"The paper's algorithm on {MODEL_LABELS[other]} ({ox.shape[0]} digits) ...", flush=True
    )
    attack = JSMA(theta=1.0, gamma=config.gamma, seed=config.seed)
    cols = run_stage("other_model_increase", attack, other_model, ox, oy, "all")
    return _model_info(other, other_split), cols


def _adversarial_training(
    run_stage: _StageRunner,
    config: ReproduceConfig,
    ctx: Dist,
    model: nn.Module,
    split: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    before: Optional[Columns],
) -> Tuple[Optional[AdversarialTrainingReport], Optional[Columns]]:
    """Crafting and the attack after fine-tuning run on every rank; the fine-tuning itself on
    rank 0, whose weights the others take.

    Returns:
        ``(report, after)`` on rank 0: the before / after numbers on the digits both models
        classify correctly, and the columns of the attack after fine-tuning (their
        ``source_index`` refers to ``x``). ``(None, None)`` on the other ranks, or when the
        fine-tuned model misclassifies every attacked digit.
    """
    from ..attack import JSMA

    say = _say(ctx)
    k = min(config.adv_samples, len(split.train_y))
    attack = JSMA(theta=1.0, gamma=config.gamma, seed=config.seed)
    say(f"Adversarial training: crafting {k} training digits (random targets) ...", flush=True)
    craft = run_stage("adv_craft", attack, model, split.train_x[:k], split.train_y[:k], "random")
    state, still_list, adversarial_samples = ctx.on_main(
        lambda: _fine_tune(config, model, split, craft, x, y)
    )
    tuned = copy.deepcopy(model)
    tuned.load_state_dict(state)
    tuned.eval()
    if not still_list:
        say(
            "warning: the fine-tuned model misclassifies every attacked digit; "
            "no before/after comparison (raise --epochs or --adv-epochs)",
            flush=True,
        )
        return None, None
    still = torch.tensor(still_list, dtype=torch.int64)
    say(f"Attacking the fine-tuned model on {len(still_list)} digits ...", flush=True)
    after = run_stage("adv_after", attack, tuned, x[still], y[still], "all")
    if not ctx.is_main:
        return None, None
    return _compare_before_after(
        model, tuned, split, before, after, still.numpy(), k, adversarial_samples
    )


def _fine_tune(
    config: ReproduceConfig,
    model: nn.Module,
    split: Any,
    craft: Columns,
    x: torch.Tensor,
    y: torch.Tensor,
) -> Tuple[Dict[str, Any], List[int], int]:
    """Rank 0: fine-tunes on the successful crafted samples.

    Returns:
        ``(state_dict, still, samples)``: the fine-tuned weights, the indices into ``x`` of
        the digits to compare on, and the number of adversarial samples trained on.
    """
    from .adversarial_training import fine_tune_on_adversarial

    ok = craft["success"].astype(bool)
    adv_x = torch.from_numpy(craft["x_adv"][ok])
    adv_y = torch.from_numpy(craft["true_class"][ok])
    tuned = fine_tune_on_adversarial(
        model,
        split.train_x,
        split.train_y,
        adv_x,
        adv_y,
        epochs=config.adv_epochs,
        seed=config.seed,
        progress=config.progress,
    )
    # Compare on the first attacked digits that the fine-tuned model still classifies
    # correctly, so that neither attack starts from a misclassified digit.
    with torch.no_grad():
        still = (tuned(x).argmax(1) == y).nonzero().squeeze(1)[:ADV_EVAL_DIGITS]
    return tuned.state_dict(), still.tolist(), int(ok.sum())


def _compare_before_after(
    model: nn.Module,
    tuned: nn.Module,
    split: Any,
    before: Columns,
    after: Columns,
    still: np.ndarray,
    crafted: int,
    adversarial_samples: int,
) -> Tuple[AdversarialTrainingReport, Columns]:
    """The report on the digits ``still`` (indices into the attacked digits), and the
    after-columns with ``source_index`` mapped back to the attacked digits."""
    from ..mnist.training import accuracy
    from .adversarial_training import compare_attack

    after["source_index"] = still[after["source_index"]]
    keep = np.isin(before["source_index"], still)
    report = compare_attack(
        {key: v[keep] for key, v in before.items()},
        after,
        clean_accuracy_before=accuracy(model, split.test_x, split.test_y),
        clean_accuracy_after=accuracy(tuned, split.test_x, split.test_y),
        adversarial_samples=adversarial_samples,
        crafted=crafted,
        compared_digits=len(still),
    )
    return report, after
