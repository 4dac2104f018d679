#!/usr/bin/env bash
# The shared pool's thread-tier budget, swept: the same few benchmarks once per value of
# ARRAYPOOL_SHARED_THREAD_CACHE_BYTES (64, 128 and 256 KiB; 128 KiB is the default), each
# budget in a criterion directory of its own, then one table of medians per budget.
#
#   bash tools/budget_sweep.sh                    # from the repository root, on a quiet machine
#   SWEEP_PREFIX="chrt -f 10" bash tools/budget_sweep.sh           # as root, as docs/benchmarks.md runs
#   SWEEP_ARGS="--warm-up-time 0.05 --measurement-time 0.1" bash tools/budget_sweep.sh  # smoke test
#
# SWEEP_ARGS goes to criterion after each filter; SWEEP_PREFIX before each cargo command
# (e.g. "nice -n 15" beside other work; such figures are not worth keeping); SWEEP_OUT is where
# the results go (default target/budget_sweep, one `budget_<n>` criterion directory per budget,
# replaced on each run); SWEEP_TIMEOUT bounds each cargo command in seconds (default 900).
# Nothing leaves the machine: cargo runs with --offline, so the dependencies must be there
# already (any earlier `cargo bench -p arraypool-benches` fetched them).
# The spin hand-off needs both cores free (docs/benchmarks.md); its group fixes its own
# measurement time (600 ms), so --measurement-time does not shorten it.
#
# Reading the table: only the shared pool's rows should move (`arraypool`, `arraypool_shared`);
# the builder pool (its own 128 KiB default), `create()` and the floors are controls, and show
# the run's noise. A note on `nested_4`: rent_return.rs warms every size of `overhead` and
# `real_cycle` on the main thread before `nested_4` runs, even when the filter skips them, so
# the 4 KiB magazine must take budget from idle sizes to grow (the budget rule in
# src/thread_cache.rs); before that rule it stayed one deep and took 346 ns per iteration.
set -euo pipefail

cd "$(dirname "$0")/.."

BUDGETS=(65536 131072 262144)
# bench binary, then criterion's filter (a regex over `group/function/value`), anchored so that
# `overhead` does not also pick `mimalloc_overhead` or `arraypool_rent_zeroed`.
RUNS=(
    "rent_return" '^nested_4/arraypool/4096$'
    "rent_return" '^overhead/arraypool/4096$'
    "rent_return" '^custom_pool_hot_pair/'
    "cross_thread" '^spin_handoff/arraypool$'
)
OUT=${SWEEP_OUT:-target/budget_sweep}
TIMEOUT=${SWEEP_TIMEOUT:-900}
read -r -a PREFIX <<<"${SWEEP_PREFIX:-}"
read -r -a ARGS <<<"${SWEEP_ARGS:-}"

# Build once; the budget is read at run time, when the shared pool is first used.
"${PREFIX[@]}" timeout "$TIMEOUT" cargo bench -p arraypool-benches --offline --no-run --quiet

for budget in "${BUDGETS[@]}"; do
    dir="$OUT/budget_$budget"
    rm -rf "$dir"
    mkdir -p "$dir"
    for ((i = 0; i < ${#RUNS[@]}; i += 2)); do
        bench=${RUNS[i]} filter=${RUNS[i + 1]}
        echo "== budget $budget: $bench $filter" >&2
        CRITERION_HOME=$dir ARRAYPOOL_SHARED_THREAD_CACHE_BYTES=$budget \
            "${PREFIX[@]}" timeout "$TIMEOUT" \
            cargo bench -p arraypool-benches --offline --quiet --bench "$bench" -- \
            "$filter" "${ARGS[@]}" >"$dir/$bench.log" 2>&1 ||
            { echo "failed: see $dir/$bench.log" >&2; exit 1; }
    done
done

python3 - "$OUT" "${BUDGETS[@]}" <<'EOF'
"""One row per benchmark, one median column per budget, then each ÷ the default's."""
import glob, json, os, sys

out, budgets = sys.argv[1], sys.argv[2:]
DEFAULT = "131072"
medians = {}  # benchmark id -> {budget: ns}
for budget in budgets:
    root = os.path.join(out, f"budget_{budget}")
    for path in glob.glob(os.path.join(root, "**", "new", "benchmark.json"), recursive=True):
        with open(path) as f:
            bench = json.load(f)
        with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
            ns = json.load(f)["median"]["point_estimate"]
        medians.setdefault(bench["full_id"], {})[budget] = ns

def fmt(ns):
    return "–" if ns is None else (f"{ns / 1e3:.2f} µs" if ns >= 1e3 else f"{ns:.1f} ns")

head = ["benchmark"] + [f"{int(b) >> 10} KiB" for b in budgets]
head += [f"{int(b) >> 10} ÷ {int(DEFAULT) >> 10} KiB" for b in budgets if b != DEFAULT]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for bench in sorted(medians):
    row = medians[bench]
    cells = [f"`{bench}`"] + [fmt(row.get(b)) for b in budgets]
    for b in budgets:
        if b != DEFAULT:
            mine, base = row.get(b), row.get(DEFAULT)
            cells.append("–" if mine is None or not base else f"{mine / base:.2f}")
    print("| " + " | ".join(cells) + " |")
if not medians:
    sys.exit(f"no criterion results under {out}")
EOF
