"""deploy/ preprocessing, post-processing and config handling (no model needed)."""

from __future__ import annotations

import ast
import json
import os

import cv2
import numpy as np
import pytest

from deploy.python.postprocess import PostProcessor, Topk
from deploy.python.preprocess import ImageDecodeError, Preprocessor
from deploy.python.utils import (
    DeployConfigError,
    check_global,
    load_config,
    normalize_postprocess,
    write_json_lines,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NORM = {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    """scikit-image's real photos (and a grayscale one) written as JPEG/PNG files."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("astronaut", "chelsea", "coffee"):
        path = str(folder / f"{name}.jpg")
        cv2.imwrite(path, getattr(data, name)()[:, :, ::-1])
        paths.append(path)
    gray = str(folder / "camera.png")
    cv2.imwrite(gray, data.camera())
    paths.append(gray)
    return paths


PIPELINES = {
    "short-crop-hwc": [{"ResizeImage": {"resize_short": 72}}, {"CropImage": {"size": 64}},
                       {"NormalizeImage": {**NORM, "order": ""}}, {"ToCHWImage": None}],
    "size-chw": [{"ResizeImage": {"size": [48, 40]}}, {"NormalizeImage": {**NORM, "order": "chw"}}],
    "bicubic-fraction": [{"ResizeImage": {"resize_short": 70, "interpolation": "bicubic"}},
                         {"CropImage": {"size": [60, 56]}},
                         {"NormalizeImage": {"scale": 0.00392157, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                                             "order": ""}}, {"ToCHWImage": None}],
    "area-bgr": [{"DecodeImage": {"to_rgb": False}}, {"ResizeImage": {"size": 50, "interpolation": "area"}},
                 {"NormalizeImage": {**NORM, "order": ""}}, {"ToCHWImage": None}],
    "pil-resize": [{"ResizeImage": {"resize_short": 66, "backend": "pil"}}, {"CropImage": {"size": 64}},
                   {"NormalizeImage": {**NORM, "order": ""}}, {"ToCHWImage": None}],
    "pil-decode": [{"DecodeImage": {"backend": "pil"}}, {"ResizeImage": {"resize_short": 64}},
                   {"CropImage": {"size": 64}}, {"NormalizeImage": {**NORM, "order": "chw"}}],
    # ends HWC: both sides hand the model CHW (the one layout rule, deploy.python.preprocess.ends_chw)
    "fp16-hwc-out": [{"ResizeImage": {"size": 32}}, {"NormalizeImage": {**NORM, "order": "", "output_fp16": True}}],
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_deploy_preprocessing_equals_ppcls_eval_transforms(photos, name):
    from ppcls.data.transforms import build_transforms

    ops = PIPELINES[name]
    train_side = ops if "DecodeImage" in ops[0] else [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, *ops]
    reference = build_transforms(train_side)
    pre = Preprocessor(ops)
    data = [open(p, "rb").read() for p in photos]
    chw = reference.ends_chw()
    assert chw is (name != "fp16-hwc-out")
    for raw in data:
        expected = reference.to_model_layout(reference(raw), chw)  # what training and tools/infer.py feed the model
        got = pre(raw)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    if name != "short-crop-hwc":
        return
    batch = pre.batch(data)  # the batch path (reused buffer) gives the same arrays
    np.testing.assert_array_equal(batch, np.stack([reference(raw) for raw in data]))
    again = pre.batch(data[:2])
    assert again.shape[0] == 2 and np.shares_memory(again, batch)


def test_rgb_arrays_are_accepted_as_rgb(photos):
    ops = PIPELINES["short-crop-hwc"]
    pre = Preprocessor(ops)
    raw = open(photos[0], "rb").read()
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(pre(rgb), pre(raw))


def test_preprocessing_errors_name_the_problem(photos):
    with pytest.raises(DeployConfigError, match="unknown op 'ResizeImg'.*Did you mean: ResizeImage"):
        Preprocessor([{"ResizeImg": {"size": 3}}])
    with pytest.raises(DeployConfigError, match="ResizeImage: unknown key 'sise'"):
        Preprocessor([{"ResizeImage": {"sise": 3}}])
    with pytest.raises(DeployConfigError, match="random"):
        Preprocessor([{"ResizeImage": {"size": 3, "interpolation": "random"}}])
    with pytest.raises(DeployConfigError, match="must come before NormalizeImage"):
        Preprocessor([{"NormalizeImage": {}}, {"CropImage": {"size": 3}}])
    pre = Preprocessor(PIPELINES["short-crop-hwc"])
    with pytest.raises(ImageDecodeError):
        pre(b"definitely not an image")
    with pytest.raises(ImageDecodeError):
        pre(b"")
    small = Preprocessor([{"CropImage": {"size": 4000}}])
    with pytest.raises(ValueError, match="smaller than the crop"):
        small(open(photos[0], "rb").read())
    varying = Preprocessor([{"ResizeImage": {"resize_short": 32}}, {"NormalizeImage": {"order": ""}}, {"ToCHWImage": None}])
    with pytest.raises(ValueError, match="batch_size 1"):
        varying.batch([open(p, "rb").read() for p in photos[:2]])  # 512x512 and 300x451 differ


def test_topk_and_postprocess_forms(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("0 cat\n1 dog\n2 tabby cat\n")
    scores = np.array([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]], dtype=np.float32)
    out = Topk(topk=2, class_id_map_file=str(labels))(scores, ["a.jpg", "b.jpg"])
    assert out[0] == {"class_ids": [1, 2], "scores": [0.6, 0.3], "file_name": "a.jpg", "label_names": ["dog", "tabby cat"]}
    assert out[1]["class_ids"] == [0, 1]  # ties: the smaller id first
    # PaddleClas's two spellings of PostProcess give the same processor
    old = normalize_postprocess({"name": "Topk", "topk": 2, "class_id_map_file": str(labels)}, "PostProcess")
    new = normalize_postprocess({"main_indicator": "Topk", "Topk": {"topk": 2, "class_id_map_file": str(labels)}},
                                "PostProcess")
    assert PostProcessor(old)(scores) == PostProcessor(new)(scores)
    # logits exports: softmax first
    logits = np.log(scores)
    assert PostProcessor(new, softmax_first=True)(logits)[0]["scores"] == [0.6, 0.3]
    with pytest.raises(DeployConfigError, match="PostProcess.Topk.topk"):
        Topk(topk=0)
    with pytest.raises(FileNotFoundError, match="class_id_map_file"):
        Topk(class_id_map_file=str(tmp_path / "missing.txt"))
    with pytest.raises(DeployConfigError, match="PostProcess.Top: unknown op"):
        PostProcessor({"Top": {}})


def test_save_pre_label_copies_into_class_folders(tmp_path, photos):
    post = PostProcessor({"Topk": {"topk": 1}, "SavePreLabel": {"save_dir": str(tmp_path / "sorted")}})
    scores = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    result = post(scores, photos[:2])
    assert [r["class_ids"] for r in result] == [[1], [0]]
    assert os.path.isfile(tmp_path / "sorted" / "1" / os.path.basename(photos[0]))
    assert os.path.isfile(tmp_path / "sorted" / "0" / os.path.basename(photos[1]))
    with pytest.raises(DeployConfigError, match="save_dir"):
        PostProcessor({"SavePreLabel": {}})


def test_overrides_and_global_validation(tmp_path):
    cfg = load_config(os.path.join(REPO, "deploy", "configs", "inference_cls.yaml"), [
        "Global.batch_size=4", "Global.enable_mkldnn=False", "Global.infer_imgs=[a.jpg, b.jpg]",
        "PreProcess.transform_ops=[{ResizeImage: {resize_short: 80}}, {CropImage: {size: 64}}]",
        "PreProcess.transform_ops.ResizeImage.resize_short=90", "PreProcess.transform_ops.1.size=60",
        "PostProcess.Topk.topk=3",
    ])
    g = check_global(cfg["Global"])
    assert g["batch_size"] == 4 and g["enable_mkldnn"] is False and g["infer_imgs"] == ["a.jpg", "b.jpg"]
    assert cfg["PreProcess"]["transform_ops"] == [{"ResizeImage": {"resize_short": 90}}, {"CropImage": {"size": 60}}]
    assert cfg["PostProcess"] == {"Topk": {"topk": 3}}
    with pytest.raises(DeployConfigError, match="unknown section 'Globl'.*Did you mean: Global"):
        load_config(None, ["Globl.batch_size=1"])
    with pytest.raises(DeployConfigError, match="Section.key=value"):
        load_config(None, ["Global.batch_size"])
    with pytest.raises(DeployConfigError, match="unknown key Global.batchsize.*Did you mean: batch_size"):
        check_global({"batchsize": 2})
    with pytest.raises(DeployConfigError, match="Global.batch_size: expected int, got 'two'"):
        check_global({"batch_size": "two"})
    with pytest.raises(DeployConfigError, match="Global.backend: expected one of paddle, onnxruntime, openvino, got 'tvm'"):
        check_global({"backend": "tvm"})
    assert check_global({"use_onnx": True})["backend"] == "onnxruntime"


def test_json_lines_written_atomically(tmp_path):
    path = tmp_path / "out" / "r.jsonl"
    write_json_lines(str(path), [{"a": 1}, {"b": [1, 2]}])
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"a": 1}, {"b": [1, 2]}]
    assert os.listdir(path.parent) == ["r.jsonl"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_deploy_does_not_import_ppcls():
    """deploy/ must run when copied alone: no module under it imports ppcls."""
    for root, _, files in os.walk(os.path.join(REPO, "deploy")):
        for f in files:
            if not f.endswith(".py"):
                continue
            tree = ast.parse(open(os.path.join(root, f), encoding="utf-8").read())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                assert not any(n == "ppcls" or n.startswith("ppcls.") for n in names), f"{f} imports {names}"


def test_one_layout_rule_for_training_infer_and_deploy(photos, tmp_path):
    """An HWC-ending pipeline is transposed for the model on every side; a second CHW conversion is refused
    on every side with the op's position."""
    from deploy.python.errors import DeployConfigError
    from ppcls.data.transforms import build_transforms
    from ppcls.engine.infer import preprocess
    from ppcls.utils.errors import ConfigError

    hwc = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 32}}, {"NormalizeImage": {**NORM, "order": ""}}]
    infer_side = preprocess(photos[:2], build_transforms(hwc))  # tools/infer.py's path
    deploy_side = Preprocessor(hwc).batch([open(p, "rb").read() for p in photos[:2]])
    assert infer_side.shape == deploy_side.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(infer_side, deploy_side, rtol=0, atol=1e-6)
    twice = [*hwc[:2], {"NormalizeImage": {**NORM, "order": "chw"}}, {"ToCHWImage": None}]
    with pytest.raises(ConfigError, match=r"Infer.transforms.3 \(ToCHWImage\): the image is already CHW"):
        preprocess(photos[:1], build_transforms(twice))
    with pytest.raises(DeployConfigError, match=r"PreProcess.transform_ops.3 \(ToCHWImage\): the image is already CHW"):
        Preprocessor(twice)
