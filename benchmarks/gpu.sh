#!/usr/bin/env bash
# The GPU run, unattended, on a fresh machine with one NVIDIA GPU and nothing installed but the
# project: the GPU-marked tests, the kernel benchmark (bench_kernels.py) and bench_sim.py --device
# cuda at width 4096 (float32 and float64 beside the GEMM peak of that GPU, measured in the same
# run), and one epoch of Figs 4 and 7 at the paper's settings on a CIFAR-10-sized fixture folder
# (bench_figures.py: the whole figures' time extrapolated), written as one section of
# docs/performance.md between the markers below.
#
#     bash benchmarks/gpu.sh [LOG_DIR]
#
# Each step has its own time limit (8 minutes in all); a step that fails or runs out is recorded
# as such in the table and the others still run. The log of every step goes to LOG_DIR (default: a
# fresh temporary folder). Without a GPU it says so in one line and exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG=${1:-$(mktemp -d)}
mkdir -p "$LOG"
DOC=docs/performance.md
BEGIN='<!-- gpu.sh: begin -->'
END='<!-- gpu.sh: end -->'

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu.sh: no NVIDIA GPU on this machine (nvidia-smi finds none); nothing was run" >&2
    exit 1
fi
# The project's dependencies: already there (a GPU image), else from the package index.
if ! "$PY" -c "import torch, numpy, scipy, xarray, numba, pytest" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet -e ".[sim,test]" || { echo "gpu.sh: could not install the project" >&2; exit 1; }
fi
# The project itself must be installed: its entry points register the torch modules and commands.
# Its dependencies are there already, so an offline machine needs neither the index nor a build env.
registered='from importlib.metadata import entry_points as e; import sys; sys.exit(not list(e(group="meanfield.torch_modules")))'
if ! "$PY" -c "$registered" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet --no-deps --no-build-isolation -e . \
        || { echo "gpu.sh: could not install the project (pip install -e .)" >&2; exit 1; }
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 NUMBA_ENABLE_CUDASIM=0
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
    echo "gpu.sh: nvidia-smi sees a GPU but torch cannot use it (a CPU build of torch?); nothing was run" >&2
    exit 1
fi
started=$(date +%s)

step() {  # step NAME SECONDS COMMAND...: run with a limit, keep the log, print "ok"/"failed"/"timed out"
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" >"$LOG/$name.log" 2>&1
    case $? in
        0) echo "ok" ;;
        124) echo "timed out after ${limit} s" ;;
        *) echo "failed (log: $name.log)" ;;
    esac
}

tests=$(step tests 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests)
kernels=$(step kernels 100 "$PY" benchmarks/bench_kernels.py)
sim=$(step sim 150 "$PY" benchmarks/bench_sim.py --device cuda)
figs=$(step figures 80 "$PY" benchmarks/bench_figures.py --device cuda)
elapsed=$(( $(date +%s) - started ))

summary=$(tail -n 1 "$LOG/tests.log")
versions='import importlib.metadata as m, torch, numpy
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "absent"
print("torch %s (CUDA %s), NumPy %s, numba %s, numba-cuda %s"
      % (torch.__version__, torch.version.cuda, numpy.__version__, v("numba"), v("numba-cuda")))'
kernel_state=$("$PY" -c 'from cuda_kernels import kernels; print(kernels.unavailable_reason() or "the numba kernels compile and run")' 2>&1 | tail -n 1)
{
    echo "$BEGIN"
    echo "## The GPU run: \`bash benchmarks/gpu.sh\`"
    echo
    echo "$(date -u +%Y-%m-%d), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)," \
         "$("$PY" -c "$versions"); the whole script took ${elapsed} s (limit 480 s)."
    echo
    echo "GPU-marked tests (\`pytest -m gpu\`): ${tests}: ${summary}"
    echo
    echo "Kernels (\`python benchmarks/bench_kernels.py\`): ${kernels}; ${kernel_state}."
    echo
    grep '^|' "$LOG/kernels.log" || true
    echo
    echo "Monte-Carlo networks (\`python benchmarks/bench_sim.py --device cuda\`): ${sim}"
    echo
    grep -v '^|' "$LOG/sim.log" | grep -i '^GPU' || true
    echo
    grep '^|' "$LOG/sim.log" || true
    echo
    echo "Figs 4 and 7 at the paper's settings (\`python benchmarks/bench_figures.py --device cuda\`): ${figs}"
    echo
    grep -v '^|' "$LOG/figures.log" | grep '^device' || true
    echo
    grep '^|' "$LOG/figures.log" || true
    echo "$END"
} >"$LOG/section.md"

# Replace the section between the markers (or append it), leaving the rest of the page as it is.
"$PY" - "$DOC" "$LOG/section.md" "$BEGIN" "$END" <<'EOF'
import sys
doc, section, begin, end = sys.argv[1:5]
text, new = open(doc).read(), open(section).read().rstrip("\n")
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + new + rest.split(end, 1)[1]
else:
    text = text.rstrip("\n") + "\n\n" + new + "\n"
open(doc, "w").write(text)
EOF
cat "$LOG/section.md"
echo "gpu.sh: wrote the section to $DOC in ${elapsed} s; logs in $LOG"
[ "$tests" = ok ] && [ "$kernels" = ok ] && [ "$sim" = ok ] && [ "$figs" = ok ]
