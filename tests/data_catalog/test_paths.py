import pytest

from data_catalog.paths import DATA_DIR_ENV, DataDir, is_url


def test_default_is_cwd_data(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    d = DataDir.resolve()
    assert d.root == str(tmp_path / "data")
    assert d.store("mch-radar") == str(tmp_path / "data" / "stores" / "mch-radar.zarr")
    assert d.forecast_store("x") == str(tmp_path / "data" / "forecasts" / "x.zarr")
    assert d.models("x") == str(tmp_path / "data" / "models" / "x")
    assert d.figures("x") == str(tmp_path / "data" / "figures" / "x")
    assert d.reports("x") == str(tmp_path / "data" / "reports" / "x")


def test_env_then_argument_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert DataDir.resolve().root == str(tmp_path / "env")
    assert DataDir.resolve(tmp_path / "arg").root == str(tmp_path / "arg")
    assert DataDir.resolve("file://" + str(tmp_path / "f")).root == str(tmp_path / "f")


def test_url_roots_are_joined_with_slashes(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    d = DataDir.resolve("s3://bucket/prefix/")
    assert is_url(d.root)
    assert d.store("knmi-radar") == "s3://bucket/prefix/stores/knmi-radar.zarr"
    assert d.reports("knmi-radar") == "s3://bucket/prefix/reports/knmi-radar"


def test_empty_data_dir_rejected(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match="must not be empty"):
        DataDir.resolve("   ")


@pytest.mark.parametrize("value", ["", " "])
def test_empty_argument_is_an_error_not_dot_data(monkeypatch, tmp_path, value):
    # `--data-dir "$UNSET"` passes "": it used to fall through to ./data of the cwd.
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="must not be empty, got --data-dir"):
        DataDir.resolve(value)
    assert not (tmp_path / "data").exists()


def test_empty_environment_variable_is_an_error(monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, "")
    with pytest.raises(ValueError, match=r"\$NOWCAST_DATA_DIR ''"):
        DataDir.resolve()


def test_cli_empty_data_dir_is_one_line(monkeypatch, tmp_path, capsys):
    from pipelines.cli import main

    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["forecast", "--source", "mch-radar", "--data-dir", ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must not be empty" in err[0], err
    assert not (tmp_path / "data").exists()


def test_one_forecast_store_per_lead_configuration(monkeypatch, tmp_path):
    d = DataDir.resolve(tmp_path)
    assert d.forecast_store("mch-radar") == str(tmp_path / "forecasts" / "mch-radar.zarr")
    assert d.forecast_store("mch-radar", 24) == str(
        tmp_path / "forecasts" / "mch-radar-24leads.zarr"
    )
    with pytest.raises(ValueError, match="n_leads must be a positive integer"):
        d.forecast_store("mch-radar", 0)


def test_one_verification_store_per_forecast_store(tmp_path):
    d = DataDir.resolve(tmp_path)
    assert d.verification("mch-radar") == str(tmp_path / "verification" / "mch-radar")
    assert d.verification("mch-radar", 24) == str(tmp_path / "verification" / "mch-radar-24leads")
