/* cuframes._atomics: the only place where the Python implementation touches shared memory with
 * ordering semantics. Every function takes a raw address inside a MAP_SHARED mapping of a
 * /dev/shm file and performs one C11 <stdatomic.h> operation on it, so the ordering is the one
 * the C11 memory model gives (and the compiler maps to the target's instructions: plain mov plus
 * compiler barriers on x86-64, ldar/stlr/dmb on AArch64). Nothing here relies on x86 TSO.
 *
 * Why this is correct across processes: the spec's ordering rules (PROTOCOL.md 2.7) are stated
 * as C11 release/acquire pairs on naturally aligned 4- and 8-byte words. Lock-free atomics on
 * such words are address-free (C11 7.17.5 note, and GCC's implementation: single instructions
 * on the memory location), so they work the same when two processes map the same page at
 * different addresses. The byte copies used by seqlock readers and ring writers are relaxed
 * atomic byte/word accesses, so a racing read is defined (it may return any written value and
 * the seqlock's re-check discards it) rather than a data race.
 *
 * Futex calls use FUTEX_WAIT/FUTEX_WAKE without FUTEX_PRIVATE_FLAG, because the word is shared
 * between processes (SHM-ORDER-02). Every blocking call releases the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free (address-free)");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free (address-free)");

typedef _Atomic uint32_t a32;
typedef _Atomic uint64_t a64;

/* Parses one address argument and checks its alignment; returns NULL with ValueError set. */
static void *aligned_addr(PyObject *arg, size_t align) {
  unsigned long long a = PyLong_AsUnsignedLongLong(arg);
  if (a == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
  if (a == 0 || (a % align) != 0) {
    PyErr_Format(PyExc_ValueError, "address 0x%llx is null or not %zu-byte aligned", a, align);
    return NULL;
  }
  return (void *)(uintptr_t)a;
}

#define LOAD_FN(name, type, width, order)                         \
  static PyObject *name(PyObject *self, PyObject *arg) {          \
    (void)self;                                                   \
    type *p = aligned_addr(arg, width);                           \
    if (!p) return NULL;                                          \
    return PyLong_FromUnsignedLongLong(atomic_load_explicit(p, order)); \
  }
LOAD_FN(load32_acquire, a32, 4, memory_order_acquire)
LOAD_FN(load64_acquire, a64, 8, memory_order_acquire)
LOAD_FN(load32_relaxed, a32, 4, memory_order_relaxed)
LOAD_FN(load64_relaxed, a64, 8, memory_order_relaxed)

#define STORE_FN(name, type, ctype, width, order)                          \
  static PyObject *name(PyObject *self, PyObject *const *args, Py_ssize_t n) { \
    (void)self;                                                            \
    if (n != 2) {                                                          \
      PyErr_SetString(PyExc_TypeError, #name "(addr, value)");             \
      return NULL;                                                         \
    }                                                                      \
    type *p = aligned_addr(args[0], width);                                \
    if (!p) return NULL;                                                   \
    unsigned long long v = PyLong_AsUnsignedLongLong(args[1]);             \
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return NULL;      \
    if ((unsigned long long)(ctype)v != v) {                               \
      PyErr_SetString(PyExc_OverflowError, "value does not fit the word"); \
      return NULL;                                                         \
    }                                                                      \
    atomic_store_explicit(p, (ctype)v, order);                             \
    Py_RETURN_NONE;                                                        \
  }
STORE_FN(store32_release, a32, uint32_t, 4, memory_order_release)
STORE_FN(store64_release, a64, uint64_t, 8, memory_order_release)
STORE_FN(store32_relaxed, a32, uint32_t, 4, memory_order_relaxed)
STORE_FN(store64_relaxed, a64, uint64_t, 8, memory_order_relaxed)

/* fetch_add32(addr, delta) -> previous value; sequentially consistent (SHM-ORDER-02/04).
 * delta may be negative (a waiter count's decrement); arithmetic wraps modulo 2**32. */
static PyObject *fetch_add32(PyObject *self, PyObject *const *args, Py_ssize_t n) {
  (void)self;
  if (n != 2) {
    PyErr_SetString(PyExc_TypeError, "fetch_add32(addr, delta)");
    return NULL;
  }
  a32 *p = aligned_addr(args[0], 4);
  if (!p) return NULL;
  long long d = PyLong_AsLongLong(args[1]);
  if (d == -1 && PyErr_Occurred()) return NULL;
  uint32_t prev = atomic_fetch_add_explicit(p, (uint32_t)d, memory_order_seq_cst);
  return PyLong_FromUnsignedLong(prev);
}

static PyObject *fence_acquire(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  atomic_thread_fence(memory_order_acquire);
  Py_RETURN_NONE;
}
static PyObject *fence_release(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  atomic_thread_fence(memory_order_release);
  Py_RETURN_NONE;
}
static PyObject *fence_seq_cst(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  atomic_thread_fence(memory_order_seq_cst);
  Py_RETURN_NONE;
}

/* copy_relaxed(dst, src, n): copies n bytes with relaxed atomic loads from src and relaxed
 * atomic stores to dst (8 bytes at a time where both are 8-aligned, else byte by byte). Used for
 * seqlock-protected payloads: the reader follows it with an acquire fence and a re-check. */
static PyObject *copy_relaxed(PyObject *self, PyObject *const *args, Py_ssize_t n) {
  (void)self;
  if (n != 3) {
    PyErr_SetString(PyExc_TypeError, "copy_relaxed(dst, src, n)");
    return NULL;
  }
  unsigned long long d = PyLong_AsUnsignedLongLong(args[0]);
  unsigned long long s = PyLong_AsUnsignedLongLong(args[1]);
  unsigned long long len = PyLong_AsUnsignedLongLong(args[2]);
  if (PyErr_Occurred()) return NULL;
  if ((d == 0 || s == 0) && len) {
    PyErr_SetString(PyExc_ValueError, "null address");
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS;
  unsigned long long i = 0;
  if ((d % 8) == 0 && (s % 8) == 0) {
    for (; i + 8 <= len; i += 8) {
      uint64_t v = atomic_load_explicit((a64 *)(uintptr_t)(s + i), memory_order_relaxed);
      atomic_store_explicit((a64 *)(uintptr_t)(d + i), v, memory_order_relaxed);
    }
  }
  for (; i < len; i++) {
    uint8_t v = atomic_load_explicit((_Atomic uint8_t *)(uintptr_t)(s + i), memory_order_relaxed);
    atomic_store_explicit((_Atomic uint8_t *)(uintptr_t)(d + i), v, memory_order_relaxed);
  }
  Py_END_ALLOW_THREADS;
  Py_RETURN_NONE;
}

/* The result of a FUTEX_WAIT(_BITSET) call (rc, and errno when rc != 0) as futex_wait returns
 * it: 0 woken (or spurious), 1 timed out, 2 EAGAIN, 3 EINTR; any other errno raises OSError. */
static PyObject *wait_result(long rc, int err) {
  if (rc == 0) return PyLong_FromLong(0);
  switch (err) {
    case ETIMEDOUT: return PyLong_FromLong(1);
    case EAGAIN: return PyLong_FromLong(2);
    case EINTR: return PyLong_FromLong(3);
    default: errno = err; return PyErr_SetFromErrno(PyExc_OSError);
  }
}

/* futex_wait(addr, expected, timeout_ms) -> 0 woken (or spurious), 1 timed out, 2 the word did
 * not hold `expected` (EAGAIN), 3 interrupted (EINTR). Shared futex (no FUTEX_PRIVATE_FLAG). */
static PyObject *futex_wait(PyObject *self, PyObject *const *args, Py_ssize_t n) {
  (void)self;
  if (n != 3) {
    PyErr_SetString(PyExc_TypeError, "futex_wait(addr, expected, timeout_ms)");
    return NULL;
  }
  uint32_t *p = aligned_addr(args[0], 4);
  if (!p) return NULL;
  unsigned long long expected = PyLong_AsUnsignedLongLong(args[1]);
  long long ms = PyLong_AsLongLong(args[2]);
  if (PyErr_Occurred()) return NULL;
  if (ms < 0) ms = 0;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  long rc;
  int err = 0;
  Py_BEGIN_ALLOW_THREADS;
  rc = syscall(SYS_futex, p, FUTEX_WAIT, (uint32_t)expected, &ts, NULL, 0);
  if (rc != 0) err = errno;
  Py_END_ALLOW_THREADS;
  return wait_result(rc, err);
}

/* futex_wait_bitset(addr, expected, timeout_ms, bitset) -> as futex_wait, with FUTEX_WAIT_BITSET:
 * only a FUTEX_WAKE_BITSET whose bitset shares a bit with `bitset` (or a plain FUTEX_WAKE) wakes
 * it. FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, not a relative timeout. */
static PyObject *futex_wait_bitset(PyObject *self, PyObject *const *args, Py_ssize_t n) {
  (void)self;
  if (n != 4) {
    PyErr_SetString(PyExc_TypeError, "futex_wait_bitset(addr, expected, timeout_ms, bitset)");
    return NULL;
  }
  uint32_t *p = aligned_addr(args[0], 4);
  if (!p) return NULL;
  unsigned long long expected = PyLong_AsUnsignedLongLong(args[1]);
  long long ms = PyLong_AsLongLong(args[2]);
  unsigned long long bitset = PyLong_AsUnsignedLongLong(args[3]);
  if (PyErr_Occurred()) return NULL;
  if (bitset == 0 || bitset > 0xffffffffULL) {
    PyErr_SetString(PyExc_ValueError, "bitset must be a nonzero 32-bit mask");
    return NULL;
  }
  if (ms < 0) ms = 0;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000000000L;
  }
  long rc;
  int err = 0;
  Py_BEGIN_ALLOW_THREADS;
  rc = syscall(SYS_futex, p, FUTEX_WAIT_BITSET, (uint32_t)expected, &ts, NULL, (uint32_t)bitset);
  if (rc != 0) err = errno;
  Py_END_ALLOW_THREADS;
  return wait_result(rc, err);
}

/* futex_wake_bitset(addr, count, bitset) -> number of waiters woken: those whose wait bitset
 * shares a bit with `bitset` (plain FUTEX_WAIT waiters match every bitset). Shared futex. */
static PyObject *futex_wake_bitset(PyObject *self, PyObject *const *args, Py_ssize_t n) {
  (void)self;
  if (n != 3) {
    PyErr_SetString(PyExc_TypeError, "futex_wake_bitset(addr, count, bitset)");
    return NULL;
  }
  uint32_t *p = aligned_addr(args[0], 4);
  if (!p) return NULL;
  long cnt = PyLong_AsLong(args[1]);
  unsigned long long bitset = PyLong_AsUnsignedLongLong(args[2]);
  if (PyErr_Occurred()) return NULL;
  if (bitset == 0 || bitset > 0xffffffffULL) {
    PyErr_SetString(PyExc_ValueError, "bitset must be a nonzero 32-bit mask");
    return NULL;
  }
  long rc = syscall(SYS_futex, p, FUTEX_WAKE_BITSET, (int)cnt, NULL, NULL, (uint32_t)bitset);
  if (rc < 0) return PyErr_SetFromErrno(PyExc_OSError);
  return PyLong_FromLong(rc);
}

/* futex_wake(addr, count) -> number of waiters woken. Shared futex. */
static PyObject *futex_wake(PyObject *self, PyObject *const *args, Py_ssize_t n) {
  (void)self;
  if (n != 2) {
    PyErr_SetString(PyExc_TypeError, "futex_wake(addr, count)");
    return NULL;
  }
  uint32_t *p = aligned_addr(args[0], 4);
  if (!p) return NULL;
  long cnt = PyLong_AsLong(args[1]);
  if (cnt == -1 && PyErr_Occurred()) return NULL;
  long rc = syscall(SYS_futex, p, FUTEX_WAKE, (int)cnt, NULL, NULL, 0);
  if (rc < 0) return PyErr_SetFromErrno(PyExc_OSError);
  return PyLong_FromLong(rc);
}

/* buffer_address(obj) -> the address of obj's first byte (buffer protocol). The caller keeps
 * obj (an mmap) alive and mapped for as long as it uses the address. */
static PyObject *buffer_address(PyObject *self, PyObject *obj) {
  (void)self;
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) != 0) return NULL;
  uintptr_t a = (uintptr_t)view.buf;
  PyBuffer_Release(&view);
  return PyLong_FromUnsignedLongLong(a);
}

/* detach_pages(addr, len): replaces the shared pages [addr, addr+len) of this process with a
 * private anonymous copy of their current bytes, atomically (mremap MREMAP_FIXED). A frame view
 * that the application kept past release() keeps reading the frame it was given, never the
 * publisher's later writes into the reused slot. addr and len are page multiples. */
static PyObject *detach_pages(PyObject *self, PyObject *const *args, Py_ssize_t n) {
  (void)self;
  if (n != 2) {
    PyErr_SetString(PyExc_TypeError, "detach_pages(addr, len)");
    return NULL;
  }
  long page = sysconf(_SC_PAGESIZE);
  void *addr = aligned_addr(args[0], (size_t)page);
  if (!addr) return NULL;
  unsigned long long len = PyLong_AsUnsignedLongLong(args[1]);
  if (PyErr_Occurred()) return NULL;
  if (len == 0 || len % (unsigned long long)page) {
    PyErr_SetString(PyExc_ValueError, "length is not a positive page multiple");
    return NULL;
  }
  void *tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (tmp == MAP_FAILED) return PyErr_SetFromErrno(PyExc_OSError);
  memcpy(tmp, addr, len);
  if (mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr) == MAP_FAILED) {
    int e = errno;
    munmap(tmp, len);
    errno = e;
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"load32_acquire", load32_acquire, METH_O, "acquire load of a u32"},
    {"load64_acquire", load64_acquire, METH_O, "acquire load of a u64"},
    {"load32_relaxed", load32_relaxed, METH_O, "relaxed load of a u32"},
    {"load64_relaxed", load64_relaxed, METH_O, "relaxed load of a u64"},
    {"store32_release", (PyCFunction)(void (*)(void))store32_release, METH_FASTCALL, "release store"},
    {"store64_release", (PyCFunction)(void (*)(void))store64_release, METH_FASTCALL, "release store"},
    {"store32_relaxed", (PyCFunction)(void (*)(void))store32_relaxed, METH_FASTCALL, "relaxed store"},
    {"store64_relaxed", (PyCFunction)(void (*)(void))store64_relaxed, METH_FASTCALL, "relaxed store"},
    {"fetch_add32", (PyCFunction)(void (*)(void))fetch_add32, METH_FASTCALL, "seq_cst fetch_add"},
    {"fence_acquire", fence_acquire, METH_NOARGS, "acquire fence"},
    {"fence_release", fence_release, METH_NOARGS, "release fence"},
    {"fence_seq_cst", fence_seq_cst, METH_NOARGS, "seq_cst fence"},
    {"copy_relaxed", (PyCFunction)(void (*)(void))copy_relaxed, METH_FASTCALL, "relaxed copy"},
    {"futex_wait", (PyCFunction)(void (*)(void))futex_wait, METH_FASTCALL, "FUTEX_WAIT"},
    {"futex_wake", (PyCFunction)(void (*)(void))futex_wake, METH_FASTCALL, "FUTEX_WAKE"},
    {"futex_wait_bitset", (PyCFunction)(void (*)(void))futex_wait_bitset, METH_FASTCALL,
     "FUTEX_WAIT_BITSET"},
    {"futex_wake_bitset", (PyCFunction)(void (*)(void))futex_wake_bitset, METH_FASTCALL,
     "FUTEX_WAKE_BITSET"},
    {"buffer_address", buffer_address, METH_O, "address of a buffer's first byte"},
    {"detach_pages", (PyCFunction)(void (*)(void))detach_pages, METH_FASTCALL, "private copy"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "cuframes._atomics",
    "C11 atomics, fences and futexes on addresses inside shared mappings.", -1, methods,
};

PyMODINIT_FUNC PyInit__atomics(void) { return PyModule_Create(&module); }
