/* render_points: the JSON of a read's points, [{"t":"2012-01-01T00:00:00.000Z","v":1},...].
 *
 * The same bytes as orjson.dumps(points_json(zone, ts, values, is_int)) (spec §3.1 timestamps
 * in the requested zone): the caller gives the UTC offset of each point and the values already
 * rendered by orjson as one JSON array, whose items this copies between the timestamps.
 */
#include <stdint.h>
#include <string.h>

#include "_speedups.h"

#define MS_PER_DAY 86400000LL
/* 0001-01-01 and 9999-12-31 as days since 1970-01-01. */
#define MIN_DAY (-719162LL)
#define MAX_DAY 2932896LL
/* The longest offset suffix, "+HH:MM:SS". */
#define MAX_SUFFIX 9
/* {"t":" + YYYY-MM-DDTHH:MM:SS.mmm + suffix + ","v": + number + }, */
#define ITEM_FIXED (6 + 23 + 6 + 2)

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian), as "YYYY-MM-DD". */
static void civil_text(int64_t days, char *out) {
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int day = (int)(doy - (153 * mp + 2) / 5 + 1);
    int month = (int)(mp < 10 ? mp + 3 : mp - 9);
    int year = (int)(yoe + era * 400 + (month <= 2));
    out[0] = (char)('0' + year / 1000);
    out[1] = (char)('0' + year / 100 % 10);
    out[2] = (char)('0' + year / 10 % 10);
    out[3] = (char)('0' + year % 10);
    out[4] = '-';
    out[5] = (char)('0' + month / 10);
    out[6] = (char)('0' + month % 10);
    out[7] = '-';
    out[8] = (char)('0' + day / 10);
    out[9] = (char)('0' + day % 10);
}

static void two_digits(char *out, int value) {
    out[0] = (char)('0' + value / 10);
    out[1] = (char)('0' + value % 10);
}

/* "Z", "+HH:MM" or "+HH:MM:SS" for a UTC offset in ms (seconds shown only when not zero);
 * returns its length. */
static int suffix_text(int64_t offset_ms, char *out) {
    if (offset_ms == 0) {
        out[0] = 'Z';
        return 1;
    }
    int64_t total = (offset_ms < 0 ? -offset_ms : offset_ms) / 1000;
    out[0] = offset_ms > 0 ? '+' : '-';
    two_digits(out + 1, (int)(total / 3600 % 100));
    out[3] = ':';
    two_digits(out + 4, (int)(total / 60 % 60));
    if (total % 60 == 0) return 6;
    out[6] = ':';
    two_digits(out + 7, (int)(total % 60));
    return 9;
}

/* Fill ``out`` (room for the worst case); returns the length written, or -1 when a local
 * time is outside years 1..9999 or ``numbers`` does not hold ``count`` items. */
static Py_ssize_t fill(const int64_t *ts, const int64_t *offsets, Py_ssize_t count,
                       const char *numbers, Py_ssize_t numbers_length, char *out) {
    const char *number = numbers + 1;
    const char *numbers_end = numbers + numbers_length - 1; /* the closing "]" */
    char *at = out;
    int64_t cached_day = INT64_MIN, cached_offset = 0;
    char date[10];
    char suffix[MAX_SUFFIX];
    int suffix_length = suffix_text(0, suffix);
    *at++ = '[';
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t offset = offsets[i];
        int64_t local = ts[i] + offset;
        int64_t day = floor_div(local, MS_PER_DAY);
        if (day < MIN_DAY || day > MAX_DAY) return -1;
        if (day != cached_day) {
            civil_text(day, date);
            cached_day = day;
        }
        if (offset != cached_offset) {
            suffix_length = suffix_text(offset, suffix);
            cached_offset = offset;
        }
        int64_t of_day = local - day * MS_PER_DAY;
        int millis = (int)(of_day % 1000);
        int64_t seconds = of_day / 1000;
        memcpy(at, "{\"t\":\"", 6);
        memcpy(at + 6, date, 10);
        at[16] = 'T';
        two_digits(at + 17, (int)(seconds / 3600));
        at[19] = ':';
        two_digits(at + 20, (int)(seconds / 60 % 60));
        at[22] = ':';
        two_digits(at + 23, (int)(seconds % 60));
        at[25] = '.';
        at[26] = (char)('0' + millis / 100);
        two_digits(at + 27, millis % 100);
        at += 29;
        memcpy(at, suffix, (size_t)suffix_length);
        at += suffix_length;
        memcpy(at, "\",\"v\":", 6);
        at += 6;
        /* The next number runs to the next "," (or the closing "]" for the last). */
        const char *end = number;
        while (end < numbers_end && *end != ',') end++;
        if (end == number || (i + 1 < count) != (end < numbers_end)) return -1;
        memcpy(at, number, (size_t)(end - number));
        at += end - number;
        *at++ = '}';
        *at++ = ',';
        number = end + 1;
    }
    at[-1] = ']';
    return at - out;
}

PyObject *tempodb_render_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "render_points(ts, offsets, numbers) takes 3 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "numbers must be bytes (a JSON array of numbers)");
        return NULL;
    }
    Py_buffer ts, offsets;
    if (vector(args[0], &ts, 'q', "ts") < 0) return NULL;
    if (vector(args[1], &offsets, 'q', "offsets") < 0) {
        PyBuffer_Release(&ts);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t count = ts.shape[0];
    const char *numbers = PyBytes_AS_STRING(args[2]);
    Py_ssize_t numbers_length = PyBytes_GET_SIZE(args[2]);
    if (offsets.shape[0] != count) {
        PyErr_SetString(PyExc_ValueError, "ts and offsets differ in length");
        goto done;
    }
    if (count == 0 || numbers_length < 3 || numbers[0] != '[' ||
        numbers[numbers_length - 1] != ']') {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* Each point's fixed part with the longest suffix, and the numbers' bytes (whose commas
     * and brackets the closing braces and commas outnumber by one). */
    Py_ssize_t room = count * (ITEM_FIXED + MAX_SUFFIX) + numbers_length;
    result = PyBytes_FromStringAndSize(NULL, room);
    if (result == NULL) goto done;
    Py_ssize_t length;
    Py_BEGIN_ALLOW_THREADS;
    length = fill(ts.buf, offsets.buf, count, numbers, numbers_length, PyBytes_AS_STRING(result));
    Py_END_ALLOW_THREADS;
    if (length < 0) {
        Py_SETREF(result, Py_NewRef(Py_None));
    } else if (_PyBytes_Resize(&result, length) < 0) {
        result = NULL;
    }
done:
    PyBuffer_Release(&ts);
    PyBuffer_Release(&offsets);
    return result;
}
