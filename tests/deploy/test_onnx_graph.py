"""deploy/python/onnx_graph.py: HardSigmoid + Mul become HardSwish, in fp32 and QDQ graphs, with the same scores."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from deploy.python.onnx_graph import fuse_hardswish
from tests.deploy.test_backends import int8_folder, photos  # noqa: F401  (fixtures)
from tests.deploy.test_predictor import lcnet, make_predictor  # noqa: F401  (lcnet: a fixture)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def check_no_dead_parts(model: onnx.ModelProto) -> None:
    read = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output}
    assert all(any(o in read for o in n.output) for n in model.graph.node), "a node nothing reads was left"
    assert all(t.name in read for t in model.graph.initializer), "an initializer nothing reads was left"


def hardswish_graph(opset: int, alpha: float = 1 / 6, swap: bool = False) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])
    nodes = [helper.make_node("HardSigmoid", ["x"], ["g"], alpha=alpha, beta=0.5),
             helper.make_node("Mul", ["g", "x"] if swap else ["x", "g"], ["y"])]
    return helper.make_model(helper.make_graph(nodes, "hs", [x], [y]), opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("swap", [False, True])
def test_a_hardswish_pattern_becomes_one_operator_with_the_same_values(swap):
    model = hardswish_graph(13, swap=swap)
    x = np.linspace(-5, 5, 10, dtype=np.float32).reshape(2, 5)
    expected = run(model, x)
    assert fuse_hardswish(model) == 1
    onnx.checker.check_model(model)
    assert ops(model) == Counter({"HardSwish": 1}) and model.opset_import[0].version == 14
    np.testing.assert_allclose(run(model, x), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(expected, x * np.clip(x / 6 + 0.5, 0, 1), rtol=0, atol=1e-6)


def test_other_gates_and_old_opsets_are_left_alone():
    plain_sigmoid = hardswish_graph(13, alpha=0.2)  # HardSigmoid's default slope: not HardSwish
    assert fuse_hardswish(plain_sigmoid) == 0 and ops(plain_sigmoid)["HardSigmoid"] == 1
    old = hardswish_graph(11)  # raising 11 to 14 would change Squeeze/Split/Reduce*: not done
    assert fuse_hardswish(old) == 0 and old.opset_import[0].version == 11


def fuse_checked(model: onnx.ModelProto) -> tuple[Counter, Counter]:
    """Fuse in place, check the graph is valid with no dead parts and one HardSwish per fusion; (ops before, after)."""
    before = ops(model)
    fused = fuse_hardswish(model)
    onnx.checker.check_model(model)
    check_no_dead_parts(model)
    after = ops(model)
    assert fused > 10 and after["HardSwish"] == fused
    return before, after


def photo_batch(folder: str, paths: list[str]) -> np.ndarray:
    return make_predictor(folder, batch_size=len(paths), backend="onnxruntime").prepare(paths).copy()


def test_exported_pplcnet_fp32_scores_unchanged(lcnet, photos):  # noqa: F811
    _, folder = lcnet
    model = onnx.load(os.path.join(folder, "inference.onnx"))
    x = photo_batch(folder, photos)
    expected = run(model, x)
    before, after = fuse_checked(model)
    # the squeeze-and-excitation gates (HardSigmoid of another tensor times x) stay
    assert after["HardSigmoid"] == before["HardSigmoid"] - after["HardSwish"] > 0
    np.testing.assert_allclose(run(model, x), expected, rtol=0, atol=1e-5)


def test_quantized_pplcnet_reads_through_the_quantize_pairs(int8_folder, photos):  # noqa: F811
    model = onnx.load(os.path.join(int8_folder, "inference_int8.onnx"))
    x = photo_batch(int8_folder, photos)
    fp32 = run(onnx.load(os.path.join(int8_folder, "inference.onnx")), x)
    int8 = run(model, x)
    before, after = fuse_checked(model)
    assert after["QuantizeLinear"] < before["QuantizeLinear"] and after["DequantizeLinear"] < before["DequantizeLinear"]
    made_by = {o: n.op_type for n in model.graph.node for o in n.output}
    # each HardSwish reads the float output of the layer before, not a dequantized copy of it
    assert "DequantizeLinear" not in {made_by[n.input[0]] for n in model.graph.node if n.op_type == "HardSwish"}
    fused_scores = run(model, x)
    # two roundings fewer: the scores move by a few quantization steps of the output (1/255), no further from
    # fp32 than the int8 model is (random weights: near-uniform scores over 5 classes)
    assert np.abs(fused_scores - int8).max() < 0.1
    assert np.abs(fused_scores - fp32).mean() <= np.abs(int8 - fp32).mean() * 1.5
