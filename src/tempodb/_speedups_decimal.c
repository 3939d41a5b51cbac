/* decimal_mantissas: the integers m with values == m / scale bit for bit (the decimal value
 * code of tempodb.storage.blocks), or None at the first value that is not one.
 *
 * The same test as the numpy path: m = round-half-even(value * scale), |m| below ``limit``,
 * and m / scale giving back the value's exact bits (so -0.0, NaN and infinities never are).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_speedups.h"

static int decimal_into(const double *values, Py_ssize_t n, double scale, double limit,
                        int64_t *out) {
    for (Py_ssize_t i = 0; i < n; i++) {
        double rounded = nearbyint(values[i] * scale);
        if (!(fabs(rounded) < limit)) return 0;
        int64_t mantissa = (int64_t)rounded;
        double back = (double)mantissa / scale;
        if (memcmp(&back, &values[i], sizeof back) != 0) return 0;
        out[i] = mantissa;
    }
    return 1;
}

PyObject *tempodb_decimal_mantissas(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "decimal_mantissas(values, scale, limit) takes 3 arguments");
        return NULL;
    }
    double scale = PyFloat_AsDouble(args[1]), limit = PyFloat_AsDouble(args[2]);
    if ((scale == -1.0 || limit == -1.0) && PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (vector(args[0], &view, 'd', "values") < 0) return NULL;
    Py_ssize_t n = view.shape[0];
    PyObject *result = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int found;
    Py_BEGIN_ALLOW_THREADS;
    found = decimal_into(view.buf, n, scale, limit, (int64_t *)PyByteArray_AS_STRING(result));
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&view);
    if (!found) Py_SETREF(result, Py_NewRef(Py_None));
    return result;
}
