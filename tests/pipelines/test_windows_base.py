"""Windows with a base nowcast: (x, base, y) samples, crops and rotations keep them aligned."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.windows import SplitConfig, source_windows
from tests.pipelines.test_windows import synthetic_catalog, write_store


@pytest.mark.parametrize("augment", [False, True])
def test_base_and_targets_stay_aligned_with_the_inputs(tmp_path, augment) -> None:
    # frame t holds t + pixel/1000 (pixel = row * 12 + column): every pixel has its own value,
    # so a base or target cut or turned differently from the inputs would not match them
    write_store(tmp_path / "stores" / "synthetic.zarr", 40, shape=(8, 12))
    windows = source_windows(
        "synthetic", tmp_path, 3, 2, synthetic_catalog(), crop="full", coarsen=1,
        tile=(4, 4), split=SplitConfig((0.6, 0.2, 0.2)), base="persistence", augment=augment,
    )  # fmt: skip
    train, norm = windows.train, windows.normalisation
    assert windows.metadata["base"] == "persistence" and windows.metadata["augment"] == augment
    seen = set()
    for item in range(len(train)):
        x, base, y = (norm.decode(t.numpy()) for t in train[item])
        assert x.shape == (3, 1, 4, 4) and base.shape == y.shape == (2, 1, 4, 4)
        np.testing.assert_allclose(base, np.repeat(x[-1:], 2, axis=0), rtol=1e-5)
        for k in range(2):  # frame t + k + 1 = frame t + k + 1 at every pixel
            np.testing.assert_allclose(y[k] - x[-1], k + 1.0, atol=5e-4)
        seen.add(round(float(x[-1, 0, 0, 1] - x[-1, 0, 0, 0]), 3))  # step along the first row
    # unturned, the first row runs along +x (+0.001 per pixel); turned, also -x or -/+y (0.012)
    assert seen == {0.001} if not augment else len(seen) > 1
    # validation and test samples are never turned
    assert not windows.val.augment and not windows.test.augment
