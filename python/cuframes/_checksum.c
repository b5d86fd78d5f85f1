/* cuframes._checksum: FNV-1a 64 over a buffer, the checksum of the adapter contract
 * (spec/ADAPTER.md section 4). In C because a Python loop over a 3 MB frame takes seconds. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* fnv1a64(buffer) -> int: offset basis 0xcbf29ce484222325, prime 0x100000001b3. */
static PyObject *fnv1a64(PyObject *self, PyObject *obj) {
  (void)self;
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) != 0) return NULL;
  uint64_t h = 0xcbf29ce484222325ULL;
  const unsigned char *p = view.buf;
  Py_BEGIN_ALLOW_THREADS;
  for (Py_ssize_t i = 0; i < view.len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  Py_END_ALLOW_THREADS;
  PyBuffer_Release(&view);
  return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef methods[] = {
    {"fnv1a64", fnv1a64, METH_O, "FNV-1a 64 of a buffer"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cuframes._checksum",
                                    "FNV-1a 64 (adapter checksums).", -1, methods};

PyMODINIT_FUNC PyInit__checksum(void) { return PyModule_Create(&module); }
