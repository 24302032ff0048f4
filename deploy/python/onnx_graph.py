"""One rewrite of an exported ONNX graph that lets OpenVINO fuse PP-LCNet's activations.

Stands alone (only ``onnx``), like the rest of deploy/python; the OpenVINO backend applies it in
memory when it reads a model (the files are not changed).

Paddle2ONNX (opset 13) writes ``hardswish(x)`` as ``Mul(x, HardSigmoid(x, alpha=1/6, beta=1/2))``.
OpenVINO runs such a ``HardSigmoid`` on its own (a reference kernel, with layout reorders around
it), but fuses opset 14's single ``HardSwish`` operator into the convolution before it: on
PPLCNet_x1_0 that is most of OpenVINO's time (docs/benchmarks.md, "INT8 and OpenVINO").
:func:`fuse_hardswish` makes that replacement. In a QDQ model from ONNX Runtime's quantizer
the same pattern has quantize/dequantize pairs on the convolution's output, on the
``HardSigmoid``'s output and before the ``Mul`` (ONNX Runtime needs them to run the convolution
and the ``Mul`` in int8); the rewrite looks through them and reads the convolution's output
directly, so OpenVINO runs convolution, ``HardSwish`` and the quantization of the ``Mul``'s output
as one int8 kernel. That drops two roundings, so int8 scores move by a few quantization steps
(digits quick start: the same top-1 accuracy, docs/benchmarks.md); ONNX Runtime would run that
graph's convolutions in float, which is why the int8 file keeps ONNX Runtime's form. In fp32 the
values are unchanged up to float rounding.
"""

from __future__ import annotations

from typing import Any

HARDSIGMOID_ALPHA = 1.0 / 6.0  # HardSwish(x) = x * HardSigmoid(x; alpha=1/6, beta=1/2)
HARDSIGMOID_BETA = 0.5
HARDSWISH_OPSET = 14
_TOL = 1e-6
_DEFAULT_DOMAINS = ("", "ai.onnx")


def _default_opset(model: Any) -> Any:
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            return entry
    return None


def _attr(node: Any, name: str, default: float) -> float:
    for a in node.attribute:
        if a.name == name:
            return a.f
    return default


def _is_hardsigmoid_of_hardswish(node: Any) -> bool:
    return (node.op_type == "HardSigmoid" and node.domain in _DEFAULT_DOMAINS
            and abs(_attr(node, "alpha", 0.2) - HARDSIGMOID_ALPHA) <= _TOL
            and abs(_attr(node, "beta", 0.5) - HARDSIGMOID_BETA) <= _TOL)


def _through_qdq(name: str, made_by: dict[str, Any]) -> str:
    """The float tensor ``name`` is a quantize/dequantize round trip of (``name`` itself if none)."""
    while True:
        dq = made_by.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            return name
        q = made_by.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            return name
        name = q.input[0]


def _remove_unused(graph: Any) -> None:
    """Drop nodes none of whose outputs is read (repeatedly), then initializers nothing reads."""
    outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    while True:
        read = {name for n in nodes for name in n.input} | outputs
        kept = [n for n in nodes if any(o in read for o in n.output if o)]
        if len(kept) == len(nodes):
            break
        nodes = kept
    del graph.node[:]
    graph.node.extend(nodes)
    read = {name for n in nodes for name in n.input}
    inits = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def fuse_hardswish(model: Any) -> int:
    """Replace each ``Mul(x, HardSigmoid(x; 1/6, 1/2))``, quantize/dequantize pairs included, by
    ``HardSwish(x)`` in place; returns how many.

    Applies to models of default-domain opset 13 or later (13 is raised to 14, which changes nothing
    else an exported classifier uses); older opsets are left alone (returns 0).
    """
    from onnx import helper

    opset = _default_opset(model)
    if opset is None or opset.version < 13:
        return 0
    graph = model.graph
    made_by = {name: node for node in graph.node for name in node.output}
    replace: dict[int, Any] = {}
    for mul in graph.node:
        if mul.op_type != "Mul" or mul.domain not in _DEFAULT_DOMAINS or len(mul.input) != 2:
            continue
        a, b = (_through_qdq(name, made_by) for name in mul.input)
        for x, gate in ((a, b), (b, a)):
            hs = made_by.get(gate)
            if hs is not None and _is_hardsigmoid_of_hardswish(hs) and _through_qdq(hs.input[0], made_by) == x:
                replace[id(mul)] = helper.make_node("HardSwish", [x], [mul.output[0]],
                                                    name=(mul.name or mul.output[0]) + "/hardswish")
                break
    if not replace:
        return 0
    nodes = [replace.get(id(n), n) for n in graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    _remove_unused(graph)
    opset.version = max(opset.version, HARDSWISH_OPSET)
    return len(replace)
