"""The shipped catalog, path patterns, file listing and validation errors."""

from __future__ import annotations

import copy

import fsspec
import pandas as pd
import pyproj
import pytest
import yaml

from data_catalog import catalog as cat
from data_catalog.spec import GridSpec, SourceSpec

REQUIRED = ["mch-radar", "fmi-radar", "knmi-radar", "rmi-radar", "era5-t2m-uk", "nyc-taxi"]


@pytest.fixture(scope="module")
def shipped() -> cat.Catalog:
    return cat.load_catalog()


def _entry(shipped: cat.Catalog, name: str = "mch-radar") -> dict:
    return copy.deepcopy(shipped.get(name).to_dict())


def test_shipped_catalog_has_the_required_sources(shipped):
    assert set(REQUIRED) <= set(shipped.names())
    assert cat.list_sources() == shipped.names()
    assert cat.get_source("knmi-radar").grid.shape == (765, 700)


def test_every_source_has_sample_files_at_its_step(shipped):
    counts = {"mch-radar": 120, "knmi-radar": 24, "fmi-radar": 10, "rmi-radar": 9}
    for spec in shipped:
        files = cat.list_files(spec)
        assert files, spec.name
        if spec.name in counts:
            assert len(files) == counts[spec.name]
            times = pd.DatetimeIndex([f.time for f in files])
            steps = times[1:] - times[:-1]
            # regular within each event; the MeteoSwiss sample holds three events, years apart
            assert ((steps == spec.time_delta) | (steps > pd.Timedelta("30D"))).all(), spec.name
            assert (steps > pd.Timedelta("30D")).sum() == (2 if spec.name == "mch-radar" else 0)


def test_mch_times_come_from_the_file_name_not_the_event_folder(shipped):
    files = cat.list_files(shipped.get("mch-radar"), start="2016-07-11", end="2016-07-13")
    # AQC16194 0000 V: day 194 of 2016 = 12 July, although the folder is 20160711.
    assert files[-1].path.endswith("20160711/AQC161940000V_00005.801.gif")
    assert files[-1].time == pd.Timestamp("2016-07-12 00:00")
    assert files[0].time == pd.Timestamp("2016-07-11 20:45")
    assert len(files) == 40


def test_full_shared_data_through_samples_override(shipped, shared_data, monkeypatch):
    monkeypatch.setenv(cat.SAMPLES_ENV, str(shared_data))
    assert len(cat.list_files(shipped.get("mch-radar"))) == 120  # 3 events x 40
    assert len(cat.list_files(shipped.get("fmi-radar"))) == 80
    window = cat.list_files(
        shipped.get("knmi-radar"), start="2010-08-26 07:00", end="2010-08-26 07:35"
    )
    assert [f.time.minute for f in window] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert cat.samples_dir() == str(shared_data)


def test_parse_time_codes():
    assert cat.parse_time("a/%Y%m%d/%Y%m%d%H%M_x.gz", "/q/202001011200_x.gz") == pd.Timestamp(
        "2020-01-01 12:00"
    )
    assert cat.parse_time("%y%j%H%M?.gif", "s3://b/k/16001 0000V.gif".replace(" ", "")) == (
        pd.Timestamp("2016-01-01")
    )
    assert cat.parse_time("%y%m%d.h5", "950101.h5") == pd.Timestamp("1995-01-01")
    assert cat.parse_time("volume_*.npz", "volume_train.npz") is None
    with pytest.raises(ValueError, match="does not match"):
        cat.parse_time("%Y%m%d.h5", "/x/2020011.h5")
    with pytest.raises(ValueError, match="no valid time"):
        cat.parse_time("%Y%m%d.h5", "/x/20201340.h5")
    with pytest.raises(ValueError, match="unsupported time code %B"):
        cat.parse_time("%B%Y.h5", "/x/2020.h5")


def test_list_files_through_an_fsspec_url(shipped):
    """Any fsspec filesystem that can list works: here the in-memory one (``memory://``)."""
    fs = fsspec.filesystem("memory")
    for stamp in ["201001010010", "201001010000", "201001010005"]:
        fs.pipe(f"/radar-test/{stamp[:8]}/{stamp}_x.gz", b"")
    fs.pipe("/radar-test/20100101/README", b"")
    entry = _entry(shipped, "fmi-radar") | {"path": "memory://radar-test/%Y%m%d/%Y%m%d%H%M_x.gz"}
    spec = SourceSpec.from_dict(entry)
    files = cat.list_files(spec)
    assert [f.time.minute for f in files] == [0, 5, 10]
    assert files[0].path.startswith("memory://")  # URLs come back as URLs, openable as such
    assert files[0].path.endswith("/radar-test/20100101/201001010000_x.gz")
    with fsspec.open(files[0].path, "rb") as handle:
        assert handle.read() == b""
    fs.pipe("/radar-dup/20100101/a201001010000.gz", b"")
    fs.pipe("/radar-dup/20100101/b201001010000.gz", b"")
    dup = SourceSpec.from_dict(entry | {"path": "memory://radar-dup/%Y%m%d/?%Y%m%d%H%M.gz"})
    with pytest.raises(ValueError, match="two files for 2010-01-01 00:00:00"):
        cat.list_files(dup)
    missing = SourceSpec.from_dict(entry | {"path": "memory://nowhere/%Y%m%d%H%M.gz"})
    with pytest.raises(FileNotFoundError, match="no file matches"):
        cat.list_files(missing)


def test_expand_and_format_paths(shipped, tmp_path):
    assert cat.expand_path("${samples}/a/b.h5", tmp_path) == f"{tmp_path}/a/b.h5"
    assert cat.expand_path("a/b.h5", tmp_path) == f"{tmp_path}/a/b.h5"
    assert cat.expand_path("s3://bucket/%Y.h5", tmp_path) == "s3://bucket/%Y.h5"
    assert cat.expand_path("${samples}/x.h5", "gs://b/root/") == "gs://b/root/x.h5"
    knmi = shipped.get("knmi-radar")
    assert cat.format_path(knmi, pd.Timestamp("2010-08-26 00:05"), "https://h/d") == (
        "https://h/d/pysteps-data/radar/KNMI/2010/08/RAD_NL25_RAP_5min_201008260005.h5"
    )
    with pytest.raises(ValueError, match="wildcards"):
        cat.format_path(shipped.get("mch-radar"), pd.Timestamp("2016-07-11"))


def test_spec_round_trips_through_its_dict(shipped):
    for spec in shipped:
        assert SourceSpec.from_dict(spec.to_dict()) == spec
        assert hash(SourceSpec.from_dict(spec.to_dict())) == hash(spec)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "radr"}, r"field 'kind': got 'radr'; allowed: radar, climate, crowd-flow"),
        ({"time_step": "often"}, r"field 'time_step': got 'often'"),
        ({"chunks": {"t": 3}}, r"field 'chunks'.*allowed: keys among \['time', 'y', 'x'\]"),
        ({"colour": "red"}, r"unknown field\(s\) \['colour'\]; allowed fields: \['name', 'kind'"),
        ({"grid": {"crs": "+proj=nope", "shape": [2, 2], "extent": [0, 1, 0, 1]}}, "grid.crs"),
        (
            {
                "grid": {
                    "crs": "EPSG:4326",
                    "shape": [2, 2],
                    "extent": [0, 1, 0, 1],
                    "y_origin": "top",
                }
            },
            r"field 'grid.y_origin': got 'top'; allowed: upper, lower",
        ),
        ({"grid": {"crs": "EPSG:4326", "shape": [0, 2], "extent": [0, 1, 0, 1]}}, "grid.shape"),
        ({"grid": {"crs": "EPSG:4326", "shape": [2, 2], "extent": [1, 0, 0, 1]}}, "grid.extent"),
    ],
)
def test_invalid_source_fields_are_named_with_allowed_values(shipped, change, message):
    entry = _entry(shipped) | change
    with pytest.raises(ValueError, match=message):
        SourceSpec.from_dict(entry, name="mch-radar")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"units": "mm/hr"}, r"field 'units': got 'mm/hr'; allowed: mm/h, mm, dBZ, K, degC"),
        ({"name": "Rain Rate"}, r"field 'name': variable name must be lower snake_case"),
        ({"name": "time"}, "reserved"),
        ({"valid_range": [5, 1]}, r"field 'valid_range'.*min < max"),
        ({"normalisation": {"transform": "sqrt"}}, r"allowed: identity, log1p, dbr"),
        ({"normalisation": {"transform": "dbr"}}, r"normalisation.threshold.*required by 'dbr'"),
        ({"normalisation": {"transform": "log1p", "scale": -1}}, r"normalisation.scale"),
        ({"unit": "mm/h"}, r"unknown field\(s\) \['unit'\]"),
    ],
)
def test_invalid_variable_fields_are_named(shipped, change, message):
    entry = _entry(shipped)
    entry["variables"] = [entry["variables"][0] | change]
    with pytest.raises(ValueError, match=message):
        SourceSpec.from_dict(entry)


def test_catalog_file_errors_name_the_file_and_source(shipped, tmp_path):
    entry = _entry(shipped)
    del entry["name"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"version": 1, "sources": {"x-radar": entry | {"kind": "sat"}}}))
    with pytest.raises(ValueError, match=r"bad.yaml: source 'x-radar': field 'kind': got 'sat'"):
        cat.load_catalog(bad)
    del entry["reader"]
    bad.write_text(yaml.safe_dump({"version": 1, "sources": {"x-radar": entry}}))
    with pytest.raises(ValueError, match=r"missing required field\(s\) \['reader'\]"):
        cat.load_catalog(bad)
    bad.write_text("version: 2\nsources: {}\n")
    with pytest.raises(ValueError, match=r"field 'version': got 2; allowed: 1"):
        cat.load_catalog(bad)
    bad.write_text("sources: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        cat.load_catalog(bad)
    with pytest.raises(FileNotFoundError):
        cat.load_catalog(tmp_path / "none.yaml")
    with pytest.raises(ValueError, match=r"unknown source 'nope'.*valid names: \['era5-t2m-uk'"):
        shipped.get("nope")


def test_grid_coords_are_pixel_centres():
    grid = GridSpec("EPSG:4326", (2, 4), (0.0, 4.0, 10.0, 12.0), "upper")
    assert grid.x_coords().tolist() == [0.5, 1.5, 2.5, 3.5]
    assert grid.y_coords().tolist() == [11.5, 10.5]
    assert GridSpec("EPSG:4326", (2, 4), (0, 4, 10, 12), "lower").y_coords().tolist() == [
        10.5,
        11.5,
    ]
    assert grid.is_geographic and grid.pixel_size == (1.0, 1.0)


SWISS = "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 +x_0=600000 +y_0=200000 +ellps=bessel +units=m +no_defs"  # noqa: E501


@pytest.mark.parametrize(
    ("crs", "extent", "message"),
    [
        # EPSG:4326 with the MeteoSwiss extent in metres: latitudes up to 479,500 degrees.
        (
            "EPSG:4326",
            (255000.0, 965000.0, -160000.0, 480000.0),
            r"not in degrees.*'EPSG:4326'.*geographic \(degree",
        ),
        # The reverse: a projected CRS with a lon/lat extent (a grid of millimetre pixels).
        (SWISS, (5.9, 10.5, 45.8, 47.8), r"looks like degrees.*'\+proj=somerc.*projected"),
    ],
)  # fmt: skip
def test_extent_units_must_match_the_crs(crs, extent, message):
    with pytest.raises(ValueError, match=message):
        GridSpec(crs, (640, 710), extent)


def test_extent_unit_error_names_a_wkt_crs_briefly():
    wkt = pyproj.CRS.from_epsg(4326).to_wkt()
    assert len(wkt) > 300
    with pytest.raises(ValueError, match="'EPSG:4326' is geographic") as info:
        GridSpec(wkt, (2, 2), (0.0, 2e5, 0.0, 2e5))
    assert len(str(info.value)) < 300


def test_extent_in_the_crs_units_is_accepted():
    GridSpec(SWISS, (640, 710), (255000.0, 965000.0, -160000.0, 480000.0))
    GridSpec("EPSG:4326", (33, 49), (-10.125, 2.125, 49.875, 58.125))
    GridSpec("EPSG:4326", (2, 4), (180.0, 360.0, -90.0, 90.0))
