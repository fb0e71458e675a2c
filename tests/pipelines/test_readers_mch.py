"""MeteoSwiss AQC GIF reader: hand-decoded pixels, times, CRS, lat/lon, bad files."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
from PIL import Image

from data_catalog.catalog import get_source, list_files
from data_catalog.crs import cf_grid_mapping
from pipelines.readers import read_source_frames

MCH_FILE = "AQC161932300V_00005.801.gif"  # 2016-07-11 23:00 UTC (day 193)
LV03 = (
    "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 +x_0=600000 "
    "+y_0=200000 +ellps=bessel +towgs84=674.374,15.056,405.346,0,0,0,0 +units=m"
)


@pytest.fixture(scope="module")
def spec():
    return get_source("mch-radar")


@pytest.fixture(scope="module")
def sample(spec):
    files = [f.path for f in list_files(spec) if f.path.endswith(MCH_FILE)]
    return files[0], read_source_frames(spec, files)


def _hand_rate(dn: int) -> float:
    """pysteps-data README: mm per 5 min = (10**((dn - 71.5)/20)/316)**(1/1.5); x12 -> mm/h."""
    return (10 ** ((dn - 71.5) / 20) / 316) ** (1 / 1.5) * 12


def test_hand_decoded_pixels(sample):
    path, ds = sample
    dn = np.array(Image.open(path))
    rate = ds.precipitation_rate.isel(time=0).values
    assert ds.precipitation_rate.dtype == np.float32
    assert dn[391, 543] == 147 and rate[391, 543] == pytest.approx(84.99431, rel=1e-6)
    assert dn[320, 355] == 106 and rate[320, 355] == pytest.approx(3.6536184, rel=1e-6)
    assert rate[320, 355] == pytest.approx(_hand_rate(106), rel=1e-6)
    assert dn[0, 389] == 1 and rate[0, 389] == 0.0  # dn < 2: no rain
    assert dn[0, 0] == 255 and np.isnan(rate[0, 0])  # 255: no data
    assert np.array_equal(np.isnan(rate), dn == 255)
    assert "x 12" in ds.precipitation_rate.attrs["conversion"]


def test_contract_coords_time_and_crs(sample):
    _, ds = sample
    assert ds.precipitation_rate.dims == ("time", "y", "x")
    assert ds.precipitation_rate.attrs["units"] == "mm/h"
    assert ds.precipitation_rate.attrs["grid_mapping"] == "crs"
    assert ds.time.values[0] == np.datetime64("2016-07-11T23:00")
    assert ds.x.values[0] == 255500.0 and ds.x.values[-1] == 964500.0
    assert ds.y.values[0] == 479500.0 and ds.y.values[-1] == -159500.0  # north-up
    assert ds.x.attrs["standard_name"] == "projection_x_coordinate"
    assert pyproj.CRS.from_cf(ds.crs.attrs).equals(pyproj.CRS(LV03))
    lon, lat = pyproj.Transformer.from_crs(LV03, "EPSG:4326", always_xy=True).transform(
        255500.0, 479500.0
    )
    assert ds.latitude.values[0, 0] == pytest.approx(lat, abs=1e-9)
    assert ds.longitude.values[0, 0] == pytest.approx(lon, abs=1e-9)
    assert 49.3 < lat < 49.4 and 2.6 < lon < 2.8  # top-left corner: near Reims


def test_all_frames_in_order(spec):
    files = [f.path for f in list_files(spec, start="2016-07-11", end="2016-07-13")]
    ds = read_source_frames(spec, files[:6])
    assert ds.sizes == {"time": 6, "y": 640, "x": 710}
    assert (np.diff(ds.time.values) == np.timedelta64(5, "m")).all()
    with pytest.raises(ValueError, match="duplicate timestamps 2016-07-11 20:45:00"):
        read_source_frames(spec, [files[0], files[0]])


def test_bad_gif_files_name_the_file(spec, sample, tmp_path):
    path, _ = sample
    raw = open(path, "rb").read()
    truncated = tmp_path / MCH_FILE
    truncated.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ValueError, match=rf"{truncated}: not a readable GIF"):
        read_source_frames(spec, [str(truncated)])
    small = tmp_path / "AQC161932305V_00005.801.gif"
    Image.fromarray(np.zeros((64, 71), np.uint8), mode="P").save(small)
    with pytest.raises(ValueError, match=rf"{small}: grid shape \(64, 71\) != \(640, 710\)"):
        read_source_frames(spec, [str(small)])
    with pytest.raises(FileNotFoundError):
        read_source_frames(spec, [str(tmp_path / "AQC161932310V_00005.801.gif")])


def test_a_non_image_is_named_by_its_file_not_a_buffer(spec, tmp_path):
    text = tmp_path / "AQC161932315V_00005.801.gif"
    text.write_text("not an image\n")
    with pytest.raises(ValueError, match=rf"{text}: not a GIF") as info:
        read_source_frames(spec, [str(text)])
    assert "BytesIO" not in str(info.value) and " at 0x" not in str(info.value)


def test_crs_mismatch_names_the_crs_briefly(spec):
    from pipelines.readers.base import check_crs

    # A CRS read back from CF attributes has no EPSG code: to_string() is a ~1,200-char WKT.
    assert len(pyproj.CRS.from_cf(cf_grid_mapping(LV03)).to_string()) > 1000
    other = LV03.replace("+lon_0=7.43958333333333", "+lon_0=8")
    read_back = pyproj.CRS.from_cf(cf_grid_mapping(other))
    with pytest.raises(ValueError, match="does not match") as info:
        check_crs(read_back, spec, "f.gif")
    assert len(str(info.value)) < 600, str(info.value)
