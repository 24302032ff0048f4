#!/bin/bash
# Prepare data (and, for whole_infer, weights) for one TIPC config and mode, without network access.
#
#   bash test_tipc/prepare.sh CONFIG MODE
#
# Data: test_tipc/data/tipc_dataset (configs: ${TIPC_DATASET}) becomes a link to the mode's data set
# (built once, then reused; TIPC_DATA_ROOT=/other/folder puts data, link and weights there instead):
#   lite_train_lite_infer, lite_train_whole_infer -> test_tipc/data/lite_data  (6 small classes)
#   whole_train_whole_infer, whole_infer          -> test_tipc/data/whole_data (14 classes, ~2,300 images)
#   TIPC_DATA_DIR=/path (any mode)                -> test_tipc/data/user_data  (your folder, read only:
#       class sub-folders, or train_list.txt + val_list.txt [+ label_list.txt] as in PaddleClas)
# Weights for whole_infer (test_tipc/data/weights/<model_name>_pretrained.pdparams), first found of:
#   TIPC_WEIGHTS=/path/to/weights[.pdparams]   a local file, copied
#   TIPC_WEIGHTS_URL=https://...               downloaded (the only download this script ever makes)
#   pretrained_model_url:<url> in the config   downloaded (the shipped configs say null)
#   TIPC_WEIGHTS=random                        randomly initialised weights, well conditioned
#                                              (test_tipc/random_weights.py): checks the
#                                              export/inference chain at full size, not accuracy
# See test_tipc/README.md.

set -f
MODE=$2
SCRIPT="test_tipc/prepare.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common_func.sh"
tipc_start "$SCRIPT" "CONFIG MODE" "$1" "$MODE"
CONFIG_ARG=$TIPC_CONFIG
model_name=$(tipc_get train_params model_name)
python=$(tipc_get train_params python)

DATA_ROOT=$TIPC_DATA_ROOT
need_weights=0
if [[ $MODE == whole_infer && $(tipc_get infer_params infer_export True) == True ]]; then
    need_weights=1
    target="${DATA_ROOT}/weights/${model_name}_pretrained.pdparams"
    if [[ -z $TIPC_WEIGHTS && -z $TIPC_WEIGHTS_URL && $(tipc_get infer_params pretrained_model_url null) == null && ! -f $target ]]; then
        tipc_die "$SCRIPT: whole_infer needs weights for $model_name and none were given. Pass TIPC_WEIGHTS=/path/to/${model_name}.pdparams, TIPC_WEIGHTS_URL=https://... (downloaded), or TIPC_WEIGHTS=random (randomly initialised: checks the chain, not accuracy); or put them at $target"
    fi
fi
mkdir -p "$DATA_ROOT"

# ------------------------------------------------------------------------------------ data
if [[ -n $TIPC_DATA_DIR ]]; then
    [[ -d $TIPC_DATA_DIR ]] || tipc_die "$SCRIPT: TIPC_DATA_DIR=$TIPC_DATA_DIR is not a folder"
    kind=user
    data_dir="${DATA_ROOT}/user_data"
    eval "$python test_tipc/make_data.py user --out \"\$data_dir\" --source \"\$TIPC_DATA_DIR\"" || tipc_die "$SCRIPT: could not build the data set from TIPC_DATA_DIR=$TIPC_DATA_DIR"
else
    case $MODE in
        lite_train_lite_infer | lite_train_whole_infer) kind=lite ;;
        *) kind=whole ;;
    esac
    data_dir="${DATA_ROOT}/${kind}_data"
    eval "$python test_tipc/make_data.py $kind --out \"\$data_dir\"" || tipc_die "$SCRIPT: could not build the $kind data set in $data_dir"
fi
ln -sfn "$(basename "$data_dir")" "$TIPC_DATA_LINK"
echo "$MODE" >"${DATA_ROOT}/tipc_dataset.mode"
[[ $kind == user ]] && echo user >"${DATA_ROOT}/tipc_dataset.source" || echo builtin >"${DATA_ROOT}/tipc_dataset.source"
echo "data: ${TIPC_DATA_LINK} -> $(basename "$data_dir") (mode ${MODE})"

# --------------------------------------------------------------------------------- weights
if ((need_weights)); then
    mkdir -p "${DATA_ROOT}/weights"
    url=${TIPC_WEIGHTS_URL:-}
    config_url=$(tipc_get infer_params pretrained_model_url null)
    [[ -z $url && $config_url != null ]] && url=$config_url
    yaml=$(echo "$(tipc_get infer_params norm_export)" | sed -n 's/.*-c \([^ ]*\).*/\1/p')
    if [[ -n $TIPC_WEIGHTS && $TIPC_WEIGHTS != random ]]; then
        src=$TIPC_WEIGHTS
        [[ -f $src ]] || src="${TIPC_WEIGHTS}.pdparams"
        [[ -f $src ]] || tipc_die "$SCRIPT: TIPC_WEIGHTS=$TIPC_WEIGHTS: no such file (nor ${TIPC_WEIGHTS}.pdparams)"
        cp "$src" "${target}.tmp" && mv "${target}.tmp" "$target" || tipc_die "$SCRIPT: could not copy $src to $target"
        echo "weights: copied $src to $target"
    elif [[ -z $TIPC_WEIGHTS && -n $url ]]; then
        echo "weights: downloading $url"
        eval "$python -c \"import shutil, sys; sys.path.insert(0, '.'); from ppcls.arch.pretrained import download; p = download(sys.argv[1]); shutil.copyfile(p, sys.argv[2] + '.tmp'); import os; os.replace(sys.argv[2] + '.tmp', sys.argv[2])\" \"\$url\" \"\$target\"" \
            || tipc_die "$SCRIPT: could not download the weights from $url"
        echo "weights: $url -> $target"
    elif [[ $TIPC_WEIGHTS == random ]]; then
        [[ -n $yaml ]] || tipc_die "$(tipc_where infer_params norm_export): cannot find '-c CONFIG.yaml' in norm_export"
        eval "$python test_tipc/random_weights.py \"\$yaml\" \"\$target\" \"\$TIPC_DATA_LINK\"" \
            || tipc_die "$SCRIPT: could not write random weights for $model_name"
    else
        echo "weights: using $target"
    fi
fi
echo "prepare: ${model_name} ${MODE} ready"
