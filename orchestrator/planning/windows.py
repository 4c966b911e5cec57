"""Maintenance-window arithmetic: is a tenant's window open now, and when are the next ones.

Pure: every function takes the current instant as an argument and reads no clock.

Rules (the ones an operator can rely on):
- A `WeeklyWindow` opens on each listed weekday at `start` in its own IANA time zone and stays open for
  `duration_minutes` of *elapsed* time, so a 4-hour window is 4 real hours even on a day the clocks
  change, and a window may run past midnight, past the end of the week, or for several days.
- Spring forward: a start time that does not exist that day (02:30 in a 02:00→03:00 gap) opens the
  window when the clocks read the same time after the gap (03:30 local), i.e. moved forward by the gap.
- Fall back: a start time that happens twice (01:30 on a 02:00→01:00 day) opens the window at the
  first occurrence (daylight time). Both rules are what zoneinfo does with `fold=0`.
- A blackout date closes every moment whose *local date* in the window's time zone is that date; a
  window that starts the evening before a blackout date closes at the blackout's local midnight.
- No windows at all means always open, except on blackout dates, which then count in UTC.
- Windows that overlap or touch (also from different windows) make one longer span.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo

from orchestrator.config import MaintenanceConfig, WeeklyWindow

# How long a window must stay open for one app's in-place update (submit, ARM's long-running
# operation, deny-assignment verification) to finish inside it. apply --respect-windows may override.
DEFAULT_NEED = timedelta(minutes=30)

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead to look for the next window. Weekly windows recur within 7 days; blackout dates can
# push the next usable one out, but a fleet config naming more than two years of blackouts is a mistake.
_HORIZON = timedelta(days=2 * 366)
_CHUNK = timedelta(days=14)


class WindowSpan(NamedTuple):
    """One stretch of open time. Unpacks as (start_utc, end_utc, start_local, end_local)."""

    start_utc: datetime
    end_utc: datetime
    start_local: datetime  # in the time zone of the window that opens the span
    end_local: datetime

    @property
    def duration(self) -> timedelta:
        return self.end_utc - self.start_utc


@dataclass(frozen=True)
class WindowDecision:
    """Whether an operation that needs `need` may start now, and if not, when it next may."""

    open: bool
    reason: str  # one line for an operator; says why closed and when it opens next
    closes_at: datetime | None = None  # UTC end of the current span (when open, or open but too short)
    next_window: WindowSpan | None = None  # next span at least `need` long that starts after now


def is_open(maint: MaintenanceConfig, now_utc: datetime, *, need: timedelta) -> WindowDecision:
    """Open when `now_utc` lies in an open span that lasts at least `need` more."""
    now = _utc(now_utc)
    if need < timedelta(0):
        raise ValueError("need must not be negative")
    current: WindowSpan | None = None
    following: WindowSpan | None = None
    for span in _spans_from(maint, now):
        if span.start_utc <= now < span.end_utc:
            current = span
            if span.end_utc - now >= need:
                return _open_decision(maint, now, span)
        elif span.start_utc > now and span.duration >= need:
            following = span
            break
    when = f"next window {_fmt(following.start_utc)}" if following else "no window long enough ahead"
    if current is not None:
        reason = f"window closes at {_fmt(current.end_utc)}, less than {_fmt_delta(need)} left; {when}"
        return WindowDecision(False, reason, closes_at=current.end_utc, next_window=following)
    blackout = _blackout_at(maint, now)
    cause = f"blackout date {blackout.isoformat()}" if blackout else "outside maintenance window"
    return WindowDecision(False, f"{cause}; {when}", next_window=following)


def _open_decision(maint: MaintenanceConfig, now: datetime, span: WindowSpan) -> WindowDecision:
    if span.end_utc >= now + _HORIZON:  # nothing closes it within the horizon
        why = "no maintenance windows: always open" if not maint.windows else "window always open"
        return WindowDecision(open=True, reason=why)
    return WindowDecision(open=True, reason=f"window open until {_fmt(span.end_utc)}", closes_at=span.end_utc)


def next_windows(maint: MaintenanceConfig, now_utc: datetime, count: int) -> list[WindowSpan]:
    """The current span (if open now) and the following ones, `count` in all, in time order."""
    if count < 0:
        raise ValueError("count must not be negative")
    found: list[WindowSpan] = []
    for span in _spans_from(maint, _utc(now_utc)):
        if len(found) >= count:
            break
        found.append(span)
    return found


def describe_window(window: WeeklyWindow) -> str:
    """`sat,sun 22:00 +4h (Europe/Berlin)`: a window in one short line."""
    days = ",".join(window.days)
    length = _fmt_delta(timedelta(minutes=window.duration_minutes))
    return f"{days} {window.start.strftime('%H:%M')} +{length} ({window.timezone})"


def _spans_from(maint: MaintenanceConfig, now: datetime) -> Iterator[WindowSpan]:
    """Open spans that end after `now`, in order, merged across windows, up to the horizon."""
    chunk_start = now
    carried: WindowSpan | None = None  # a span that may continue into the next chunk
    while chunk_start < now + _HORIZON:
        chunk_end = chunk_start + _CHUNK
        pieces = sorted(_pieces(maint, chunk_start, chunk_end))
        if carried is not None:
            pieces.insert(0, carried)
            carried = None
        merged = _merge(pieces)
        for span in merged:
            if span.end_utc <= now:
                continue
            if span.end_utc >= chunk_end:  # may continue: decide once the next chunk is known
                carried = span
                break
            yield span
        chunk_start = chunk_end
    if carried is not None:
        yield carried


def _pieces(maint: MaintenanceConfig, lo: datetime, hi: datetime) -> Iterator[WindowSpan]:
    """Open pieces (occurrences minus blackouts) that overlap [lo, hi)."""
    if not maint.windows:
        raw = WindowSpan(lo, hi, lo, hi)
        yield from _minus_blackouts(raw, UTC, maint.blackout_dates)
        return
    for window in maint.windows:
        zone = ZoneInfo(window.timezone)
        for occ in _occurrences(window, zone, lo, hi):
            yield from _minus_blackouts(occ, zone, maint.blackout_dates)


def _occurrences(window: WeeklyWindow, zone: ZoneInfo, lo: datetime, hi: datetime) -> Iterator[WindowSpan]:
    length = timedelta(minutes=window.duration_minutes)
    first = lo.astimezone(zone).date() - timedelta(days=length.days + 2)
    last = hi.astimezone(zone).date() + timedelta(days=1)
    days = {_WEEKDAYS.index(d) for d in window.days}
    day = first
    while day <= last:
        if day.weekday() in days:
            start = _local_instant(day, window.start, zone)
            end = start + length
            if end > lo and start < hi:
                yield WindowSpan(start, end, start.astimezone(zone), end.astimezone(zone))
        day += timedelta(days=1)


def _local_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """The UTC instant of a local wall time; fold=0 moves a gap time forward, picks the first of two."""
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def _minus_blackouts(span: WindowSpan, zone: tzinfo, blackouts: Iterable[date]) -> Iterator[WindowSpan]:
    pieces = [(span.start_utc, span.end_utc)]
    for day in blackouts:
        b_start = _local_instant(day, time(0), zone)
        b_end = _local_instant(day + timedelta(days=1), time(0), zone)
        pieces = [
            part
            for start, end in pieces
            for part in ((start, min(end, b_start)), (max(start, b_end), end))
            if part[0] < part[1]
        ]
    for start, end in pieces:
        yield WindowSpan(start, end, start.astimezone(zone), end.astimezone(zone))


def _merge(spans: list[WindowSpan]) -> list[WindowSpan]:
    merged: list[WindowSpan] = []
    for span in sorted(spans):
        if merged and span.start_utc <= merged[-1].end_utc:
            last = merged[-1]
            if span.end_utc > last.end_utc:
                zone = last.start_local.tzinfo
                merged[-1] = last._replace(end_utc=span.end_utc, end_local=span.end_utc.astimezone(zone))
        else:
            merged.append(span)
    return merged


def _blackout_at(maint: MaintenanceConfig, now: datetime) -> date | None:
    zones: list[tzinfo] = [ZoneInfo(w.timezone) for w in maint.windows] or [UTC]
    for zone in zones:
        local_day = now.astimezone(zone).date()
        if local_day in maint.blackout_dates:
            return local_day
    return None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a time zone-aware datetime is required")
    return moment.astimezone(UTC)


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fmt_delta(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours}h{mins:02d}m"
    return f"{hours}h" if hours else f"{mins}m"
