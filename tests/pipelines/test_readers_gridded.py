"""CF-netCDF (synthetic) and GRIB (ERA5 sample, plus a GRIB2 copy) readers."""

from __future__ import annotations

import eccodes
import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from data_catalog.catalog import get_source, list_files
from data_catalog.spec import SourceSpec
from pipelines.readers import read_source_frames

STERE = "+proj=stere +lat_0=90 +lon_0=10 +lat_ts=60 +ellps=WGS84 +units=m +no_defs"


def _nc_spec(crs: str = STERE, **variable) -> SourceSpec:
    var = {"name": "precipitation_rate", "units": "mm/h", "source": "rain"} | variable
    return SourceSpec.from_dict(
        {
            "name": "nc-test",
            "kind": "radar",
            "reader": "cf-netcdf",
            "path": "/tmp/rain_*.nc",
            "time_step": "10min",
            "variables": [var],
            "grid": {"crs": crs, "shape": [3, 4], "extent": [0, 8000, -3000000, -2994000]},
        }
    )


def _write_nc(path, times=("2021-06-01T00:00", "2021-06-01T00:10"), units="kg m-2 s-1"):
    """(time, y, x) rain in kg m-2 s-1, y stored south-up in km, _FillValue -1, CF grid mapping."""
    values = np.arange(len(times) * 12, dtype=np.float32).reshape(len(times), 3, 4) * 1e-4
    values[0, 0, 0] = np.nan  # becomes the fill value on disk
    ds = xr.Dataset(
        {"rain": (("time", "y", "x"), values, {"units": units, "grid_mapping": "stere"})},
        coords={
            "time": pd.DatetimeIndex(times),
            "y": ("y", [-2999.0, -2997.0, -2995.0], {"units": "km", "axis": "Y"}),
            "x": ("x", [1.0, 3.0, 5.0, 7.0], {"units": "km", "axis": "X"}),
        },
    )
    ds["stere"] = ((), 0, pyproj.CRS(STERE).to_cf())
    ds.to_netcdf(path, encoding={"rain": {"_FillValue": -1.0}})
    return values


def test_cf_netcdf_units_fill_orientation_and_crs(tmp_path):
    path = tmp_path / "rain_a.nc"
    values = _write_nc(path)
    ds = read_source_frames(_nc_spec(), [str(path)])
    rate = ds.precipitation_rate.values
    np.testing.assert_array_equal(
        ds.time.values, np.array(["2021-06-01T00:00", "2021-06-01T00:10"], "datetime64[ns]")
    )
    # stored south-up: catalog row 0 (north) is file row 2; kg m-2 s-1 x 3600 = mm/h
    assert rate[1, 0, 1] == pytest.approx(values[1, 2, 1] * 3600, rel=1e-6)
    assert rate[1, 2, 3] == pytest.approx(values[1, 0, 3] * 3600, rel=1e-6)
    assert np.isnan(rate[0, 2, 0]) and np.isfinite(rate[0, 0, 0])  # the fill value
    assert ds.y.values.tolist() == [-2995000.0, -2997000.0, -2999000.0]
    assert "flipped rows" in ds.precipitation_rate.attrs["conversion"]


def test_cf_netcdf_errors(tmp_path):
    good = tmp_path / "rain_a.nc"
    _write_nc(good)
    other = "+proj=stere +lat_0=90 +lon_0=25 +lat_ts=60 +ellps=WGS84 +units=m +no_defs"
    with pytest.raises(ValueError, match=rf"{good}: CRS .* does not match"):
        read_source_frames(_nc_spec(crs=other), [str(good)])
    furlongs = tmp_path / "rain_b.nc"
    _write_nc(furlongs, units="furlongs")
    with pytest.raises(
        ValueError, match=rf"{furlongs}: unknown units 'furlongs' of variable 'rain'"
    ):
        read_source_frames(_nc_spec(), [str(furlongs)])
    dup = tmp_path / "rain_c.nc"
    _write_nc(dup, times=("2021-06-01T00:10", "2021-06-01T00:10"))
    with pytest.raises(ValueError, match=rf"{dup}: duplicate timestamps"):
        read_source_frames(_nc_spec(), [str(dup)])
    back = tmp_path / "rain_d.nc"
    _write_nc(back, times=("2021-06-01T00:20", "2021-06-01T00:10"))
    with pytest.raises(ValueError, match=rf"{back}: non-monotonic timestamps"):
        read_source_frames(_nc_spec(), [str(back)])
    overlap = tmp_path / "rain_e.nc"
    _write_nc(overlap, times=("2021-06-01T00:10", "2021-06-01T00:20"))
    with pytest.raises(ValueError, match=rf"{good} and {overlap}: duplicate timestamps"):
        read_source_frames(_nc_spec(), [str(good), str(overlap)])
    cut = tmp_path / "rain_f.nc"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match=rf"{cut}: not a readable netCDF file"):
        read_source_frames(_nc_spec(), [str(cut)])
    with pytest.raises(ValueError, match=r"no variable 'snow' .*has \['rain', 'stere'\]"):
        read_source_frames(_nc_spec(source="snow"), [str(good)])


# --- GRIB -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def era5():
    spec = get_source("era5-t2m-uk")
    path = list_files(spec)[0].path
    return spec, path, read_source_frames(spec, [path])


def _grib_messages(path: str, indices: list[int]) -> list[dict]:
    """Decode messages straight from ecCodes: values (Ny*Nx,), date/time, first lat/lon."""
    out = []
    with open(path, "rb") as handle:
        i = 0
        while (gid := eccodes.codes_grib_new_from_file(handle)) is not None:
            if i in indices:
                out.append(
                    {
                        "values": eccodes.codes_get_values(gid),
                        "date": eccodes.codes_get(gid, "dataDate"),
                        "time": eccodes.codes_get(gid, "dataTime"),
                        "lat0": eccodes.codes_get(gid, "latitudeOfFirstGridPointInDegrees"),
                        "lon0": eccodes.codes_get(gid, "longitudeOfFirstGridPointInDegrees"),
                    }
                )
            eccodes.codes_release(gid)
            i += 1
    return out


def _first_grib1_messages(raw: bytes, n: int) -> bytes:
    """The first ``n`` GRIB1 messages (section 0: b"GRIB", 3-byte big-endian total length;
    zero padding may follow a message)."""
    end = 0
    for _ in range(n):
        start = raw.index(b"GRIB", end)
        end = start + int.from_bytes(raw[start + 4 : start + 7], "big")
        assert raw[end - 4 : end] == b"7777"  # section 5: end of message
    return raw[:end]


def test_era5_grib_values_times_and_grid(era5):
    spec, path, ds = era5
    first, last = _grib_messages(path, [0, 743])
    t2m = ds.air_temperature
    assert t2m.dims == ("time", "y", "x") and t2m.shape == (744, 33, 49)
    assert t2m.attrs["units"] == "K" and t2m.dtype == np.float32
    # value k of a message is row k // 49 (from 58N southwards), column k % 49 (from 10W)
    for k in (0, 49 * 16 + 24, 33 * 49 - 1):
        assert t2m.values[0, k // 49, k % 49] == pytest.approx(first["values"][k], abs=1e-4)
        assert t2m.values[-1, k // 49, k % 49] == pytest.approx(last["values"][k], abs=1e-4)
    assert (first["date"], first["time"]) == (20190301, 0)
    assert (last["date"], last["time"]) == (20190331, 2300)
    assert ds.time.values[0] == np.datetime64("2019-03-01T00:00")
    assert ds.time.values[-1] == np.datetime64("2019-03-31T23:00")
    assert (np.diff(ds.time.values) == np.timedelta64(1, "h")).all()
    assert ds.latitude.values[0, 0] == first["lat0"] == 58.0
    assert ds.longitude.values[0, 0] == first["lon0"] == -10.0
    assert ds.y.attrs["standard_name"] == "latitude" and ds.x.attrs["units"] == "degrees_east"
    assert pyproj.CRS.from_cf(ds.crs.attrs).equals(pyproj.CRS("EPSG:4326"))


def test_grib2_copy_reads_the_same(era5, tmp_path):
    """The same fields re-encoded as GRIB2 by ecCodes decode to the same values."""
    spec, path, ds = era5
    grib2 = tmp_path / "t2m.grib2"
    with open(path, "rb") as src, open(grib2, "wb") as dst:
        for _ in range(3):
            gid = eccodes.codes_grib_new_from_file(src)
            eccodes.codes_set(gid, "edition", 2)
            eccodes.codes_write(gid, dst)
            eccodes.codes_release(gid)
    spec2 = SourceSpec.from_dict(spec.to_dict() | {"path": str(grib2)})
    ds2 = read_source_frames(spec2, [str(grib2)])
    assert ds2.time.values.tolist() == ds.time.values[:3].tolist()
    np.testing.assert_allclose(ds2.air_temperature.values, ds.air_temperature.values[:3], atol=2e-3)


def test_grib_errors(era5, tmp_path):
    spec, path, _ = era5
    raw = open(path, "rb").read()
    small = tmp_path / "three_hours.grib"  # the first 3 messages: cheaper to decode
    small.write_bytes(_first_grib1_messages(raw, 3))
    path = str(small)
    cut = tmp_path / "cut.grib"
    cut.write_bytes(raw[:1000])
    with pytest.raises(ValueError, match=rf"{cut}: .*GRIB"):
        read_source_frames(spec, [str(cut)])
    shape = spec.to_dict()
    shape["grid"] = shape["grid"] | {"shape": [32, 49], "extent": [-10.125, 2.125, 50.125, 58.125]}
    with pytest.raises(ValueError, match=r"grid shape \(33, 49\) != \(32, 49\)"):
        read_source_frames(SourceSpec.from_dict(shape), [path])
    projected = spec.to_dict()
    # A projected CRS needs a metre extent to pass the spec; the reader must still refuse it.
    projected["grid"] = projected["grid"] | {"crs": "EPSG:3035", "extent": [3e6, 4e6, 3e6, 4e6]}
    with pytest.raises(ValueError, match=r"regular_ll grid is geographic but source"):
        read_source_frames(SourceSpec.from_dict(projected), [path])
    celsius = spec.to_dict()
    celsius["variables"] = [celsius["variables"][0] | {"units": "degC", "valid_range": [-90, 60]}]
    ds_c = read_source_frames(SourceSpec.from_dict(celsius), [path])
    assert ds_c.air_temperature.attrs["units"] == "degC"


PS_CRS = "+proj=stere +lat_0=90 +lon_0=0 +lat_ts=60 +R=6371229 +units=m +no_defs"


def _ps_spec(crs: str = PS_CRS) -> SourceSpec:
    return SourceSpec.from_dict(
        {
            "name": "grib-ps",
            "kind": "radar",
            "reader": "grib",
            "path": "/tmp/ps.grib2",
            "time_step": "1h",
            "variables": [{"name": "precipitation_rate", "units": "mm/h", "source": "prate"}],
            "grid": {"crs": crs, "shape": [4, 5], "extent": [0, 50000, -3690000, -3650000]},
        }
    )


def _write_polar_stereographic_grib2(path) -> np.ndarray:
    """Two hourly GRIB2 ``prate`` (kg m-2 s-1) fields on a 4 x 5, 10-km polar stereographic
    grid, first point in the south-west, rows going north (jScansPositively = 1)."""
    spec = _ps_spec()
    to_ll = pyproj.Transformer.from_crs(PS_CRS, "EPSG:4326", always_xy=True)
    lon0, lat0 = to_ll.transform(spec.grid.x_coords()[0], spec.grid.y_coords()[-1])
    values = np.arange(2 * 20, dtype=float).reshape(2, 4, 5) * 1e-4  # (T, rows south->north, W)
    with open(path, "wb") as handle:
        for hour in range(2):
            gid = eccodes.codes_grib_new_from_samples("polar_stereographic_pl_grib2")
            eccodes.codes_set(gid, "typeOfLevel", "surface")
            for key, value in {
                "parameterCategory": 1,
                "parameterNumber": 7,
                "Nx": 5,
                "Ny": 4,
            }.items():
                eccodes.codes_set_long(gid, key, value)  # category 1 number 7: prate
            eccodes.codes_set_long(gid, "shapeOfTheEarth", 6)  # sphere R = 6371229 m
            eccodes.codes_set_long(gid, "jScansPositively", 1)
            eccodes.codes_set(gid, "LaDInDegrees", 60.0)
            eccodes.codes_set(gid, "orientationOfTheGridInDegrees", 0.0)
            eccodes.codes_set(gid, "DxInMetres", 10000.0)
            eccodes.codes_set(gid, "DyInMetres", 10000.0)
            eccodes.codes_set(gid, "latitudeOfFirstGridPointInDegrees", lat0)
            eccodes.codes_set(gid, "longitudeOfFirstGridPointInDegrees", lon0 % 360)
            eccodes.codes_set_long(gid, "dataDate", 20200101)
            eccodes.codes_set_long(gid, "dataTime", hour * 100)
            eccodes.codes_set_values(gid, values[hour].ravel())
            eccodes.codes_write(gid, handle)
            eccodes.codes_release(gid)
    return values


def test_projected_grib2_is_checked_by_its_points(tmp_path):
    path = tmp_path / "ps.grib2"
    values = _write_polar_stereographic_grib2(path)
    ds = read_source_frames(_ps_spec(), [str(path)])
    rate = ds.precipitation_rate.values
    np.testing.assert_array_equal(
        ds.time.values, np.array(["2020-01-01T00:00", "2020-01-01T01:00"], "datetime64[ns]")
    )
    # catalog row 0 is the northern row = the last row written; kg m-2 s-1 x 3600 = mm/h
    np.testing.assert_allclose(rate, values[:, ::-1, :] * 3600, rtol=1e-4, atol=1e-4)
    assert "flipped rows" in ds.precipitation_rate.attrs["conversion"]
    moved = _ps_spec("+proj=stere +lat_0=90 +lon_0=10 +lat_ts=60 +R=6371229 +units=m")
    with pytest.raises(ValueError, match=rf"{path}: the polar_stereographic grid does not match"):
        read_source_frames(moved, [str(path)])


def test_era5_as_cds_netcdf_reads_like_the_grib(era5, tmp_path):
    """ERA5 from the new CDS as netCDF: dims (valid_time, latitude, longitude), latitude
    descending, degrees coords, no grid mapping -> the same frames as the GRIB file."""
    spec, _, ds = era5
    sub = ds.air_temperature.isel(time=slice(0, 3))
    cds = xr.Dataset(
        {"t2m": (("valid_time", "latitude", "longitude"), sub.values, {"units": "K"})},
        coords={
            "valid_time": sub.time.values,
            "latitude": ("latitude", ds.y.values, {"units": "degrees_north"}),
            "longitude": ("longitude", ds.x.values, {"units": "degrees_east"}),
            "number": 0,
        },
    )
    path = tmp_path / "era5_t2m.nc"
    cds.to_netcdf(path)
    nc_spec = SourceSpec.from_dict(spec.to_dict() | {"reader": "cf-netcdf", "path": str(path)})
    got = read_source_frames(nc_spec, [str(path)])
    np.testing.assert_array_equal(got.air_temperature.values, sub.values)
    np.testing.assert_array_equal(got.time.values, sub.time.values)
    south_up = cds.isel(latitude=slice(None, None, -1))
    flipped = tmp_path / "era5_t2m_south_up.nc"
    south_up.to_netcdf(flipped)
    got = read_source_frames(nc_spec, [str(flipped)])
    np.testing.assert_array_equal(got.air_temperature.values, sub.values)
