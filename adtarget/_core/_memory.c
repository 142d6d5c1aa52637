/*
 * adtarget._memory: a NumPy data-memory handler (NEP 49) that keeps freed large blocks for reuse.
 *
 * Why by hand: the stages allocate a few hundred MB of column arrays per 10^7 events. glibc serves each with a
 * fresh mmap and unmaps it on free, so every stage pays the kernel's first-touch page faults again (in this
 * VM, whose freed pages go back to the host, 0.1-0.7 s per ingest of 10^7 events). NumPy has no caching
 * handler and none of the well-kept libraries ships one; NEP 49 exists for exactly this.
 *
 * Blocks of MIN_CACHED bytes or more are tracked: on free they are kept (up to a byte limit, oldest evicted
 * first) and a later request of a size they fit within 25 % is served from them. Smaller blocks go straight
 * to malloc. The handler is only active where Python code sets it (adtarget/_buffers.py scopes it to the
 * stages); an array keeps the handler it was allocated with, so it is freed here wherever it dies.
 * Every entry point takes one mutex: NumPy may free arrays from any thread. No Python API is called with it held
 * (creating an object may run the garbage collector, which may free an array of ours: a self-deadlock).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define NPY_TARGET_VERSION NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIN_CACHED ((size_t)1 << 20)   /* blocks from 1 MiB on are tracked and cached */
#define MAX_CACHED (SIZE_MAX >> 8)     /* larger requests (none in practice) go straight to malloc */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20)     /* as NumPy: advise huge pages from 4 MiB on */
#define MAX_IDLE 256                   /* idle blocks kept at most */
#define LIVE_SLOTS 8192                /* open-addressing table of tracked live blocks (power of two) */
#define LIVE_MAX (LIVE_SLOTS / 2)      /* beyond this many, new blocks are plain malloc blocks */

typedef struct { void *ptr; size_t size; size_t capacity; } Live;
typedef struct { void *ptr; size_t capacity; double freed_at; } Idle;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Live live[LIVE_SLOTS];
static size_t n_live, live_bytes;
static Idle idle[MAX_IDLE];
static size_t n_idle, idle_bytes, limit_bytes;
static unsigned long long hits, misses, evictions, hit_bytes, miss_bytes;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --- live table: pointer -> (size, capacity), linear probing with backward-shift deletion ------------------ */
static size_t slot_of(const void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 51) & (LIVE_SLOTS - 1);  /* 13 top bits */
}

static long live_find(const void *p) {
    for (size_t i = slot_of(p);; i = (i + 1) & (LIVE_SLOTS - 1)) {
        if (live[i].ptr == p) return (long)i;
        if (live[i].ptr == NULL) return -1;
    }
}

static void live_put(void *p, size_t size, size_t capacity) {
    size_t i = slot_of(p);
    while (live[i].ptr != NULL) i = (i + 1) & (LIVE_SLOTS - 1);
    live[i] = (Live){p, size, capacity};
    n_live++;
    live_bytes += capacity;
}

static void live_remove(size_t i) {
    live_bytes -= live[i].capacity;
    n_live--;
    live[i].ptr = NULL;
    for (size_t j = (i + 1) & (LIVE_SLOTS - 1); live[j].ptr != NULL; j = (j + 1) & (LIVE_SLOTS - 1)) {
        size_t home = slot_of(live[j].ptr);
        /* move j back to the hole i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            live[i] = live[j];
            live[j].ptr = NULL;
            i = j;
        }
    }
}

/* --- idle blocks ----------------------------------------------------------------------------------------- */
static void idle_drop(size_t k, int count_eviction) {
    free(idle[k].ptr);
    idle_bytes -= idle[k].capacity;
    idle[k] = idle[--n_idle];
    if (count_eviction) evictions++;
}

static size_t oldest_idle(void) {
    size_t oldest = 0;
    for (size_t k = 1; k < n_idle; k++)
        if (idle[k].freed_at < idle[oldest].freed_at) oldest = k;
    return oldest;
}

static void shrink_to(size_t bytes) {
    while (n_idle > 0 && idle_bytes > bytes) idle_drop(oldest_idle(), 1);
}

/* The smallest idle block that holds `size` bytes and wastes at most a quarter of them, or -1. */
static long best_fit(size_t size) {
    long best = -1;
    for (size_t k = 0; k < n_idle; k++) {
        size_t c = idle[k].capacity;
        if (c >= size && c - size <= size / 4 && (best < 0 || c < idle[best].capacity)) best = (long)k;
    }
    return best;
}

static size_t round_capacity(size_t size) {
    size_t granule = (size_t)1 << 16;
    while (granule * 16 < size) granule <<= 1;  /* at most 1/16 rounded up */
    return (size + granule - 1) / granule * granule;
}

static void advise_huge_pages(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    if (n < HUGE_MIN) return;
    uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p; (void)n;
#endif
}

/* --- the handler ----------------------------------------------------------------------------------------- */

static void *allocate(size_t size, int zeroed) {
    if (size < MIN_CACHED || size > MAX_CACHED) return zeroed ? calloc(1, size) : malloc(size);
    pthread_mutex_lock(&lock);
    long k = best_fit(size);
    if (k >= 0 && n_live < LIVE_MAX) {
        Idle block = idle[k];
        idle_bytes -= block.capacity;
        idle[k] = idle[--n_idle];
        live_put(block.ptr, size, block.capacity);
        hits++;
        hit_bytes += size;
        pthread_mutex_unlock(&lock);
        if (zeroed) memset(block.ptr, 0, size);
        return block.ptr;
    }
    misses++;
    miss_bytes += size;
    pthread_mutex_unlock(&lock);
    size_t capacity = round_capacity(size);
    void *p = zeroed ? calloc(1, capacity) : malloc(capacity);
    if (p == NULL) {  /* give the idle blocks back and try once more */
        pthread_mutex_lock(&lock);
        shrink_to(0);
        pthread_mutex_unlock(&lock);
        p = zeroed ? calloc(1, capacity) : malloc(capacity);
        if (p == NULL) return NULL;
    }
    advise_huge_pages(p, capacity);
    pthread_mutex_lock(&lock);
    if (n_live < LIVE_MAX) live_put(p, size, capacity);  /* else an untracked malloc block, freed by free() */
    pthread_mutex_unlock(&lock);
    return p;
}

/* Called with the lock held: keep a tracked block that is no longer used, or free it. */
static void retire(void *p, size_t capacity) {
    if (capacity > limit_bytes) {
        free(p);
        return;
    }
    shrink_to(limit_bytes - capacity);
    if (n_idle == MAX_IDLE) idle_drop(oldest_idle(), 1);
    idle[n_idle++] = (Idle){p, capacity, now_s()};
    idle_bytes += capacity;
}

static void *handler_malloc(void *ctx, size_t size) {
    (void)ctx;
    return allocate(size, 0);
}

static void *handler_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    if (elsize != 0 && nelem > SIZE_MAX / elsize) return NULL;
    return allocate(nelem * elsize, 1);
}

static void handler_free(void *ctx, void *p, size_t size) {
    (void)ctx; (void)size;  /* the size NumPy passes is a hint; the table is the truth */
    if (p == NULL) return;
    pthread_mutex_lock(&lock);
    long i = live_find(p);
    if (i < 0) {
        pthread_mutex_unlock(&lock);
        free(p);
        return;
    }
    size_t capacity = live[i].capacity;
    live_remove((size_t)i);
    retire(p, capacity);
    pthread_mutex_unlock(&lock);
}

static void *handler_realloc(void *ctx, void *p, size_t new_size) {
    (void)ctx;
    if (p == NULL) return allocate(new_size, 0);
    pthread_mutex_lock(&lock);
    long i = live_find(p);
    if (i < 0) {  /* a plain malloc block stays one */
        pthread_mutex_unlock(&lock);
        return realloc(p, new_size);
    }
    if (new_size <= live[i].capacity && new_size >= live[i].capacity / 2) {
        live[i].size = new_size;
        pthread_mutex_unlock(&lock);
        return p;
    }
    size_t old_size = live[i].size;
    pthread_mutex_unlock(&lock);
    void *q = allocate(new_size, 0);
    if (q == NULL) return NULL;  /* p stays valid, as realloc's contract says */
    memcpy(q, p, old_size < new_size ? old_size : new_size);
    handler_free(ctx, p, old_size);
    return q;
}

static PyDataMem_Handler handler = {
    "adtarget_buffer_cache",
    1,
    {NULL, handler_malloc, handler_calloc, handler_realloc, handler_free},
};

/* --- Python functions ------------------------------------------------------------------------------------ */
static PyObject *handler_capsule;

static PyObject *set_handler(PyObject *self, PyObject *arg) {
    (void)self;
    if (arg != Py_None && !PyCapsule_IsValid(arg, "mem_handler")) {
        PyErr_SetString(PyExc_TypeError, "set_handler: expected a NumPy memory handler capsule or None");
        return NULL;
    }
    return PyDataMem_SetHandler(arg == Py_None ? NULL : arg);
}

static PyObject *set_limit(PyObject *self, PyObject *arg) {
    (void)self;
    unsigned long long bytes = PyLong_AsUnsignedLongLong(arg);
    if (bytes == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    pthread_mutex_lock(&lock);
    limit_bytes = (size_t)bytes;
    shrink_to(limit_bytes);
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

static PyObject *purge(PyObject *self, PyObject *arg) {
    (void)self;
    double min_idle = PyFloat_AsDouble(arg);
    if (min_idle == -1.0 && PyErr_Occurred()) return NULL;
    pthread_mutex_lock(&lock);
    double cutoff = now_s() - min_idle;
    size_t before = idle_bytes;
    for (size_t k = n_idle; k-- > 0;)
        if (idle[k].freed_at <= cutoff) idle_drop(k, 0);
    size_t freed = before - idle_bytes;
    pthread_mutex_unlock(&lock);
    return PyLong_FromSize_t(freed);
}

/* stats and idle_capacities copy under the lock and build Python objects after it: creating a dict or list
 * may run the cyclic GC (synchronously, before 3.12), which may free an array of ours (handler_free) or run a
 * finalizer that allocates one: with the lock held, that thread would wait for itself forever. */
static PyObject *stats(PyObject *self, PyObject *unused) {
    (void)self; (void)unused;
    pthread_mutex_lock(&lock);
    size_t s_idle_bytes = idle_bytes, s_idle = n_idle, s_live_bytes = live_bytes, s_live = n_live,
           s_limit = limit_bytes;
    unsigned long long s_hits = hits, s_misses = misses, s_evictions = evictions, s_hit_bytes = hit_bytes,
                       s_miss_bytes = miss_bytes;
    pthread_mutex_unlock(&lock);
    return Py_BuildValue(
        "{s:n,s:n,s:n,s:n,s:n,s:K,s:K,s:K,s:K,s:K}", "idle_bytes", (Py_ssize_t)s_idle_bytes, "idle_blocks",
        (Py_ssize_t)s_idle, "live_bytes", (Py_ssize_t)s_live_bytes, "live_blocks", (Py_ssize_t)s_live,
        "limit_bytes", (Py_ssize_t)s_limit, "hits", s_hits, "misses", s_misses, "evictions", s_evictions,
        "hit_bytes", s_hit_bytes, "miss_bytes", s_miss_bytes);
}

static PyObject *idle_capacities(PyObject *self, PyObject *unused) {
    (void)self; (void)unused;
    size_t capacities[MAX_IDLE];
    pthread_mutex_lock(&lock);
    size_t n = n_idle;
    for (size_t k = 0; k < n; k++) capacities[k] = idle[k].capacity;
    pthread_mutex_unlock(&lock);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t k = 0; out != NULL && k < n; k++) {
        PyObject *item = PyLong_FromSize_t(capacities[k]);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)k, item);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"idle_capacities", idle_capacities, METH_NOARGS, "The byte capacity of each idle block."},
    {"set_handler", set_handler, METH_O,
     "Make a memory handler capsule (None: NumPy's default) current in this context; return the previous."},
    {"set_limit", set_limit, METH_O, "Keep at most this many bytes of idle blocks (0: keep none)."},
    {"purge", purge, METH_O, "Free the idle blocks idle for at least this many seconds; return the bytes."},
    {"stats", stats, METH_NOARGS, "Idle and live bytes and blocks, the limit, hits, misses (count, bytes) and evictions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "adtarget._memory",
    "A NumPy memory handler that keeps freed large blocks for reuse (see adtarget/_buffers.py).", -1, methods,
};

/* fork() while another thread holds the lock (the idle timer freeing blocks) would leave the child's copy
 * locked forever: take it around fork, release it in both processes. */
static void before_fork(void) { pthread_mutex_lock(&lock); }
static void after_fork(void) { pthread_mutex_unlock(&lock); }

PyMODINIT_FUNC PyInit__memory(void) {
    import_array();
    if (pthread_atfork(before_fork, after_fork, after_fork) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "adtarget._memory: pthread_atfork failed");
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    handler_capsule = PyCapsule_New(&handler, "mem_handler", NULL);
    if (handler_capsule == NULL || PyModule_AddObject(m, "handler", handler_capsule) < 0) {
        Py_XDECREF(handler_capsule);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(handler_capsule);  /* the module's reference was stolen; keep ours for the process */
    return m;
}
