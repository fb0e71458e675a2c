"""Hostile files (issue 25): bombs cost at most a small multiple of the catalog frame, bad times
and values are one-line errors naming the file, never a silent fall back."""

from __future__ import annotations

import bz2
import gzip
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from data_catalog.spec import SourceSpec
from pipelines.readers import read_file
from tests.pipelines import hostile_files as hf

pytestmark = pytest.mark.timeout(120)

ALL_IN_ONE = """
import json, resource, sys
import pyproj  # PROJ before anything else (see tests/conftest.py)
from data_catalog.spec import SourceSpec
from pipelines.readers import read_file
out = []
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path, entry in json.loads(sys.argv[1]):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        read_file(SourceSpec.from_dict(entry), path)
        message = None
    except ValueError as error:
        message = str(error)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.append({"path": path, "growth_kib": after - before, "message": message})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"files": out, "total_growth_kib": peak - base}))
"""


def test_bombs_of_every_format_are_refused_with_bounded_memory(tmp_path):
    """Five files of 5 KB to 400 KB that inflate or declare 100 MB to 400 MB: each is refused
    with one line naming it and the sizes, and the reading process grows by at most 64 MB in
    all (the largest catalog frame here, RADOLAN 900 x 900, is 6.5 MB as float64; its
    inflate cap 13 MB)."""
    items = []
    for name, write in hf.BOMBS.items():
        directory = tmp_path / name
        directory.mkdir()
        path, entry = write(directory)
        items.append((str(path), entry))
    done = subprocess.run(
        [sys.executable, "-c", ALL_IN_ONE, json.dumps(items)],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for item in result["files"]:
        message = item["message"]
        assert message is not None, f"{item['path']} was read"
        assert message.startswith(item["path"]) and "\n" not in message
        assert ("inflates beyond" in message) or ("declares" in message), message
    assert result["total_growth_kib"] < 64 * 1024, result


@pytest.mark.parametrize("kind", ["gz", "bz2"])
def test_inflate_caps_streamed_decompression(kind):
    from pipelines.readers.limits import inflate

    compress = gzip.compress if kind == "gz" else bz2.compress
    payload = bytes(range(256)) * 40
    assert bytes(inflate(compress(payload) + compress(payload), 100_000, "f")) == payload * 2
    with pytest.raises(ValueError, match=r"^f: .* inflates beyond 1,000 bytes"):
        inflate(compress(payload), 1000, "f")
    with pytest.raises(ValueError, match=r"^f: corrupt or truncated"):
        inflate(compress(payload)[:-20], 100_000, "f")


def test_payload_cap_is_a_small_multiple_of_the_frame():
    from pipelines.readers.limits import payload_cap

    spec = SourceSpec.from_dict(hf.radolan_entry())
    assert payload_cap(spec, 2) == 2 * 900 * 900 * 2 + 65536


# --- RADOLAN headers -------------------------------------------------------------------------


def _radolan(tmp_path, header: bytes) -> tuple[str, SourceSpec]:
    path = tmp_path / "raa01-rw-10000-1805031050-dwd---bin"
    path.write_bytes(header + bytes(2 * 900 * 900))
    return str(path), SourceSpec.from_dict(hf.radolan_entry())


def test_radolan_negative_grid_size_is_named(tmp_path):
    path, spec = _radolan(tmp_path, hf.radolan_header(-30, -30))
    with pytest.raises(ValueError) as caught:
        read_file(spec, path)
    message = str(caught.value)
    assert message.startswith(path) and "GP" in message and "-30 x -30" in message
    assert "unknown dimension" not in message  # numpy's reshape wording


def test_radolan_zero_interval_names_the_header_not_reader_options(tmp_path):
    path, spec = _radolan(tmp_path, hf.radolan_header(interval="    0"))
    with pytest.raises(ValueError, match=r"header INT '0' gives an interval of 0 min") as caught:
        read_file(spec, path)
    assert "reader_options" not in str(caught.value)


# --- netCDF times ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "value", "as_variable"),
    [
        ("seconds since 1970-01-01", 1e30, False),  # intact file, time out of any range
        ("fortnights since yesterday", 0.0, False),  # garbage units
        ("days since 2000-01-01", 1e9, True),  # year ~2.7 million, a 0-d data variable
        ("fortnights since yesterday", 0.0, True),  # used to fall back to the file name
    ],
)
def test_undecodable_netcdf_time_is_an_error_naming_the_file(tmp_path, units, value, as_variable):
    path = hf.write_netcdf(
        tmp_path / "rain_202106010000.nc",
        time_units=units,
        time_value=value,
        time_as_variable=as_variable,
    )
    spec = SourceSpec.from_dict(hf.netcdf_entry())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SerializationWarning reaches the user either
        with pytest.raises(ValueError) as caught:
            read_file(spec, str(path))
    message = str(caught.value)
    assert message.startswith(str(path)) and "cannot be decoded" in message and units in message
    assert "corrupt or truncated" not in message and "\n" not in message


def test_good_netcdf_time_still_reads(tmp_path):
    path = hf.write_netcdf(tmp_path / "rain_202106010000.nc", time_value=0.0)
    frames = read_file(SourceSpec.from_dict(hf.netcdf_entry()), str(path))
    assert frames.times[0] == np.datetime64("2021-06-01T00:00")
    assert np.all(frames.data["precipitation_rate"] == 1.0)


# --- ODIM calibration and dates --------------------------------------------------------------


@pytest.mark.parametrize("gain", [math.nan, math.inf, 0.0])
def test_odim_bad_gain_is_an_error_not_an_all_nan_frame(tmp_path, gain):
    path = hf.write_odim(tmp_path / "odim_202001011200.h5", gain=gain)
    with pytest.raises(ValueError, match=r"gain .* calibration needs a finite non-zero gain"):
        read_file(SourceSpec.from_dict(hf.odim_entry()), str(path))


def test_odim_bad_date_has_no_pandas_hints(tmp_path):
    path = hf.write_odim(tmp_path / "odim_202001011200.h5", date=b"2020-13-45")
    with pytest.raises(ValueError) as caught:
        read_file(SourceSpec.from_dict(hf.odim_entry()), str(path))
    message = str(caught.value)
    assert "'2020-13-45'" in message and "YYYYMMDD" in message
    assert "dayfirst" not in message and "\n" not in message


# --- accumulation_minutes --------------------------------------------------------------------


@pytest.mark.parametrize(("minutes", "needle"), [(1e308, "at most"), (10, "scale every rate")])
def test_accumulation_minutes_bounded_and_tied_to_the_time_step(minutes, needle):
    entry = hf.netcdf_entry() | {"time_step": "5min"}
    entry["reader_options"] = {"accumulation_minutes": minutes}
    with pytest.raises(ValueError, match=needle):
        SourceSpec.from_dict(entry)
    entry["reader_options"] = {"accumulation_minutes": 5}
    assert SourceSpec.from_dict(entry).reader_options.accumulation_minutes == 5
