"""Write test_tipc/configs/<Family>/<Name>_train_infer_python.txt for every registered model.

    python test_tipc/gen_configs.py            # write (or rewrite) every config
    python test_tipc/gen_configs.py --check    # exit 1 when a config is missing or differs

Each config drives its recipe configs/ImageNet/<Family>/<Name>.yaml; the family, and the input
size of the inference benchmark, are the model's registry metadata (``ppcls.arch.family``), so a
new family needs no edit here. ``python tools/gen_model_files.py`` runs this and also regenerates
the docs tables. The lite mode's size
overrides are worked out from the recipe's transform lists (every op that has a size is set to
LITE_SIZE, a resize_short to LITE_RESIZE), so a recipe with an op this script does not know
stops it with a message instead of training at 224 px by mistake. Hand edits to a generated
config are lost on the next run: change this script, or stop generating that file
(HAND_WRITTEN below).
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import ppcls.arch  # noqa: E402,F401  (registers every backbone)
from ppcls.registry import MODELS  # noqa: E402
from ppcls.utils.config import load_yaml  # noqa: E402

LITE_SIZE = 32
LITE_RESIZE = 36  # 32 * 256 / 224, the ImageNet resize-then-crop ratio
HAND_WRITTEN: set[str] = set()
# per op: the keys that hold an output size (set to LITE_SIZE) or a short-side resize (LITE_RESIZE)
SIZE_KEYS = {
    "RandCropImage": {"size": LITE_SIZE},
    "RandomResizedCrop": {"size": LITE_SIZE},
    "CropImage": {"size": LITE_SIZE},
    "CenterCrop": {"size": LITE_SIZE},
    "ResizeImage": {"resize_short": LITE_RESIZE, "size": LITE_SIZE},
    "TimmAutoAugment": {"img_size": LITE_SIZE},
    "RandAugment": {},
    "AutoAugment": {},
}
SIZE_LIKE = ("size", "img_size", "resize_short", "crop_size", "input_size")
DATA = "${TIPC_DATASET}"  # the prepared data set; the scripts fill it in (test_tipc/data/tipc_dataset)
# the head sized to the prepared data set (test_train_inference_python.sh fills in the number of
# classes of test_tipc/data/tipc_dataset/label_list.txt); whole_infer keeps the recipe's, to load its weights
CLASS_NUM = "-o Arch.class_num=${TIPC_CLASS_NUM}"


def family_of(name: str) -> str:
    """The family folder of model ``name`` (its registry metadata)."""
    family = MODELS.metadata(name).get("family")
    if not family:
        raise SystemExit(f"gen_configs.py: model {name!r} has no family in its registry metadata; register it "
                         "with **FAMILY.entry(...) (ppcls/arch/family.py)")
    return family


def _op_overrides(where: str, ops: list, recipe: str) -> list[str]:
    out = []
    seen: set[str] = set()
    for op in ops or []:
        if not isinstance(op, dict) or not op:
            continue
        name, params = next(iter(op.items()))
        params = params or {}
        if name in seen:
            raise SystemExit(f"gen_configs.py: {recipe}: {where} has {name} twice; the -o override by op name "
                             "would reach only the first; write this config by hand")
        seen.add(name)
        known = SIZE_KEYS.get(name)
        if known is None:
            if any(k in params for k in SIZE_LIKE):
                raise SystemExit(f"gen_configs.py: {recipe}: {where}.{name} has a size but is not in SIZE_KEYS")
            continue
        for key, value in known.items():
            if key in params and params[key] is not None:
                out.append(f"-o {where}.{name}.{key}={value}")
    return out


def lite_overrides(recipe_path: str) -> str:
    cfg = load_yaml(recipe_path)
    channels = (cfg.get("Global") or {}).get("image_shape", [3, 224, 224])[0]
    out = [CLASS_NUM, f"-o Global.image_shape=[{channels},{LITE_SIZE},{LITE_SIZE}]"]
    dl = cfg.get("DataLoader") or {}
    for split in ("Train", "Eval"):
        ds = (dl.get(split) or {}).get("dataset") or {}
        out += _op_overrides(f"DataLoader.{split}.dataset.transform_ops", ds.get("transform_ops"), recipe_path)
        if ds.get("batch_transform_ops"):
            out += _op_overrides(f"DataLoader.{split}.dataset.batch_transform_ops", ds["batch_transform_ops"],
                                 recipe_path)
    out += _op_overrides("Infer.transforms", (cfg.get("Infer") or {}).get("transforms"), recipe_path)
    return " ".join(out)


def recipe_epochs(recipe_path: str) -> int:
    return int((load_yaml(recipe_path).get("Global") or {}).get("epochs", 1))


COMMON = (
    f"-o DataLoader.Train.dataset.image_root={DATA}/ -o DataLoader.Train.dataset.cls_label_path={DATA}/train_list.txt "
    f"-o DataLoader.Eval.dataset.image_root={DATA}/ -o DataLoader.Eval.dataset.cls_label_path={DATA}/val_list.txt "
    f"-o Infer.PostProcess.class_id_map_file={DATA}/label_list.txt"
)


def render(name: str, family: str, recipe: str) -> str:
    recipe_abs = os.path.join(ROOT, recipe)
    lite = lite_overrides(recipe_abs)
    epochs = recipe_epochs(recipe_abs)
    input_size = [int(v) for v in MODELS.metadata(name)["input_size"]]
    recipe_shape = [int(v) for v in (load_yaml(recipe_abs).get("Global") or {}).get("image_shape", input_size)]
    if recipe_shape != input_size:
        raise SystemExit(f"gen_configs.py: {recipe}: Global.image_shape {recipe_shape} differs from the input size "
                         f"{input_size} registered for {name}; make them agree")
    shape = ",".join(map(str, input_size))
    return f"""===========================train_params===========================
model_name:{name}
python:python
gpu_list:-1|cpux2|0|0,1
-o Global.device:gpu
-o Global.auto_cast:fp32|fp16|bf16
-o Global.epochs:lite_train_lite_infer=2|lite_train_whole_infer=1|whole_train_whole_infer={epochs}
-o Global.output_dir:./output/
-o DataLoader.Train.sampler.batch_size:lite_train_lite_infer=8|lite_train_whole_infer=8|whole_train_whole_infer=null
-o Global.pretrained_model:null
train_model_name:latest
train_infer_img_dir:{DATA}/infer
-o Global.max_iters_per_epoch:lite_train_lite_infer=2|lite_train_whole_infer=2|whole_train_whole_infer=null
##
trainer:norm_train
norm_train:tools/train.py -c {recipe} -o Global.seed=1234 -o DataLoader.Train.sampler.shuffle=False -o DataLoader.Train.loader.num_workers=0 -o DataLoader.Train.loader.use_shared_memory=False -o Global.eval_during_train=False -o Global.save_interval=2
pact_train:null
fpgm_train:null
distill_train:null
to_static_train:-o Global.to_static=True
null:null
##
===========================eval_params===========================
eval:tools/eval.py -c {recipe} -o DataLoader.Eval.loader.num_workers=0 -o DataLoader.Eval.loader.use_shared_memory=False
null:null
##
===========================infer_params==========================
-o Global.save_inference_dir:./inference
-o Global.pretrained_model:
norm_export:tools/export_model.py -c {recipe}
quant_export:null
fpgm_export:null
distill_export:null
kl_quant:null
export2:null
pretrained_model_url:null
infer_model:null
infer_export:True
infer_quant:False
inference:deploy/python/predict_cls.py -c deploy/configs/inference_cls.yaml
-o Global.use_gpu:True|False
-o Global.enable_mkldnn:True|False
-o Global.cpu_num_threads:1|2
-o Global.batch_size:1|2
-o Global.use_tensorrt:False
-o Global.use_fp16:False
-o Global.inference_model_dir:../inference
-o Global.infer_imgs:{DATA}/infer
-o Global.save_results:True
-o Global.enable_benchmark:False
infer_py:tools/infer.py -c {recipe}
compare:test_tipc/compare_results.py --atol 0.001
expected_results:lite_train_lite_infer=test_tipc/results/{name}_lite_train_lite_infer.json
null:null
===========================mode_params===========================
common:{COMMON}
lite_train_lite_infer:{lite}
lite_train_whole_infer:{CLASS_NUM}
whole_train_whole_infer:{CLASS_NUM}
whole_infer:null
===========================infer_benchmark_params==========================
random_infer_input:[{{float32,[{shape}]}}]
"""


def registered_models() -> list[str]:
    """Every registered model with a recipe of its own (not a generic constructor such as PPLCNet)."""
    return MODELS.list(generic=False)


def config_files() -> dict[str, str]:
    """Relative path -> text of every generated TIPC config."""
    files = {}
    for name in registered_models():
        family = family_of(name)
        recipe = f"configs/ImageNet/{family}/{name}.yaml"
        if not os.path.isfile(os.path.join(ROOT, recipe)):
            raise SystemExit(f"gen_configs.py: model {name} has no recipe {recipe}")
        if name not in HAND_WRITTEN:
            files[f"test_tipc/configs/{family}/{name}_train_infer_python.txt"] = render(name, family, recipe)
    return files


def stale_files(files: dict[str, str], root: str = ROOT) -> list[str]:
    """The paths of ``files`` whose copy under ``root`` is missing or differs."""
    stale = []
    for rel, text in files.items():
        path = os.path.join(root, rel)
        old = open(path, encoding="utf-8").read() if os.path.isfile(path) else None
        if old != text:
            stale.append(rel)
    return stale


def write_files(files: dict[str, str], root: str = ROOT) -> None:
    """Write each of ``files`` under ``root`` (atomically, folders created)."""
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only check that every config is there and up to date")
    args = p.parse_args(argv)
    files = config_files()
    stale = stale_files(files)
    if not args.check:
        write_files({rel: files[rel] for rel in stale})
    verb = "out of date or missing" if args.check else "written"
    print(f"{len(stale)} config(s) {verb}" + (":\n  " + "\n  ".join(stale) if stale else ""))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
