"""Every catalog source meets the reader contract; the full shared data sets read with the
right times through the same entries (``NOWCAST_SAMPLES_DIR`` pointed at ../shared/data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest

from data_catalog.catalog import SAMPLES_ENV, list_files, load_catalog
from pipelines.readers import READERS, read_source_frames


def test_registry_lists_every_format():
    assert READERS.names() == [
        "cf-netcdf",
        "fmi-pgm",
        "grib",
        "knmi-hdf5",
        "mch-gif",
        "nyc-taxi-npz",
        "odim-h5",
        "radolan",
        "taxibj-h5",
    ]
    with pytest.raises(ValueError, match=r"unknown reader 'gif'; valid names: \['cf-netcdf'"):
        READERS.get("gif")
    with pytest.raises(ValueError, match="already registered"):
        READERS.register("grib")(lambda path, spec: None)


@pytest.mark.parametrize("name", load_catalog().names())
def test_contract(name):
    spec = load_catalog().get(name)
    files = list_files(spec)
    paths = [f.path for f in files[:2]] if files[0].time is not None else [files[0].path]
    ds = read_source_frames(spec, paths)
    assert set(ds.data_vars) == {"crs", *spec.variable_names}
    for var in spec.variables:
        da = ds[var.name]
        assert da.dims == ("time", "y", "x") and da.dtype == np.float32
        assert da.attrs["units"] == var.units and da.attrs["grid_mapping"] == "crs"
        finite = da.values[np.isfinite(da.values)]
        assert finite.size and var.valid_range[0] <= finite.min() <= finite.max()
    assert ds.time.dtype == "datetime64[ns]" and (np.diff(ds.time.values) > np.timedelta64(0)).all()
    if files[0].time is not None:
        assert [pd.Timestamp(t) for t in ds.time.values] == [f.time for f in files[:2]]
    assert ds.latitude.dims == ds.longitude.dims == ("y", "x")
    assert (ds.sizes["y"], ds.sizes["x"]) == spec.grid.shape
    assert np.abs(ds.latitude.values).max() <= 90
    assert pyproj.CRS.from_cf(ds.crs.attrs).equals(spec.grid.pyproj_crs)
    std = "latitude" if spec.grid.is_geographic else "projection_y_coordinate"
    assert ds.y.attrs["standard_name"] == std
    assert ds.attrs["source_name"] == name and ds.attrs["time_step"] == spec.time_step


# First and last frame (UTC) of every shared event (pysteps-data README).
SHARED_EVENTS = {
    "mch-radar": [
        ("2015-05-15 15:45", "2015-05-15 19:00"),
        ("2016-07-11 20:45", "2016-07-12 00:00"),
        ("2017-01-31 09:45", "2017-01-31 13:00"),
    ],
    "fmi-radar": [
        ("2016-09-28 14:45", "2016-09-28 18:00"),
        ("2017-05-09 10:45", "2017-05-09 14:00"),
    ],
    "knmi-radar": [("2010-08-26 00:00", "2010-08-26 07:35")],
    "rmi-radar": [("2021-07-04 15:50", "2021-07-04 19:00")],
}


@pytest.mark.parametrize("name", sorted(SHARED_EVENTS))
def test_full_shared_radar_sets_read_through_the_catalog(name, shared_data, monkeypatch):
    monkeypatch.setenv(SAMPLES_ENV, str(shared_data))
    spec = load_catalog().get(name)
    files = list_files(spec)
    step = spec.time_delta
    expected = sum((pd.Timestamp(b) - pd.Timestamp(a)) // step + 1 for a, b in SHARED_EVENTS[name])
    assert len(files) == expected
    for start, end in SHARED_EVENTS[name]:
        ends = [f for f in files if f.time in (pd.Timestamp(start), pd.Timestamp(end))]
        ds = read_source_frames(spec, [f.path for f in ends])
        np.testing.assert_array_equal(
            ds.time.values, np.array([start, end], dtype="datetime64[ns]")
        )


def _first_grib1_messages(raw: bytes, n: int) -> bytes:
    """The first ``n`` GRIB1 messages (section 0: b"GRIB", 3-byte big-endian total length;
    zero padding may follow a message)."""
    end = 0
    for _ in range(n):
        start = raw.index(b"GRIB", end)
        end = start + int.from_bytes(raw[start + 4 : start + 7], "big")
        assert raw[end - 4 : end] == b"7777"  # section 5: end of message
    return raw[:end]


def test_sources_read_from_fsspec_urls(tmp_path):
    """Files behind a URL (here ``memory://``) list and decode like local ones; libraries that
    need a local file (ecCodes, netCDF4) get a cached local copy."""
    import fsspec

    from data_catalog.spec import SourceSpec

    fs = fsspec.filesystem("memory")
    catalog = load_catalog()
    for name in ("knmi-radar", "era5-t2m-uk"):
        spec = catalog.get(name)
        local = list_files(spec)[0].path
        raw = open(local, "rb").read()
        if name == "era5-t2m-uk":  # 3 hours are enough
            local = str(tmp_path / "era5.grib")
            raw = _first_grib1_messages(raw, 3)
            open(local, "wb").write(raw)
        pattern = spec.path.rsplit("/", 1)[-1]
        fs.pipe(f"/url-test/{pattern.replace('%Y%m%d%H%M', '201008260000')}", raw)
        remote = SourceSpec.from_dict(spec.to_dict() | {"path": f"memory://url-test/{pattern}"})
        files = list_files(remote)
        assert len(files) == 1 and files[0].path.startswith("memory://")
        ds = read_source_frames(remote, [files[0].path])
        expected = read_source_frames(spec, [local])
        var = spec.variable_names[0]
        np.testing.assert_array_equal(ds[var].values, expected[var].values)
        np.testing.assert_array_equal(ds.time.values, expected.time.values)


PYSTEPS = {
    # source: (importer name, kwargs, how to bring its units to mm/h)
    "mch-radar": ("import_mch_gif", {"product": "AQC", "unit": "mm", "accutime": 5.0}, "mm"),
    "fmi-radar": ("import_fmi_pgm", {"gzipped": True}, "dBZ"),
    "knmi-radar": ("import_knmi_hdf5", {}, "mm"),
    "rmi-radar": ("import_odim_hdf5", {"qty": "RATE"}, "mm/h"),
}


@pytest.mark.parametrize("name", sorted(PYSTEPS))
def test_radar_readers_agree_with_pysteps_importers(name):
    """An independent decoder: pysteps' importer gives the same field, mask and extent."""
    from pysteps.io import importers

    importer, kwargs, units = PYSTEPS[name]
    spec = load_catalog().get(name)
    path = list_files(spec)[3].path
    ref, _, meta = getattr(importers, importer)(path, **kwargs)
    if units == "mm":  # 5-min accumulation
        ref = ref * 12.0
    elif units == "dBZ":  # pysteps' FMI Z-R pair
        ref = (10 ** (ref / 10) / meta["zr_a"]) ** (1 / meta["zr_b"])
    ours = read_source_frames(spec, [path]).precipitation_rate.values[0]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    scale = 1000.0 if meta["cartesian_unit"] == "km" else 1.0
    extent = np.array([meta["x1"], meta["x2"], meta["y1"], meta["y2"]]) * scale
    np.testing.assert_allclose(extent, spec.grid.extent, atol=0.01)
    assert meta["yorigin"] == spec.grid.y_origin
