"""RADOLAN reader on files written with the layout of the DWD format description: an ASCII
header ending with ETX and a little-endian payload (row 0 south), and ESRI ASCII grids."""

from __future__ import annotations

import gzip

import numpy as np
import pyproj
import pytest

from data_catalog.spec import SourceSpec
from pipelines.readers import read_file, read_source_frames
from pipelines.readers.radolan import GRIDS, RADOLAN_CRS, parse_header

SITES = "<boo,ros,emd,hnr,umd,pro,ess,asd,neu,nhb,oft,tur,isn,fbg,mem>"


def _spec(product: str = "RW", shape=(900, 900), units: str = "mm/h", **extra) -> SourceSpec:
    rows, cols = shape
    x0, y0 = GRIDS[shape] if shape in GRIDS else (-523_462.2, -4_658_645.0)
    entry = {
        "name": "dwd-radolan",
        "kind": "radar",
        "reader": "radolan",
        "path": f"/data/raa01-{product.lower()}-10000-%y%m%d%H%M-dwd---bin",
        "time_step": "1h" if product == "RW" else "5min",
        "variables": [
            {
                "name": "precipitation_rate",
                "units": units,
                "source": product,
                "valid_range": [0.0, 1000.0] if units == "mm/h" else [-40.0, 100.0],
            },
        ],  # fmt: skip
        "grid": {
            "crs": RADOLAN_CRS,
            "shape": [rows, cols],
            "extent": [x0, x0 + cols * 1000.0, y0, y0 + rows * 1000.0],
        },  # fmt: skip
    }
    for key, value in extra.items():
        entry[key] = value
    return SourceSpec.from_dict(entry)


def _header(product: str, stamp: str, mmyy: str, body: str, payload_len: int) -> bytes:
    """A RADOLAN header with BY = the whole product length (header + ETX + payload)."""
    by = 0
    for _ in range(3):  # BY's own digits change the header length
        text = f"{product}{stamp}10000{mmyy}BY{by:7d}{body}"
        by = len(text) + 1 + payload_len
    return f"{product}{stamp}10000{mmyy}BY{by:7d}{body}".encode("latin-1") + b"\x03"


def _write_binary(path, product, words, precision="E-01", interval=60, extra=""):
    rows, cols = words.shape
    dtype = "u1" if product == "RX" else "<u2"
    payload = words.astype(dtype).tobytes()
    body = f"VS 3SW   2.18.3PR {precision}INT{interval:5d}GP{rows:4d}x{cols:4d}{extra}MS 62{SITES}"
    # 03 May 2018 10:50 UTC: ddhhmm = 031050, MMYY = 0518
    raw = _header(product, "031050", "0518", body, len(payload)) + payload
    path.write_bytes(raw)
    return raw


def _name(tmp_path, product="rw", stamp="1805031050"):
    return tmp_path / f"raa01-{product}-10000-{stamp}-dwd---bin"


def test_rw_header_and_pixels_hand_decoded(tmp_path):
    words = np.zeros((900, 900), dtype=np.uint16)
    words[0, 0] = 123  # south-west pixel: 12.3 mm in 60 min
    words[0, 1] = 0x2000 | 2500  # bit 13: no data
    words[0, 2] = 0x8000 | 7  # bit 15: clutter
    words[0, 3] = 0x1000 | 42  # bit 12: interpolated, value kept: 4.2
    words[899, 899] = 4095  # north-east pixel: 409.5
    path = _name(tmp_path)
    raw = _write_binary(path, "RW", words)
    header = parse_header(raw, str(path))
    assert (header.product, header.shape, header.precision) == ("RW", (900, 900), 0.1)
    assert header.interval_minutes == 60 and header.length == len(raw)
    assert str(header.time) == "2018-05-03 10:50:00"
    ds = read_source_frames(_spec(), [str(path)])
    rate = ds.precipitation_rate.values[0]  # catalog y_origin upper: row 899 is south
    assert ds.time.values[0] == np.datetime64("2018-05-03T10:50")
    assert rate[899, 0] == pytest.approx(12.3, abs=1e-5)  # 12.3 mm per 60 min = 12.3 mm/h
    assert np.isnan(rate[899, 1]) and np.isnan(rate[899, 2])
    assert rate[899, 3] == pytest.approx(4.2, abs=1e-5)
    assert rate[0, 899] == pytest.approx(409.5, abs=1e-4)
    assert np.nansum(rate) == pytest.approx(12.3 + 4.2 + 409.5, abs=1e-3)
    # the grid: the 900x900 lower-left corner is 3.5889 E 46.9526 N (format description)
    to_ll = pyproj.Transformer.from_crs(RADOLAN_CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(*GRIDS[(900, 900)])
    assert (round(lon, 4), round(lat, 4)) == (3.5889, 46.9526)


def test_ry_precision_e02_negative_flag_and_masking(tmp_path):
    words = np.zeros((900, 900), dtype=np.uint16)
    words[10, 20] = 250  # 2.50 mm per 5 min = 30 mm/h
    words[10, 21] = 0x4000 | 5  # bit 14: -0.05 mm, below valid_range
    path = _name(tmp_path, "ry")
    _write_binary(path, "RY", words, precision="E-02", interval=5)
    with pytest.raises(ValueError, match=r"spans \[-0.6, 30\] mm/h, outside the valid range"):
        read_source_frames(_spec("RY"), [str(path)])
    masked = _spec("RY", reader_options={"out_of_range": "mask"})
    frames = read_file(masked, str(path))
    rate = frames.data["precipitation_rate"][0]
    assert rate[889, 20] == pytest.approx(30.0, rel=1e-6)
    assert np.isnan(rate[889, 21])
    assert frames.qc_masked["precipitation_rate"].tolist() == [1]
    ds = read_source_frames(masked, [str(path)])
    assert ds.precipitation_rate.attrs["qc_masked_count"] == 1


def test_rx_one_byte_reflectivity_and_gzip(tmp_path):
    words = np.zeros((900, 900), dtype=np.uint8)
    words[0, 0] = 100  # 100 / 2 - 32.5 = 17.5 dBZ
    words[0, 1] = 250  # no data
    words[0, 2] = 249  # clutter
    path = _name(tmp_path, "rx")
    raw = _write_binary(path, "RX", words, precision="E+00", interval=5)
    entry = _spec("RX", units="dBZ").to_dict()
    lower = SourceSpec.from_dict(entry | {"grid": entry["grid"] | {"y_origin": "lower"}})
    gz = tmp_path / "gz" / path.name
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(raw))
    dbz = read_file(lower, str(gz)).data["precipitation_rate"][0]  # row 0 south
    assert dbz[0, 0] == pytest.approx(17.5) and np.isnan(dbz[0, 1]) and np.isnan(dbz[0, 2])
    assert dbz[5, 5] == pytest.approx(-32.5)


def test_extended_grid_lead_time_and_errors(tmp_path):
    words = np.zeros((1200, 1100), dtype=np.uint16)
    words[0, 0] = 100
    path = _name(tmp_path, "rv", "1805031100")  # 10:50 + VV 10 min
    _write_binary(path, "RV", words, precision="E-02", interval=5, extra="VV 010")
    spec = _spec("RV", shape=(1200, 1100))
    frames = read_file(spec, str(path))
    assert frames.times[0] == np.datetime64("2018-05-03T11:00")
    assert frames.data["precipitation_rate"][0, 1199, 0] == pytest.approx(12.0)  # 1 mm/5 min
    assert "VV 10 min" in frames.notes["precipitation_rate"]
    # a catalog grid shifted by 2 km is not the RADOLAN grid
    shifted = spec.to_dict()
    shifted["grid"]["extent"] = [v + 2000.0 for v in shifted["grid"]["extent"][:2]] + shifted[
        "grid"
    ]["extent"][2:]
    with pytest.raises(ValueError, match="not the RADOLAN 1200x1100 grid"):
        read_file(SourceSpec.from_dict(shifted), str(path))
    # the header time must agree with the file name
    wrong = _name(tmp_path, "rv", "1805031105")
    wrong.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="the file says 2018-05-03 11:00:00 but its name says"):
        read_file(spec, str(wrong))
    cut = _name(tmp_path, "rv", "1805031110")
    cut.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated RADOLAN payload"):
        read_file(spec, str(cut))
    with pytest.raises(ValueError, match=r"holds RADOLAN product 'RV', not 'RW'"):
        read_file(_spec("RW", shape=(1200, 1100)), str(path))
    with pytest.raises(ValueError, match="states its units; reader_options.units"):
        read_file(_spec("RV", shape=(1200, 1100), reader_options={"units": "mm"}), str(path))
    junk = tmp_path / "raa01-rv-10000-1805031115-dwd---bin"
    junk.write_bytes(b"not a radolan product")
    with pytest.raises(ValueError, match="not a RADOLAN binary product"):
        read_file(spec, str(junk))
    with pytest.raises(
        ValueError, match=r"reader 'radolan' does not accept reader_options \['key'\]"
    ):
        read_file(_spec("RV", shape=(1200, 1100), reader_options={"key": "x"}), str(path))


def test_ascii_grid(tmp_path):
    # 3 x 4 grid in the RADOLAN projection, DWD-like export in 1/10 mm per hour, NODATA -1
    rows = ["0 5 10 -1", "1 2 3 4", "7 8 9 123"]  # first row is the northern one
    text = "ncols 4\nnrows 3\nxllcorner -523462\nyllcorner -4658645\ncellsize 1000\n"
    text += "NODATA_value -1\n" + "\n".join(rows) + "\n"
    path = tmp_path / "RW_20180503-1050.asc"
    path.write_text(text)
    entry = {
        "name": "dwd-radolan-asc",
        "kind": "radar",
        "reader": "radolan",
        "path": str(tmp_path / "RW_%Y%m%d-%H%M.asc"),
        "time_step": "1h",
        "variables": [
            {
                "name": "precipitation_rate",
                "units": "mm/h",
                "source": "ASC",
                "valid_range": [0.0, 1000.0],
            }
        ],  # fmt: skip
        "grid": {
            "crs": RADOLAN_CRS,
            "shape": [3, 4],
            "extent": [-523462.0, -519462.0, -4658645.0, -4655645.0],
        },  # fmt: skip
        "reader_options": {"units": "mm", "scale": 0.1, "accumulation_minutes": 60},
    }
    ds = read_source_frames(SourceSpec.from_dict(entry), [str(path)])
    rate = ds.precipitation_rate.values[0]
    assert ds.time.values[0] == np.datetime64("2018-05-03T10:50")
    np.testing.assert_allclose(rate[0, :3], [0.0, 0.5, 1.0], atol=1e-6)
    assert np.isnan(rate[0, 3]) and rate[2, 3] == pytest.approx(12.3, abs=1e-5)
    no_units = entry | {"reader_options": {"scale": 0.1}}
    with pytest.raises(ValueError, match="an ASCII grid carries no units"):
        read_source_frames(SourceSpec.from_dict(no_units), [str(path)])
    moved = entry | {"grid": entry["grid"] | {"extent": [0.0, 4000.0, 0.0, 3000.0]}}
    with pytest.raises(ValueError, match="grid extent .* does not match"):
        read_source_frames(SourceSpec.from_dict(moved), [str(path)])
