"""The CLI speaks the user's vocabulary: one line per user or environment error, flags as typed."""

from __future__ import annotations

import errno
from pathlib import Path

import dask
import pytest
import torch
import zarr

from pipelines.cli import main
from pipelines.forecast.store import COMPLETE, open_forecast_store
from simvp_model.checkpoint import check_resumable
from tests.pipelines.forecast_helpers import obs_store, tiny_checkpoint

SOURCE = "synthetic"


@pytest.mark.parametrize("value", ["soon", "-5min"])
def test_max_age_that_is_not_a_duration(value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["forecast", "--source", "mch-radar", f"--max-age={value}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --max-age: expected a" in err and repr(value) in err
    assert "abbreviation" not in err


KNMI_FIRST_THREE = ["--start", "2010-08-26T00:00", "--end", "2010-08-26T00:10", "--no-progress"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # no traceback without -v
    return err[0]


def test_catalog_that_is_a_folder(tmp_path, capsys):
    args = ["ingest", "knmi-radar", "--catalog", str(tmp_path), "--data-dir", str(tmp_path / "d")]
    assert main(args) == 1
    line = _one_line(capsys)
    assert f"{tmp_path}: is a directory, expected a file (--catalog" in line


def test_data_dir_that_is_a_file_and_traceback_with_v(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    args = ["ingest", "knmi-radar", "--data-dir", str(afile), *KNMI_FIRST_THREE]
    assert main(args) == 1
    assert f"{afile} is a file, not a directory; --data-dir must name a directory" in _one_line(
        capsys
    )
    assert main(["-v", *args]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].endswith("must name a directory")


def test_unwritable_data_dir(tmp_path, capsys, monkeypatch):
    # Root ignores file modes, so the refusal of a read-only directory is simulated.
    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if tmp_path / "ro" in (self, *self.parents):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    args = ["ingest", "knmi-radar", "--data-dir", str(tmp_path / "ro"), *KNMI_FIRST_THREE]
    assert main(args) == 1
    line = _one_line(capsys)
    assert "permission denied; choose a --data-dir you can write to" in line
    assert str(tmp_path / "ro") in line


def test_unreachable_scheduler(tmp_path, capsys):
    pytest.importorskip("distributed")  # loads its dask config defaults
    args = ["ingest", "knmi-radar", "--data-dir", str(tmp_path), *KNMI_FIRST_THREE]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main([*args, "--scheduler", "tcp://127.0.0.1:1"]) == 1
    line = _one_line(capsys)
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:1" in line and "--scheduler" in line


def test_disk_full_during_a_forecast_write_keeps_the_store(tmp_path, capsys, monkeypatch):
    torch.set_num_threads(1)
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    tiny_checkpoint(tmp_path / "models" / SOURCE / "run" / "best.pt")
    base = ["forecast", "--source", SOURCE, "--data-dir", str(tmp_path), "--no-render"]
    assert main([*base, "--init-time", "2021-06-01T12:45"]) == 0
    capsys.readouterr()

    async def full(self, key, value, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.root / key))

    with monkeypatch.context() as patch:
        patch.setattr(zarr.storage.LocalStore, "set", full)
        assert main([*base, "--init-time", "2021-06-01T12:50"]) == 1
    line = _one_line(capsys)
    assert "no space left on the device; free some space" in line
    ds = open_forecast_store(tmp_path / "forecasts" / f"{SOURCE}.zarr")
    assert ds.sizes["init_time"] == 1 and ds[COMPLETE].values.all()  # the entry before is intact
    assert main([*base, "--init-time", "2021-06-01T12:50"]) == 0  # space back: it lands
    assert open_forecast_store(tmp_path / "forecasts" / f"{SOURCE}.zarr").sizes["init_time"] == 2


def test_bad_last_ckpt_cannot_be_resumed(tmp_path):
    last = tmp_path / "last.ckpt"
    last.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"cannot resume from .*last.ckpt: not a PyTorch"):
        check_resumable(last)
    torch.save({"state_dict": {}}, last)
    with pytest.raises(ValueError, match=r"not a Lightning training checkpoint \(no \['epoch'\]\)"):
        check_resumable(last)
    torch.save({"state_dict": {}, "epoch": 3}, last)
    check_resumable(last)


def test_train_resume_from_a_broken_last_ckpt(tmp_path, capsys):
    last = tmp_path / "models" / "moving-mnist" / "lightning" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"\x80\x02truncated")
    args = ["train", "--source=moving-mnist", "--preset=mmnist-small", "--epochs=1"]
    args += ["--samples-per-epoch=4", "--val-samples=2", "--test-samples=2", "--batch-size=2"]
    args += ["--in-frames=2", "--out-frames=2", "--accelerator=cpu", f"--data-dir={tmp_path}"]
    assert main([*args, "--resume"]) == 2
    line = _one_line(capsys)
    assert f"cannot resume from {last}: not a PyTorch checkpoint file" in line
    assert "remove it to train anew" in line
