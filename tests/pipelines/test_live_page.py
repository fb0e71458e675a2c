"""The live page in a real browser: every image decoded, the skill tables and worst cases."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.live import AlertConfig, VerificationStore, verify_source
from pipelines.live.page import reliability_table
from tests.browser import browser_images, chromium, screenshot
from tests.pipelines import live_helpers as lh

pytestmark = pytest.mark.timeout(240)
QUIET = AlertConfig(max_input_age=None, min_skill=-1e9)


def _reliability_rows(init: pd.Timestamp) -> pd.DataFrame:
    """Reliability rows as :func:`probabilistic_rows` writes them (a synthetic product)."""
    bins = np.arange(0.05, 1.0, 0.1)
    return pd.DataFrame(
        {
            "init_time": init,
            "lead_time_minutes": 5.0,
            "method": "simvp",
            "score": "reliability",
            "variable": "precipitation_rate",
            "threshold": 1.0,
            "bin": bins,
            "count": 10.0,
            "value": np.clip(bins + 0.05, 0, 1),
        }
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    data = lh.build(tmp_path_factory.mktemp("live"))
    report = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET)
    store = VerificationStore(report.store)
    init = lh.INITS[0]
    rows = store.read(init, init)
    store.write({init: pd.concat([rows, _reliability_rows(init)], ignore_index=True)})
    again = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET)  # page from the store
    assert again.scored == ()
    return Path(again.page)


def test_page_content(page) -> None:
    text = page.read_text(encoding="utf-8")
    assert page.name == "live.html" and page.parent.name == lh.SOURCE
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)  # self-contained
    for heading in ("Rolling skill per lead", "Skill per init time", "Reliability", "Worst"):
        assert heading in text
    for window in ("24h", "7D", "30D"):
        assert f"<td>{window}</td>" in text or window in text
    assert "optical_flow" in text and "persistence" in text
    assert text.count('<img src="data:image/png;base64,') == 2 + 3  # series, reliability, 3 maps


def test_reliability_pools_counts() -> None:
    rows = pd.concat([_reliability_rows(lh.INITS[0]), _reliability_rows(lh.INITS[1])])
    table = reliability_table(rows)
    assert len(table) == 10 and (table["count"] == 20).all()
    np.testing.assert_allclose(table["observed"], np.clip(table["bin"] + 0.05, 0, 1))


def test_page_renders_in_headless_chromium_with_every_image_decoded(page, tmp_path) -> None:
    browser = chromium()  # skips without a browser, fails when $CI is set
    images = browser_images(page, tmp_path, browser)
    assert len(images) == 5
    for complete, width, height in images:
        assert complete and width > 100 and height > 100, (complete, width, height)
    from matplotlib.image import imread

    pixels = imread(screenshot(page, tmp_path / "shot.png", browser))
    assert pixels.shape[0] >= 2000 and float(pixels[..., :3].std()) > 0.05
