"""``nowcast catalog list | show | validate`` through ``pipelines.cli.main``."""

from __future__ import annotations

import yaml

from data_catalog.catalog import DEFAULT_CATALOG
from pipelines.cli import main


def test_list_shows_every_source(capsys):
    assert main(["catalog", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["name", "kind", "reader", "step"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert list(rows) == [
        "mch-radar",
        "fmi-radar",
        "knmi-radar",
        "rmi-radar",
        "era5-t2m-uk",
        "nyc-taxi",
    ]
    assert rows["era5-t2m-uk"][1:4] == ["climate", "grib", "1h"]
    assert "pickups" in rows["nyc-taxi"]


def test_show_prints_the_entry_as_yaml_and_the_files(capsys):
    assert main(["catalog", "show", "knmi-radar", "--files"]) == 0
    out = capsys.readouterr().out
    entry = yaml.safe_load(out)["knmi-radar"]
    assert entry["reader"] == "knmi-hdf5" and entry["grid"]["shape"] == [765, 700]
    assert "# 24 files, 2010-08-26 00:00:00 .. 2010-08-26 01:55:00" in out
    assert main(["catalog", "show", "nope"]) == 2
    assert "unknown source 'nope'" in capsys.readouterr().err


def test_validate_accepts_the_shipped_file_and_names_bad_fields(capsys, tmp_path):
    assert main(["catalog", "validate", str(DEFAULT_CATALOG), "--files"]) == 0
    out = capsys.readouterr().out
    assert "mch-radar: ok, 120 files" in out and "6 sources valid" in out
    data = yaml.safe_load(DEFAULT_CATALOG.read_text())
    data["sources"]["fmi-radar"]["reader"] = "pgm"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["catalog", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "source 'fmi-radar': field 'reader': got 'pgm'; allowed: cf-netcdf, fmi-pgm" in err
    data["sources"]["fmi-radar"]["reader"] = "fmi-pgm"
    data["sources"]["fmi-radar"]["variables"][0]["units"] = "mm/hr"
    bad.write_text(yaml.safe_dump(data))
    assert main(["catalog", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "source 'fmi-radar': field 'units': got 'mm/hr'; allowed: mm/h, mm, dBZ" in err


def test_check_an_ingested_store(capsys, tmp_path):
    from pipelines.ingest import ingest_source

    assert main(["catalog", "check", "rmi-radar", "--data-dir", str(tmp_path)]) == 2
    assert "no store for 'rmi-radar'" in capsys.readouterr().err
    ingest_source("rmi-radar", data_dir=str(tmp_path), end="2021-07-04 16:00", progress=False)
    capsys.readouterr()
    assert main(["catalog", "check", "rmi-radar", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "valid against 'rmi-radar'" in out and "precipitation_rate [mm/h]" in out
