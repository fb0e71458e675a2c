import pytest

from simvp_model.registry import Registry


def test_register_get_and_names():
    reg: Registry[int] = Registry("widget")
    reg.add("b", 2)

    @reg.register("a")
    def a() -> int:
        return 1

    assert reg.get("a") is a
    assert reg.get("b") == 2
    assert reg.names() == ["a", "b"]
    assert "a" in reg and "c" not in reg
    assert len(reg) == 2


def test_duplicate_refused():
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.add("a", 2)
    assert reg.get("a") == 1


def test_unknown_name_lists_valid_names():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1)
    reg.add("beta", 2)
    with pytest.raises(
        ValueError, match=r"unknown widget 'gamma'; valid names: \['alpha', 'beta'\]"
    ):
        reg.get("gamma")
