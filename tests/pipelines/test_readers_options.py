"""Reader options: the typed catalog structure, quality control of out-of-range values, and the
generic options on spec-built CF-netCDF (0-d ``valid_time``, accumulations in kg m-2, outside
coverage as 0, a satellite CRR product) and GRIB2 (local parameter table, sentinels, 0..360)."""

from __future__ import annotations

import re
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr
import yaml

from data_catalog.catalog import DEFAULT_CATALOG, list_files, load_catalog
from data_catalog.spec import ReaderOptions, SourceSpec
from pipelines.readers import READER_OPTIONS, SHARED_OPTIONS, read_file, read_source_frames

DOCS = Path(__file__).resolve().parents[2] / "docs"
STERE = "+proj=stere +lat_0=90 +lon_0=10 +lat_ts=60 +ellps=WGS84 +units=m +no_defs"


# --- the typed options ----------------------------------------------------------------------


def test_shipped_entries_keep_their_options_verbatim():
    raw = yaml.safe_load(DEFAULT_CATALOG.read_text())["sources"]
    for spec in load_catalog():
        assert isinstance(spec.reader_options, ReaderOptions)
        assert spec.to_dict()["reader_options"] == raw[spec.name].get("reader_options", {})
        assert SourceSpec.from_dict(spec.to_dict()) == spec
    mch = load_catalog().get("mch-radar").reader_options
    assert mch.accumulation_minutes == 5 and mch.out_of_range == "fail"


def test_every_reader_declares_its_options():
    for reader, options in READER_OPTIONS.items():
        assert set(SHARED_OPTIONS) <= set(options), reader
    assert "coverage_variable" in READER_OPTIONS["cf-netcdf"]
    assert "filter_by_keys" in READER_OPTIONS["grib"]
    assert "units" not in READER_OPTIONS["mch-gif"]


def test_bad_options_name_the_reader_and_the_valid_ones():
    entry = _nc_entry()
    with pytest.raises(
        ValueError, match=r"reader 'cf-netcdf': unknown reader_options \['colour'\]"
    ):
        SourceSpec.from_dict(entry | {"reader_options": {"colour": "red"}})
    with pytest.raises(ValueError, match=r"out_of_range': got 'drop'; allowed: fail, mask"):
        SourceSpec.from_dict(entry | {"reader_options": {"out_of_range": "drop"}})
    with pytest.raises(ValueError, match=r"reader_options.nodata': got 'x'; allowed: a finite"):
        SourceSpec.from_dict(entry | {"reader_options": {"nodata": ["x"]}})
    with pytest.raises(ValueError, match=r"accumulation_minutes': got 0; allowed: a number > 0"):
        SourceSpec.from_dict(entry | {"reader_options": {"accumulation_minutes": 0}})
    wrong = SourceSpec.from_dict(entry | {"reader_options": {"slots_per_day": 24}})
    with pytest.raises(
        ValueError,
        match=r"reader 'cf-netcdf' does not accept reader_options \['slots_per_day'\]; its "
        r"options: \['out_of_range', 'time_source'",
    ):
        read_file(wrong, "/nowhere.nc")
    options = ReaderOptions.from_dict({"nodata": -3, "filter_by_keys": {"parameterNumber": 195}})
    assert options.nodata == (-3,) and options.to_dict() == {
        "nodata": [-3],
        "filter_by_keys": {"parameterNumber": 195},
    }
    assert hash(options) == hash(ReaderOptions.from_dict(options.to_dict()))


# --- CF-netCDF ------------------------------------------------------------------------------


def _nc_entry(**options) -> dict:
    return {
        "name": "nc-opts",
        "kind": "radar",
        "reader": "cf-netcdf",
        "path": "/data/radar_%Y%m%d%H%M.nc",
        "time_step": "5min",
        "variables": [
            {
                "name": "precipitation_rate",
                "units": "mm/h",
                "source": "precip",
                "valid_range": [0.0, 300.0],
            },
        ],  # fmt: skip
        "grid": {"crs": STERE, "shape": [3, 4], "extent": [0, 8000, -3000000, -2994000]},
        "reader_options": options,
    }


def _write_radar_nc(path, *, time_var=True, values=None, units="kg m-2", coverage=True):
    """A radar accumulation as some providers write it: dims (y, x) only, the time a 0-d data
    variable ``valid_time`` in seconds since 1970, 0 outside the radar range, and a coverage
    mask variable (1 inside, 0 outside)."""
    if values is None:
        values = np.array([[0.0, 0.5, 1.0, 0.0], [2.0, 0.0, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]])
    inside = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0]], dtype=np.int8)
    ds = xr.Dataset(
        {"precip": (("y", "x"), np.asarray(values, np.float32), {"units": units,
                                                                 "grid_mapping": "stere"})},
        coords={
            "y": ("y", [-2995000.0, -2997000.0, -2999000.0], {"units": "m", "axis": "Y"}),
            "x": ("x", [1000.0, 3000.0, 5000.0, 7000.0], {"units": "m", "axis": "X"}),
        },
    )  # fmt: skip
    ds["stere"] = ((), 0, pyproj.CRS(STERE).to_cf())
    if coverage:
        ds["coverage"] = (("y", "x"), inside)
    if time_var:
        seconds = (pd.Timestamp("2021-06-01T12:05") - pd.Timestamp("1970-01-01")).total_seconds()
        ds["valid_time"] = ((), np.int64(seconds), {"units": "seconds since 1970-01-01 00:00:00",
                                                    "standard_name": "time"})  # fmt: skip
    ds.to_netcdf(path)


def test_cf_netcdf_time_variable_accumulation_and_coverage(tmp_path):
    path = tmp_path / "radar_202106011205.nc"
    _write_radar_nc(path)
    spec = SourceSpec.from_dict(
        _nc_entry(accumulation_minutes=5, coverage_variable="coverage", time_variable="valid_time")
    )
    ds = read_source_frames(spec, [str(path)])
    assert ds.time.values.tolist() == [np.datetime64("2021-06-01T12:05", "ns").astype(int)]
    rate = ds.precipitation_rate.values[0]
    # kg m-2 = mm per 5 min, x 12 -> mm/h; outside the coverage mask -> NaN, inside 0 stays 0
    np.testing.assert_allclose(rate[0, :3], [0.0, 6.0, 12.0])
    assert rate[1, 0] == pytest.approx(24.0) and rate[1, 2] == pytest.approx(3.0)
    assert np.isnan(rate[:, 3]).all() and np.isnan(rate[2, 2]) and rate[2, 0] == 0.0
    assert "outside coverage" in ds.precipitation_rate.attrs["conversion"]
    assert "time from data variable 'valid_time'" in ds.precipitation_rate.attrs["conversion"]
    # found without the option too: the one datetime data variable
    auto = SourceSpec.from_dict(_nc_entry(accumulation_minutes=5))
    assert read_file(auto, str(path)).times[0] == np.datetime64("2021-06-01T12:05")
    # without accumulation_minutes the conversion says what it needs
    with pytest.raises(ValueError, match="needs reader option 'accumulation_minutes'"):
        read_file(SourceSpec.from_dict(_nc_entry()), str(path))
    with pytest.raises(ValueError, match=r"no variable 'obs_time' \(reader_options.time_var"):
        read_file(SourceSpec.from_dict(_nc_entry(accumulation_minutes=5,
                                                 time_variable="obs_time")), str(path))  # fmt: skip
    named_wrong = tmp_path / "radar_202106011210.nc"
    named_wrong.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="the file says 2021-06-01 12:05:00 but its name says"):
        read_file(auto, str(named_wrong))


def test_cf_netcdf_time_from_the_file_name(tmp_path):
    path = tmp_path / "radar_202106011210.nc"
    _write_radar_nc(path, time_var=False)
    spec = SourceSpec.from_dict(_nc_entry(accumulation_minutes=5))
    frames = read_file(spec, str(path))
    assert frames.times[0] == np.datetime64("2021-06-01T12:10")
    assert "time from the file name" in frames.notes["precipitation_rate"]
    content = SourceSpec.from_dict(_nc_entry(accumulation_minutes=5, time_source="content"))
    with pytest.raises(ValueError, match="has no datetime coordinate"):
        read_file(content, str(path))


def test_units_override_scale_offset_and_sentinels(tmp_path):
    raw = np.array([[0, 10, 20, -999], [-1, 5, 7, 9], [1, 2, 3, 4]], dtype=np.float32)
    path = tmp_path / "radar_202106011205.nc"
    _write_radar_nc(path, values=raw, units="furlongs", coverage=False)
    spec = SourceSpec.from_dict(
        _nc_entry(units="mm/h", scale=0.5, offset=1.0, nodata=[-999], undetect=[-1])
    )
    frames = read_file(spec, str(path))
    rate = frames.data["precipitation_rate"][0]
    np.testing.assert_allclose(rate[0, :3], [1.0, 6.0, 11.0])  # 0.5 x raw + 1
    assert np.isnan(rate[0, 3]) and rate[1, 0] == 0.0  # nodata -> NaN, undetect -> 0 rain
    note = frames.notes["precipitation_rate"]
    assert "units 'mm/h' (reader_options)" in note and "x 0.5 + 1" in note


def test_out_of_range_mask_counts_per_frame_and_fail_names_the_file(tmp_path):
    values = np.array([[0.0, 1.0, 8600.0, 2.0], [1500.0, 0.0, 0.0, 3.0], [0.0] * 4])
    path = tmp_path / "radar_202106011205.nc"
    _write_radar_nc(path, values=values, units="mm/h", coverage=False)
    with pytest.raises(ValueError, match=rf"{path}: precipitation_rate spans \[0, 8600\] mm/h"):
        read_file(SourceSpec.from_dict(_nc_entry()), str(path))
    spec = SourceSpec.from_dict(_nc_entry(out_of_range="mask"))
    frames = read_file(spec, str(path))
    rate = frames.data["precipitation_rate"][0]
    assert np.isnan(rate[0, 2]) and np.isnan(rate[1, 0]) and rate[1, 3] == 3.0
    assert frames.qc_masked["precipitation_rate"].tolist() == [2]
    ds = read_source_frames(spec, [str(path)])
    assert ds.precipitation_rate.attrs["qc_masked_count"] == 2
    assert ds.precipitation_rate.attrs["qc_out_of_range"].startswith("mask")


def test_satellite_crr_through_the_generic_reader(tmp_path):
    """NWC SAF CRR (PGE05) as CF-netCDF: ``crr`` uint16 with scale_factor 0.1 mm/h and
    _FillValue 65535 on ``ny``/``nx`` coordinates in metres of the geostationary projection;
    the time is in the file name (``S_NWC_CRR_MSG4_Europe-VISIR_20210601T120000Z.nc``)."""
    geos = "+proj=geos +h=35785863 +a=6378137 +b=6356752.3 +lon_0=0 +sweep=y +units=m +no_defs"
    nx = 3000.0 * (np.arange(4) + 0.5) + 30000.0
    ny = 4800000.0 - 3000.0 * (np.arange(3) + 0.5)
    packed = np.array([[0, 12, 255, 65535], [3, 0, 0, 1], [7, 8, 9, 10]], dtype=np.uint16)
    ds = xr.Dataset(
        {"crr": (("ny", "nx"), packed, {"units": "mm/h", "scale_factor": 0.1,
                                        "_FillValue": np.uint16(65535),
                                        "long_name": "Convective Rainfall Rate"})},
        coords={"nx": ("nx", nx, {"units": "m", "standard_name": "projection_x_coordinate"}),
                "ny": ("ny", ny, {"units": "m", "standard_name": "projection_y_coordinate"})},
        attrs={"gdal_projection": geos, "nominal_product_time": "2021-06-01T12:00:00Z"},
    )  # fmt: skip
    path = tmp_path / "S_NWC_CRR_MSG4_Europe-VISIR_20210601T120000Z.nc"
    ds.to_netcdf(path, encoding={"crr": {"dtype": "uint16"}})
    spec = SourceSpec.from_dict(
        {
            "name": "nwcsaf-crr",
            "kind": "radar",
            "reader": "cf-netcdf",
            "path": str(tmp_path / "S_NWC_CRR_MSG4_Europe-VISIR_%Y%m%dT%H%M%SZ.nc"),
            "time_step": "15min",
            "variables": [
                {
                    "name": "precipitation_rate",
                    "units": "mm/h",
                    "source": "crr",
                    "valid_range": [0.0, 200.0],
                }
            ],  # fmt: skip
            "grid": {
                "crs": geos,
                "shape": [3, 4],
                "extent": [30000.0, 42000.0, 4791000.0, 4800000.0],
            },  # fmt: skip
        }
    )
    out = read_source_frames(spec, [str(path)])
    rate = out.precipitation_rate.values[0]
    assert out.time.values[0] == np.datetime64("2021-06-01T12:00")
    np.testing.assert_allclose(rate[0, :3], [0.0, 1.2, 25.5], rtol=1e-6)
    assert np.isnan(rate[0, 3]) and rate[2, 3] == pytest.approx(1.0)


def test_longitudes_0_360_wrapped_to_the_catalog_grid(tmp_path):
    lon = np.arange(0.0, 360.0, 90.0)  # 0, 90, 180, 270 -> -180, -90, 0, 90
    values = np.array([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]], np.float32)
    ds = xr.Dataset(
        {"t2m": (("latitude", "longitude"), values + 273.0, {"units": "K"})},
        coords={"latitude": ("latitude", [45.0, -45.0], {"units": "degrees_north"}),
                "longitude": ("longitude", lon, {"units": "degrees_east"}),
                "time": np.datetime64("2021-06-01T00:00", "ns")},
    )  # fmt: skip
    path = tmp_path / "t2m.nc"
    ds.to_netcdf(path)
    entry = {
        "name": "global-t2m",
        "kind": "climate",
        "reader": "cf-netcdf",
        "path": str(path),
        "time_step": "1h",
        "variables": [{"name": "air_temperature", "units": "K", "source": "t2m"}],
        "grid": {"crs": "EPSG:4326", "shape": [2, 4], "extent": [-225.0, 135.0, -90.0, 90.0]},
    }
    with pytest.raises(ValueError, match="x coordinates differ .*wrap_180"):
        read_file(SourceSpec.from_dict(entry), str(path))
    spec = SourceSpec.from_dict(entry | {"reader_options": {"longitude": "wrap_180"}})
    got = read_file(spec, str(path)).data["air_temperature"][0] - 273.0
    np.testing.assert_allclose(got, [[2.0, 3.0, 0.0, 1.0], [6.0, 7.0, 4.0, 5.0]])


# --- GRIB2 with a local parameter table ------------------------------------------------------


def _write_local_grib2(path, values: np.ndarray) -> None:
    """One GRIB2 message of a local parameter (discipline 0, category 1, number 195 is in the
    192-254 range reserved for local use; centre 200 has no ecCodes definition for it) on a
    regular lat/lon grid with longitudes 0..354 stored as 0-360."""
    gid = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    try:
        for key, value in (("centre", 200), ("localTablesVersion", 1), ("discipline", 0),
                           ("parameterCategory", 1), ("parameterNumber", 195), ("Ni", 60),
                           ("Nj", 3), ("dataDate", 20210601), ("dataTime", 1200)):  # fmt: skip
            eccodes.codes_set_long(gid, key, value)
        for key, value in (("latitudeOfFirstGridPointInDegrees", 12.0),
                           ("latitudeOfLastGridPointInDegrees", 8.0),
                           ("longitudeOfFirstGridPointInDegrees", 0.0),
                           ("longitudeOfLastGridPointInDegrees", 354.0),
                           ("iDirectionIncrementInDegrees", 6.0),
                           ("jDirectionIncrementInDegrees", 2.0)):  # fmt: skip
            eccodes.codes_set(gid, key, value)
        eccodes.codes_set_values(gid, values.ravel())
        with open(path, "wb") as handle:
            eccodes.codes_write(gid, handle)
    finally:
        eccodes.codes_release(gid)


def test_grib2_local_table_units_sentinels_and_longitudes(tmp_path):
    values = np.zeros((3, 60))
    values[0, 0] = 12.5  # lon 0 -> catalog column 30
    values[0, 59] = 2.5  # lon 354 -> -6 -> catalog column 29
    values[1, 30] = -3.0  # lon 180 -> -180 -> catalog column 0: "no coverage"
    values[2, 31] = -1.0  # undetect -> 0
    path = tmp_path / "local.grib2"
    _write_local_grib2(path, values)
    entry = {
        "name": "local-grib",
        "kind": "radar",
        "reader": "grib",
        "path": str(path),
        "time_step": "1h",
        "variables": [
            {
                "name": "precipitation_rate",
                "units": "mm/h",
                "source": "unknown",
                "valid_range": [0.0, 500.0],
            }
        ],  # fmt: skip
        "grid": {"crs": "EPSG:4326", "shape": [3, 60], "extent": [-183.0, 177.0, 7.0, 13.0]},
    }
    with pytest.raises(ValueError, match=r"x coordinates differ .*longitude: wrap_180"):
        read_file(SourceSpec.from_dict(entry), str(path))
    wrapped = SourceSpec.from_dict(entry | {"reader_options": {"longitude": "wrap_180"}})
    with pytest.raises(ValueError, match=r"unknown units 'unknown' of variable 'unknown'"):
        read_file(wrapped, str(path))
    options = {"units": "kg m-2", "scale": 2.0, "accumulation_minutes": 60, "nodata": [-3],
               "undetect": [-1], "longitude": "wrap_180",
               "filter_by_keys": {"parameterNumber": 195}}  # fmt: skip
    spec = SourceSpec.from_dict(entry | {"reader_options": options})
    frames = read_file(spec, str(path))
    rate = frames.data["precipitation_rate"][0]
    assert frames.times[0] == np.datetime64("2021-06-01T12:00")
    assert rate[0, 30] == pytest.approx(25.0) and rate[0, 29] == pytest.approx(5.0)
    assert np.isnan(rate[1, 0]) and rate[2, 1] == 0.0
    assert np.isnan(rate).sum() == 1 and np.nansum(rate) == pytest.approx(30.0)
    assert "longitudes wrapped" in frames.notes["precipitation_rate"]


def test_the_options_table_in_the_docs_matches_the_readers():
    lines = (DOCS / "readers.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| option |"))
    readers = [c.strip() for c in header.strip("|").split("|")[3:]]
    assert sorted(readers) == sorted(READER_OPTIONS)
    table: dict[str, set[str]] = {name: set() for name in readers}
    for line in lines:
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        names = re.findall(r"`(\w+)`", cells[0])
        for reader, cell in zip(readers, cells[3:], strict=True):
            if cell.startswith("Y"):
                table[reader].update(names)
    assert table == {name: set(options) for name, options in READER_OPTIONS.items()}


def test_mask_on_a_real_odim_composite_counts_what_fail_would_reject():
    """The RMI ODIM_H5 sample with a tight valid_range: ``mask`` NaNs and counts exactly the
    pixels above it, keeps every other pixel, and ``fail`` names the file."""
    spec = load_catalog().get("rmi-radar")
    path = list_files(spec)[0].path
    baseline = read_file(spec, path).data["precipitation_rate"]
    entry = spec.to_dict()
    entry["variables"][0]["valid_range"] = [0.0, 2.0]
    tight = SourceSpec.from_dict(entry)
    with pytest.raises(ValueError, match=rf"{path}: precipitation_rate spans .* outside the"):
        read_file(tight, path)
    frames = read_file(
        SourceSpec.from_dict(entry | {"reader_options": {"out_of_range": "mask"}}), path
    )
    above = baseline > 2.0
    assert 0 < above.sum() < np.isfinite(baseline).sum()
    assert frames.qc_masked["precipitation_rate"].tolist() == [int(above.sum())]
    got = frames.data["precipitation_rate"]
    assert np.isnan(got[above]).all()
    np.testing.assert_array_equal(got[~above], baseline[~above])
