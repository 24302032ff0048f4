#!/bin/bash
# Shared helpers of test_tipc/prepare.sh and test_tipc/test_train_inference_python.sh:
# reading and checking a TIPC config (test_tipc/configs/<Family>/<Name>_train_infer_python.txt),
# building override strings, and reporting each command's status in PaddleClas's wording.
#
# The config format is PaddleClas's: section headers `=====name=====`, `key:value` lines (split at the
# first colon, so values may hold colons), `##` separators, `null:null` placeholders; list values are
# `a|b|c`, and per-mode values are `lite_train_lite_infer=1|whole_train_whole_infer=120`. Lines are
# looked up by key, not by position, so a line may be added, moved or left out (where optional);
# an unknown key, a repeated key or a line that is not `key:value` stops the run naming file and line.

# The stored expected results (test_tipc/results/) compare losses and scores of a few training steps, which
# move with the CPU's instruction set when MKL picks its kernels by CPU (AVX-512 vs AVX2 changed the
# 2nd-epoch losses by up to 0.1). MKL's conditional numerical reproducibility mode makes MKL take the same
# code path on every x86 CPU; a person can override it (MKL_CBWR=AUTO).
export MKL_CBWR=${MKL_CBWR:-COMPATIBLE}

TIPC_MODES=(lite_train_lite_infer lite_train_whole_infer whole_train_whole_infer whole_infer)
TIPC_MODES_TEXT="lite_train_lite_infer, lite_train_whole_infer, whole_train_whole_infer, whole_infer"
TIPC_SECTIONS=(train_params eval_params infer_params mode_params train_benchmark_params infer_benchmark_params)
TIPC_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# TIPC_DATA_ROOT / TIPC_OUTPUT_DIR given relative to where a script was started are made absolute here
# (and exported, for the scripts run_all.sh starts), before tipc_enter_repo changes the directory
[[ -n $TIPC_DATA_ROOT && $TIPC_DATA_ROOT != /* ]] && export TIPC_DATA_ROOT="$PWD/$TIPC_DATA_ROOT"
[[ -n $TIPC_OUTPUT_DIR && $TIPC_OUTPUT_DIR != /* ]] && export TIPC_OUTPUT_DIR="$PWD/$TIPC_OUTPUT_DIR"
# Where prepared data and run logs go (the defaults are relative to the repository root). Separate
# folders let several TIPC runs (or the CI test and a person) work in one checkout at the same time.
TIPC_DATA_ROOT=${TIPC_DATA_ROOT:-./test_tipc/data}
TIPC_OUTPUT_ROOT=${TIPC_OUTPUT_DIR:-./test_tipc/output}
# the prepared data set of the current mode; configs name it ${TIPC_DATASET}
TIPC_DATA_LINK="${TIPC_DATA_ROOT}/tipc_dataset"

# the known keys of each section; any other key of the form `-o Some.config.key` is an extra override
declare -gA TIPC_KNOWN_KEYS=(
    [train_params]="model_name|python|gpu_list|-o Global.device|-o Global.auto_cast|-o Global.epochs|-o Global.output_dir|-o DataLoader.Train.sampler.batch_size|-o Global.pretrained_model|train_model_name|train_infer_img_dir|trainer|norm_train|pact_train|fpgm_train|distill_train|to_static_train"
    [eval_params]="eval"
    [infer_params]="-o Global.save_inference_dir|-o Global.pretrained_model|norm_export|quant_export|fpgm_export|distill_export|kl_quant|export2|pretrained_model_url|infer_model|infer_export|infer_quant|inference|-o Global.use_gpu|-o Global.enable_mkldnn|-o Global.cpu_num_threads|-o Global.batch_size|-o Global.use_tensorrt|-o Global.use_fp16|-o Global.inference_model_dir|-o Global.infer_imgs|-o Global.save_results|-o Global.enable_benchmark|infer_py|compare|expected_results"
    [mode_params]="common|lite_train_lite_infer|lite_train_whole_infer|whole_train_whole_infer|whole_infer"
    [train_benchmark_params]="batch_size|fp_items|epoch|model_type|--profiler_options|flags"
    [infer_benchmark_params]="random_infer_input"
)
# keys every config must have
TIPC_REQUIRED_KEYS=(
    "train_params|model_name" "train_params|python" "train_params|gpu_list" "train_params|-o Global.device"
    "train_params|-o Global.epochs" "train_params|-o Global.output_dir" "train_params|-o Global.pretrained_model"
    "train_params|train_model_name" "train_params|trainer" "train_params|norm_train"
    "eval_params|eval"
    "infer_params|-o Global.save_inference_dir" "infer_params|-o Global.pretrained_model" "infer_params|norm_export"
    "infer_params|inference" "infer_params|-o Global.use_gpu" "infer_params|-o Global.enable_mkldnn"
    "infer_params|-o Global.cpu_num_threads" "infer_params|-o Global.batch_size"
    "infer_params|-o Global.inference_model_dir" "infer_params|-o Global.infer_imgs"
)

# ----------------------------------------------------------------------------------- messages

function tipc_die() {
    # print an error naming what is wrong and stop with exit code 2 (bad input)
    echo "TIPC error: $*" >&2
    exit 2
}

function tipc_is_mode() {
    local m
    for m in "${TIPC_MODES[@]}"; do [[ $1 == "$m" ]] && return 0; done
    return 1
}

function tipc_check_mode() {
    # $1 = the script's name, $2 = the mode given
    if [[ -z $2 ]]; then
        tipc_die "$1: no MODE given; usage: bash $1 CONFIG MODE (MODE: ${TIPC_MODES_TEXT})"
    fi
    if ! tipc_is_mode "$2"; then
        local extra=""
        case $2 in
            klquant_whole_infer | cpp_infer | serving_infer | lite_infer | paddle2onnx_infer | benchmark_train | pact_infer | ptq_infer)
                extra=" (PaddleClas's mode '$2' is not supported by this project)" ;;
        esac
        tipc_die "$1: unknown mode '$2'; expected one of: ${TIPC_MODES_TEXT}${extra}"
    fi
}

# PaddleClas's parsers, kept for users' own scripts: the part before / after the first colon
function func_parser_key() {
    echo "${1%%:*}"
}

function func_parser_value() {
    [[ $1 == *:* ]] && echo "${1#*:}" || echo ""
}

# --------------------------------------------------------------------------------- the parser

function _tipc_key_known() {
    # $1 section, $2 key: 0 when the key is a named key of the section or an extra `-o X.y` override
    _tipc_key_is_named "$1" "$2" && return 0
    [[ $1 != mode_params && $1 != train_benchmark_params && $1 != infer_benchmark_params \
        && $2 =~ ^-o\ [A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$ ]] && return 0
    return 1
}

function _tipc_check_mode_alternatives() {
    # $1 value, $2 where: a value starting with `<mode>=` must be `<mode>=v|<mode>=v...`
    local value=$1 where=$2 piece
    [[ $value =~ ^[a-z_]+= ]] || return 0
    local first=${value%%=*}
    tipc_is_mode "$first" || [[ $first == *_infer || $first == *_train* ]] || return 0
    local IFS='|'
    for piece in $value; do
        if [[ $piece != *=* ]] || ! tipc_is_mode "${piece%%=*}"; then
            tipc_die "$where: per-mode value '$value': '$piece' is not <mode>=<value> with a mode among: ${TIPC_MODES_TEXT}"
        fi
    done
}

function tipc_load_config() {
    # Read and check config file $1; fills TIPC_CFG[section|key]=value, TIPC_LINE[section|key]=line number,
    # TIPC_EXTRA_<section>=(keys of extra `-o` lines, in file order).
    local file=$1
    [[ -n $file ]] || tipc_die "no CONFIG given; usage: bash test_tipc/test_train_inference_python.sh CONFIG MODE"
    [[ -e $file ]] || tipc_die "config file not found: $file"
    [[ -f $file && -r $file ]] || tipc_die "config file is not a readable file: $file"
    TIPC_CONFIG_FILE=$file
    declare -gA TIPC_CFG=() TIPC_LINE=()
    declare -ga TIPC_EXTRA_train_params=() TIPC_EXTRA_eval_params=() TIPC_EXTRA_infer_params=()
    local lineno=0 section="" line key value s found
    while IFS= read -r line || [[ -n $line ]]; do
        lineno=$((lineno + 1))
        line=${line%$'\r'}
        [[ -z ${line//[[:space:]]/} ]] && continue
        if [[ $line =~ ^=+([A-Za-z_]+)=+[[:space:]]*$ ]]; then
            section=${BASH_REMATCH[1]}
            found=0
            for s in "${TIPC_SECTIONS[@]}"; do [[ $s == "$section" ]] && found=1; done
            ((found)) || tipc_die "$file:$lineno: unknown section '$section'; expected one of: ${TIPC_SECTIONS[*]}"
            continue
        fi
        [[ $line == \#* ]] && continue # `##` separators and comments
        if [[ -z $section ]]; then
            tipc_die "$file:$lineno: '$line' comes before the first section header (===...===train_params===...===)"
        fi
        if [[ $line != *:* ]]; then
            tipc_die "$file:$lineno: expected 'key:value', got '$line'"
        fi
        key=${line%%:*}
        value=${line#*:}
        if [[ -z $key || $key != "${key#[[:space:]]}" || $key != "${key%[[:space:]]}" ]]; then
            tipc_die "$file:$lineno: empty key or key with leading/trailing spaces in '$line'"
        fi
        if [[ $value != "${value#[[:space:]]}" || $value != "${value%[[:space:]]}" ]]; then
            tipc_die "$file:$lineno: value with leading/trailing spaces in '$line' (write key:value without spaces around the colon)"
        fi
        if [[ $key == null ]]; then
            [[ $value == null ]] || tipc_die "$file:$lineno: placeholder lines must be 'null:null', got '$line'"
            continue
        fi
        if ! _tipc_key_known "$section" "$key"; then
            tipc_die "$file:$lineno: unknown key '$key' in section $section (known: ${TIPC_KNOWN_KEYS[$section]//|/, }; extra overrides are written '-o Section.key:value')"
        fi
        if [[ -n ${TIPC_LINE["$section|$key"]+x} ]]; then
            tipc_die "$file:$lineno: key '$key' repeats line ${TIPC_LINE["$section|$key"]} of section $section"
        fi
        _tipc_check_mode_alternatives "$value" "$file:$lineno"
        TIPC_CFG["$section|$key"]=$value
        TIPC_LINE["$section|$key"]=$lineno
        if [[ $key == "-o "* && $section != mode_params ]] && ! _tipc_key_is_named "$section" "$key"; then
            eval "TIPC_EXTRA_${section}+=(\"\$key\")"
        fi
    done <"$file"
    [[ $lineno -gt 0 ]] || tipc_die "$file: the file is empty"
    _tipc_apply_set
    # the placeholder ${TIPC_DATASET}: the prepared data set (TIPC_DATA_ROOT/tipc_dataset)
    local k
    for k in "${!TIPC_CFG[@]}"; do
        TIPC_CFG[$k]=${TIPC_CFG[$k]//'${TIPC_DATASET}'/$TIPC_DATA_LINK}
    done
    local req
    for req in "${TIPC_REQUIRED_KEYS[@]}"; do
        [[ -n ${TIPC_CFG[$req]+x} ]] || tipc_die "$file: section ${req%%|*} has no '${req#*|}:...' line"
    done
    _tipc_check_values
}

function _tipc_apply_set() {
    # TIPC_SET='key:value;key:value' replaces config values for this run without editing the file,
    # e.g. TIPC_SET='gpu_list:-1;-o Global.auto_cast:fp32'. A key found in several sections is
    # written section|key (e.g. 'infer_params|-o Global.pretrained_model:...').
    [[ -z ${TIPC_SET:-} ]] && return 0
    local -a items
    local item key value section s hits
    IFS=';' read -r -a items <<<"$TIPC_SET"
    for item in "${items[@]}"; do
        [[ -z ${item//[[:space:]]/} ]] && continue
        [[ $item == *:* ]] || tipc_die "TIPC_SET: '$item' is not 'key:value'"
        key=${item%%:*}
        value=${item#*:}
        section=""
        if [[ $key == *"|"* ]]; then
            section=${key%%|*}
            key=${key#*|}
        else
            hits=0
            for s in "${TIPC_SECTIONS[@]}"; do
                if [[ -n ${TIPC_CFG["$s|$key"]+x} ]]; then
                    section=$s
                    hits=$((hits + 1))
                fi
            done
            ((hits > 1)) && tipc_die "TIPC_SET: key '$key' is in several sections; write it as section|key:value"
        fi
        [[ -n $section && -n ${TIPC_CFG["$section|$key"]+x} ]] || tipc_die "TIPC_SET: '$TIPC_CONFIG_FILE' has no line '$key:...'${section:+ in section $section}"
        _tipc_check_mode_alternatives "$value" "TIPC_SET '$item'"
        TIPC_CFG["$section|$key"]=$value
        TIPC_LINE["$section|$key"]="${TIPC_LINE["$section|$key"]} (set by TIPC_SET)"
    done
}

function _tipc_key_is_named() {
    # 0 when key $2 is one of the named keys of section $1 (not an extra override)
    local IFS='|' k
    for k in ${TIPC_KNOWN_KEYS[$1]}; do [[ $k == "$2" ]] && return 0; done
    return 1
}

function tipc_get() {
    # tipc_get SECTION KEY [DEFAULT]: the raw value
    local k="$1|$2"
    if [[ -n ${TIPC_CFG[$k]+x} ]]; then echo "${TIPC_CFG[$k]}"; else echo "${3-null}"; fi
}

function tipc_where() {
    # "file:line" of a key, for messages
    echo "$TIPC_CONFIG_FILE:${TIPC_LINE["$1|$2"]:-?}"
}

function tipc_mode_value() {
    # tipc_mode_value VALUE MODE: the value for MODE of a per-mode value (null when MODE is not listed);
    # a plain value is the same in every mode
    local value=$1 mode=$2 piece
    if [[ ! $value =~ ^(lite_train_lite_infer|lite_train_whole_infer|whole_train_whole_infer|whole_infer)= ]]; then
        echo "$value"
        return
    fi
    local IFS='|'
    for piece in $value; do
        if [[ ${piece%%=*} == "$mode" ]]; then
            echo "${piece#*=}"
            return
        fi
    done
    echo null
}

function _tipc_check_list() {
    # _tipc_check_list SECTION KEY REGEX WHAT: every |-separated item must match REGEX
    local value item
    value=$(tipc_get "$1" "$2" "")
    [[ -z $value ]] && return 0
    local IFS='|'
    for item in $value; do
        [[ $item =~ $3 ]] || tipc_die "$(tipc_where "$1" "$2"): '$2:$value': '$item' is not $4"
    done
}

function _tipc_check_values() {
    local model
    model=$(tipc_get train_params model_name "")
    [[ $model =~ ^[A-Za-z0-9_.-]+$ ]] || tipc_die "$(tipc_where train_params model_name): model_name '$model' must be a model name (letters, digits, _ . -)"
    _tipc_check_list train_params gpu_list '^(-1|cpux[1-9][0-9]*|[0-9]+(,[0-9]+)*)$' \
        "a gpu_list entry (-1 = CPU, cpuxN = N CPU processes, 0 = GPU 0, 0,1 = GPUs 0 and 1)"
    _tipc_check_list train_params "-o Global.auto_cast" '^(null|fp32|fp16|fp16_o2|bf16)$' \
        "an AMP setting (null or fp32 = none, fp16 = float16 O1, fp16_o2 = float16 O2, bf16 = bfloat16 O1)"
    _tipc_check_list train_params train_model_name '^(latest|best_model|epoch_[0-9]+)$' "latest, best_model or epoch_N"
    local t
    local IFS='|'
    for t in $(tipc_get train_params trainer); do
        [[ -n ${TIPC_CFG["train_params|$t"]+x} ]] || tipc_die "$(tipc_where train_params trainer): trainer '$t' has no '$t:<command>' line in train_params"
        [[ $t == norm_train || $t == to_static_train ]] || \
            tipc_die "$(tipc_where train_params trainer): trainer '$t' (quantization, pruning, distillation) is not supported by this project; use norm_train or to_static_train"
        [[ $(tipc_get train_params "$t") != null ]] || \
            tipc_die "$(tipc_where train_params trainer): trainer '$t' is listed but its line '$t:' is null"
    done
    unset IFS
    _tipc_check_list infer_params "-o Global.use_gpu" '^(True|False)$' "True or False"
    _tipc_check_list infer_params "-o Global.enable_mkldnn" '^(True|False)$' "True or False"
    _tipc_check_list infer_params "-o Global.use_tensorrt" '^(True|False)$' "True or False"
    _tipc_check_list infer_params "-o Global.use_fp16" '^(True|False)$' "True or False"
    _tipc_check_list infer_params "-o Global.cpu_num_threads" '^[1-9][0-9]*$' "a positive number of threads"
    _tipc_check_list infer_params "-o Global.batch_size" '^[1-9][0-9]*$' "a positive batch size"
    _tipc_check_list infer_params infer_export '^(True|False)$' "True or False"
    _tipc_check_list infer_params infer_quant '^(False|null)$' "False (quantized models are not supported)"
    local k
    for k in kl_quant quant_export fpgm_export distill_export; do
        [[ $(tipc_get infer_params "$k") == null ]] || tipc_die "$(tipc_where infer_params "$k"): '$k' is not supported by this project; set it to null"
    done
    local value
    value=$(tipc_get infer_benchmark_params random_infer_input null)
    if [[ $value != null && ! $value =~ ^\[(\{[a-z0-9]+,\[[0-9]+(,[0-9]+)*\]\})(,\{[a-z0-9]+,\[[0-9]+(,[0-9]+)*\]\})*\]$ ]]; then
        tipc_die "$(tipc_where infer_benchmark_params random_infer_input): expected e.g. [{float32,[3,224,224]}], got '$value'"
    fi
    for k in common "${TIPC_MODES[@]}"; do
        value=$(tipc_get mode_params "$k" null)
        if [[ $value != null && ! $value =~ ^(-o\ [A-Za-z_][A-Za-z0-9_.]*=[^[:space:]]*)(\ +-o\ [A-Za-z_][A-Za-z0-9_.]*=[^[:space:]]*)*$ ]]; then
            tipc_die "$(tipc_where mode_params "$k"): expected null or '-o Section.key=value' overrides separated by spaces, got '$value'"
        fi
    done
}

# ------------------------------------------------------------------------------ command pieces

function func_set_params() {
    # PaddleClas's helper: "key=value", or nothing when the key or the value is null/empty
    local key=$1 value=$2
    if [[ -z $key || $key == null || -z $value || $value == null ]]; then
        echo ""
    else
        echo "${key}=${value}"
    fi
}

function tipc_extra_overrides() {
    # the extra `-o Key:value` lines of section $1 for mode $2, as `-o Key=value ...`
    local section=$1 mode=$2 key value out=""
    local -n extras="TIPC_EXTRA_${section}"
    for key in "${extras[@]}"; do
        value=$(tipc_mode_value "${TIPC_CFG["$section|$key"]}" "$mode")
        [[ $value == null || -z $value ]] && continue
        out+=" ${key}=${value}"
    done
    echo "${out# }"
}

function tipc_mode_overrides() {
    # mode_params `common` + the line of mode $1
    local out="" v
    for v in "$(tipc_get mode_params common null)" "$(tipc_get mode_params "$1" null)"; do
        [[ $v != null ]] && out+=" $v"
    done
    echo "${out# }"
}

function tipc_amp_overrides() {
    # -o overrides of an auto_cast setting ($1)
    case $1 in
        null | fp32 | "") echo "-o AMP.use_amp=False" ;;
        fp16) echo "-o AMP.use_amp=True -o AMP.level=O1 -o AMP.dtype=float16" ;;
        fp16_o2) echo "-o AMP.use_amp=True -o AMP.level=O2 -o AMP.dtype=float16" ;;
        bf16) echo "-o AMP.use_amp=True -o AMP.level=O1 -o AMP.dtype=bfloat16" ;;
    esac
}

# ------------------------------------------------------------------------------------ status

TIPC_FAILED=0

function status_check() {
    # status_check EXIT_CODE COMMAND RESULTS_LOG MODEL_NAME LOG_PATH
    # prints and appends PaddleClas's line: Run successfully|failed with command - model - command - log !
    local last_status=$1 run_command=$2 run_log=$3 model_name=$4 log_path=$5 msg
    if [[ $last_status -eq 0 ]]; then
        msg="Run successfully with command - ${model_name} - ${run_command} - ${log_path} !"
    else
        msg="Run failed with command - ${model_name} - ${run_command} - ${log_path} !"
        TIPC_FAILED=$((TIPC_FAILED + 1))
    fi
    echo "$msg" >>"$run_log"
    if [[ -t 1 ]]; then echo -e "\033[33m ${msg} \033[0m"; else echo "$msg"; fi
    if [[ $last_status -ne 0 && -f $log_path ]]; then
        echo "----- last lines of ${log_path} (exit code ${last_status}) -----"
        tail -n 15 "$log_path"
        echo "-----"
    fi
}

function status_skip() {
    # status_skip WHAT REASON RESULTS_LOG MODEL_NAME: a variant that this machine cannot run
    local msg="Skipped - $4 - $1 - reason: $2"
    echo "$msg" >>"$3"
    echo "$msg"
}

function tipc_split() {
    # tipc_split ARRAY_NAME "a|b|c": split a list value at '|' into the named array
    local -n _tipc_out=$1
    IFS='|' read -r -a _tipc_out <<<"$2"
}

# tipc_enter_repo: run from the repository root (the paths of the configs are relative to it)
tipc_enter_repo() {
    cd "$TIPC_REPO_ROOT" || exit 2
}

# tipc_start SCRIPT USAGE CONFIG MODE: the common start of prepare.sh and test_train_inference_python.sh:
# the config path made absolute (relative to where the script was started), then from the repository
# root: the mode checked and the config loaded. Sets TIPC_CONFIG to the absolute config path.
tipc_start() {
    local script=$1 usage=$2 config=$3 mode=$4
    if [[ -n $config && -e $config ]]; then
        config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
    fi
    tipc_enter_repo
    [[ -n $config ]] || tipc_die "$script: no CONFIG given; usage: bash $script $usage"
    tipc_check_mode "$script" "$mode"
    tipc_load_config "$config"
    TIPC_CONFIG=$config
}
