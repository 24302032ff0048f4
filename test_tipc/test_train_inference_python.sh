#!/bin/bash
# TIPC: train -> eval -> export -> Paddle Inference prediction for one model, for every variant its
# config lists, with a status line per command (PaddleClas's wording) and a summary log.
#
#   bash test_tipc/prepare.sh CONFIG MODE
#   bash test_tipc/test_train_inference_python.sh CONFIG MODE [GPU_ID]
#
# MODE: lite_train_lite_infer | lite_train_whole_infer | whole_train_whole_infer | whole_infer
# GPU_ID (optional): CUDA_VISIBLE_DEVICES for the GPU variants.
# Logs: test_tipc/output/<model_name>/<MODE>/ (cleared at the start; TIPC_OUTPUT_DIR=/other/folder to
# put them elsewhere), summary results_python.log there. Data: TIPC_DATA_ROOT as for prepare.sh.
# Exit code: 0 when every command succeeded (skipped variants do not count), 1 when one failed,
# 2 for bad input (unknown mode, missing or malformed config). See test_tipc/README.md.

set -f # no filename expansion: overrides such as Global.image_shape=[3,32,32] stay as written
MODE=$2
GPU_ID=$3
SCRIPT="test_tipc/test_train_inference_python.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common_func.sh"
tipc_start "$SCRIPT" "CONFIG MODE [GPU_ID]" "$1" "$MODE"
CONFIG_ARG=$TIPC_CONFIG

# ------------------------------------------------------------------------------ the config
model_name=$(tipc_get train_params model_name)
python=$(tipc_get train_params python)
gpu_list=$(tipc_get train_params gpu_list)
train_device_value=$(tipc_get train_params "-o Global.device")
autocast_list=$(tipc_get train_params "-o Global.auto_cast" fp32)
[[ $autocast_list == null ]] && autocast_list=fp32
epoch_num=$(tipc_mode_value "$(tipc_get train_params "-o Global.epochs")" "$MODE")
train_batch_value=$(tipc_mode_value "$(tipc_get train_params "-o DataLoader.Train.sampler.batch_size")" "$MODE")
pretrain_value=$(tipc_mode_value "$(tipc_get train_params "-o Global.pretrained_model")" "$MODE")
train_model_name=$(tipc_get train_params train_model_name)
train_infer_img_dir=$(tipc_get train_params train_infer_img_dir null)
trainer_list=$(tipc_get train_params trainer)
norm_trainer=$(tipc_get train_params norm_train)
to_static_trainer=$(tipc_get train_params to_static_train null)

eval_py=$(tipc_get eval_params eval)

export_weight_key="-o Global.pretrained_model"
norm_export=$(tipc_get infer_params norm_export)
infer_model_dir=$(tipc_get infer_params infer_model null)
infer_export=$(tipc_get infer_params infer_export True)
inference_py=$(tipc_get infer_params inference)
use_gpu_list=$(tipc_get infer_params "-o Global.use_gpu")
use_mkldnn_list=$(tipc_get infer_params "-o Global.enable_mkldnn")
cpu_threads_list=$(tipc_get infer_params "-o Global.cpu_num_threads")
batch_size_list=$(tipc_get infer_params "-o Global.batch_size")
use_trt_list=$(tipc_get infer_params "-o Global.use_tensorrt" False)
precision_list=$(tipc_get infer_params "-o Global.use_fp16" False)
infer_img_dir=$(tipc_mode_value "$(tipc_get infer_params "-o Global.infer_imgs")" "$MODE")
save_results=$(tipc_get infer_params "-o Global.save_results" True)
benchmark_value=$(tipc_get infer_params "-o Global.enable_benchmark" False)
infer_py=$(tipc_get infer_params infer_py null)
compare_py=$(tipc_get infer_params compare null)
expected_results=$(tipc_mode_value "$(tipc_get infer_params expected_results null)" "$MODE")

mode_overrides=$(tipc_mode_overrides "$MODE")
train_extra=$(tipc_extra_overrides train_params "$MODE")
eval_extra=$(tipc_extra_overrides eval_params "$MODE")
infer_extra=$(tipc_extra_overrides infer_params "$MODE")
[[ $epoch_num == null ]] && epoch_num=""
[[ $infer_img_dir == null ]] && tipc_die "$(tipc_where infer_params "-o Global.infer_imgs"): no images for mode $MODE"
[[ $train_infer_img_dir == null ]] && train_infer_img_dir=$infer_img_dir

LOG_PATH="${TIPC_OUTPUT_ROOT}/${model_name}/${MODE}"
status_log="${LOG_PATH}/results_python.log"

# the data must have been prepared for this mode (prepare.sh writes the link and a mode stamp)
if [[ ! -e ${TIPC_DATA_LINK}/train_list.txt ]]; then
    tipc_die "$SCRIPT: no data at ${TIPC_DATA_LINK}; run first: bash test_tipc/prepare.sh $CONFIG_ARG $MODE"
fi
prepared_mode=$(cat "${TIPC_DATA_ROOT}/tipc_dataset.mode" 2>/dev/null)
if [[ $prepared_mode != "$MODE" ]]; then
    tipc_die "$SCRIPT: the data in ${TIPC_DATA_LINK} was prepared for mode '${prepared_mode:-unknown}', not $MODE; run first: bash test_tipc/prepare.sh $CONFIG_ARG $MODE"
fi
TIPC_CLASS_NUM=$(grep -c '[^[:space:]]' "${TIPC_DATA_LINK}/label_list.txt" 2>/dev/null)
[[ ${TIPC_CLASS_NUM:-0} -gt 0 ]] || tipc_die "$SCRIPT: ${TIPC_DATA_LINK}/label_list.txt is missing or empty; run bash test_tipc/prepare.sh $CONFIG_ARG $MODE"
# the one placeholder of mode_params: the number of classes of the prepared data set
mode_overrides=${mode_overrides//'${TIPC_CLASS_NUM}'/$TIPC_CLASS_NUM}
using_user_data=0
[[ $(cat "${TIPC_DATA_ROOT}/tipc_dataset.source" 2>/dev/null) == user ]] && using_user_data=1

rm -rf "$LOG_PATH"
mkdir -p "$LOG_PATH"
: >"$status_log"
echo "TIPC ${model_name} ${MODE}: config ${CONFIG_ARG}, logs in ${LOG_PATH}"

# ---------------------------------------------------------------------- what this machine has
HAS_CUDA=False
GPU_COUNT=0
HAS_BF16=False
function detect_hardware() {
    # one Python call, only when a listed variant needs to know (GPU entries, GPU inference, bf16)
    local out
    out=$(eval "$python -c \"import paddle; cuda = paddle.device.is_compiled_with_cuda(); print(cuda, paddle.device.cuda.device_count() if cuda else 0, paddle.amp.is_bfloat16_supported('cpu'))\"" 2>/dev/null | tail -n 1)
    read -r HAS_CUDA GPU_COUNT HAS_BF16 <<<"$out"
    if [[ -z $HAS_CUDA ]]; then
        echo "hardware: could not import paddle with '$python' to detect GPUs / bfloat16; GPU and bf16 variants are skipped"
        HAS_CUDA=False GPU_COUNT=0 HAS_BF16=False
    else
        echo "hardware: Paddle compiled with CUDA: ${HAS_CUDA}, GPUs: ${GPU_COUNT}, bfloat16 on CPU: ${HAS_BF16}"
    fi
}
if [[ $gpu_list =~ (^|\|)[0-9] || $use_gpu_list == *True* || $autocast_list == *bf16* ]]; then
    detect_hardware
fi

function gpu_unavailable_reason() {
    # empty when GPU variants can run here
    if [[ $HAS_CUDA != True ]]; then
        echo "this Paddle build has no CUDA support (paddle.device.is_compiled_with_cuda() is False)"
    elif [[ $GPU_COUNT -lt 1 ]]; then
        echo "no GPU is visible"
    fi
}

function amp_unavailable_reason() {
    # $1 autocast, $2 cpu|gpu: empty when the AMP setting can run on that device
    case $1 in
        fp16 | fp16_o2)
            [[ $2 == cpu ]] && echo "float16 AMP needs a GPU (on the CPU use bf16)" ;;
        bf16)
            if [[ $2 == cpu ]]; then
                [[ $HAS_BF16 == True ]] || echo "this CPU / Paddle build does not support bfloat16"
            fi ;;
    esac
}

# ---------------------------------------------------------------------------------- inference
function run_command() {
    # run_command "COMMAND" LOG: run COMMAND with its output in LOG, then report its status
    local cmd="$1 > $2 2>&1"
    eval "$cmd"
    local rc=$?
    status_check $rc "$cmd" "$status_log" "$model_name" "$2"
    return $rc
}

function func_inference() {
    # func_inference MODEL_DIR LOG_PREFIX GT_RESULTS DEVICE_KIND: the predictor with every listed setting,
    # each result compared with GT_RESULTS (tools/infer.py's results of the same weights) when given
    local _model_dir=$1 _prefix=$2 _gt=$3 _kind=$4
    local use_gpu use_mkldnn threads batch_size use_trt precision _log reason
    local -a gpus mkldnns threads_list batches trts precisions
    tipc_split gpus "$use_gpu_list"
    tipc_split mkldnns "$use_mkldnn_list"
    tipc_split threads_list "$cpu_threads_list"
    tipc_split batches "$batch_size_list"
    tipc_split trts "$use_trt_list"
    tipc_split precisions "$precision_list"
    for use_gpu in "${gpus[@]}"; do
        if [[ $use_gpu == False ]]; then
            for use_mkldnn in "${mkldnns[@]}"; do
                for threads in "${threads_list[@]}"; do
                    for batch_size in "${batches[@]}"; do
                        _log="${_prefix}_python_infer_cpu_usemkldnn_${use_mkldnn}_threads_${threads}_batchsize_${batch_size}"
                        run_predictor "$_model_dir" "$_log" "$_gt" \
                            "-o Global.use_gpu=False -o Global.enable_mkldnn=${use_mkldnn} -o Global.cpu_num_threads=${threads} -o Global.batch_size=${batch_size} -o Global.use_tensorrt=False -o Global.use_fp16=False"
                    done
                done
            done
        else
            reason=$(gpu_unavailable_reason)
            if [[ -n $reason ]]; then
                status_skip "GPU inference of ${_prefix##*/} (use_tensorrt ${use_trt_list}, use_fp16 ${precision_list}, batch sizes ${batch_size_list})" "$reason" "$status_log" "$model_name"
                continue
            fi
            for use_trt in "${trts[@]}"; do
                for precision in "${precisions[@]}"; do
                    # fp16 inference goes through TensorRT, as in PaddleClas
                    [[ $precision == True && $use_trt == False ]] && continue
                    for batch_size in "${batches[@]}"; do
                        _log="${_prefix}_python_infer_gpu_usetrt_${use_trt}_precision_${precision}_batchsize_${batch_size}"
                        run_predictor "$_model_dir" "$_log" "$_gt" \
                            "-o Global.use_gpu=True -o Global.use_tensorrt=${use_trt} -o Global.use_fp16=${precision} -o Global.batch_size=${batch_size}"
                    done
                done
            done
        fi
    done
}

function run_predictor() {
    # run_predictor MODEL_DIR LOG_PREFIX GT_RESULTS "SETTINGS"
    local _model_dir=$1 _log=$2 _gt=$3 _settings=$4 set_results="" cmd
    if [[ $save_results == True ]]; then
        set_results="-o Global.save_results=${_log}.jsonl"
    fi
    cmd="${python} ${inference_py} ${_settings} -o Global.inference_model_dir=${_model_dir} -o Global.infer_imgs=${infer_img_dir} -o Global.enable_benchmark=${benchmark_value} ${set_results} ${infer_extra}"
    cmd=${cmd%" "}
    run_command "$cmd" "${_log}.log"
    local rc=$?
    if [[ $rc -eq 0 && $save_results == True && -n $_gt && $compare_py != null ]]; then
        run_command "${python} ${compare_py} --gt ${_gt} --pred ${_log}.jsonl" "${_log}_compare.log"
    fi
}

function run_tools_infer() {
    # run_tools_infer WEIGHTS DEVICE LOG: tools/infer.py's results of the same weights, to compare with
    [[ $infer_py == null || $save_results != True ]] && return 1
    run_command "${python} ${infer_py} -o Global.pretrained_model=$1 -o Global.device=$2 -o Infer.infer_imgs=${train_infer_img_dir} ${mode_overrides}" "$3"
}

function check_expected() {
    # check_expected TOOLS_INFER_LOG TRAIN_LOG EVAL_LOG: compare with (or, with TIPC_SAVE_RESULTS=1,
    # store) the expected results: tools/infer.py's results, the training losses and the eval metrics
    [[ $expected_results == null || $compare_py == null ]] && return
    if ((using_user_data)); then
        echo "note: TIPC_DATA_DIR is set: the stored results ${expected_results} (for the built-in lite data) are not compared"
        return
    fi
    local logs="--train_log $2"
    [[ -f $3 ]] && logs+=" --eval_log $3"
    if [[ ${TIPC_SAVE_RESULTS:-0} == 1 ]]; then
        run_command "${python} ${compare_py%% *} --pred $1 ${logs} --save_expected ${expected_results} --model ${model_name} --mode ${MODE}" "${1%_tools_infer.log}_save_expected.log"
    elif [[ ! -f $expected_results ]]; then
        status_check 1 "compare with stored results: ${expected_results} does not exist (create it with TIPC_SAVE_RESULTS=1 bash ${SCRIPT} ${CONFIG_ARG} ${MODE})" "$status_log" "$model_name" "$expected_results"
    else
        run_command "${python} ${compare_py%% *} --gt ${expected_results} --pred $1 ${logs} --atol 0.001 --metric_atol 0.002" "${1%_tools_infer.log}_expected_compare.log"
    fi
}

# ------------------------------------------------------------------------------ whole_infer
if [[ $MODE == whole_infer ]]; then
    weights="${TIPC_DATA_ROOT}/weights/${model_name}_pretrained" # written by prepare.sh
    if [[ $infer_model_dir == null ]]; then infer_model_dir="${LOG_PATH}/inference"; fi
    gt=""
    if [[ $infer_export == True ]]; then
        if [[ ! -f ${weights}.pdparams && ! -f $weights ]]; then
            tipc_die "$SCRIPT: no weights at ${weights}.pdparams for whole_infer; run first: bash test_tipc/prepare.sh $CONFIG_ARG whole_infer"
        fi
        run_command "${python} ${norm_export} ${export_weight_key}=${weights} -o Global.save_inference_dir=${infer_model_dir} ${mode_overrides}" "${LOG_PATH}/whole_infer_export.log"
        if run_tools_infer "$weights" cpu "${LOG_PATH}/whole_infer_tools_infer.log"; then
            gt="${LOG_PATH}/whole_infer_tools_infer.log"
        fi
    elif [[ ! -d $infer_model_dir ]]; then
        tipc_die "$(tipc_where infer_params infer_model): infer_export is False but the inference model folder ${infer_model_dir} does not exist"
    fi
    func_inference "$infer_model_dir" "${LOG_PATH}/whole_infer" "$gt" cpu
    echo "TIPC ${model_name} ${MODE}: $(grep -c '^Run successfully' "$status_log") succeeded, ${TIPC_FAILED} failed; summary in ${status_log}"
    [[ $TIPC_FAILED -eq 0 ]] && exit 0 || exit 1
fi

# --------------------------------------------------------------------- train -> ... -> predict
if [[ -n $GPU_ID ]]; then
    export CUDA_VISIBLE_DEVICES=$GPU_ID
fi
tipc_split gpus "$gpu_list"
tipc_split autocasts "$autocast_list"
tipc_split trainers "$trainer_list"
for gpu in "${gpus[@]}"; do
    if [[ $gpu == -1 ]]; then
        kind=cpu nproc=1
    elif [[ $gpu == cpux* ]]; then
        kind=cpu nproc=${gpu#cpux}
    else
        kind=gpu nproc=1
    fi
    device_value=cpu
    [[ $kind == gpu ]] && device_value=$train_device_value
    for autocast in "${autocasts[@]}"; do
        for trainer in "${trainers[@]}"; do
            variant="${trainer}_gpus_${gpu}_autocast_${autocast}_nodes_1"
            save_log="${LOG_PATH}/${variant}"
            reason=""
            [[ $kind == gpu ]] && reason=$(gpu_unavailable_reason)
            [[ -z $reason ]] && reason=$(amp_unavailable_reason "$autocast" "$kind")
            if [[ -n $reason ]]; then
                status_skip "$variant (train, eval, export, inference)" "$reason" "$status_log" "$model_name"
                continue
            fi
            if [[ $trainer == to_static_train ]]; then
                run_train="${norm_trainer} ${to_static_trainer}"
            else
                run_train=$(tipc_get train_params "$trainer")
            fi
            run_export=$norm_export

            set_epoch=$(func_set_params "-o Global.epochs" "$epoch_num")
            set_pretrain=$(func_set_params "-o Global.pretrained_model" "$pretrain_value")
            set_batchsize=$(func_set_params "-o DataLoader.Train.sampler.batch_size" "$train_batch_value")
            set_autocast=$(tipc_amp_overrides "$autocast")
            set_device="-o Global.device=${device_value}"
            set_save_model="-o Global.output_dir=${save_log}"
            train_args="${run_train} ${set_device} ${set_save_model} ${set_epoch} ${set_pretrain} ${set_autocast} ${set_batchsize} ${train_extra} ${mode_overrides}"
            if [[ $kind == cpu && $nproc -gt 1 ]]; then
                cmd="${python} -m paddle.distributed.launch --nproc_per_node ${nproc} --log_dir ${save_log}/dist_logs ${train_args}"
            elif [[ $kind == gpu && $gpu == *,* ]]; then
                cmd="${python} -m paddle.distributed.launch --gpus ${gpu} --log_dir ${save_log}/dist_logs ${train_args}"
            elif [[ $kind == gpu ]]; then
                cmd="env CUDA_VISIBLE_DEVICES=${GPU_ID:-$gpu} ${python} ${train_args}"
            else
                cmd="${python} ${train_args}"
            fi
            cmd=$(echo "$cmd" | tr -s ' ')
            rm -rf "$save_log"
            run_command "$cmd" "${save_log}.log"
            train_rc=$?
            if [[ $train_rc -ne 0 && -d ${save_log}/dist_logs ]]; then
                for f in "${save_log}"/dist_logs/workerlog.*; do
                    [[ -f $f ]] && { echo "===== $f"; cat "$f"; } >>"${save_log}.log"
                done
            fi
            if [[ $train_rc -ne 0 ]]; then
                status_skip "${variant} eval, export and inference" "training failed" "$status_log" "$model_name"
                continue
            fi
            weights="${save_log}/${model_name}/${train_model_name}"

            # eval
            if [[ $eval_py != null ]]; then
                run_command "$(echo "${python} ${eval_py} ${export_weight_key}=${weights} ${set_device} ${eval_extra} ${mode_overrides}" | tr -s ' ')" "${save_log}_eval.log"
            fi
            # export
            if [[ $run_export != null ]]; then
                infer_dir="${save_log}/inference"
                run_command "${python} ${run_export} ${export_weight_key}=${weights} -o Global.save_inference_dir=${infer_dir} ${mode_overrides}" "${save_log}_export.log" || continue
                gt=""
                if run_tools_infer "$weights" "$device_value" "${save_log}_tools_infer.log"; then
                    gt="${save_log}_tools_infer.log"
                    if [[ $trainer == norm_train && $gpu == -1 && ($autocast == fp32 || $autocast == null) ]]; then
                        check_expected "$gt" "${save_log}.log" "${save_log}_eval.log"
                    fi
                fi
                func_inference "$infer_dir" "$save_log" "$gt" "$kind"
            fi
        done
    done
done

echo "TIPC ${model_name} ${MODE}: $(grep -c '^Run successfully' "$status_log") succeeded, ${TIPC_FAILED} failed; summary in ${status_log}"
[[ $TIPC_FAILED -eq 0 ]] && exit 0 || exit 1
