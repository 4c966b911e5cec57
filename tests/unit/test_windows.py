"""Maintenance-window arithmetic with explicit instants: midnight, week boundary, DST, blackouts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from typer.testing import CliRunner

from orchestrator.config import MaintenanceConfig, WeeklyWindow
from orchestrator.planning.windows import WindowSpan, describe_window, is_open, next_windows

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZERO = timedelta(0)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def weekly(
    days: str, start: str, minutes: int, tz: str = "UTC", *, blackout: tuple[date, ...] = ()
) -> MaintenanceConfig:
    window = WeeklyWindow.model_validate(
        {"days": days.split(","), "start": start, "duration_minutes": minutes, "timezone": tz}
    )
    return MaintenanceConfig(windows=(window,), blackout_dates=blackout)


# 2026-11-28 is a Saturday; 2026-11-29 a Sunday; 2026-11-30 a Monday.


def test_window_crossing_midnight_is_open_after_midnight() -> None:
    maint = weekly("sat", "22:00", 4 * 60)
    decision = is_open(maint, utc(2026, 11, 29, 1, 0), need=ZERO)
    assert decision.open
    assert decision.closes_at == utc(2026, 11, 29, 2, 0)
    assert not is_open(maint, utc(2026, 11, 29, 2, 0), need=ZERO).open  # end is exclusive
    assert is_open(maint, utc(2026, 11, 28, 22, 0), need=ZERO).open  # start is inclusive
    assert not is_open(maint, utc(2026, 11, 28, 21, 59), need=ZERO).open


def test_window_must_stay_open_for_the_whole_need() -> None:
    maint = weekly("sat", "22:00", 4 * 60)
    decision = is_open(maint, utc(2026, 11, 29, 1, 0), need=timedelta(hours=2))
    assert not decision.open
    assert decision.closes_at == utc(2026, 11, 29, 2, 0)
    assert decision.next_window is not None
    assert decision.next_window.start_utc == utc(2026, 12, 5, 22, 0)
    assert "closes at 2026-11-29 02:00 UTC" in decision.reason
    assert "next window 2026-12-05 22:00 UTC" in decision.reason
    assert is_open(maint, utc(2026, 11, 29, 0, 0), need=timedelta(hours=2)).open


def test_window_crossing_the_week_boundary() -> None:
    maint = weekly("sun", "23:00", 3 * 60)
    assert is_open(maint, utc(2026, 11, 30, 1, 30), need=ZERO).open  # Monday 01:30
    assert not is_open(maint, utc(2026, 11, 30, 2, 0), need=ZERO).open
    [span] = next_windows(maint, utc(2026, 11, 30, 1, 0), 1)
    assert (span.start_utc, span.end_utc) == (utc(2026, 11, 29, 23, 0), utc(2026, 11, 30, 2, 0))


def test_window_longer_than_a_day() -> None:
    maint = weekly("fri", "18:00", 60 * 60)  # Friday 18:00 until Monday 06:00
    assert is_open(maint, utc(2026, 11, 29, 12, 0), need=timedelta(hours=12)).open
    assert is_open(maint, utc(2026, 11, 30, 5, 0), need=ZERO).open
    assert not is_open(maint, utc(2026, 11, 30, 6, 0), need=ZERO).open


def test_closed_reports_the_next_window() -> None:
    maint = weekly("tue,thu", "03:00", 120, "Europe/Berlin")
    decision = is_open(maint, utc(2026, 11, 30, 12, 0), need=timedelta(minutes=30))  # Monday noon
    assert not decision.open
    assert decision.reason.startswith("outside maintenance window")
    assert decision.next_window is not None
    assert decision.next_window.start_local == datetime(2026, 12, 1, 3, 0, tzinfo=BERLIN)
    assert decision.next_window.start_utc == utc(2026, 12, 1, 2, 0)  # CET is UTC+1


def test_local_start_follows_the_zone_through_summer_and_winter() -> None:
    maint = weekly("sat", "22:00", 60, "Europe/Berlin")
    summer = next_windows(maint, utc(2026, 7, 1), 1)[0]
    winter = next_windows(maint, utc(2026, 12, 1), 1)[0]
    assert summer.start_utc == utc(2026, 7, 4, 20, 0)  # CEST, UTC+2
    assert winter.start_utc == utc(2026, 12, 5, 21, 0)  # CET, UTC+1
    assert summer.start_local.hour == winter.start_local.hour == 22


# Europe/Berlin 2026: clocks go 02:00 → 03:00 on Sun 29 March and 03:00 → 02:00 on Sun 25 October.
# America/New_York 2026: 02:00 → 03:00 on Sun 8 March and 02:00 → 01:00 on Sun 1 November.


@pytest.mark.parametrize(
    ("zone", "day", "start_utc", "local_hour"),
    [
        ("Europe/Berlin", date(2026, 3, 29), utc(2026, 3, 29, 1, 30), 3),  # 02:30 does not exist → 03:30 CEST
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 7, 30), 3),  # → 03:30 EDT
    ],
)
def test_spring_forward_nonexistent_start_moves_forward_by_the_gap(
    zone: str, day: date, start_utc: datetime, local_hour: int
) -> None:
    maint = weekly("sun", "02:30", 60, zone)
    span = next_windows(maint, datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=1), 1)[0]
    assert span.start_utc == start_utc
    assert (span.start_local.hour, span.start_local.minute) == (local_hour, 30)
    assert span.duration == timedelta(hours=1)
    # The Sunday before, the same window opens at 02:30 standard time.
    previous = next_windows(maint, span.start_utc - timedelta(days=8), 1)[0]
    assert (previous.start_local.hour, previous.start_local.minute) == (2, 30)
    assert previous.start_local.date() == day - timedelta(days=7)


def test_fall_back_ambiguous_start_picks_the_first_occurrence_berlin() -> None:
    maint = weekly("sun", "02:30", 60, "Europe/Berlin")
    span = next_windows(maint, utc(2026, 10, 24), 1)[0]
    assert span.start_utc == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, the first 02:30
    assert span.start_local.utcoffset() == timedelta(hours=2)
    assert span.end_utc == utc(2026, 10, 25, 1, 30)  # one elapsed hour: 02:30 CET, the second 02:30
    assert span.end_local.utcoffset() == timedelta(hours=1)
    assert span.end_local.replace(tzinfo=None) == datetime(2026, 10, 25, 2, 30)
    assert is_open(maint, utc(2026, 10, 25, 1, 15), need=ZERO).open  # 02:15 CET, inside
    assert not is_open(maint, utc(2026, 10, 25, 1, 45), need=ZERO).open  # 02:45 CET, second pass


def test_fall_back_ambiguous_start_picks_the_first_occurrence_new_york() -> None:
    maint = weekly("sun", "01:30", 30, "America/New_York")
    span = next_windows(maint, utc(2026, 10, 31), 1)[0]
    assert span.start_utc == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert span.start_local.tzname() == "EDT"
    assert not is_open(maint, utc(2026, 11, 1, 6, 45), need=ZERO).open  # 01:45 EST: not a second window


def test_duration_counts_elapsed_time_across_a_dst_change() -> None:
    maint = weekly("sun", "00:00", 4 * 60, "America/New_York")
    span = next_windows(maint, utc(2026, 10, 31), 1)[0]
    assert span.duration == timedelta(hours=4)
    assert (span.start_utc, span.end_utc) == (utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 8, 0))
    assert span.end_local.replace(tzinfo=None) == datetime(2026, 11, 1, 3, 0)  # the clock read 01:xx twice
    spring = next_windows(maint, utc(2026, 3, 7), 1)[0]
    assert spring.end_local.replace(tzinfo=None) == datetime(2026, 3, 8, 5, 0)  # the clock skipped 02:xx


def test_window_across_a_dst_change_in_the_middle_stays_one_span() -> None:
    maint = weekly("sat", "22:00", 8 * 60, "Europe/Berlin")  # Sat 22:00 CET → Sun 07:00 CEST
    span = next_windows(maint, utc(2026, 3, 28), 1)[0]
    assert span.start_utc == utc(2026, 3, 28, 21, 0)
    assert span.end_utc == utc(2026, 3, 29, 5, 0)
    assert span.end_local.replace(tzinfo=None) == datetime(2026, 3, 29, 7, 0)


def test_blackout_date_closes_the_window_in_its_local_zone() -> None:
    # Saturday 22:00 Berlin + 4h; Sunday 29 November is a blackout date in Berlin.
    maint = weekly("sat", "22:00", 4 * 60, "Europe/Berlin", blackout=(date(2026, 11, 29),))
    spans = next_windows(maint, utc(2026, 11, 28), 2)
    assert spans[0].start_utc == utc(2026, 11, 28, 21, 0)
    assert spans[0].end_utc == utc(2026, 11, 28, 23, 0)  # Berlin midnight, when the blackout begins
    assert spans[1].start_utc == utc(2026, 12, 5, 21, 0)
    # 00:30 Berlin on the blackout date is 23:30 UTC on the 28th: closed although UTC says Saturday.
    decision = is_open(maint, utc(2026, 11, 28, 23, 30), need=ZERO)
    assert not decision.open
    assert decision.reason.startswith("blackout date 2026-11-29")
    assert decision.next_window == spans[1]


def test_blackout_on_the_start_day_keeps_the_part_after_midnight() -> None:
    maint = weekly("sat", "22:00", 4 * 60, "Europe/Berlin", blackout=(date(2026, 11, 28),))
    span = next_windows(maint, utc(2026, 11, 28), 1)[0]
    assert span.start_local == datetime(2026, 11, 29, 0, 0, tzinfo=BERLIN)
    assert span.end_local == datetime(2026, 11, 29, 2, 0, tzinfo=BERLIN)


def test_no_windows_means_always_open_except_blackouts_in_utc() -> None:
    assert is_open(MaintenanceConfig(), utc(2026, 11, 29, 3, 0), need=timedelta(days=3)).open
    maint = MaintenanceConfig(blackout_dates=(date(2026, 12, 24),))
    assert not is_open(maint, utc(2026, 12, 24, 12, 0), need=ZERO).open
    late = is_open(maint, utc(2026, 12, 23, 23, 30), need=timedelta(hours=1))
    assert not late.open
    assert late.next_window is not None and late.next_window.start_utc == utc(2026, 12, 25, 0, 0)
    assert is_open(maint, utc(2026, 12, 23, 22, 0), need=timedelta(hours=1)).open


def test_overlapping_windows_merge_into_one_span() -> None:
    first = WeeklyWindow(days=("mon",), start=time(20), duration_minutes=120, timezone="UTC")
    second = WeeklyWindow(days=("mon",), start=time(21), duration_minutes=180, timezone="UTC")
    maint = MaintenanceConfig(windows=(first, second))
    [span] = next_windows(maint, utc(2026, 11, 30), 1)
    assert (span.start_utc, span.end_utc) == (utc(2026, 11, 30, 20), utc(2026, 12, 1, 0))
    assert is_open(maint, utc(2026, 11, 30, 21, 30), need=timedelta(hours=2)).open


def test_windows_in_two_zones_are_ordered_in_utc() -> None:
    tokyo = WeeklyWindow(days=("mon",), start=time(9), duration_minutes=60, timezone="Asia/Tokyo")
    ny = WeeklyWindow(days=("sun",), start=time(22), duration_minutes=60, timezone="America/New_York")
    spans = next_windows(MaintenanceConfig(windows=(tokyo, ny)), utc(2026, 11, 29), 2)
    assert [s.start_utc for s in spans] == [utc(2026, 11, 30, 0, 0), utc(2026, 11, 30, 3, 0)]
    assert spans[0].start_local.tzinfo == tokyo_zone() and spans[1].start_local.tzinfo == NEW_YORK


def tokyo_zone() -> ZoneInfo:
    return ZoneInfo("Asia/Tokyo")


def test_no_window_long_enough() -> None:
    maint = weekly("mon", "01:00", 30)
    decision = is_open(maint, utc(2026, 11, 30, 1, 0), need=timedelta(hours=1))
    assert not decision.open
    assert decision.next_window is None
    assert "no window long enough" in decision.reason


def test_next_windows_includes_the_open_one_and_unpacks_as_a_tuple() -> None:
    maint = weekly("sat,sun", "22:00", 60)
    spans = next_windows(maint, utc(2026, 11, 28, 22, 30), 3)
    assert [s.start_utc.day for s in spans] == [28, 29, 5]
    start_utc, end_utc, start_local, _ = spans[0]
    assert end_utc - start_utc == timedelta(hours=1) and start_local == start_utc
    assert next_windows(maint, utc(2026, 11, 28), 0) == []


def test_is_open_agrees_with_next_windows_at_every_quarter_hour_around_dst() -> None:
    maint = weekly("sat,sun", "01:30", 150, "Europe/Berlin", blackout=(date(2026, 10, 31),))
    spans = next_windows(maint, utc(2026, 10, 20), 10)
    moment = utc(2026, 10, 20)
    while moment < utc(2026, 11, 3):
        inside = any(s.start_utc <= moment < s.end_utc for s in spans)
        assert is_open(maint, moment, need=ZERO).open == inside, moment
        moment += timedelta(minutes=15)


def test_naive_datetimes_and_negative_need_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(MaintenanceConfig(), datetime(2026, 1, 1), need=ZERO)
    with pytest.raises(ValueError, match="negative"):
        is_open(MaintenanceConfig(), utc(2026, 1, 1), need=timedelta(minutes=-1))


def test_describe_window() -> None:
    window = WeeklyWindow(days=("sat", "sun"), start=time(22), duration_minutes=270, timezone="Europe/Berlin")
    assert describe_window(window) == "sat,sun 22:00 +4h30m (Europe/Berlin)"


def test_span_type_is_a_named_tuple() -> None:
    assert WindowSpan._fields == ("start_utc", "end_utc", "start_local", "end_local")


CONFIG = """
[maintenance]
blackout_dates = [2026-12-24]
[[maintenance.windows]]
days = ["sat"]
start = 22:00:00
duration_minutes = 240
timezone = "Europe/Berlin"

[[tenants]]
id = "11111111-1111-1111-1111-111111111111"
name = "Contoso"
credential = { kind = "azure_cli" }

[[tenants]]
id = "22222222-2222-2222-2222-222222222222"
name = "Fabrikam"
credential = { kind = "azure_cli" }
[tenants.maintenance]
windows = [{ days = ["sun"], start = 02:30:00, duration_minutes = 60, timezone = "America/New_York" }]
"""


def _run_windows_cli(tmp_path: Path, *args: str) -> str:
    from orchestrator.cli import app

    config = tmp_path / "fleet.toml"
    config.write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(app, ["windows", "--config", str(config), *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_windows_command_reads_the_clock_and_shows_local_and_utc(tmp_path: Path) -> None:
    # Saturday 28 November 2026, 23:00 Berlin: Contoso's window is open, Fabrikam's is not.
    with time_machine.travel(utc(2026, 11, 28, 22, 0), tick=False):
        out = _run_windows_cli(tmp_path, "--count", "2")
    assert "Contoso" in out and "Fabrikam" in out
    assert "open" in out and "closed" in out
    assert "Sat 2026-11-28 22:00 → Sun 02:00 CET" in out and "Sat 11-28 21:00 → Sun 01:00" in out
    assert "Sun 2026-11-29 02:30 → 03:30 EST" in out and "Sun 11-29 07:30 → 08:30" in out
    assert "blackout 2026-12-24" in out


def test_windows_command_on_spring_forward_day(tmp_path: Path) -> None:
    with time_machine.travel(utc(2026, 3, 7, 12, 0), tick=False):
        out = _run_windows_cli(tmp_path, "--count", "1")
    assert "Sun 2026-03-08 03:30 → 04:30 EDT" in out  # 02:30 does not exist that day in New York
    assert "Sun 03-08 07:30 → 08:30" in out


def test_windows_command_bad_config_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    missing = tmp_path / "nope.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "windows", "--config", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr
