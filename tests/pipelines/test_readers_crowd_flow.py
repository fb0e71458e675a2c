"""NYC taxi npz (real sample) and TaxiBJ HDF5 (fixture built from the layout spec)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from data_catalog.catalog import get_source, list_files
from data_catalog.spec import SourceSpec
from pipelines.readers import read_source_frames


@pytest.fixture(scope="module")
def nyc():
    spec = get_source("nyc-taxi")
    paths = {f.path.rsplit("/", 1)[-1]: f.path for f in list_files(spec)}
    return spec, paths, read_source_frames(spec, list(paths.values()))


def test_nyc_taxi_cells_times_and_grid(nyc):
    spec, paths, ds = nyc
    train = np.load(paths["volume_train.npz"])["volume"]  # (T, X_lon, Y_lat, C)
    test = np.load(paths["volume_test.npz"])["volume"]
    pickups = ds.pickups.values  # (time, y=lat bin, x=lon bin)
    assert pickups.shape == (1488, 20, 10) and pickups.dtype == np.float32
    assert pickups[100, 11, 2] == train[100, 2, 11, 0] and train[100, 2, 11, 0] > 0
    assert pickups[1190 + 5, 1, 8] == test[5, 8, 1, 0]  # JFK cell of the test file
    assert float(pickups.sum()) == 12_489_895.0  # 12.49 M pickups (README)
    # The files are read in time order (the glob gives volume_test first).
    assert ds.time.values[0] == np.datetime64("2015-01-01T00:00")
    assert ds.time.values[1189] == np.datetime64("2015-01-25T18:30")
    assert ds.time.values[1190] == np.datetime64("2015-01-25T19:00")
    assert ds.time.values[-1] == np.datetime64("2015-01-31T23:30")
    assert (np.diff(ds.time.values) == np.timedelta64(30, "m")).all()
    # Cell (0, 0) is the south-west cell: centre -74.05 + 0.03/2, 40.63 + 0.011/2
    assert ds.longitude.values[0, 0] == pytest.approx(-74.035)
    assert ds.latitude.values[0, 0] == pytest.approx(40.6355)
    assert ds.pickups.attrs["units"] == "count"


def test_nyc_taxi_needs_a_start_time(nyc, tmp_path):
    spec, paths, _ = nyc
    other = tmp_path / "volume_val.npz"
    other.write_bytes(open(paths["volume_test.npz"], "rb").read())
    with pytest.raises(ValueError, match=rf"{other}: no start time for 'volume_val.npz'"):
        read_source_frames(spec, [str(other)])
    cut = tmp_path / "volume_test.npz"
    cut.write_bytes(open(paths["volume_test.npz"], "rb").read()[:2000])
    with pytest.raises(ValueError, match=rf"{cut}: not a readable .npz"):
        read_source_frames(spec, [str(cut)])


TAXIBJ = {
    "name": "taxibj",
    "kind": "crowd-flow",
    "reader": "taxibj-h5",
    "path": "/tmp/BJ*_M32x32_T30_InOut.h5",
    "time_step": "30min",
    "variables": [
        {"name": "inflow", "units": "count", "source": "inflow"},
        {"name": "outflow", "units": "count", "source": "outflow"},
    ],
    # Beijing inside the 4th ring road, roughly; the layout carries no coordinates.
    "grid": {"crs": "EPSG:4326", "shape": [32, 32], "extent": [116.25, 116.5, 39.8, 40.0]},
}


def _write_taxibj(path, dates: list[bytes], seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).integers(0, 500, (len(dates), 2, 32, 32)).astype(np.float64)
    with h5py.File(path, "w") as h5:
        h5["date"] = np.array(dates, dtype="S10")
        h5["data"] = data
    return data


def test_taxibj_fixture_slots_and_channels(tmp_path):
    path = tmp_path / "BJ13_M32x32_T30_InOut.h5"
    dates = [b"2013070101", b"2013070102", b"2013070148", b"2013070201", b"2013070203"]
    data = _write_taxibj(path, dates)
    ds = read_source_frames(SourceSpec.from_dict(TAXIBJ), [str(path)])
    expected = ["2013-07-01T00:00", "2013-07-01T00:30", "2013-07-01T23:30", "2013-07-02T00:00"]
    expected.append("2013-07-02T01:00")  # slot 02 missing: a gap is allowed
    np.testing.assert_array_equal(ds.time.values, np.array(expected, "datetime64[ns]"))
    np.testing.assert_array_equal(ds.inflow.values, data[:, 0].astype(np.float32))
    np.testing.assert_array_equal(ds.outflow.values, data[:, 1].astype(np.float32))
    assert ds.inflow.dims == ("time", "y", "x") and ds.outflow.attrs["units"] == "count"


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        ([b"2013070101", b"2013070101"], "duplicate timestamps 2013-07-01 00:00:00"),
        ([b"2013070103", b"2013070102"], "non-monotonic timestamps 2013-07-01 01:00:00"),
        ([b"2013070149"], r"slot 49 of '2013070149' is outside 1..48"),
        ([b"2013130101"], r"bad date in TaxiBJ slot '2013130101'"),
        ([b"20130701"], r"bad TaxiBJ date slot '20130701'"),
    ],
)
def test_taxibj_bad_slots_name_the_file(tmp_path, dates, message):
    path = tmp_path / "BJ13_M32x32_T30_InOut.h5"
    _write_taxibj(path, dates)
    with pytest.raises(ValueError, match=rf"{path}: .*{message}"):
        read_source_frames(SourceSpec.from_dict(TAXIBJ), [str(path)])


def test_taxibj_bad_layout(tmp_path):
    path = tmp_path / "BJ14_M32x32_T30_InOut.h5"
    with h5py.File(path, "w") as h5:
        h5["date"] = np.array([b"2014030101"])
        h5["data"] = np.zeros((1, 2, 16, 16))
    with pytest.raises(ValueError, match=rf"{path}: grid shape \(16, 16\) != \(32, 32\)"):
        read_source_frames(SourceSpec.from_dict(TAXIBJ), [str(path)])
    with h5py.File(path, "w") as h5:
        h5["date"] = np.array([b"2014030101"])
    with pytest.raises(ValueError, match=rf"{path}: not the TaxiBJ layout"):
        read_source_frames(SourceSpec.from_dict(TAXIBJ), [str(path)])
