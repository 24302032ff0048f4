"""Checks over every registered model, so a new model is tested the day it is registered."""

from __future__ import annotations

import os

import numpy as np
import paddle
import paddle.inference as pi
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.mobilenext import MobileNeXt
from ppcls.arch.backbone.parnet import ParNet
from ppcls.arch.backbone.peleenet import PeleeNet
from ppcls.arch.backbone.pp_lcnet import PPLCNet
from ppcls.arch.backbone.shufflenet_v2 import ShuffleNetV2
from ppcls.arch.backbone.squeezenet import SqueezeNet
from ppcls.engine.export import export_model, model_file
from ppcls.registry import MODELS
from ppcls.utils.flops import count_params

ALL = [n for n in MODELS.names() if n != "PPLCNet"]  # the generic entry needs Arch.scale
SMALL = 64

# The counts named in the issues, Paddle counting (BatchNorm running statistics included;
# SqueezeNet has no BatchNorm), class_num=1000; ParNet: the released PyTorch code's trainable
# parameters plus BatchNorm statistics.
PARAM_COUNTS = {
    PPLCNet: {"PPLCNet_x0_25": 1_523_936, "PPLCNet_x0_35": 1_646_930, "PPLCNet_x0_5": 1_885_048,
              "PPLCNet_x0_75": 2_365_232, "PPLCNet_x1_0": 2_963_464, "PPLCNet_x1_5": 4_516_248,
              "PPLCNet_x2_0": 6_543_400, "PPLCNet_x2_5": 9_044_920},
    ShuffleNetV2: {"ShuffleNetV2_x0_25": 607_712, "ShuffleNetV2_x0_33": 652_264, "ShuffleNetV2_x0_5": 1_374_744,
                   "ShuffleNetV2_x1_0": 2_294_784, "ShuffleNetV2_x1_5": 3_527_064, "ShuffleNetV2_x2_0": 7_427_712,
                   "ShuffleNetV2_swish": 2_294_784},
    SqueezeNet: {"SqueezeNet1_0": 1_248_424, "SqueezeNet1_1": 1_235_496},
    MobileNeXt: {"MobileNeXt_x0_35": 1_936_344, "MobileNeXt_x0_5": 2_181_600, "MobileNeXt_x0_75": 2_807_424,
                 "MobileNeXt_x1_0": 3_588_440, "MobileNeXt_x1_4": 6_200_424},
    PeleeNet: {"PeleeNet": 2_811_976},
    ParNet: {"ParNet_S": 20_964_616, "ParNet_M": 38_999_592, "ParNet_L": 60_237_864, "ParNet_XL": 93_248_424},
}
COUNTED = [(cls, name, n) for cls, table in PARAM_COUNTS.items() for name, n in sorted(table.items())]


def test_every_named_width_has_its_count():
    assert sorted(name for _, name, _ in COUNTED) == sorted(ALL)


@pytest.mark.parametrize(("cls", "name", "expected"), COUNTED, ids=[c[1] for c in COUNTED])
def test_parameter_count_and_forward_224(cls, name, expected):
    paddle.seed(0)
    model = build_model({"name": name, "class_num": 1000})
    assert isinstance(model, cls)
    assert count_params(model) == expected
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, 3, 224, 224]))
    assert out.shape == [1, 1000]
    assert bool(paddle.isfinite(out).all())


def test_registry_has_every_family():
    families = {"PPLCNet_x1_0", "ShuffleNetV2_x1_0", "SqueezeNet1_1", "MobileNeXt_x1_0", "PeleeNet", "ParNet_S"}
    assert families <= set(MODELS.names()), sorted(families - set(MODELS.names()))


@pytest.mark.parametrize("name", ALL)
def test_every_entry_declares_its_network_class(name):
    """Arch keys are checked against the class an entry returns; an entry without a return annotation (or
    with ``**kwargs`` reaching nothing declared) would switch that check off silently."""
    from ppcls.arch import model_arguments, model_class

    assert model_class(name) is not None, f"{name}: annotate the entry function's return type with its network class"
    assert model_arguments(name) is not None, f"{name}: its constructor takes **kwargs, so Arch keys go unchecked"


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
