"""Hostile names on the command line and full disks under the forecast store (issue 25)."""

from __future__ import annotations

import errno
import shutil
import sys

import numpy as np
import pytest

from pipelines.cli import main
from pipelines.cli._errors import environment_message
from pipelines.forecast import backfill
from pipelines.forecast import store as fstore
from pipelines.forecast.store import COMPLETE, open_forecast_store, write_forecast
from tests.pipelines.forecast_helpers import make_forecast

pytestmark = pytest.mark.timeout(120)

T0 = "2021-06-01T12:00"


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["forecast", "evaluate"])
@pytest.mark.parametrize("source", ["../../other/x", "x/../../../../TARGET", "/abs/x"])
def test_source_outside_the_data_dir_is_refused(tmp_path, capsys, command, source):
    data = tmp_path / "a" / "b" / "data"
    data.mkdir(parents=True)
    (tmp_path / "other" / "x.zarr").mkdir(parents=True)  # a store the name points at
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main([command, "--source", source, "--data-dir", str(data)]) == 2
    line = _one_line(capsys)
    assert "not a safe name" in line and repr(source) in line
    assert sorted(p for p in tmp_path.rglob("*")) == before  # no lock file, nothing written


def test_unknown_source_names_the_remedy(tmp_path, capsys):
    assert main(["forecast", "--source", "no-such-radar", "--data-dir", str(tmp_path)]) == 2
    line = _one_line(capsys)
    assert "'no-such-radar': no such catalog source" in line and "nowcast ingest" in line


# --- full disk -------------------------------------------------------------------------------


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "somewhere")


def test_failed_replace_writes_the_old_entry_back(tmp_path, monkeypatch):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    assert open_forecast_store(path).attrs["reader_note"] == fstore.READER_NOTE

    def hook(stage):
        if stage == "data_written":  # new chunks landed, completion flag not yet
            _full()

    monkeypatch.setattr(fstore, "_FAULT_HOOK", hook)
    with pytest.raises(OSError) as caught:
        write_forecast(path, make_forecast(T0, 5.0))
    monkeypatch.setattr(fstore, "_FAULT_HOOK", None)
    ds = open_forecast_store(path)
    assert bool(ds[COMPLETE].values[0])  # not left "incomplete" (the guard would skip it)
    np.testing.assert_array_equal(ds["precipitation_rate"].values[0, :, 0, 0], [1.0, 2.0, 3.0])
    message = environment_message(caught.value)
    assert "no space left" in message and "unchanged" in message


def test_failed_restore_says_what_changed(tmp_path, monkeypatch):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    real, calls = fstore._region_write, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 2:  # the data write and the restore both hit the full disk
            _full()
        return real(*args, **kwargs)

    monkeypatch.setattr(fstore, "_region_write", flaky)
    with pytest.raises(OSError) as caught:
        write_forecast(path, make_forecast(T0, 5.0))
    message = environment_message(caught.value)
    assert "partly rewritten and marked incomplete" in message and "unchanged" not in message
    assert not bool(open_forecast_store(path)[COMPLETE].values[0])  # as the message says


def test_backfill_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    write_forecast(path, make_forecast("2021-06-01T12:10", 2.0))
    monkeypatch.setattr(backfill.shutil, "copy2", _full)
    with pytest.raises(OSError) as caught:
        write_forecast(path, make_forecast("2021-06-01T12:05", 9.0))  # an insert: a copy
    assert not isinstance(caught.value, shutil.Error) and caught.value.errno == errno.ENOSPC
    message = environment_message(caught.value)
    assert "no space left on the device" in message and len(message) < 300
    assert not list(tmp_path.glob(".f.zarr.*"))  # the staging copy is removed at once
    assert open_forecast_store(path).sizes["init_time"] == 2


def test_a_shutil_error_list_becomes_one_line():
    failed = [(f"/s/{i}", f"/d/{i}", "[Errno 28] No space left on device") for i in range(500)]
    message = environment_message(shutil.Error(failed))
    assert message.startswith("copying failed for 500 files") and len(message) < 200


# --- --init-from of another kind -------------------------------------------------------------


def test_init_from_a_moving_mnist_checkpoint_is_refused_for_radar(tmp_path):
    from data_catalog.catalog import get_source
    from pipelines.training.finetune import fine_tune_plan, initial_model
    from simvp_model.checkpoint import save_checkpoint
    from simvp_model.model import SimVP
    from simvp_model.normalisation import Normalisation
    from tests.pipelines.forecast_helpers import tiny_config

    config = tiny_config(2, 2, (16, 16))
    path = tmp_path / "mnist.pt"
    metadata = {"source": "moving-mnist", "units": "1 (pixel intensity / 255)"}
    save_checkpoint(path, SimVP(config), config, Normalisation("identity", (0.0,), (1.0,)), {},
                    metadata)  # fmt: skip
    init = initial_model(path)
    assert init.units == ("1 (pixel intensity / 255)",) and init.trained_on == "moving-mnist"
    with pytest.raises(ValueError, match=r"trained on moving-mnist .* 'mch-radar' \(radar\)"):
        fine_tune_plan(init, get_source("mch-radar"), tmp_path / "none.zarr", {}, {})


def test_library_warnings_do_not_reach_the_user(tmp_path, capsys, monkeypatch):
    import warnings

    import pipelines.forecast.run as run_module

    def noisy(*args, **kwargs):
        np.log(np.zeros(2))  # numpy RuntimeWarning: divide by zero
        warnings.warn("Unable to decode time axis", UserWarning, stacklevel=1)
        raise ValueError("stores/synthetic.zarr: the real, one-line error")

    (tmp_path / "stores" / "synthetic.zarr").mkdir(parents=True)
    monkeypatch.setattr(run_module, "run_forecast", noisy)
    with warnings.catch_warnings():  # as outside pytest: warnings printed to stderr
        warnings.simplefilter("always")
        warnings.showwarning = lambda *a, **k: sys.stderr.write(warnings.formatwarning(*a[:4]))
        assert main(["forecast", "--source", "synthetic", "--data-dir", str(tmp_path)]) == 2
    line = _one_line(capsys)
    assert line.endswith("the real, one-line error") and "Warning" not in line
