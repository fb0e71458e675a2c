"""The GPU check's --smoke mode: every code path of benchmarks.gpu_check, on CPU."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu_check


def test_peak_table_matches_specific_names_first():
    assert gpu_check.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.4
    assert gpu_check.peak_tflops("NVIDIA H100 PCIe", None) == 756.0
    assert gpu_check.peak_tflops("NVIDIA H200", None) == 989.4
    assert gpu_check.peak_tflops("NVIDIA L40S", None) == 362.0
    assert gpu_check.peak_tflops("NVIDIA L4", None) == 121.0
    assert gpu_check.peak_tflops("Some New GPU", None) is None
    assert gpu_check.peak_tflops("Some New GPU", 500.0) == 500.0
    with pytest.raises(ValueError, match="--peak-tflops must be positive"):
        gpu_check.peak_tflops("NVIDIA H100", -1.0)


@pytest.mark.timeout(600)
def test_smoke_trains_through_the_cli_and_forecasts(tmp_path):
    assert gpu_check.main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    (item,) = report["items"]
    assert item["preset"] == "tiny" and not item["compile"]
    assert item["train_samples_per_s"] > 0 and item["infer_samples_per_s"] > 0
    assert item["gmacs_per_sample"] > 0
    cli = report["cli"]
    assert cli["train_rc"] == 0 and cli["predict_rc"] == 0, cli
    assert cli["forecast_shape"] == [10, 1, 64, 64] and cli["forecast_finite"]
    assert "| tiny | 2 | False |" in (tmp_path / "gpu_check.md").read_text()
