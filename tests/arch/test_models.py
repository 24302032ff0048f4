"""Checks over every registered model, so a new model is tested the day it is registered."""

from __future__ import annotations

import os

import numpy as np
import paddle
import paddle.inference as pi
import pytest

from ppcls.arch import build_model
from ppcls.engine.export import export_model, model_file
from ppcls.registry import MODELS

ALL = [n for n in MODELS.names() if n != "PPLCNet"]  # the generic entry needs Arch.scale
SMALL = 64


def test_registry_has_every_family():
    families = {"PPLCNet_x1_0", "ShuffleNetV2_x1_0", "SqueezeNet1_1", "MobileNeXt_x1_0", "PeleeNet", "ParNet_S"}
    assert families <= set(MODELS.names()), sorted(families - set(MODELS.names()))


@pytest.mark.parametrize("name", ALL)
def test_two_instances_do_not_share_parameters(name):
    paddle.seed(1)
    a = build_model({"name": name, "class_num": 5})
    b = build_model({"name": name, "class_num": 5})
    ids_a = {id(p) for p in a.parameters()}
    assert not ids_a & {id(p) for p in b.parameters()}
    names_a = [p.name for p in a.parameters()]
    assert len(set(names_a)) == len(names_a) and not set(names_a) & {p.name for p in b.parameters()}
    x = paddle.randn([2, 3, SMALL, SMALL])
    a.train()
    b.train()
    assert a(x).shape == [2, 5] and b(x).shape == [2, 5]
    a.eval()
    assert a(x).shape == [2, 5]


@pytest.mark.parametrize("name", ALL)
def test_export_matches_eager(name, tmp_path):
    paddle.seed(2)
    model = build_model({"name": name, "class_num": 7})
    # non-trivial BatchNorm statistics, so that folding them is really exercised
    model.train()
    with paddle.no_grad():
        for _ in range(2):
            model(paddle.randn([4, 3, SMALL, SMALL]) * 2 + 0.5)
    model.eval()
    out_dir = export_model(model, str(tmp_path / "inf"), [3, SMALL, SMALL], name, 7)
    config = pi.Config(model_file(out_dir), os.path.join(out_dir, "inference.pdiparams"))
    config.disable_gpu()
    config.disable_mkldnn()
    predictor = pi.create_predictor(config)
    for batch in (1, 3):
        x = np.random.RandomState(batch).randn(batch, 3, SMALL, SMALL).astype("float32")
        with paddle.no_grad():
            expected = paddle.nn.functional.softmax(model(paddle.to_tensor(x)), axis=-1).numpy()
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(x)
        predictor.run()
        got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        np.testing.assert_allclose(got, expected, atol=1e-4)
