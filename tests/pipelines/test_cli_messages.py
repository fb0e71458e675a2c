"""The CLI speaks the user's vocabulary: one line per user or environment error, flags as typed."""

from __future__ import annotations

import pytest

from pipelines.cli import main


@pytest.mark.parametrize("value", ["soon", "-5min"])
def test_max_age_that_is_not_a_duration(value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["forecast", "--source", "mch-radar", f"--max-age={value}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --max-age: expected a" in err and repr(value) in err
    assert "abbreviation" not in err
