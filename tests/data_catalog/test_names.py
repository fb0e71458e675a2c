"""Names that become paths (issue 25): one rule, and nothing built from a name leaves DIR."""

from __future__ import annotations

import pytest

from data_catalog.paths import DataDir

HOSTILE = [
    "../../etc",
    "x/../../../../TARGET",
    "/abs/path",
    "a\\b",
    "..",
    "",
    "name with space",
    "UPPER",
    "nul\x00byte",
    "a" * 300,
    "a++b",
    "+a",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_with_the_value(name):
    from data_catalog.names import check_path_name

    with pytest.raises(ValueError) as caught:
        check_path_name(name)
    assert repr(name[:60]) in str(caught.value) or repr(name) in str(caught.value) or name == ""


@pytest.mark.parametrize("name", ["mch-radar", "mch-radar+knmi-radar", "zero-shot-a+b", "x1"])
def test_catalog_names_and_multi_source_labels_pass(name):
    from data_catalog.names import check_path_name

    assert check_path_name(name) == name


@pytest.mark.parametrize("name", HOSTILE[:3])
def test_every_data_dir_location_refuses_a_hostile_name(tmp_path, name):
    root = DataDir.resolve(tmp_path)
    for build in (root.store, root.forecast_store, root.models, root.figures, root.reports):
        with pytest.raises(ValueError, match="not a safe name|must have"):
            build(name)
    # the report folder of a zero-shot checkpoint whose metadata names its sources
    with pytest.raises(ValueError, match="report folder 'zero-shot-x/../../../../TARGET'"):
        root.reports("mch-radar", "zero-shot-x/../../../../TARGET")
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_check_inside(tmp_path):
    from data_catalog.names import check_inside

    assert check_inside(tmp_path, tmp_path / "stores" / "a.zarr")
    with pytest.raises(ValueError, match="outside the data directory"):
        check_inside(tmp_path / "data", tmp_path / "data" / ".." / "other")
    assert check_inside("s3://bucket/dir", "s3://bucket/dir/stores/a.zarr")
    with pytest.raises(ValueError, match="outside the data directory"):
        check_inside("s3://bucket/dir", "s3://bucket/dir/../x")


def test_valid_paths_unchanged(tmp_path):
    root = DataDir.resolve(tmp_path)
    assert root.store("mch-radar") == str(tmp_path / "stores" / "mch-radar.zarr")
    assert root.reports("a", "zero-shot-b+c") == str(tmp_path / "reports" / "a" / "zero-shot-b+c")
    assert root.forecast_store("a", 6) == str(tmp_path / "forecasts" / "a-6leads.zarr")
