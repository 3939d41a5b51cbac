/* tempodb._speedups, the optional C loops of the wire format, the summary and the block
 * codec: shared declarations. */
#ifndef TEMPODB_SPEEDUPS_H
#define TEMPODB_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* render_points(ts, offsets, numbers) -> bytes | None (_speedups_render.c) */
PyObject *tempodb_render_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* parse_points(body) -> (ts, values, is_int) as bytearrays | None (_speedups_parse.c) */
PyObject *tempodb_parse_points(PyObject *module, PyObject *body);

/* parse_multi_points(body) -> (ts, values, is_int, series, fields, texts) | None
 * (_speedups_parse.c) */
PyObject *tempodb_parse_multi_points(PyObject *module, PyObject *body);

/* summary_moments(values) -> (sum, min, max, ss) (_speedups_moments.c) */
PyObject *tempodb_summary_moments(PyObject *module, PyObject *values);

/* decimal_mantissas(values, scale, limit) -> int64 bytearray | None (_speedups_decimal.c) */
PyObject *tempodb_decimal_mantissas(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* A one-dimensional C-contiguous buffer of ``object`` of float64 (kind 'd') or int64 (kind 'q')
 * items; TypeError naming ``what`` otherwise. */
int vector(PyObject *object, Py_buffer *view, char kind, const char *what);

#endif
