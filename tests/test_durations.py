import pytest

from mednext_fw.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("20m", 1200), ("12h", 43200), ("1h30m", 5400), ("2d", 172800),
                                          ("45", 45), (" 1.5h ", 5400), (30, 30)])
def test_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "5m3", "0s", "-5m", "m"])
def test_parse_rejects(text):
    with pytest.raises(DurationError):
        parse_duration(text)


def test_format():
    assert [format_duration(s) for s in (42, 125, 3720, 200000)] == ["42s", "2m05s", "1h02m", "2.3 days"]
