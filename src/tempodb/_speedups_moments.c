/* summary_moments: the sum, extremes and centred sum of squares of a read's values (spec §3.7).
 *
 * The same doubles as numpy's vals.sum(), vals.min(), vals.max() and
 * np.sum((vals - mean) ** 2): both sums follow numpy's pairwise summation (blocks of 128
 * added with eight accumulators, halved above that), two passes over the values and no
 * temporary array.
 */
#include "_speedups.h"

#define BLOCK 128

/* numpy's pairwise sum of TERM(a[i]) for i in [0, n): the plain sum and the sum of squared
 * deviations from ``mean``, each its own function so that the inner loops stay simple. */
#define PAIRWISE(name, TERM)                                                                   \
    static double name(const double *a, Py_ssize_t n, double mean) {                           \
        (void)mean;                                                                             \
        if (n < 8) {                                                                            \
            double total = 0.0;                                                                 \
            for (Py_ssize_t i = 0; i < n; i++) total += TERM(a[i]);                             \
            return total;                                                                       \
        }                                                                                       \
        if (n <= BLOCK) {                                                                       \
            double r[8];                                                                        \
            for (int j = 0; j < 8; j++) r[j] = TERM(a[j]);                                      \
            Py_ssize_t i;                                                                       \
            for (i = 8; i < n - (n % 8); i += 8)                                                \
                for (int j = 0; j < 8; j++) r[j] += TERM(a[i + j]);                             \
            double total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));   \
            for (; i < n; i++) total += TERM(a[i]);                                             \
            return total;                                                                       \
        }                                                                                       \
        Py_ssize_t half = n / 2;                                                                \
        half -= half % 8;                                                                       \
        return name(a, half, mean) + name(a + half, n - half, mean);                            \
    }

#define PLAIN(x) (x)
#define CENTRED(x) (((x) - mean) * ((x) - mean))
PAIRWISE(plain_sum, PLAIN)
PAIRWISE(centred_squares, CENTRED)

/* The minimum and maximum of a[0..n), n > 0, in eight lanes (no chain of dependent compares). */
static void extremes(const double *a, Py_ssize_t n, double *low, double *high) {
    double lo[8], hi[8];
    for (int j = 0; j < 8; j++) lo[j] = hi[j] = a[0];
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            lo[j] = a[i + j] < lo[j] ? a[i + j] : lo[j];
            hi[j] = a[i + j] > hi[j] ? a[i + j] : hi[j];
        }
    for (; i < n; i++) {
        lo[0] = a[i] < lo[0] ? a[i] : lo[0];
        hi[0] = a[i] > hi[0] ? a[i] : hi[0];
    }
    for (int j = 1; j < 8; j++) {
        lo[0] = lo[j] < lo[0] ? lo[j] : lo[0];
        hi[0] = hi[j] > hi[0] ? hi[j] : hi[0];
    }
    *low = lo[0];
    *high = hi[0];
}

PyObject *tempodb_summary_moments(PyObject *module, PyObject *values) {
    (void)module;
    Py_buffer view;
    if (vector(values, &view, 'd', "values") < 0) return NULL;
    const double *a = view.buf;
    Py_ssize_t n = view.shape[0];
    if (n == 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "no values");
        return NULL;
    }
    double total, low, high, ss;
    Py_BEGIN_ALLOW_THREADS;
    extremes(a, n, &low, &high);
    total = plain_sum(a, n, 0.0);
    ss = centred_squares(a, n, total / (double)n);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&view);
    return Py_BuildValue("(dddd)", total, low, high, ss);
}
