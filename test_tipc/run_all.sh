#!/bin/bash
# The whole TIPC: prepare + test_train_inference_python.sh for every config (or those matching a pattern).
#
#   bash test_tipc/run_all.sh [MODE] [PATTERN]
#     MODE     default lite_train_lite_infer
#     PATTERN  a substring of the config path, e.g. ParNet or ShuffleNetV2_x0_25 (default: all)
#   TIPC_SET='key:value;...' is passed on (e.g. TIPC_SET='gpu_list:-1;-o Global.auto_cast:fp32' for a
#   quicker run); TIPC_DATA_DIR, TIPC_DATA_ROOT, TIPC_OUTPUT_DIR, TIPC_WEIGHTS, TIPC_WEIGHTS_URL and
#   TIPC_SAVE_RESULTS as for prepare.sh and test_train_inference_python.sh.
#
# Writes test_tipc/output/run_all_<MODE>.log (under TIPC_OUTPUT_DIR when set) (one line per model: OK / FAILED, seconds, counts) and
# exits 1 when any model failed.

MODE=${1:-lite_train_lite_infer}
PATTERN=${2:-}
source "$(dirname "${BASH_SOURCE[0]}")/common_func.sh"
tipc_enter_repo
tipc_check_mode "test_tipc/run_all.sh" "$MODE"

summary="${TIPC_OUTPUT_ROOT}/run_all_${MODE}.log"
mkdir -p "$TIPC_OUTPUT_ROOT"
: >"$summary"
failed=0
total=0
for config in $(ls test_tipc/configs/*/*_train_infer_python.txt | sort); do
    [[ -n $PATTERN && $config != *"$PATTERN"* ]] && continue
    model=$(basename "$config" _train_infer_python.txt)
    total=$((total + 1))
    start=$(date +%s)
    echo "===== ${model} (${MODE})"
    if bash test_tipc/prepare.sh "$config" "$MODE" && bash test_tipc/test_train_inference_python.sh "$config" "$MODE"; then
        status=OK
    else
        status=FAILED
        failed=$((failed + 1))
    fi
    log="${TIPC_OUTPUT_ROOT}/${model}/${MODE}/results_python.log"
    ok=$(grep -c '^Run successfully' "$log" 2>/dev/null)
    bad=$(grep -c '^Run failed' "$log" 2>/dev/null)
    skipped=$(grep -c '^Skipped' "$log" 2>/dev/null)
    line="${status} ${model} $(($(date +%s) - start))s: ${ok:-0} succeeded, ${bad:-0} failed, ${skipped:-0} skipped (${log})"
    echo "$line" | tee -a "$summary"
done
echo "run_all ${MODE}: ${total} models, ${failed} failed; summary in ${summary}"
[[ $total -gt 0 ]] || { echo "no config matches '${PATTERN}'" >&2; exit 2; }
[[ $failed -eq 0 ]]
