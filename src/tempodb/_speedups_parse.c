/* parse_points: a write body [{"t": "...", "v": ...}, ...] into epoch ms, values and int flags.
 *
 * Takes what tempodb.server.wire.parse_points accepts when every item is an object of exactly
 * the keys "t" (a spec §3.1 timestamp string) and "v" (a JSON number), in either order, with
 * any JSON whitespace; decodes it as that path would (fractions floored to ms, naive meaning
 * UTC, integers exact below 2**53, other numbers rounded correctly by strtod).  Anything else,
 * valid or not (escapes, other keys, null, strings for numbers, invalid dates, 2**53 and
 * beyond), gives None and the caller parses the JSON as usual, which also words the errors.
 * The scan runs without the GIL.
 */
#include "_speedups.h" /* Python.h first: it also asks for strtod_l (_GNU_SOURCE) */

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MS_PER_DAY 86400000LL
/* 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in epoch ms. */
#define MIN_MS (-62135596800000LL)
#define MAX_MS 253402300799999LL
/* The shortest item, {"t":"2012-01-01","v":0}, and the separating comma. */
#define MIN_ITEM 25
#define EXACT_LIMIT 9007199254740992ULL /* 2**53 */

typedef struct {
    const char *at;
    const char *end;
} cursor;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void skip_space(cursor *c) {
    while (c->at < c->end && is_space(*c->at)) c->at++;
}

/* Consume one expected byte after optional whitespace. */
static int expect(cursor *c, char byte) {
    skip_space(c);
    if (c->at < c->end && *c->at == byte) {
        c->at++;
        return 1;
    }
    return 0;
}

/* n digits at s as a number, or -1 when one is not a digit. */
static int digits(const char *s, int n) {
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i])) return -1;
        value = value * 10 + (s[i] - '0');
    }
    return value;
}

static int64_t days_from_civil(int64_t year, int month, int day) {
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int month_length(int year, int month) {
    static const int lengths[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return lengths[month] + (month == 2 && leap);
}

/* The timestamp text s[0:n] in epoch ms; 0 when it is not a valid spec §3.1 timestamp:
 * YYYY-MM-DD[(T| )hh:mm[:ss[.f{1,9}]][Z|(+|-)hh[[:]mm]]]. */
static int timestamp_ms(const char *s, size_t n, int64_t *out) {
    if (n < 10 || s[4] != '-' || s[7] != '-') return 0;
    int year = digits(s, 4), month = digits(s + 5, 2), day = digits(s + 8, 2);
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > month_length(year, month))
        return 0;
    int64_t ms = days_from_civil(year, month, day) * MS_PER_DAY;
    size_t i = 10;
    if (i < n) {
        if (n < 16 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':') return 0;
        int hour = digits(s + 11, 2), minute = digits(s + 14, 2), second = 0;
        if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return 0;
        i = 16;
        if (i < n && s[i] == ':') {
            if (n < 19 || (second = digits(s + 17, 2)) < 0 || second > 59) return 0;
            i = 19;
            if (i < n && s[i] == '.') {
                size_t first = ++i;
                int fraction = 0;
                while (i < n && is_digit(s[i]) && i - first < 9) {
                    if (i - first < 3) fraction = fraction * 10 + (s[i] - '0');
                    i++;
                }
                size_t count = i - first;
                if (count == 0) return 0;
                for (size_t k = count; k < 3; k++) fraction *= 10;
                ms += fraction;
            }
        }
        ms += hour * 3600000LL + minute * 60000LL + second * 1000LL;
        if (i < n && s[i] == 'Z') {
            i++;
        } else if (i < n && (s[i] == '+' || s[i] == '-')) {
            int negative = s[i] == '-';
            if (n < i + 3) return 0;
            int off_hour = digits(s + i + 1, 2), off_minute = 0;
            if (off_hour < 0) return 0;
            i += 3;
            if (i < n) {
                if (s[i] == ':') i++;
                if (n != i + 2 || (off_minute = digits(s + i, 2)) < 0) return 0;
                i += 2;
            }
            if (off_hour > 23 || off_minute > 59) return 0;
            int64_t offset = off_hour * 3600000LL + off_minute * 60000LL;
            ms += negative ? offset : -offset;
        }
    }
    if (i != n || ms < MIN_MS || ms > MAX_MS) return 0;
    *out = ms;
    return 1;
}

/* The string value of "t": its text without the quotes; 0 for escapes or control bytes. */
static int timestamp_value(cursor *c, int64_t *out) {
    if (!expect(c, '"')) return 0;
    const char *begin = c->at;
    while (c->at < c->end && *c->at != '"') {
        unsigned char byte = (unsigned char)*c->at;
        if (byte == '\\' || byte < 0x20) return 0;
        c->at++;
    }
    if (c->at == c->end) return 0;
    size_t n = (size_t)(c->at - begin);
    c->at++;
    return timestamp_ms(begin, n, out);
}

static locale_t c_locale;

/* A JSON number: its value, and whether it is an integer (neither fraction nor exponent). */
static int number_value(cursor *c, double *out, char *is_int) {
    skip_space(c);
    const char *begin = c->at, *s = c->at, *end = c->end;
    if (s < end && *s == '-') s++;
    if (s >= end || !is_digit(*s)) return 0;
    if (*s == '0') {
        s++;
    } else {
        while (s < end && is_digit(*s)) s++;
    }
    int integer = 1;
    if (s < end && *s == '.') {
        integer = 0;
        if (++s >= end || !is_digit(*s)) return 0;
        while (s < end && is_digit(*s)) s++;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        integer = 0;
        s++;
        if (s < end && (*s == '+' || *s == '-')) s++;
        if (s >= end || !is_digit(*s)) return 0;
        while (s < end && is_digit(*s)) s++;
    }
    /* The number must end where JSON allows: what follows is checked by the caller, but it
     * must not be a byte that strtod would read on (the closing "]" always follows). */
    if (s >= end || !(is_space(*s) || *s == ',' || *s == '}')) return 0;
    c->at = s;
    if (integer) {
        const char *d = begin + (*begin == '-');
        if (s - d > 16) return 0;
        uint64_t magnitude = 0;
        for (; d < s; d++) magnitude = magnitude * 10 + (uint64_t)(*d - '0');
        if (magnitude >= EXACT_LIMIT) return 0;
        *out = *begin == '-' ? -(double)magnitude : (double)magnitude;
        if (*out == 0) *out = 0.0; /* "-0" is the integer 0 */
        *is_int = 1;
        return 1;
    }
    /* Up to 15 significant digits with a power of ten up to 22 are both exact doubles, and
     * one IEEE division or product of the two rounds correctly. */
    if (s - begin <= 17) {
        const char *d = begin + (*begin == '-');
        uint64_t mantissa = 0;
        int scale = 0, significant = 0, plain = 1;
        for (; d < s; d++) {
            if (*d == '.') {
                scale = -1;
            } else if (is_digit(*d)) {
                mantissa = mantissa * 10 + (uint64_t)(*d - '0');
                significant += mantissa != 0;
                scale -= scale < 0;
            } else {
                plain = 0; /* an exponent: strtod */
                break;
            }
        }
        if (plain && significant <= 15) {
            static const double powers[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                            1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
            double value = (double)mantissa / powers[-scale - 1];
            *out = *begin == '-' ? -value : value;
            *is_int = 0;
            return 1;
        }
    }
    char *stop;
    errno = 0;
    double value = strtod_l(begin, &stop, c_locale);
    if (stop != s || errno == ERANGE || !isfinite(value)) return 0;
    *out = value;
    *is_int = 0;
    return 1;
}

/* One item {"t": ..., "v": ...} (keys in either order, each once). */
static int item(cursor *c, int64_t *ts, double *value, char *is_int) {
    if (!expect(c, '{')) return 0;
    int seen = 0; /* 1: "t", 2: "v" */
    for (int member = 0; member < 2; member++) {
        if (member && !expect(c, ',')) return 0;
        if (!expect(c, '"') || c->end - c->at < 2 || c->at[1] != '"') return 0;
        char key = c->at[0];
        c->at += 2;
        if (!expect(c, ':')) return 0;
        if (key == 't' && !(seen & 1)) {
            if (!timestamp_value(c, ts)) return 0;
            seen |= 1;
        } else if (key == 'v' && !(seen & 2)) {
            if (!number_value(c, value, is_int)) return 0;
            seen |= 2;
        } else {
            return 0;
        }
    }
    return expect(c, '}');
}

/* The whole body; the number of items, or -1 when the general path must decide. */
static Py_ssize_t scan(cursor *c, Py_ssize_t capacity, int64_t *ts, double *values,
                       char *is_int) {
    if (!expect(c, '[')) return -1;
    Py_ssize_t count = 0;
    skip_space(c);
    if (c->at < c->end && *c->at == ']') return -1; /* nothing to write: let the usual path */
    do {
        if (count == capacity || !item(c, ts + count, values + count, is_int + count)) return -1;
        count++;
    } while (expect(c, ','));
    if (!expect(c, ']')) return -1;
    skip_space(c);
    return c->at == c->end ? count : -1;
}

PyObject *tempodb_parse_points(PyObject *module, PyObject *body) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (c_locale == (locale_t)0) {
        c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (c_locale == (locale_t)0) {
            PyBuffer_Release(&view);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    Py_ssize_t capacity = view.len / MIN_ITEM + 1;
    PyObject *ts = PyByteArray_FromStringAndSize(NULL, capacity * 8);
    PyObject *values = PyByteArray_FromStringAndSize(NULL, capacity * 8);
    PyObject *is_int = PyByteArray_FromStringAndSize(NULL, capacity);
    PyObject *result = NULL;
    if (ts == NULL || values == NULL || is_int == NULL) goto done;
    cursor c = {(const char *)view.buf, (const char *)view.buf + view.len};
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS;
    count = scan(&c, capacity, (int64_t *)PyByteArray_AS_STRING(ts),
                 (double *)PyByteArray_AS_STRING(values), PyByteArray_AS_STRING(is_int));
    Py_END_ALLOW_THREADS;
    if (count < 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (PyByteArray_Resize(ts, count * 8) < 0 || PyByteArray_Resize(values, count * 8) < 0 ||
        PyByteArray_Resize(is_int, count) < 0)
        goto done;
    result = PyTuple_Pack(3, ts, values, is_int);
done:
    Py_XDECREF(ts);
    Py_XDECREF(values);
    Py_XDECREF(is_int);
    PyBuffer_Release(&view);
    return result;
}

/* -- parse_multi_points: a multi write body [{"t": "...", "key" | "id": "...", "v": ...}, ...]
 *
 * The same items with a series named by "key" or "id" (exactly one of them, a non-empty key of
 * the spec's grammar: ASCII letters, digits, space and . : ; - _ / up to 255 bytes; a
 * backslash, which JSON escapes, is left to the general path).  The series are numbered in
 * order of first appearance, (field, text) told apart with an open-addressing table over the
 * body's bytes; Python objects are made only for the distinct series, after the scan. */

#define MAX_KEY 255
#define MIN_MULTI_ITEM 33 /* {"t":"2012-01-01","id":"a","v":0} and the comma */

typedef struct {
    const char *text;
    Py_ssize_t length;
    uint64_t hash;
    char field; /* 'k' or 'i' */
} series_name;

typedef struct {
    series_name *names; /* distinct, in order of first appearance */
    Py_ssize_t count;
    int32_t *slots; /* the table: -1 or an index into names */
    uint64_t mask;
} series_table;

static int key_byte(unsigned char byte) {
    return (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') || is_digit((char)byte) ||
           byte == '.' || byte == ':' || byte == ';' || byte == '-' || byte == '_' ||
           byte == '/' || byte == ' ';
}

/* A series name's text (quotes consumed); 0 when the general path must decide. */
static int series_value(cursor *c, const char **text, Py_ssize_t *length) {
    if (!expect(c, '"')) return 0;
    const char *begin = c->at;
    while (c->at < c->end && *c->at != '"') {
        if (!key_byte((unsigned char)*c->at)) return 0;
        c->at++;
    }
    if (c->at == c->end) return 0;
    *text = begin;
    *length = c->at - begin;
    c->at++;
    return *length > 0 && *length <= MAX_KEY;
}

/* The number of the series (field, text), adding it when new. */
static int32_t series_number(series_table *table, char field, const char *text, Py_ssize_t n) {
    uint64_t hash = 1469598103934665603ULL ^ (unsigned char)field; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) hash = (hash ^ (unsigned char)text[i]) * 1099511628211ULL;
    for (uint64_t at = hash & table->mask;; at = (at + 1) & table->mask) {
        int32_t slot = table->slots[at];
        if (slot < 0) {
            series_name *name = &table->names[table->count];
            name->text = text;
            name->length = n;
            name->hash = hash;
            name->field = field;
            table->slots[at] = (int32_t)table->count;
            return (int32_t)table->count++;
        }
        series_name *known = &table->names[slot];
        if (known->hash == hash && known->field == field && known->length == n &&
            memcmp(known->text, text, (size_t)n) == 0)
            return slot;
    }
}

/* One item: "t", "v" and one of "key"/"id", in any order, each once. */
static int multi_item(cursor *c, series_table *table, int64_t *ts, double *value, char *is_int,
                      int32_t *series) {
    if (!expect(c, '{')) return 0;
    int seen = 0; /* 1: "t", 2: "v", 4: the series */
    for (int member = 0; member < 3; member++) {
        if (member && !expect(c, ',')) return 0;
        if (!expect(c, '"')) return 0;
        const char *name = c->at;
        while (c->at < c->end && *c->at != '"') c->at++;
        if (c->at == c->end) return 0;
        size_t n = (size_t)(c->at - name);
        c->at++;
        if (!expect(c, ':')) return 0;
        if (n == 1 && name[0] == 't' && !(seen & 1)) {
            if (!timestamp_value(c, ts)) return 0;
            seen |= 1;
        } else if (n == 1 && name[0] == 'v' && !(seen & 2)) {
            if (!number_value(c, value, is_int)) return 0;
            seen |= 2;
        } else if (((n == 3 && memcmp(name, "key", 3) == 0) ||
                    (n == 2 && memcmp(name, "id", 2) == 0)) &&
                   !(seen & 4)) {
            const char *text;
            Py_ssize_t length;
            if (!series_value(c, &text, &length)) return 0;
            *series = series_number(table, n == 2 ? 'i' : 'k', text, length);
            seen |= 4;
        } else {
            return 0;
        }
    }
    return expect(c, '}');
}

static Py_ssize_t multi_scan(cursor *c, Py_ssize_t capacity, series_table *table, int64_t *ts,
                             double *values, char *is_int, int32_t *series) {
    if (!expect(c, '[')) return -1;
    Py_ssize_t count = 0;
    skip_space(c);
    if (c->at < c->end && *c->at == ']') return -1;
    do {
        if (count == capacity || !multi_item(c, table, ts + count, values + count,
                                             is_int + count, series + count))
            return -1;
        count++;
    } while (expect(c, ','));
    if (!expect(c, ']')) return -1;
    skip_space(c);
    return c->at == c->end ? count : -1;
}

/* The distinct series as two lists: fields ("key" or "id") and texts. */
static PyObject *series_lists(const series_table *table) {
    PyObject *fields = PyList_New(table->count), *texts = PyList_New(table->count);
    PyObject *key = PyUnicode_InternFromString("key"), *id = PyUnicode_InternFromString("id");
    PyObject *result = NULL;
    if (fields == NULL || texts == NULL || key == NULL || id == NULL) goto done;
    for (Py_ssize_t i = 0; i < table->count; i++) {
        const series_name *name = &table->names[i];
        PyObject *text = PyUnicode_DecodeASCII(name->text, name->length, NULL);
        if (text == NULL) goto done;
        PyList_SET_ITEM(texts, i, text);
        PyList_SET_ITEM(fields, i, Py_NewRef(name->field == 'i' ? id : key));
    }
    result = PyTuple_Pack(2, fields, texts);
done:
    Py_XDECREF(fields);
    Py_XDECREF(texts);
    Py_XDECREF(key);
    Py_XDECREF(id);
    return result;
}

PyObject *tempodb_parse_multi_points(PyObject *module, PyObject *body) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (c_locale == (locale_t)0) {
        c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (c_locale == (locale_t)0) {
            PyBuffer_Release(&view);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    Py_ssize_t capacity = view.len / MIN_MULTI_ITEM + 1;
    uint64_t size = 16;
    while (size < (uint64_t)capacity * 2) size <<= 1;
    series_table table = {PyMem_Malloc((size_t)capacity * sizeof(series_name)), 0,
                          PyMem_Malloc((size_t)size * sizeof(int32_t)), size - 1};
    PyObject *ts = PyByteArray_FromStringAndSize(NULL, capacity * 8);
    PyObject *values = PyByteArray_FromStringAndSize(NULL, capacity * 8);
    PyObject *is_int = PyByteArray_FromStringAndSize(NULL, capacity);
    PyObject *series = PyByteArray_FromStringAndSize(NULL, capacity * 4);
    PyObject *names = NULL, *result = NULL;
    if (table.names == NULL || table.slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (ts == NULL || values == NULL || is_int == NULL || series == NULL) goto done;
    memset(table.slots, 0xff, (size_t)size * sizeof(int32_t));
    cursor c = {(const char *)view.buf, (const char *)view.buf + view.len};
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS;
    count = multi_scan(&c, capacity, &table, (int64_t *)PyByteArray_AS_STRING(ts),
                       (double *)PyByteArray_AS_STRING(values), PyByteArray_AS_STRING(is_int),
                       (int32_t *)PyByteArray_AS_STRING(series));
    Py_END_ALLOW_THREADS;
    if (count < 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (PyByteArray_Resize(ts, count * 8) < 0 || PyByteArray_Resize(values, count * 8) < 0 ||
        PyByteArray_Resize(is_int, count) < 0 || PyByteArray_Resize(series, count * 4) < 0)
        goto done;
    names = series_lists(&table);
    if (names == NULL) goto done;
    result = Py_BuildValue("(OOOOOO)", ts, values, is_int, series, PyTuple_GET_ITEM(names, 0),
                           PyTuple_GET_ITEM(names, 1));
done:
    Py_XDECREF(ts);
    Py_XDECREF(values);
    Py_XDECREF(is_int);
    Py_XDECREF(series);
    Py_XDECREF(names);
    PyMem_Free(table.names);
    PyMem_Free(table.slots);
    PyBuffer_Release(&view);
    return result;
}
