/*
 * Proleptic Gregorian calendar arithmetic shared by the files of sched
 * (H. Hinnant's days_from_civil / civil_from_days). Days are counted from
 * 1970-01-01; weekdays run 0 = Sunday to 6 = Saturday. Valid for any year a
 * 64-bit day count can hold.
 */
#ifndef FERRY_CORE_SCHED_CIVIL_H
#define FERRY_CORE_SCHED_CIVIL_H

#include <stdint.h>

static inline int64_t civil_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline int civil_is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline int civil_month_days(int64_t y, int m) {
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && civil_is_leap(y) ? 29 : len[m - 1];
}

static inline int64_t civil_days(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static inline void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static inline int civil_weekday(int64_t days) {
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

#endif
