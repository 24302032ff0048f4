import pytest

from ppcls.registry import Registry


def test_register_build_and_list():
    reg = Registry("thing")

    @reg.register()
    def Alpha(x=1):
        return ("alpha", x)

    @reg.register("beta")
    class B:
        def __init__(self, y):
            self.y = y

    assert reg.build("Alpha", x=3) == ("alpha", 3)
    assert reg.build("beta", y=2).y == 2
    assert reg.names() == ["Alpha", "beta"] and "beta" in reg and len(reg) == 2


def test_duplicate_name_raises():
    reg = Registry("thing")
    reg.register("A")(lambda: 1)
    with pytest.raises(KeyError, match="already has an entry named 'A'"):
        reg.register("A")(lambda: 2)


def test_unknown_name_lists_close_matches_and_valid_names():
    reg = Registry("model")
    for n in ("PPLCNet_x1_0", "PPLCNet_x0_5", "SqueezeNet1_0"):
        reg.register(n)(lambda: None)
    with pytest.raises(KeyError) as e:
        reg.get("PPLCNet_x1_00")
    msg = str(e.value)
    assert "unknown model name 'PPLCNet_x1_00'" in msg and "Did you mean: PPLCNet_x1_0" in msg
    assert "SqueezeNet1_0" in msg  # the valid names are listed


def test_build_in_context_fills_only_what_the_entry_takes_and_the_config_leaves_open():
    reg = Registry("thing")

    @reg.register()
    def with_classes(size: int, class_num: int = 0) -> tuple:
        return size, class_num

    @reg.register()
    def without(size: int) -> int:
        return size

    assert reg.build_in_context("with_classes", {"size": 3}, class_num=10) == (3, 10)
    assert reg.build_in_context("with_classes", {"size": 3, "class_num": 4}, class_num=10) == (3, 4)  # config wins
    assert reg.build_in_context("without", {"size": 3}, class_num=10) == 3


def test_metadata_list_by_pattern_and_metadata_and_unregister():
    reg = Registry("model")
    reg.register("Net_a", family="Net", weights=("w",))(lambda: "a")
    reg.register("Net_b", family="Net", weights=())(lambda: "b")
    reg.register("Other", family="Other")(lambda: "o")
    reg.register("Bare")(lambda: "x")
    assert reg.metadata("Net_a")["weights"] == ("w",) and dict(reg.metadata("Bare")) == {}
    with pytest.raises(TypeError):
        reg.metadata("Net_a")["family"] = "changed"  # read-only
    assert reg.list("Net_*") == ["Net_a", "Net_b"] and reg.list() == ["Bare", "Net_a", "Net_b", "Other"]
    assert reg.list(family="Net") == ["Net_a", "Net_b"]
    assert reg.list(weights=bool) == ["Net_a"]  # a callable tests the value; entries without the key never match
    assert reg.list("*_b", family="Net") == ["Net_b"] and reg.list(family="None") == []
    assert reg.unregister("Net_b")() == "b"
    assert "Net_b" not in reg and reg.list(family="Net") == ["Net_a"]
    with pytest.raises(KeyError, match="unknown model name 'Net_b'"):
        reg.metadata("Net_b")
    reg.register("Net_b")(lambda: "again")  # the name is free again
    assert reg.build("Net_b") == "again"
