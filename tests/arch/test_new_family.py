"""Adding a backbone family needs no edit to any test table: a throwaway family, registered from a
temporary module, is picked up by the generic model checks (and removed afterwards)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import pytest

from ppcls.arch.family import missing_keys
from ppcls.registry import MODELS

from . import model_checks as checks

# A complete family file, written the way docs/contributing.md says: family defaults, blocks, the
# network class implementing ClassificationNet, one entry per width with its parameter count.
MODEL_FILE = textwrap.dedent('''
    """TinyNet: a throwaway family for the test that proves a new family needs no other edit."""

    from __future__ import annotations

    import paddle
    import paddle.nn as nn

    from ppcls.arch.family import ModelFamily
    from ppcls.arch.interface import ClassificationNet
    from ppcls.arch.layers import ConvBNAct
    from ppcls.registry import MODELS

    FAMILY = ModelFamily("TinyNetFamily", input_size=(3, 32, 32))
    STAGES = (8, 16)  # output channels of the stride-2 stages at width 1.0


    class TinyNet(ClassificationNet):
        """A stem and two stride-2 conv stages, pooled into a linear classifier."""

        head_names = ("fc",)

        def __init__(self, width: int = 1, class_num: int = 1000) -> None:
            super().__init__()
            self.class_num = class_num
            channels = [c * width for c in STAGES]
            self.stem = ConvBNAct(3, channels[0], 3, 2)
            self.stages = nn.Sequential(*[ConvBNAct(a, b, 3, 2) for a, b in zip(channels, channels[1:])])
            self.num_features = channels[-1]
            self.pool = nn.AdaptiveAvgPool2D(1)
            self.fc = nn.Linear(self.num_features, class_num)

        def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
            return self.stages(self.stem(x))

        def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
            return self.fc(self.pool(x).flatten(1))


    # stem conv 3*8*9 + BN 4*8; stage conv 8*16*9 + BN 4*16; fc 16*1000 + 1000 (width 2: doubled channels)
    @MODELS.register(**FAMILY.entry(params=216 + 32 + 1152 + 64 + 17000))
    def TinyNet_x1(**kwargs) -> TinyNet:
        return TinyNet(width=1, **kwargs)


    @MODELS.register(**FAMILY.entry(params=432 + 64 + 4608 + 128 + 33000))
    def TinyNet_x2(**kwargs) -> TinyNet:
        return TinyNet(width=2, **kwargs)
''')


@pytest.fixture
def tiny_family(tmp_path):
    """Import the family file from a temporary folder; unregister its models afterwards."""
    path = tmp_path / "tiny_net.py"
    path.write_text(MODEL_FILE, encoding="utf-8")
    before = set(MODELS.names())
    spec = importlib.util.spec_from_file_location("ppcls_test_tiny_net", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # typing.get_type_hints resolves the entries' annotations here
    try:
        spec.loader.exec_module(module)
        yield sorted(set(MODELS.names()) - before)
    finally:
        for name in set(MODELS.names()) - before:
            MODELS.unregister(name)
        sys.modules.pop(spec.name, None)


def test_a_new_family_is_picked_up_by_the_generic_checks(tiny_family, tmp_path):
    assert tiny_family == ["TinyNet_x1", "TinyNet_x2"]
    assert set(tiny_family) <= set(checks.models_under_test())
    assert MODELS.list(family="TinyNetFamily") == tiny_family
    assert "TinyNet_x1" in checks.smallest_per_family()
    for name in tiny_family:
        checks.check_metadata(name)
        checks.check_count_and_forward(name)
        checks.check_interface(name)
        checks.check_independent_instances(name)
        checks.check_export(name, str(tmp_path / name))
    checks.check_reset_classifier("TinyNet_x1", str(tmp_path))


def test_the_generic_checks_catch_a_wrong_count(tiny_family):
    name = tiny_family[0]
    meta = dict(MODELS.metadata(name))
    entry = MODELS.unregister(name)
    MODELS.register(name, **{**meta, "params": meta["params"] + 1})(entry)
    with pytest.raises(AssertionError, match="registered"):
        checks.check_count_and_forward(name)


def test_the_generic_checks_catch_missing_metadata(tiny_family):
    name = tiny_family[0]
    entry = MODELS.unregister(name)
    MODELS.register(name)(entry)
    assert missing_keys(MODELS.metadata(name))
    with pytest.raises(AssertionError, match="FAMILY.entry"):
        checks.check_metadata(name)
