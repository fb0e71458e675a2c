"""Every catalog source ingests from its real files and opens with correct times, units, CRS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from data_catalog.catalog import get_source, list_files
from pipelines.cli import main
from pipelines.ingest import ingest_source
from pipelines.readers import read_source_frames

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:angle from rectified to skew grid"),
]

# source -> (frames to ingest from the shipped samples, (lat_min, lat_max, lon_min, lon_max)
# of the grid, loosely: the country or region each covers)
SOURCES = {
    "mch-radar": (4, (43.0, 50.0, 2.0, 13.0)),  # Switzerland and surroundings
    "fmi-radar": (3, (57.0, 70.5, 14.0, 35.5)),  # Finland
    "knmi-radar": (4, (48.5, 56.5, -0.5, 11.5)),  # the Netherlands
    "rmi-radar": (4, (47.0, 54.5, -1.5, 10.5)),  # Belgium
    "era5-t2m-uk": (48, (49.9, 58.1, -10.1, 2.1)),  # UK and Ireland (pixel centres)
    "nyc-taxi": (None, (40.63, 40.85, -74.05, -73.75)),  # Manhattan and around
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_sample_round_trip(tmp_path, source):
    spec = get_source(source)
    count, (lat0, lat1, lon0, lon1) = SOURCES[source]
    files = list_files(spec)
    if files[0].time is not None:  # one frame per file: ingest the first `count` files
        files = files[:count]
        start, end = files[0].time, files[-1].time
    else:  # multi-frame files: a period of `count` steps, or everything
        start = None
        end = None if count is None else pd.Timestamp("2019-03-01") + (count - 1) * spec.time_delta
    report = ingest_source(source, data_dir=str(tmp_path), start=start, end=end, progress=False)
    expected = read_source_frames(spec, [f.path for f in files])
    if end is not None:
        expected = expected.sel(time=slice(start, end))
    ds = xr.open_zarr(report.store, decode_coords="all")
    # times: on the regular grid, the read frames present, nothing else
    times = pd.DatetimeIndex(ds["time"].values)
    assert (np.diff(times.asi8) == spec.time_delta.value).all()
    present = ds["frame_present"].values
    assert report.frames_written == expected.sizes["time"] == present.sum()
    np.testing.assert_array_equal(times[present], pd.DatetimeIndex(expected["time"].values))
    assert len(report.missing) == 0
    # values, units and CF metadata
    for var in spec.variables:
        stored = ds[var.name].isel(time=np.flatnonzero(present)).load()
        np.testing.assert_array_equal(stored.values, expected[var.name].values)
        assert stored.dtype == np.float32
        assert stored.attrs["units"] == var.units and ds[var.name].encoding["grid_mapping"] == "crs"
    crs = pyproj.CRS.from_wkt(ds["crs"].attrs["crs_wkt"])
    assert crs.equals(spec.grid.pyproj_crs, ignore_axis_order=True)
    np.testing.assert_allclose(ds["y"].values, spec.grid.y_coords())
    np.testing.assert_allclose(ds["x"].values, spec.grid.x_coords())
    lat, lon = ds["latitude"].values, ds["longitude"].values
    assert lat.shape == lon.shape == spec.grid.shape
    assert lat0 <= lat.min() < lat.max() <= lat1 and lon0 <= lon.min() < lon.max() <= lon1
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["source_name"] == source


def test_cli_ingest_with_user_catalog(tmp_path, capsys):
    """``nowcast ingest`` with ``--catalog``: a user's entry (renamed copy of knmi-radar)."""
    import yaml

    from data_catalog.catalog import DEFAULT_CATALOG

    data = yaml.safe_load(DEFAULT_CATALOG.read_text())
    data["sources"] = {"my-knmi": data["sources"]["knmi-radar"]}
    catalog = tmp_path / "mine.yaml"
    catalog.write_text(yaml.safe_dump(data))
    argv = ["ingest", "my-knmi", "--catalog", str(catalog), "--data-dir", str(tmp_path)]
    argv += ["--start", "2010-08-26T00:00", "--end", "2010-08-26T00:10", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 written (3 new) from 3 files" in out and "my-knmi.zarr" in out
    ds = xr.open_zarr(tmp_path / "stores" / "my-knmi.zarr")
    assert int(ds["frame_present"].sum()) == 3
    # a bad period is one clear error line, exit code 2
    assert main([*argv[:6], "--start", "2010-08-26T01:00", "--end", "2010-08-26T00:00"]) == 2
    assert "is after end" in capsys.readouterr().err


def test_shared_events_share_one_store(tmp_path, shared_data, monkeypatch):
    """MCH's three events (2015-2017) and FMI's two go into one store each, at their times."""
    monkeypatch.setenv("NOWCAST_SAMPLES_DIR", str(shared_data))
    for source, events in (("mch-radar", 3), ("fmi-radar", 2)):
        spec = get_source(source)
        files = list_files(spec)
        days = sorted({f.time.floor("D") for f in files})
        firsts = [next(f for f in files if f.time.floor("D") == day) for day in days]
        starts = [f.time for f in firsts if f.path.split("/")[-2] == f.time.strftime("%Y%m%d")]
        assert len(starts) == events
        for t in starts:
            ingest_source(source, data_dir=str(tmp_path), start=t, end=t, progress=False)
        ds = xr.open_zarr(tmp_path / "stores" / f"{source}.zarr")
        present = pd.DatetimeIndex(ds["time"].values[ds["frame_present"].values])
        assert list(present) == starts
        assert pd.Timestamp(ds["time"].values[0]) == starts[0].floor("D")
