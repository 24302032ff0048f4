"""``Arch.pretrained: True`` / ``use_ssld`` / paths, the cache, tools/convert_weights.py, and
model options that travel with the weights (checkpoints, export)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import numpy as np
import paddle
import paddle.inference as pi
import pytest

from ppcls.arch import build_model
from ppcls.arch.pretrained import cached_path
from ppcls.arch.weights import META_KEY, WeightsError
from ppcls.engine.checkpoint import Checkpointer
from ppcls.engine.config import validate_config
from ppcls.engine.export import export_model, model_file
from ppcls.registry import MODELS
from ppcls.utils.config import ConfigError
from tests.arch.weights.fixture_utils import input_batch
from tests.conftest import run_tool
from tests.reference import paddleclas_ref

BATCH = input_batch(1, (2, 3, 64, 64))
LCNET = "PPLCNet_x0_25"
LCNET_URL = f"https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/legendary_models/{LCNET}_pretrained.pdparams"


def _run(model: paddle.nn.Layer, x: np.ndarray = BATCH) -> np.ndarray:
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """An empty weights cache and no network: any download attempt fails and is recorded."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PPCLS_CACHE_DIR", str(cache))
    tried: list[str] = []

    def no_network(url, *args, **kwargs):
        tried.append(url if isinstance(url, str) else url.full_url)
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return cache, tried


@pytest.fixture(scope="module")
def lcnet_file(tmp_path_factory):
    """A PaddleClas PP-LCNet x0.25 file of random weights and PaddleClas's own model."""
    path = str(tmp_path_factory.mktemp("pc") / f"{LCNET}_pretrained.pdparams")
    return path, paddleclas_ref.random_checkpoint(LCNET, path, seed=3, batch=BATCH)


def test_registry_holds_paddleclas_addresses():
    entries = MODELS.metadata(LCNET)["weights"]
    assert [e.url for e in entries] == [LCNET_URL]
    tags = {e.tag for e in MODELS.metadata("PPLCNet_x1_0")["weights"]}
    assert tags == {"imagenet", "ssld"}
    assert MODELS.list("PPLCNet_x*") == [f"PPLCNet_x{w}" for w in
                                         ("0_25", "0_35", "0_5", "0_75", "1_0", "1_5", "2_0", "2_5")]


def test_pretrained_true_loads_a_cached_file_without_network(offline, lcnet_file):
    cache, tried = offline
    path, reference = lcnet_file
    cache.mkdir()
    target = cached_path(LCNET_URL)
    assert target == os.path.join(str(cache), f"{LCNET}_pretrained.pdparams")
    with open(path, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())
    model = build_model({"name": LCNET, "pretrained": True})
    assert tried == []  # nothing downloaded: the cache answered
    assert model.publisher_options == {"dropout_mode": "downscale_in_infer"}
    np.testing.assert_allclose(_run(model), _run(reference), rtol=0, atol=1e-4)


def test_pretrained_true_without_network_names_url_and_cache_path(offline):
    cache, tried = offline
    with pytest.raises(ConnectionError) as e:
        build_model({"name": LCNET, "pretrained": True})
    assert tried == [LCNET_URL]
    assert LCNET_URL in str(e.value) and os.path.join(str(cache), f"{LCNET}_pretrained.pdparams") in str(e.value)
    assert not cache.exists() or os.listdir(cache) == []  # no partial download left behind


def test_use_ssld_picks_the_ssld_file(offline):
    _, tried = offline
    with pytest.raises(ConnectionError):
        build_model({"name": "PPLCNet_x0_5", "pretrained": True, "use_ssld": True})
    assert tried == [LCNET_URL.replace(LCNET, "PPLCNet_x0_5").replace("_pretrained", "_ssld_pretrained")]


def test_use_ssld_without_a_published_file_names_the_widths(offline):
    with pytest.raises(ValueError, match="PPLCNet_x0_5, PPLCNet_x1_0, PPLCNet_x2_5; PPLCNet_x0_25 has none"):
        build_model({"name": LCNET, "pretrained": True, "use_ssld": True})


@pytest.mark.parametrize("name", ["ParNet_S", "MobileNeXt_x0_5"])
def test_no_published_file_names_the_converter(offline, name):
    with pytest.raises(ValueError, match=rf"no published ImageNet weights .* {name}.*tools/convert_weights.py"):
        build_model({"name": name, "pretrained": True})


@pytest.mark.parametrize("arch, message", [
    ({"use_ssld": True}, "Arch.use_ssld: True selects"),
    ({"use_ssld": "yes", "pretrained": True}, "Arch.use_ssld: expected True or False"),
    ({"pretrained": 3}, "Arch.pretrained: expected True"),
])
def test_config_refuses_bad_weight_keys(arch, message):
    cfg = {"Global": {}, "Arch": {"name": LCNET, **arch}}
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_pretrained_model_wins_and_arch_pretrained_is_not_read(offline, lcnet_file, caplog):
    _, tried = offline
    path, reference = lcnet_file
    with caplog.at_level("INFO"):
        model = build_model({"name": LCNET, "pretrained": True}, weights=path)
    assert tried == []
    assert "Arch.pretrained (True) is not read" in caplog.text
    np.testing.assert_allclose(_run(model), _run(reference), rtol=0, atol=1e-4)


def test_checkpoints_carry_the_publishers_options(tmp_path, lcnet_file):
    path, reference = lcnet_file
    model = build_model({"name": LCNET, "pretrained": path})
    Checkpointer(str(tmp_path)).save("latest", model, None, {"epoch": 1})
    stored = paddle.load(str(tmp_path / "latest.pdparams"))
    assert stored[META_KEY]["arch_options"] == {"dropout_mode": "downscale_in_infer"}
    again = build_model({"name": LCNET}, weights=str(tmp_path / "latest"))
    assert again.publisher_options == {"dropout_mode": "downscale_in_infer"}
    np.testing.assert_allclose(_run(again), _run(reference), rtol=0, atol=1e-4)


def test_explicit_option_wins_with_a_warning(lcnet_file, caplog):
    path, _ = lcnet_file
    with caplog.at_level("WARNING"):
        model = build_model({"name": LCNET, "pretrained": path, "dropout_mode": "upscale_in_train"})
    assert model.publisher_options == {}
    assert "Arch.dropout_mode: 'upscale_in_train' kept as configured" in caplog.text


def test_file_of_another_model_stops_before_training(tmp_path, lcnet_file):
    path, _ = lcnet_file
    with pytest.raises(WeightsError, match=r"format 'paddleclas'.*PPLCNet model; the model is ShuffleNetV2"):
        build_model({"name": "ShuffleNetV2_x0_5", "pretrained": path})
    junk = tmp_path / "junk.pdparams"
    paddle.save({"a.weight": np.zeros([2, 2], "float32")}, str(junk))
    with pytest.raises(WeightsError, match="no known weights format.*Known formats: ppcls, paddleclas, parnet"):
        build_model({"name": LCNET, "pretrained": str(junk)})


def test_export_gives_paddleclas_scores(tmp_path, lcnet_file):
    """Deploy scores of our export equal PaddleClas's model (its export is softmax(forward))."""
    path, reference = lcnet_file
    model = build_model({"name": LCNET, "pretrained": path})
    model.eval()
    out_dir = export_model(model, str(tmp_path / "inf"), [3, 64, 64], LCNET, 1000)
    config = pi.Config(model_file(out_dir), os.path.join(out_dir, "inference.pdiparams"))
    config.disable_gpu()
    predictor = pi.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(BATCH.shape))
    handle.copy_from_cpu(BATCH)
    predictor.run()
    scores = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    expected = paddle.nn.functional.softmax(paddle.to_tensor(_run(reference)), axis=-1).numpy()
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-4)
    assert (scores.argmax(1) == expected.argmax(1)).all()


def test_convert_weights_tool(tmp_path, lcnet_file):
    path, reference = lcnet_file
    out = str(tmp_path / "converted.pdparams")
    proc = run_tool("convert_weights.py", "--src", path, "--model", LCNET, "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"read {path} as format 'paddleclas' (PPLCNet)" in proc.stdout
    assert "mapped 146 tensors (8 renamed)" in proc.stdout
    assert "blocks6.0.se.conv1.weight -> blocks6.0.se.reduce.weight" in run_tool(
        "convert_weights.py", "--src", path, "--model", LCNET, "--out", out, "--list").stdout
    assert "dropout_mode: 'downscale_in_infer'" in proc.stdout
    stored = paddle.load(out)
    assert stored[META_KEY]["source_format"] == "paddleclas"
    model = build_model({"name": LCNET}, weights=out)  # the options come back from the file
    np.testing.assert_allclose(_run(model), _run(reference), rtol=0, atol=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--model", "PPLCNet_x9"], "unknown model name 'PPLCNet_x9'"),
    (["--model", "ShuffleNetV2_x1_0"], "is a checkpoint of a PPLCNet model"),
    (["--model", LCNET, "--format", "torchvision"], "was read as format 'torchvision'"),
    (["--model", LCNET, "--class_num", "10"], "pass --class_num with the file's class count"),
])
def test_convert_weights_refuses_with_one_line(tmp_path, lcnet_file, args, message):
    path, _ = lcnet_file
    out = tmp_path / "out.pdparams"
    proc = run_tool("convert_weights.py", "--src", path, "--out", str(out), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not out.exists()


def test_torch_is_needed_only_for_torch_files(tmp_path):
    import subprocess
    import sys

    import torch

    from tests.conftest import REPO

    src = tmp_path / "squeezenet1_1.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(src))
    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker.parent))
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "convert_weights.py"), "--src", str(src),
                           "--model", "SqueezeNet1_1", "--out", str(tmp_path / "o.pdparams")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "pip install torch" in proc.stdout + proc.stderr
    code = "import sys, ppcls.engine.runner, ppcls.arch.weights; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=300).returncode == 0
