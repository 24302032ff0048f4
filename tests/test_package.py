"""The package is the product: the wheel, the ``ppcls`` command and the Python API.

The wheel test builds ``pip wheel`` from a copy of the sources (so no ``build/`` lands in the
checkout), installs it with ``--no-deps`` into a fresh venv that sees this interpreter's packages
(Paddle etc., nothing downloaded) but not the checkout, and trains the quick start from an empty
folder with the shipped recipe.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import cv2
import numpy as np
import pytest

import ppcls
from tests.conftest import REPO

QUICK = "configs/quick_start/PPLCNet_x0_25_digits.yaml"
COMMANDS = ("train", "eval", "infer", "export", "export_onnx", "predict", "convert", "split", "summary")
SOURCES = ("pyproject.toml", "setup.py", "README.md", "ppcls", "tools", "configs", "deploy")


def _run(cmd, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "output", "dataset", "inference")
    for name in SOURCES:
        path = os.path.join(REPO, name)
        (shutil.copytree(path, src / name, ignore=ignore) if os.path.isdir(path) else shutil.copy(path, src / name))
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(root / "dist")])
    (whl,) = (root / "dist").glob("*.whl")
    return str(whl)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> dict:
    """A fresh venv holding only the wheel; this interpreter's site-packages are visible through a .pth."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)])
    python = str(root / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    with open(os.path.join(purelib, "_parent_venv.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    return {"python": python, "ppcls": str(root / "bin" / "ppcls"), "env": env, "purelib": purelib}


def test_wheel_ships_configs_label_lists_tools_and_deploy(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ppcls/configs/quick_start/PPLCNet_x0_25_digits.yaml" in names
    shipped = {n for n in names if n.startswith("ppcls/configs/")}
    in_repo = {os.path.relpath(os.path.join(d, f), REPO).replace(os.sep, "/")
               for d, _, files in os.walk(os.path.join(REPO, "configs")) for f in files}
    assert {"ppcls/" + p for p in in_repo} == shipped
    assert "ppcls/utils/imagenet1k_label_list.txt" in names
    assert "ppcls/ops/csrc/depthwise_conv.cc" in names  # compiled on first use
    deploy_sources = {os.path.relpath(os.path.join(d, f), REPO).replace(os.sep, "/")
                      for d, _, files in os.walk(os.path.join(REPO, "deploy")) for f in files if f.endswith(".py")}
    assert deploy_sources and deploy_sources <= names, sorted(deploy_sources - names)  # every module, sub-packages too
    assert "ppcls/_tools/tools/train.py" in names and "ppcls/_tools/tools/quantize.py" in names
    assert "deploy/configs/inference_cls.yaml" in names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = re.findall(r"^Requires-Dist: (\S+)", zipfile.ZipFile(wheel).read(meta).decode(), re.M)
    with open(os.path.join(REPO, "requirements.txt")) as f:
        wanted = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert requires == wanted
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ppcls = ppcls.commands:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_ppcls_trains_the_quick_start_from_an_empty_folder(venv, tmp_path):
    where = _run([venv["python"], "-c", "import ppcls, sys; print(ppcls.__file__, 'paddle' in sys.modules)"],
                 cwd=tmp_path, env=venv["env"]).stdout.split()
    assert where[0].startswith(venv["purelib"]) and where[1] == "False"  # the wheel's copy; Paddle not yet
    help_text = _run([venv["ppcls"], "--help"], cwd=tmp_path, env=venv["env"]).stdout
    for command in COMMANDS:
        assert re.search(rf"^  {command}\s", help_text, re.M), help_text
    work = tmp_path / "empty"
    work.mkdir()
    proc = _run([venv["ppcls"], "train", "-c", QUICK, "-o", "Global.epochs=1", "-o", "Global.max_iters_per_epoch=2",
                 "-o", "Global.eval_during_train=False"], cwd=work, env=venv["env"])
    out = proc.stdout + proc.stderr
    assert "[Train][Epoch 1/1][Iter: 2/2]" in out
    assert f"using the one shipped with ppcls: {venv['purelib']}" in out  # which recipe was used is logged
    assert (work / "dataset" / "digits" / "train_list.txt").is_file()  # the digits set, prepared here
    assert (work / "output").is_dir()


def test_ppcls_command_reports_unknown_commands_and_runs_tool_help():
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-m", "ppcls", "trian"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Did you mean 'train'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "ppcls", "split", "--help"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ppcls split")


def test_shipped_files_resolve_from_any_folder(tmp_path, monkeypatch):
    from ppcls._resources import resolve

    monkeypatch.chdir(tmp_path)
    assert resolve(QUICK) == os.path.join(REPO, QUICK)
    assert resolve("ppcls/utils/imagenet1k_label_list.txt") == os.path.join(REPO, "ppcls/utils/imagenet1k_label_list.txt")
    assert resolve("configs/nope.yaml") == "configs/nope.yaml"  # reported as missing by the caller
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "own.yaml").write_text("Global: {}\n")
    assert resolve("configs/own.yaml") == "configs/own.yaml"  # the current folder's file comes first


def test_import_ppcls_does_not_import_paddle():
    code = "import sys, ppcls; assert 'paddle' not in sys.modules, 'paddle imported'; print(ppcls.__all__)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)


def test_create_model_and_list_models():
    import paddle

    names = ppcls.list_models("PPLCNet_*")
    assert "PPLCNet_x0_25" in names and names == sorted(names) and all(n.startswith("PPLCNet_") for n in names)
    assert len(ppcls.list_models()) > len(names)
    model = ppcls.create_model("PPLCNet_x0_25", num_classes=7)
    model.eval()
    assert tuple(model(paddle.zeros([1, 3, 32, 32])).shape) == (1, 7)
    with pytest.raises(Exception, match="PPLCNet_x0_25"):
        ppcls.create_model("PPLCNet_x0_2")  # unknown names suggest the closest


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from skimage import data

    from ppcls.engine.export import export_model
    from tests.deploy.common import EVAL_OPS, SIZE
    from tests.deploy.test_predictor import CLASSES, build

    root = tmp_path_factory.mktemp("predictor")
    images = []
    for name, ext in (("chelsea", ".png"), ("coffee", ".jpg")):
        path = str(root / f"{name}{ext}")
        cv2.imwrite(path, getattr(data, name)()[:, :, ::-1])
        images.append(path)
    model = build("PPLCNet_x0_25", images)  # non-trivial weights: scores differ between images
    folder = export_model(model, str(root / "model"), [3, SIZE, SIZE], "PPLCNet_x0_25", CLASSES,
                          transform_ops=EVAL_OPS, topk=3)
    return folder, images


def test_predictor_gives_the_same_scores_for_a_path_bytes_and_arrays(exported):
    folder, images = exported
    predictor = ppcls.Predictor(folder)
    assert predictor.channel_order == "RGB"
    for path in images:
        by_path = predictor.scores(path)
        with open(path, "rb") as f:
            by_bytes = predictor.scores(f.read())
        bgr = cv2.imread(path)
        by_bgr = predictor.scores(bgr, channel_order="BGR")
        by_rgb = predictor.scores(np.ascontiguousarray(bgr[:, :, ::-1]))
        np.testing.assert_allclose(by_bytes, by_path, rtol=0, atol=1e-6)
        np.testing.assert_allclose(by_bgr, by_path, rtol=0, atol=1e-6)
        np.testing.assert_allclose(by_rgb, by_path, rtol=0, atol=1e-6)
    assert np.abs(predictor.scores(images[0]) - predictor.scores(images[1])).max() > 1e-3  # a real check
    bgr_predictor = ppcls.Predictor(folder, channel_order="bgr")
    np.testing.assert_allclose(bgr_predictor.scores(cv2.imread(images[0])), predictor.scores(images[0]), atol=1e-6)
    results = predictor.predict(images)
    assert [len(r["class_ids"]) for r in results] == [3, 3] and results[0]["file_name"] == images[0]
    assert predictor.predict(images[0])["class_ids"] == results[0]["class_ids"]
    with pytest.raises(ValueError, match="channel_order"):
        ppcls.Predictor(folder, channel_order="RBG")


def test_ppcls_predict_runs_the_deploy_predictor(exported):
    folder, images = exported
    proc = subprocess.run([sys.executable, "-m", "ppcls", "predict", "-o", f"Global.inference_model_dir={folder}",
                           "-o", f"Global.infer_imgs={images[0]}"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO), cwd=os.path.dirname(folder))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"{os.path.basename(images[0])}:\tclass id(s): " in proc.stdout
