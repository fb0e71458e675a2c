"""FMI PGM, KNMI HDF5 and ODIM_H5 readers: hand-decoded pixels, times, CRS, corners, bad files."""

from __future__ import annotations

import gzip
import shutil

import h5py
import numpy as np
import pyproj
import pytest

from data_catalog.catalog import get_source, list_files
from data_catalog.spec import SourceSpec
from pipelines.readers import read_source_frames

FMI_FILE = "201609281500_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz"
KNMI_FILE = "RAD_NL25_RAP_5min_201008260100.h5"
RMI_FILE = "20210704162000.rad.best.comp.rate.qpe.hdf"


def _sample(name: str, suffix: str) -> tuple[SourceSpec, str]:
    spec = get_source(name)
    return spec, next(f.path for f in list_files(spec) if f.path.endswith(suffix))


def _rate_from_dbz(dbz: float, a: float, b: float) -> float:
    return (10 ** (dbz / 10) / a) ** (1 / b)


def _corner_lonlat(crs: str, x: float, y: float) -> tuple[float, float]:
    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)


# --- FMI ------------------------------------------------------------------------------------


def test_fmi_hand_decoded_pixels_time_and_corner():
    spec, path = _sample("fmi-radar", FMI_FILE)
    raw = gzip.open(path).read()
    body = raw[raw.index(b"760 1226\n255\n") + 13 :]  # P5 body after "W H\nmaxval\n"
    dn = lambda row, col: body[row * 760 + col]  # noqa: E731 - one byte per pixel, row-major
    ds = read_source_frames(spec, [path])
    rate = ds.precipitation_rate.values[0]
    assert ds.time.values[0] == np.datetime64("2016-09-28T15:00")
    assert dn(806, 275) == 162  # (162 - 64) / 2 = 49 dBZ
    assert rate[806, 275] == pytest.approx(_rate_from_dbz(49.0, 223.0, 1.53), rel=1e-5)
    assert rate[806, 275] == pytest.approx(46.495, rel=1e-3)
    assert dn(600, 400) == 104 and rate[600, 400] == pytest.approx(0.59204, rel=1e-4)  # 20 dBZ
    assert dn(59, 439) == 64 and rate[59, 439] == pytest.approx(223 ** (-1 / 1.53), rel=1e-5)
    assert dn(0, 0) == 255 and np.isnan(rate[0, 0])
    assert "Z = 223 R^1.53" in ds.precipitation_rate.attrs["conversion"]
    # The outer bottom-left corner of the grid is the header's "bottomleft 18.6 57.93".
    lon, lat = _corner_lonlat(spec.grid.crs, spec.grid.extent[0], spec.grid.extent[2])
    assert (lon, lat) == pytest.approx((18.6, 57.93), abs=1e-4)
    x_mid, y_low = ds.x.values[0], ds.y.values[-1]  # bottom-left pixel centre
    assert (ds.longitude.values[-1, 0], ds.latitude.values[-1, 0]) == pytest.approx(
        _corner_lonlat(spec.grid.crs, x_mid, y_low), abs=1e-9
    )


def test_fmi_bad_files(tmp_path):
    spec, path = _sample("fmi-radar", FMI_FILE)
    raw = gzip.open(path).read()

    def write(case: str, content: bytes, name: str = FMI_FILE):
        target = tmp_path / case / name
        target.parent.mkdir()
        target.write_bytes(content)
        return target

    cut = write("cut", open(path, "rb").read()[:5000])
    with pytest.raises(ValueError, match=rf"{cut}: corrupt or truncated gzip"):
        read_source_frames(spec, [str(cut)])
    short = write("short", gzip.compress(raw[:-100], compresslevel=1))
    with pytest.raises(ValueError, match=rf"{short}: PGM body has 931660 bytes, expected"):
        read_source_frames(spec, [str(short)])
    moved = write("crs", raw.replace(b"centrallongitude 25", b"centrallongitude 15"))
    with pytest.raises(ValueError, match=rf"{moved}: CRS .*lon_0=15.* does not match"):
        read_source_frames(spec, [str(moved)])
    param = write("param", raw.replace(b"param CorrectedReflectivity", b"param Whatever"))
    with pytest.raises(ValueError, match=rf"{param}: unknown units for param 'Whatever'"):
        read_source_frames(spec, [str(param)])
    renamed = write("name", raw, FMI_FILE.replace("1500", "1515"))
    with pytest.raises(ValueError, match=r"says 2016-09-28 15:00:00 but its name says .*15:15"):
        read_source_frames(spec, [str(renamed)])


# --- KNMI -----------------------------------------------------------------------------------


def test_knmi_hand_decoded_pixels_time_and_corner():
    spec, path = _sample("knmi-radar", KNMI_FILE)
    with h5py.File(path) as h5:
        pv = h5["image1/image_data"][...]
        corners = h5["geographic"].attrs["geo_product_corners"]  # LL, UL, UR, LR (lon, lat)
    ds = read_source_frames(spec, [path])
    rate = ds.precipitation_rate.values[0]
    assert ds.time.values[0] == np.datetime64("2010-08-26T01:00")
    assert pv[508, 421] == 67 and rate[508, 421] == pytest.approx(0.67 * 12, rel=1e-6)
    assert pv[400, 350] == 3 and rate[400, 350] == pytest.approx(0.36, rel=1e-6)
    assert pv[0, 0] == 65535 and np.isnan(rate[0, 0])
    assert np.array_equal(np.isnan(rate), pv == 65535)
    # Outer upper-left corner (x_min, y_max) is the file's UL corner 0E 55.974N.
    ul = _corner_lonlat(spec.grid.crs, spec.grid.extent[0], spec.grid.extent[3])
    assert ul == pytest.approx((float(corners[2]), float(corners[3])), abs=2e-3)
    assert ds.latitude.values[0, 0] == pytest.approx(55.969, abs=1e-3)


def test_knmi_bad_files(tmp_path):
    spec, path = _sample("knmi-radar", KNMI_FILE)
    bad_crs = tmp_path / KNMI_FILE
    shutil.copy(path, bad_crs)
    with h5py.File(bad_crs, "a") as h5:
        h5["geographic/map_projection"].attrs["projection_proj4_params"] = np.bytes_(
            b"+proj=stere +lat_0=90 +lon_0=10.0 +lat_ts=60.0 +a=6378.137 +b=6356.752 +x_0=0 +y_0=0"
        )
    with pytest.raises(ValueError, match=rf"{bad_crs}: CRS .* does not match"):
        read_source_frames(spec, [str(bad_crs)])
    units = tmp_path / "RAD_NL25_RAP_5min_201008260105.h5"
    shutil.copy(path, units)
    with h5py.File(units, "a") as h5:
        h5["overview"].attrs["product_datetime_end"] = np.bytes_(b"26-AUG-2010;01:05:00.000")
        h5["overview"].attrs["product_datetime_start"] = np.bytes_(b"26-AUG-2010;01:00:00.000")
        h5["image1"].attrs["image_geo_parameter"] = np.bytes_(b"ECHO_TOPS_[KM]")
    with pytest.raises(ValueError, match=rf"{units}: unknown units .*'ECHO_TOPS_\[KM\]'"):
        read_source_frames(spec, [str(units)])
    cut = tmp_path / "RAD_NL25_RAP_5min_201008260110.h5"
    cut.write_bytes(open(path, "rb").read()[:4000])
    with pytest.raises(ValueError, match=rf"{cut}: not a readable HDF5 file"):
        read_source_frames(spec, [str(cut)])


# --- ODIM: the RMI composite ------------------------------------------------------------------


def test_rmi_odim_values_time_and_corner():
    spec, path = _sample("rmi-radar", RMI_FILE)
    with h5py.File(path) as h5:
        raw = h5["dataset1/data1/data"][...]
        where = dict(h5["where"].attrs)
    ds = read_source_frames(spec, [path])
    rate = ds.precipitation_rate.values[0]
    assert ds.time.values[0] == np.datetime64("2021-07-04T16:20")
    # RATE float32 without gain/offset in the file: ODIM defaults gain 1, offset 0.
    assert rate[680, 449] == raw[680, 449] == pytest.approx(69.20875, rel=1e-6)
    assert rate[350, 350] == 0.0 and np.isnan(rate[0, 0]) and np.isnan(raw[0, 0])
    ul = _corner_lonlat(spec.grid.crs, spec.grid.extent[0], spec.grid.extent[3])
    assert ul == pytest.approx((where["UL_lon"], where["UL_lat"]), abs=1e-6)
    lr = _corner_lonlat(spec.grid.crs, spec.grid.extent[1], spec.grid.extent[2])
    assert lr == pytest.approx((where["LR_lon"], where["LR_lat"]), abs=1e-6)


def test_rmi_bad_files(tmp_path):
    spec, path = _sample("rmi-radar", RMI_FILE)
    moved = tmp_path / RMI_FILE
    shutil.copy(path, moved)
    with h5py.File(moved, "a") as h5:
        h5["where"].attrs["projdef"] = np.bytes_(
            h5["where"].attrs["projdef"].replace(b"+lon_0=4.359215833333333", b"+lon_0=5")
        )
    with pytest.raises(ValueError, match=rf"{moved}: CRS .* does not match"):
        read_source_frames(spec, [str(moved)])
    small = tmp_path / "20210704162500.rad.best.comp.rate.qpe.hdf"
    with h5py.File(path) as src, h5py.File(small, "w") as h5:
        for name in ("what", "where", "how"):
            src.copy(name, h5)
        h5.attrs["Conventions"] = src.attrs["Conventions"]
        h5["what"].attrs["time"] = np.bytes_(b"162500")
        h5.create_dataset("dataset1/data1/data", data=src["dataset1/data1/data"][:350])
        src.copy("dataset1/data1/what", h5["dataset1/data1"])
    with pytest.raises(ValueError, match=rf"{small}: grid shape \(350, 700\) != \(700, 700\)"):
        read_source_frames(spec, [str(small)])


# --- ODIM: a synthetic file following the spec, other quantities --------------------------------

LCC = get_source("rmi-radar").grid.crs


def _odim_spec(**options) -> SourceSpec:
    return SourceSpec.from_dict(
        {
            "name": "odim-test",
            "kind": "radar",
            "reader": "odim-h5",
            "path": "/tmp/odim_%Y%m%d%H%M.h5",
            "time_step": "15min",
            "reader_options": {"zr_a": 200.0, "zr_b": 1.6, **options},
            "variables": [
                {"name": "precipitation_rate", "units": "mm/h", "source": "DBZH"},
                {"name": "reflectivity", "units": "dBZ", "source": "DBZH"},
                {"name": "accumulation_rate", "units": "mm/h", "source": "ACRR"},
            ],
            "grid": {"crs": LCC, "shape": [3, 4], "extent": [500000, 504000, 600000, 603000]},
        }
    )


def _write_odim(path, projdef: str = LCC, conventions: bytes = b"ODIM_H5/V2_3") -> None:
    """ODIM_H5 v2.3 COMP with DBZH (uint8) and ACRR (uint16, 15 min) in two datasets."""
    to_ll = pyproj.Transformer.from_crs(projdef, "EPSG:4326", always_xy=True)
    with h5py.File(path, "w") as h5:
        h5.attrs["Conventions"] = np.bytes_(conventions)
        what = h5.create_group("what").attrs
        what.update({"object": b"COMP", "date": b"20200101", "time": b"120000"})
        what["version"] = np.bytes_(b"H5rad 2.3")
        where = h5.create_group("where").attrs
        where["projdef"] = np.bytes_(LCC.encode())
        where.update({"xsize": 4, "ysize": 3, "xscale": 1000.0, "yscale": 1000.0})
        for corner, (x, y) in {
            "LL": (500000, 600000),
            "UL": (500000, 603000),
            "UR": (504000, 603000),
            "LR": (504000, 600000),
        }.items():
            lon, lat = to_ll.transform(x, y)
            where[f"{corner}_lon"], where[f"{corner}_lat"] = lon, lat
        # dataset1: DBZH; gain/offset/nodata/undetect at dataset level, quantity at data level.
        d1 = h5.create_group("dataset1")
        d1.create_group("what").attrs.update(
            {"gain": 0.5, "offset": -32.0, "nodata": 255.0, "undetect": 0.0}
        )
        d1.create_group("data1/what").attrs["quantity"] = np.bytes_(b"DBZH")
        raw = np.array([[0, 100, 255, 64], [140, 0, 0, 0], [0, 0, 0, 254]], np.uint8)
        d1["data1"].create_dataset("data", data=raw)
        d2 = h5.create_group("dataset2")
        d2.create_group("what").attrs.update(
            {
                "startdate": b"20200101",
                "starttime": b"114500",
                "enddate": b"20200101",
                "endtime": b"120000",
            }
        )
        w = d2.create_group("data1/what").attrs
        w.update({"quantity": np.bytes_(b"ACRR"), "gain": 0.01, "offset": 0.0})
        w.update({"nodata": 65535.0, "undetect": 0.0})
        acrr = np.array([[0, 250, 65535, 1], [0, 0, 0, 0], [0, 0, 0, 1000]], np.uint16)
        d2["data1"].create_dataset("data", data=acrr)


def test_synthetic_odim_follows_the_spec(tmp_path):
    path = tmp_path / "odim_202001011200.h5"
    _write_odim(path)
    ds = read_source_frames(_odim_spec(), [str(path)])
    assert ds.time.values[0] == np.datetime64("2020-01-01T12:00")
    dbz = ds.reflectivity.values[0]
    # raw * 0.5 - 32; undetect (0) -> -30 dBZ (pysteps' convention); nodata (255) -> NaN
    assert dbz[0, 1] == 18.0 and dbz[1, 0] == 38.0 and dbz[0, 3] == 0.0 and dbz[2, 3] == 95.0
    assert dbz[0, 0] == -30.0 and np.isnan(dbz[0, 2])
    rate = ds.precipitation_rate.values[0]
    assert rate[0, 1] == pytest.approx((10**1.8 / 200) ** (1 / 1.6), rel=1e-6)  # 18 dBZ
    assert rate[0, 0] == 0.0 and np.isnan(rate[0, 2])  # undetect = no rain
    acc = ds.accumulation_rate.values[0]
    # ACRR 2.5 mm over 11:45-12:00 (15 min) = 10 mm/h
    assert acc[0, 1] == pytest.approx(10.0) and acc[0, 3] == pytest.approx(0.04)
    assert acc[0, 0] == 0.0 and np.isnan(acc[0, 2]) and acc[2, 3] == pytest.approx(40.0)
    assert "Z = 200 R^1.6" in ds.precipitation_rate.attrs["conversion"]


def test_synthetic_odim_errors(tmp_path):
    path = tmp_path / "odim_202001011200.h5"
    _write_odim(path)
    rate_only = SourceSpec.from_dict(
        _odim_spec().to_dict()
        | {"variables": [{"name": "precipitation_rate", "units": "mm/h", "source": "RATE"}]}
    )
    with pytest.raises(ValueError, match=r"no dataset holds quantity 'RATE'; .*\['ACRR', 'DBZH'\]"):
        read_source_frames(rate_only, [str(path)])
    velocity = SourceSpec.from_dict(
        _odim_spec().to_dict()
        | {"variables": [{"name": "velocity", "units": "1", "source": "VRADH"}]}
    )
    with pytest.raises(ValueError, match=rf"{path}: unknown units for ODIM quantity 'VRADH'"):
        read_source_frames(velocity, [str(path)])
    other = tmp_path / "odim_202001011215.h5"
    _write_odim(other, conventions=b"CF-1.8")
    with pytest.raises(ValueError, match=rf"{other}: not ODIM_H5 \(Conventions = 'CF-1.8'\)"):
        read_source_frames(_odim_spec(), [str(other)])
    no_zr = SourceSpec.from_dict(_odim_spec().to_dict() | {"reader_options": {}})
    with pytest.raises(ValueError, match="needs reader option 'zr_a'"):
        read_source_frames(no_zr, [str(path)])
    renamed = tmp_path / "odim_202001011230.h5"
    shutil.copy(path, renamed)
    with pytest.raises(ValueError, match=rf"{renamed}: the file says .*12:00:00 but its name"):
        read_source_frames(_odim_spec(), [str(renamed)])
