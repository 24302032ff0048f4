"""Fine-tuning, EMA, accumulation, clipping, early stop, AMP, URL weights: each on tiny real data."""

from __future__ import annotations

import http.server
import os
import re
import threading

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.pretrained import download
from tests.conftest import run_tool, tiny_config, write_config


def test_ema_accumulation_clipping_and_early_stop(tmp_path, digits_dir):
    out = str(tmp_path / "o")
    cfg = tiny_config(digits_dir, out, epochs=12, accum_steps=2,
                      early_stop={"patience": 2, "min_delta": 0.5, "monitor": "top1"})
    cfg["EMA"] = {"decay": 0.9}
    cfg["Optimizer"]["clip_norm"] = 1.0
    proc = run_tool("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    assert proc.returncode == 0, proc.stdout[-2000:]
    run = os.path.join(out, "PPLCNet_x0_25")
    # a 0.5 top-1 improvement never happens after the first eval: stops after 1 + patience evals
    assert "early stop: no improvement of top1 by more than 0.5 for 2 evaluations (epoch 3)" in proc.stdout
    assert "[Train][Epoch 4/12]" not in proc.stdout
    assert paddle.load(os.path.join(run, "latest.pdstates"))["epoch"] == 3
    for name in ("best_model", "best_model_ema", "latest_ema"):
        assert os.path.isfile(os.path.join(run, name + ".pdparams")), name
    ema = paddle.load(os.path.join(run, "best_model_ema.pdparams"))
    raw = paddle.load(os.path.join(run, "best_model.pdparams"))
    assert not np.allclose(ema["fc.weight"].numpy(), raw["fc.weight"].numpy())
    assert re.search(r"\[Eval\]\[Epoch 1\]\[Avg\]", proc.stdout).start() < proc.stdout.index("best_model_ema")
    # accumulation: the logged learning rate still steps once per iteration (5 iterations/epoch)
    assert "[Iter: 5/5]" in proc.stdout


def test_finetune_new_class_num_with_frozen_backbone(tmp_path, digits_dir):
    src = build_model({"name": "PPLCNet_x0_25", "class_num": 10})
    weights = str(tmp_path / "src.pdparams")
    paddle.save(src.state_dict(), weights)
    out = str(tmp_path / "o")
    cfg = tiny_config(digits_dir, out, epochs=1, pretrained_model=weights)
    cfg["Arch"]["freeze_backbone"] = True
    proc = run_tool("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "fc.weight keeps its fresh initialisation" in proc.stdout
    assert "fc.bias keeps its fresh initialisation" in proc.stdout
    after = paddle.load(os.path.join(out, "PPLCNet_x0_25", "latest.pdparams"))
    np.testing.assert_array_equal(after["conv1.conv.weight"].numpy(), src.conv1.conv.weight.numpy())
    np.testing.assert_array_equal(after["blocks6.1.pw_conv.bn._mean"].numpy(), src.blocks6[1].pw_conv.bn._mean.numpy())
    assert not np.array_equal(after["last_conv.weight"].numpy(), src.last_conv.weight.numpy())


def test_cooldown_pattern_fresh_short_schedule_from_weights(tmp_path, digits_dir):
    first = str(tmp_path / "first")
    assert run_tool("train.py", "-c", write_config(tiny_config(digits_dir, first, epochs=1),
                                                    str(tmp_path / "a.yaml"))).returncode == 0
    cool = tiny_config(digits_dir, str(tmp_path / "cool"), epochs=1,
                       pretrained_model=os.path.join(first, "PPLCNet_x0_25", "best_model"))
    cool["Optimizer"]["lr"] = {"name": "Constant", "learning_rate": 0.001}
    proc = run_tool("train.py", "-c", write_config(cool, str(tmp_path / "b.yaml")))
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "loaded " in proc.stdout and "lr(Constant): 0.00100" in proc.stdout


def test_amp_float16_is_refused_on_cpu(tmp_path, digits_dir):
    cfg = tiny_config(digits_dir, str(tmp_path / "o"), epochs=1)
    cfg["AMP"] = {"use_amp": True, "level": "O1"}
    proc = run_tool("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    assert proc.returncode != 0
    assert "AMP with float16 needs a GPU" in proc.stdout + proc.stderr


@pytest.mark.skipif(not paddle.amp.is_bfloat16_supported("cpu"), reason="this CPU has no bfloat16 support")
def test_amp_bfloat16_runs_on_cpu(tmp_path, digits_dir):
    cfg = tiny_config(digits_dir, str(tmp_path / "o"), epochs=1)
    cfg["AMP"] = {"use_amp": True, "level": "O1", "dtype": "bfloat16"}
    proc = run_tool("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")))
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "AMP on: level O1, dtype bfloat16" in proc.stdout


def test_gpu_device_on_cpu_build_is_a_clear_error(tmp_path, digits_dir):
    if paddle.device.is_compiled_with_cuda():
        pytest.skip("this is a GPU build")
    proc = run_tool("train.py", "-c", write_config(tiny_config(digits_dir, str(tmp_path / "o"), device="gpu"),
                                                   str(tmp_path / "c.yaml")))
    assert proc.returncode != 0 and "this Paddle build has no CUDA support" in proc.stdout + proc.stderr


def test_url_weights_download_once_with_checksum(tmp_path):
    import hashlib

    model = build_model({"name": "PPLCNet_x0_25", "class_num": 3})
    serve = tmp_path / "serve"
    serve.mkdir()
    raw = serve / "w.pdparams"
    paddle.save(model.state_dict(), str(raw))
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    named = serve / f"lcnet-{digest[:10]}.pdparams"
    raw.rename(named)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(serve), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{named.name}"
        cache = str(tmp_path / "cache")
        path = download(url, folder=cache)
        assert os.path.isfile(path) and os.listdir(cache) == [named.name]
        server.shutdown()  # the second use comes from the cache
        assert download(url, folder=cache) == path
        with open(path, "ab") as f:
            f.write(b"corrupt")
        with pytest.raises(ValueError, match="checksum mismatch"):
            download(url, folder=cache)
    finally:
        server.shutdown()


def test_url_weights_without_network_names_url_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PPCLS_CACHE_DIR", str(tmp_path / "cache"))
    url = "http://127.0.0.1:9/nowhere/lcnet.pdparams"  # the discard port: connection refused
    with pytest.raises(ConnectionError) as e:
        build_model({"name": "PPLCNet_x0_25", "class_num": 3, "pretrained": url})
    assert url in str(e.value) and os.path.join(str(tmp_path / "cache"), "lcnet.pdparams") in str(e.value)
