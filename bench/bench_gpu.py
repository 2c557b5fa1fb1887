"""GPU benchmark: the CUDA exact pair search against the PyTorch broadcast selection, on the
same GPU.

    python -m bench.bench_gpu                       # (1000, 784), (256, 3072), (1, 150528)
    python -m bench.bench_gpu --cases 100x784 --repeats 50 --out /tmp/gpu.csv

For each (B, M) it times, with CUDA events on the current stream (median of the repeats after
warm-up calls):
  kernel     ``_C.cuda_pair_search`` on preallocated outputs: the kernels alone;
  call       ``jsma_fast.select_pairs(method="exact")`` on torch CUDA tensors: checks and
             output allocation too;
  pruned     ``jsma_fast.select_pairs(method="pruned")``: the rows copied to pinned host
             memory, the CPU pruned search, the results copied back (what ``"auto"`` runs from
             ``jsma_fast._cuda.AUTO_PRUNED_MIN_FEATURES`` features on); its answers are
             asserted equal to the CPU pruned search's on the same rows;
  broadcast  the dense (B, M, M) selection of bench/broadcast.py, run on the GPU, where its
             estimated peak fits the free GPU memory; its answers are asserted equal to the
             kernel's (the inputs are finite, so both are exact).
Peak memory: ``torch.cuda.max_memory_allocated`` over the call (outputs, and everything of the
broadcast selection), plus the kernel's scratch, which it allocates stream-ordered outside
torch's allocator (``_C.cuda_pair_search_workspace_bytes``).

A sweep (``--sweep``) then times the exact kernel against the pruned route at B = 1 and 256
over M = 1024 ... 16384, which places ``"auto"``'s switch on CUDA arrays.

Writes a CSV (``--out``, default ``bench/results/gpu.csv``), prints a Markdown table with the
device, driver, torch and CUDA versions, and checks the targets: at least 50x the broadcast
selection at (1000, 784), (1, 150528) exact in under 10 ms and ``"auto"`` in under 1 ms.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

import jsma_fast
from bench.broadcast import broadcast_memory, broadcast_select_pairs
from bench.common import BENCH_DIR, format_bytes, make_inputs, num_pairs, write_csv
from jsma_fast import _C, _cuda, ops

DEFAULT_CASES = "1000x784,256x3072,1x150528"
TARGET_SPEEDUP_1000x784 = 50.0
TARGET_TIME_1x150528_S = 0.010
TARGET_AUTO_1x150528_S = 0.001
SWEEP_BATCHES = (1, 256)
SWEEP_FEATURES = (1024, 2048, 4096, 6144, 8192, 16384, 32768, 65536)


def time_events(
    fn: Callable[[], object], repeats: int, warmup: int = 2, budget_s: float = 30.0
) -> List[float]:
    """Device times (s) of `repeats` calls on the current stream, after `warmup` calls; stops
    early (after at least 3) once the timed calls have used `budget_s`."""
    for _ in range(warmup):
        fn()
    times: List[float] = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of torch's allocator during one call, above what was allocated before it."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def driver_release() -> str:
    """The NVIDIA driver release (e.g. 550.54.15) from nvidia-smi, when it is there."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "unknown (no nvidia-smi)"
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown (nvidia-smi failed)"


def gpu_facts() -> Dict[str, str]:
    """The device, driver, torch and jsma_fast CUDA build, and the date (table and CSV)."""
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    info = jsma_fast.build_info()
    cuda_driver = _C.cuda_driver_version()
    return {
        "device": f"{props.name} (sm_{props.major}{props.minor}, {props.multi_processor_count} "
        f"SMs, {format_bytes(props.total_memory)})",
        "driver": f"{driver_release()} (supports CUDA "
        f"{cuda_driver // 1000}.{cuda_driver % 1000 // 10})",
        "torch": f"{torch.__version__} (CUDA {torch.version.cuda})",
        "jsma_fast": f"{info['version']}, CUDA runtime {info['cuda_runtime_version']}, "
        f"{info['cuda_compiler']}, architectures {info['cuda_architectures']}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
    }


def run_case(batch: int, m: int, repeats: int) -> Dict[str, object]:
    alpha, beta, domain = (x.cuda() for x in make_inputs(batch, m))
    pairs = num_pairs(batch, m)
    row: Dict[str, object] = {"batch": batch, "features": m, "pairs": pairs}

    # The kernels alone, on preallocated outputs and torch's current stream.
    outputs = [
        torch.empty(batch, dtype=t, device="cuda")
        for t in (torch.int64, torch.int64, torch.float32, torch.bool)
    ]
    stream = torch.cuda.current_stream().cuda_stream
    device = torch.cuda.current_device()

    def kernel():
        _C.cuda_pair_search(
            alpha.data_ptr(),
            beta.data_ptr(),
            domain.data_ptr(),
            batch,
            m,
            True,
            *(o.data_ptr() for o in outputs),
            device,
            stream,
        )

    def call():
        return jsma_fast.select_pairs(alpha, beta, domain, method="exact")

    def pruned():
        return jsma_fast.select_pairs(alpha, beta, domain, method="pruned")

    kernel_times = time_events(kernel, repeats)
    call_times = time_events(call, repeats)
    pruned_times = time_events(pruned, repeats)
    row["pruned_s"] = statistics.median(pruned_times)
    auto_pruned = _cuda.auto_picks_pruned(batch, m)
    row["auto_method"] = "pruned" if auto_pruned else "exact"
    row["auto_s"] = row["pruned_s"] if auto_pruned else statistics.median(call_times)
    host = [x.cpu() for x in (alpha, beta, domain)]
    want = jsma_fast.select_pairs(*host, method="pruned")
    for got, expected, name in zip(pruned(), want, ("p", "q", "score", "valid")):
        if not torch.equal(got.cpu(), expected):
            raise AssertionError(f"pruned route and CPU pruned search differ in {name}")
    row.update(pruned_parts(alpha, beta, domain, [x.numpy() for x in host], repeats))
    row["kernel_s"] = statistics.median(kernel_times)
    row["kernel_best_s"] = min(kernel_times)
    row["call_s"] = statistics.median(call_times)
    row["kernel_pairs_per_s"] = pairs / row["kernel_s"]
    row["kernel_workspace_bytes"] = _C.cuda_pair_search_workspace_bytes(batch, m)
    row["call_torch_peak_bytes"] = peak_bytes(call)
    result = call()

    estimate = int(broadcast_memory(batch, m).peak)
    row["broadcast_estimated_peak_bytes"] = estimate
    free, _ = torch.cuda.mem_get_info()
    if estimate > 0.9 * free:
        row["broadcast_status"] = (
            f"not run: needs {format_bytes(estimate)} at peak, {format_bytes(free)} free"
        )
        return row
    try:
        expected = broadcast_select_pairs(alpha, beta, domain)
        for got, want, name in zip(result, expected, ("p", "q", "score", "valid")):
            if not torch.equal(got, want):
                raise AssertionError(
                    f"kernel and broadcast selection differ in {name} at ({batch}, {m})"
                )
        del expected
        bcast_times = time_events(
            lambda: broadcast_select_pairs(alpha, beta, domain), repeats, warmup=1
        )
        row["broadcast_peak_bytes"] = peak_bytes(
            lambda: broadcast_select_pairs(alpha, beta, domain)
        )
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        row["broadcast_status"] = f"out of memory: {str(err).splitlines()[0]}"
        return row
    row["broadcast_status"] = "ok"
    row["broadcast_s"] = statistics.median(bcast_times)
    row["broadcast_pairs_per_s"] = pairs / row["broadcast_s"]
    row["speedup"] = row["broadcast_s"] / row["kernel_s"]
    torch.cuda.empty_cache()
    return row


def pruned_parts(alpha, beta, domain, host: List, repeats: int) -> Dict[str, float]:
    """The pruned route's two parts: the CPU search alone on host arrays (wall time), and the
    route with a search that only returns its answer (the copies both ways, the waits and
    the Python around them; CUDA events)."""
    search = functools.partial(ops.Searcher.resolve(method="pruned")._pruned_on_host, increase=True)
    answer = search(*host)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        search(*host)
        times.append(time.perf_counter() - start)
    copies = time_events(
        lambda: _cuda.search_on_host(alpha, beta, domain, lambda *rows: answer), repeats
    )
    return {
        "pruned_cpu_search_s": statistics.median(times[2:]),
        "pruned_copies_s": statistics.median(copies),
    }


def seconds(x: Optional[float]) -> str:
    if x is None:
        return ""
    return f"{x * 1e3:.3f} ms" if x < 1 else f"{x:.2f} s"


def markdown(env: Dict[str, str], rows: List[Dict[str, object]]) -> str:
    lines = [f"- {key}: {value}" for key, value in env.items()]
    lines += [
        "",
        "| B | M | pairs | kernel | kernel pairs/s | select_pairs call | kernel memory "
        "(scratch + outputs) | broadcast | broadcast peak | broadcast / kernel | pruned "
        '(host) | "auto" |',
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        memory = r["kernel_workspace_bytes"] + r["call_torch_peak_bytes"]
        if r.get("broadcast_status") == "ok":
            bcast = seconds(r["broadcast_s"])
            bpeak = format_bytes(r["broadcast_peak_bytes"])
            speed = f"**{r['speedup']:.0f}x**"
        else:
            bcast, bpeak, speed = (
                r["broadcast_status"],
                format_bytes(r["broadcast_estimated_peak_bytes"]) + " (estimated)",
                "",
            )
        lines.append(
            f"| {r['batch']} | {r['features']} | {r['pairs']:.3g} | {seconds(r['kernel_s'])} | "
            f"{r['kernel_pairs_per_s']:.3g} | {seconds(r['call_s'])} | {format_bytes(memory)} | "
            f"{bcast} | {bpeak} | {speed} | {seconds(r['pruned_s'])} (search "
            f"{seconds(r['pruned_cpu_search_s'])}, copies {seconds(r['pruned_copies_s'])}) | "
            f"{seconds(r['auto_s'])} ({r['auto_method']}) |"
        )
    return "\n".join(lines)


def targets(rows: List[Dict[str, object]]) -> List[str]:
    out = []
    for r in rows:
        if (r["batch"], r["features"]) == (1000, 784) and "speedup" in r:
            ok = r["speedup"] >= TARGET_SPEEDUP_1000x784
            out.append(
                f"- (1000, 784): {r['speedup']:.0f}x faster than the broadcast selection "
                f"(target >= {TARGET_SPEEDUP_1000x784:.0f}x): {'met' if ok else 'NOT met'}"
            )
        if (r["batch"], r["features"]) == (1, 150528):
            ok = r["kernel_s"] < TARGET_TIME_1x150528_S
            out.append(
                f"- (1, 150528): {seconds(r['kernel_s'])}, "
                f"{r['kernel_pairs_per_s']:.3g} pairs/s (target < 10 ms): "
                f"{'met' if ok else 'NOT met'}"
            )
            ok = r["auto_s"] < TARGET_AUTO_1x150528_S
            out.append(
                f'- (1, 150528) `method="auto"` ({r["auto_method"]}): {seconds(r["auto_s"])} '
                f"(target < 1 ms): {'met' if ok else 'NOT met'}"
            )
    return out


def sweep(repeats: int) -> List[Dict[str, object]]:
    """The exact kernel (``select_pairs(method="exact")``) against the pruned route, per
    (B, M) of the sweep: where ``"auto"`` should switch on CUDA arrays."""
    rows = []
    for batch in SWEEP_BATCHES:
        for m in SWEEP_FEATURES:
            alpha, beta, domain = (x.cuda() for x in make_inputs(batch, m))
            times = {}
            for method in ("exact", "pruned"):
                run = functools.partial(jsma_fast.select_pairs, alpha, beta, domain, method=method)
                times[method] = statistics.median(time_events(run, repeats, budget_s=5.0))
            rows.append({"batch": batch, "features": m, **times})
    return rows


def sweep_markdown(rows: List[Dict[str, object]]) -> str:
    lines = [
        'Exact kernel against the pruned route ("auto" takes the pruned route from M >= '
        f"{_cuda.AUTO_PRUNED_MIN_FEATURES} and B x M(M-1)/2 >= "
        f"{_cuda.AUTO_PRUNED_MIN_PAIRS:.0e} pairs on):",
        "",
        "| B | M | exact (GPU kernel) | pruned (host route) | exact / pruned |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['features']} | {seconds(r['exact'])} | "
            f"{seconds(r['pruned'])} | {r['exact'] / r['pruned']:.2f} |"
        )
    return "\n".join(lines)


def parse_cases(text: str) -> List[tuple]:
    cases = []
    for item in text.split(","):
        b, m = item.lower().split("x")
        cases.append((int(b), int(m)))
    return cases


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=DEFAULT_CASES, help="BxM,BxM,...")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "gpu.csv")
    parser.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the exact kernel against the pruned route over M (default: on)",
    )
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        sys.exit(
            "bench.bench_gpu needs a CUDA device, and torch sees none "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})."
        )
    if not jsma_fast.cuda_available():
        reason = jsma_fast.build_info()["cuda_unavailable_reason"]
        sys.exit(f"bench.bench_gpu needs the CUDA kernels of jsma_fast: {reason}")

    env = gpu_facts()
    rows = []
    for batch, m in parse_cases(args.cases):
        print(f"({batch}, {m}) ...", file=sys.stderr, flush=True)
        rows.append(run_case(batch, m, args.repeats))

    fields = sorted(
        {key for r in rows for key in r}, key=lambda k: (k not in ("batch", "features", "pairs"), k)
    )
    write_csv(args.out, list(env) + fields, [{**env, **r} for r in rows])
    print(markdown(env, rows))
    print()
    print("\n".join(targets(rows)))
    if args.sweep:
        print("sweep ...", file=sys.stderr, flush=True)
        swept = sweep(args.repeats)
        write_csv(args.out.with_name(args.out.stem + "-sweep.csv"), list(swept[0]), swept)
        print()
        print(sweep_markdown(swept))
    print(f"\nCSV: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
