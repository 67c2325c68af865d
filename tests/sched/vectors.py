#!/usr/bin/env python3
"""Expected fire times for tests/sched/test_sched.c, computed independently
of the C code: Python's zoneinfo (the same system tz database), plain
datetime/calendar arithmetic, and a brute-force scan of local days.

For each vector, every local date from the day before `after` on is tested
with a predicate written here by hand (not parsed from the expression), and
each matching local wall-clock time L gets its fire instant under the
documented policy: L's instant if it exists once; its first occurrence if it
exists twice; the first instant after the gap if it does not exist. The
expected fire times are the distinct instants after `after`, in order.

usage: python3 tests/sched/vectors.py    (prints the C table rows)
"""
import calendar
import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc


def local_of(u, tz):
    return u.astimezone(tz).replace(tzinfo=None)


def fire(L, tz):
    """The instant local time L (naive) fires at in tz."""
    a = L.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = L.replace(tzinfo=tz, fold=1).astimezone(UTC)
    ok = [u for u in (a, b) if local_of(u, tz) == L]
    if ok:
        return min(ok)
    # In a gap: the first second whose local time is past L.
    lo, hi = min(a, b), max(a, b)
    while (hi - lo).total_seconds() > 1:
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if local_of(mid, tz) > L:
            hi = mid
        else:
            lo = mid
    return hi


def expected(zone, after, count, day_ok, times, max_days=400 * 366):
    tz = ZoneInfo(zone)
    after_u = dt.datetime.fromisoformat(after.replace("Z", "+00:00"))
    day = local_of(after_u, tz).date() - dt.timedelta(days=2)
    out = set()
    for _ in range(max_days):
        if day_ok(day):
            for h, m, s in times:
                u = fire(dt.datetime(day.year, day.month, day.day, h, m, s),
                         tz)
                if u > after_u:
                    out.add(u)
        # Instants of later days can still be earlier (gaps), so finish
        # two more days before stopping.
        if len(out) >= count + 3:
            break
        day += dt.timedelta(days=1)
    out = sorted(out)
    return [u.strftime("%Y-%m-%dT%H:%M:%SZ") for u in out[:count]]


def wd(d):  # 0 = Sunday, as in cron
    return (d.weekday() + 1) % 7


def mlen(d):
    return calendar.monthrange(d.year, d.month)[1]


def nearest_weekday(d, n):
    """The weekday nearest to day n of d's month, inside the month."""
    last = mlen(d)
    if n > last:
        return None
    x = dt.date(d.year, d.month, n)
    if x.weekday() == 5:  # Saturday
        return n - 1 if n > 1 else n + 2
    if x.weekday() == 6:  # Sunday
        return n + 1 if n < last else n - 2
    return n


def last_weekday_of_month(d):
    last = dt.date(d.year, d.month, mlen(d))
    while last.weekday() >= 5:
        last -= dt.timedelta(days=1)
    return last.day


every_day = lambda d: True
at = lambda *hms: [tuple(hms) + (0,) * (3 - len(hms))]
hourly = [(h, 0, 0) for h in range(24)]
minutely = [(h, m, 0) for h in range(24) for m in range(60)]

VECTORS = [
    # (expression, zone, after, count, day predicate, local times)
    ("0 7 * * *", "America/Chicago", "2027-03-12T00:00:00Z", 4, every_day,
     at(7)),
    ("30 2 * * *", "America/New_York", "2027-03-13T00:00:00Z", 3, every_day,
     at(2, 30)),
    ("30 1 * * *", "America/New_York", "2027-11-06T12:00:00Z", 3, every_day,
     at(1, 30)),
    # From inside the repeated hour (01:00 EST): 01:30 already fired.
    ("30 1 * * *", "America/New_York", "2027-11-07T06:00:00Z", 2, every_day,
     at(1, 30)),
    ("0 * * * *", "America/New_York", "2027-03-14T04:30:00Z", 5, every_day,
     hourly),
    ("0 * * * *", "America/New_York", "2027-11-07T03:30:00Z", 5, every_day,
     hourly),
    ("0 * * * *", "America/New_York", "2027-11-07T06:00:00Z", 2, every_day,
     hourly),
    ("* * * * *", "America/New_York", "2027-03-14T06:58:00Z", 3, every_day,
     minutely),
    ("* * * * *", "America/New_York", "2027-11-07T05:58:00Z", 3, every_day,
     minutely),
    # Every second, from inside the repeated hour: 01:00:00 EST is a second
    # pass, so nothing fires until 02:00:00 EST.
    ("* * * * * *", "America/New_York", "2027-11-07T06:00:00Z", 2, every_day,
     [(h, m, s) for h in range(24) for m in range(60) for s in range(60)]),
    ("30 2 * * *", "America/Chicago", "2027-03-13T00:00:00Z", 3, every_day,
     at(2, 30)),
    ("30 1 * * *", "America/Chicago", "2027-11-06T12:00:00Z", 3, every_day,
     at(1, 30)),
    ("30 1 * * *", "Europe/London", "2027-03-27T12:00:00Z", 3, every_day,
     at(1, 30)),
    ("30 1 * * *", "Europe/London", "2027-10-30T12:00:00Z", 3, every_day,
     at(1, 30)),
    ("30 2 * * *", "Europe/Berlin", "2027-03-27T12:00:00Z", 3, every_day,
     at(2, 30)),
    ("15 2 * * *", "Australia/Lord_Howe", "2027-10-01T12:00:00Z", 3,
     every_day, at(2, 15)),
    ("45 1 * * *", "Australia/Lord_Howe", "2027-04-02T12:00:00Z", 3,
     every_day, at(1, 45)),
    ("*/15 * * * *", "Australia/Lord_Howe", "2027-10-02T15:00:00Z", 4,
     every_day, [(h, m, 0) for h in range(24) for m in (0, 15, 30, 45)]),
    ("*/15 * * * *", "Australia/Lord_Howe", "2027-04-03T14:00:00Z", 6,
     every_day, [(h, m, 0) for h in range(24) for m in (0, 15, 30, 45)]),
    ("0 6 * * *", "Asia/Kathmandu", "2027-06-01T00:00:00Z", 2, every_day,
     at(6)),
    ("0 0 * * *", "America/Sao_Paulo", "2018-11-03T12:00:00Z", 2, every_day,
     at(0)),
    ("30 4 1,15 * 5", "UTC", "2027-01-01T00:00:00Z", 8,
     lambda d: d.day in (1, 15) or wd(d) == 5, at(4, 30)),
    ("0 0 */2 * 5", "UTC", "2027-01-01T00:00:00Z", 6,
     lambda d: d.day % 2 == 1 and wd(d) == 5, at(0)),
    ("0 0 1-31/2 * 5", "UTC", "2027-01-01T00:00:00Z", 6,
     lambda d: d.day % 2 == 1 or wd(d) == 5, at(0)),
    ("0 0 * * */2", "UTC", "2027-01-01T00:00:00Z", 5,
     lambda d: wd(d) in (0, 2, 4, 6), at(0)),
    ("0 0 L * *", "UTC", "2027-01-01T00:00:00Z", 4,
     lambda d: d.day == mlen(d), at(0)),
    ("0 0 L * *", "UTC", "2028-02-01T00:00:00Z", 1,
     lambda d: d.day == mlen(d), at(0)),
    ("0 0 L-2 * *", "UTC", "2027-01-01T00:00:00Z", 3,
     lambda d: d.day == mlen(d) - 2, at(0)),
    ("0 0 LW * *", "UTC", "2027-01-01T00:00:00Z", 4,
     lambda d: d.day == last_weekday_of_month(d), at(0)),
    ("0 0 15W * *", "UTC", "2027-05-01T00:00:00Z", 4,
     lambda d: d.day == nearest_weekday(d, 15), at(0)),
    ("0 0 1W * *", "UTC", "2027-05-01T00:00:00Z", 4,
     lambda d: d.day == nearest_weekday(d, 1), at(0)),
    ("0 0 31W * *", "UTC", "2027-01-01T00:00:00Z", 4,
     lambda d: d.day == nearest_weekday(d, 31), at(0)),
    ("0 0 1W * *", "UTC", "2027-12-15T00:00:00Z", 1,
     lambda d: d.day == nearest_weekday(d, 1), at(0)),
    ("0 12 * * 5L", "UTC", "2027-01-01T00:00:00Z", 3,
     lambda d: wd(d) == 5 and d.day + 7 > mlen(d), at(12)),
    ("0 12 * * 5#3", "UTC", "2027-01-01T00:00:00Z", 3,
     lambda d: wd(d) == 5 and (d.day - 1) // 7 == 2, at(12)),
    ("0 12 * * fri#5", "UTC", "2027-01-01T00:00:00Z", 3,
     lambda d: wd(d) == 5 and (d.day - 1) // 7 == 4, at(12)),
    ("0 0 * 2 5#5", "UTC", "2027-01-01T00:00:00Z", 2,
     lambda d: d.month == 2 and wd(d) == 5 and (d.day - 1) // 7 == 4, at(0)),
    ("0 0 29 2 *", "UTC", "2027-01-01T00:00:00Z", 2,
     lambda d: d.month == 2 and d.day == 29, at(0)),
    ("0 0 29 2 *", "UTC", "2097-01-01T00:00:00Z", 1,
     lambda d: d.month == 2 and d.day == 29, at(0)),
    ("0 9 * JAN,jul Mon-Fri", "UTC", "2027-06-30T00:00:00Z", 3,
     lambda d: d.month in (1, 7) and 1 <= wd(d) <= 5, at(9)),
    ("0 0 * * 7", "UTC", "2027-01-01T00:00:00Z", 2,
     lambda d: wd(d) == 0, at(0)),
    ("0 0 1 * sun", "UTC", "2027-01-01T00:00:00Z", 6,
     lambda d: d.day == 1 or wd(d) == 0, at(0)),
    ("0 0 ? * 1", "UTC", "2027-01-01T00:00:00Z", 2,
     lambda d: wd(d) == 1, at(0)),
    ("5/20 * * * *", "UTC", "2027-01-01T00:00:00Z", 4, every_day,
     [(h, m, 0) for h in range(24) for m in (5, 25, 45)]),
    ("10-30/10 8-9 * * *", "UTC", "2027-01-01T00:00:00Z", 7, every_day,
     [(h, m, 0) for h in (8, 9) for m in (10, 20, 30)]),
    ("0 */23 * * *", "UTC", "2027-01-01T00:30:00Z", 3, every_day,
     [(0, 0, 0), (23, 0, 0)]),
    ("*/20 * * * * *", "UTC", "2027-01-01T12:00:00Z", 4, every_day,
     [(h, m, s) for h in range(24) for m in range(60) for s in (0, 20, 40)]),
    ("30 0 7 * * *", "America/Chicago", "2027-03-13T00:00:00Z", 2,
     every_day, at(7, 0, 30)),
    ("@yearly", "UTC", "2027-03-01T00:00:00Z", 2,
     lambda d: d.month == 1 and d.day == 1, at(0)),
    ("@monthly", "Europe/Berlin", "2027-03-01T00:00:00Z", 2,
     lambda d: d.day == 1, at(0)),
    ("@weekly", "UTC", "2027-03-01T00:00:00Z", 2, lambda d: wd(d) == 0,
     at(0)),
    ("@daily", "UTC", "2027-03-01T00:00:00Z", 2, every_day, at(0)),
    ("@hourly", "UTC", "2027-03-01T00:00:00Z", 2, every_day, hourly),
    # Past the last transition in the file: the footer's rule.
    ("30 2 * * *", "America/New_York", "2100-03-13T00:00:00Z", 3, every_day,
     at(2, 30)),
    ("30 1 * * *", "America/New_York", "2100-11-06T12:00:00Z", 3, every_day,
     at(1, 30)),
]


def c_str(s):
    return '"' + s + '"'


if __name__ == "__main__":
    for expr, zone, after, count, day_ok, times in VECTORS:
        exp = expected(zone, after, count, day_ok, times)
        assert len(exp) == count, (expr, zone, exp)
        print("    {%s, %s, %s, {%s}}," % (c_str(expr), c_str(zone),
                                          c_str(after),
                                          ", ".join(c_str(e) for e in exp)))
