"""The helpers ppcls and deploy share: one copy in deploy/ (which runs alone), each side's own errors and
wording, and deploy's scripts running from a copy of deploy/ alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from deploy.python import config_syntax
from deploy.python import postprocess as deploy_post
from deploy.python import preprocess as deploy_pre
from deploy.python.errors import DeployConfigError, DeployFileError, UserError
from deploy.python.utils import apply_override as deploy_apply
from ppcls.data.label_list import read_label_list
from ppcls.data.transforms import ops
from ppcls.engine.postprocess import Topk
from ppcls.utils.config import apply_override as ppcls_apply
from ppcls.utils.errors import ConfigError, DataError, MissingFileError
from ppcls.utils.numbers import parse_number

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_one_base_for_both_sides_user_errors():
    assert issubclass(DeployConfigError, UserError) and issubclass(ConfigError, UserError)
    assert not issubclass(DeployConfigError, ConfigError)  # each side keeps its own types


def test_shared_helpers_raise_each_sides_types_with_the_same_sentences(tmp_path):
    with pytest.raises(ConfigError, match="X.y: expected a number or a fraction like 1.0/255.0, got 'abc'"):
        parse_number("abc", "X.y")
    with pytest.raises(DeployConfigError, match="X.y: expected a number or a fraction like 1.0/255.0, got 'abc'"):
        config_syntax.parse_number("abc", "X.y")
    bad = tmp_path / "labels.txt"
    bad.write_text("0 cat\nzero dog\n")
    with pytest.raises(DataError, match=r"labels.txt:2: expected 'class_id name'"):
        read_label_list(str(bad))
    with pytest.raises(DeployConfigError, match=r"labels.txt:2: expected 'class_id name'"):
        deploy_post.read_label_list(str(bad))
    with pytest.raises(MissingFileError, match="label list not found"):
        read_label_list(str(tmp_path / "none.txt"))
    with pytest.raises(DeployFileError, match="PostProcess.Topk.class_id_map_file not found"):
        deploy_post.read_label_list(str(tmp_path / "none.txt"))


def test_topk_is_one_implementation(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("0 cat\n1 dog\n2 big bird\n")
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], np.float32)
    ours, theirs = Topk(2, str(labels), class_num=3), deploy_post.Topk(2, str(labels))
    assert isinstance(ours, deploy_post.Topk)
    assert ours(scores, ["a", "b"]) == theirs(scores, ["a", "b"])
    assert ours(scores)[1] == {"class_ids": [0, 1], "scores": [0.5, 0.25], "label_names": ["cat", "dog"]}
    with pytest.raises(ConfigError, match="Infer.PostProcess.topk: expected a positive integer"):
        Topk(0)
    with pytest.raises(DeployConfigError, match="PostProcess.Topk.topk: expected a positive integer"):
        deploy_post.Topk(0)
    with pytest.raises(DataError, match="Infer.PostProcess.class_id_map_file"):
        ours(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("apply, error", [(ppcls_apply, ConfigError), (deploy_apply, DeployConfigError)])
def test_override_into_an_op_list_is_the_same_on_both_sides(apply, error):
    cfg = {"DataLoader": {"Eval": {"dataset": {"transform_ops": ["ToCHWImage", {"ResizeImage": None}]}}}}
    ops_path = "DataLoader.Eval.dataset.transform_ops"
    apply(cfg, f"{ops_path}.ResizeImage.resize_short".split("."), 256)
    apply(cfg, f"{ops_path}.ToCHWImage".split("."), {})
    assert cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"] == [
        {"ToCHWImage": {}}, {"ResizeImage": {"resize_short": 256}}]
    with pytest.raises(error, match="index out of range"):
        apply(cfg, f"{ops_path}.5.x".split("."), 1)


def test_the_interpolation_tables_are_one_copy():
    assert ops._CV2_INTERP is deploy_pre.CV2_INTERPOLATION
    assert set(ops._PIL_INTERP) == set(deploy_pre.PIL_INTERPOLATION_NAMES)


@pytest.mark.parametrize("build, key", [
    (lambda: ops.ResizeImage(resize_short=8, return_numpy=False), "ResizeImage.return_numpy: only True is supported"),
    (lambda: ops.NormalizeImage(channel_num=4), "NormalizeImage.channel_num: only 3 is supported"),
    (lambda: deploy_pre.ResizeImage(resize_short=8, return_numpy=False),
     "PreProcess.transform_ops.ResizeImage.return_numpy: only True"),
])
def test_paddleclas_keys_this_pipeline_cannot_honour_are_refused_by_name(build, key):
    with pytest.raises((ConfigError, DeployConfigError), match=key):
        build()


def test_decode_to_np_false_from_paddleclas_recipes_is_accepted_and_changes_nothing():
    """PaddleClas recipes write ``DecodeImage: {to_rgb: True, to_np: False}``; its DecodeImage never reads to_np."""
    import cv2

    ok, buf = cv2.imencode(".png", np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3))
    data = buf.tobytes()
    np.testing.assert_array_equal(ops.DecodeImage(to_np=False)(data), ops.DecodeImage()(data))
    np.testing.assert_array_equal(deploy_pre.DecodeImage(to_np=False)(data)[0], deploy_pre.DecodeImage()(data)[0])


def test_paddleclas_keys_with_the_value_this_pipeline_uses_are_accepted():
    img = np.full((4, 6, 3), 200, np.uint8)
    out = ops.NormalizeImage(channel_num=3)(ops.ResizeImage(size=2, return_numpy=True)(img))
    assert out.shape == (3, 2, 2)
    ops.DecodeImage(to_np=True)
    deploy_pre.DecodeImage(to_np=True)


@pytest.mark.parametrize("script", ["predict_cls.py", "quantize.py"])
def test_scripts_run_from_a_copy_of_deploy_alone(tmp_path, script):
    """The scripts' preamble finds the copy's own deploy package, whatever the current folder."""
    shutil.copytree(os.path.join(REPO, "deploy"), tmp_path / "server" / "deploy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    copy = tmp_path / "server" / "deploy" / "python" / script
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = ("import runpy, sys; sys.argv = [sys.argv[1], '--help']\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "mod = sys.modules['deploy.python.errors'].__file__\n"
             "assert mod.startswith(sys.argv[0].rsplit('/deploy/', 1)[0]), mod\n"
             "assert not [m for m in sys.modules if m.split('.')[0] in ('ppcls', 'errors', 'utils')]\n")
    for cmd in ([sys.executable, str(copy), "--help"], [sys.executable, "-c", check, str(copy)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
