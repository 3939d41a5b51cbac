/* tempodb._speedups: C loops for the hottest parts of the wire format, a read's summary and
 * the block codec.
 *
 * Optional: when the extension is not built, tempodb.server.wire and tempodb.storage.blocks
 * take their numpy paths, which give the same bytes and doubles (tests/server/test_wire_fast.py
 * and tests/storage/test_blocks.py check both).
 */
#include <string.h>

#include "_speedups.h"

int vector(PyObject *object, Py_buffer *view, char kind, const char *what) {
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    /* The struct codes of 8-byte items, in native or little-endian order. */
    const char *format = view->format;
    if (format != NULL && (*format == '<' || *format == '=')) format++;
    const char *codes = kind == 'd' ? "d" : "ql";
    if (view->itemsize != 8 || view->ndim != 1 || format == NULL || format[0] == '\0' ||
        format[1] != '\0' || strchr(codes, format[0]) == NULL) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s must be a one-dimensional %s array", what,
                     kind == 'd' ? "float64" : "int64");
        return -1;
    }
    return 0;
}

static PyMethodDef speedups_methods[] = {
    {"render_points", (PyCFunction)(void (*)(void))tempodb_render_points, METH_FASTCALL,
     "render_points(ts, offsets, numbers) -> bytes | None\n\n"
     "The JSON array of {\"t\": ..., \"v\": ...} items for int64 epoch ms ``ts`` with the\n"
     "zone's UTC offset (ms) of each point and the points' values as one JSON array of\n"
     "numbers; None when a local time falls outside years 1..9999 or the counts disagree."},
    {"parse_points", tempodb_parse_points, METH_O,
     "parse_points(body) -> (ts, values, is_int) | None\n\n"
     "A write body [{\"t\": ..., \"v\": ...}, ...] as bytearrays of int64 epoch ms, float64\n"
     "values and one byte per point (1: an integer); None when the general path must decide\n"
     "(other keys or types, escapes, invalid timestamps, integers from 2**53)."},
    {"parse_multi_points", tempodb_parse_multi_points, METH_O,
     "parse_multi_points(body) -> (ts, values, is_int, series, fields, texts) | None\n\n"
     "A multi write body [{\"t\": ..., \"key\" | \"id\": ..., \"v\": ...}, ...] as\n"
     "parse_points gives it, with the int32 number of each point's series (bytearray) and the\n"
     "distinct series in order of first appearance: their fields (\"key\" or \"id\") and texts;\n"
     "None when the general path must decide (as parse_points, and any series name that is\n"
     "not a plain valid key, or an item naming both)."},
    {"summary_moments", tempodb_summary_moments, METH_O,
     "summary_moments(values) -> (sum, min, max, ss)\n\n"
     "The sum, minimum, maximum and centred sum of squares of a non-empty float64 array, the\n"
     "same doubles as numpy's sum, min, max and sum of squared deviations from the mean."},
    {"decimal_mantissas", (PyCFunction)(void (*)(void))tempodb_decimal_mantissas, METH_FASTCALL,
     "decimal_mantissas(values, scale, limit) -> bytearray | None\n\n"
     "The int64 m with values == m / scale bit for bit and |m| < limit, m rounded half to\n"
     "even from value * scale; None at the first value that has none."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tempodb._speedups",
    .m_doc = "C loops for the wire format, the summary and the block codec (optional).",
    .m_size = 0,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModuleDef_Init(&speedups_module); }
