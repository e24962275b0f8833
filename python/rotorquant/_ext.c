/*
 * _ext.c — the CPython extension behind the `rotorquant` package: a thin
 * layer over the public C API (include/rotorquant.h, rotorquant_eval.h),
 * nothing else. The Python side (__init__.py) turns user arrays into
 * C-contiguous float32 / uint8 buffers of the right shape and allocates the
 * outputs; this file checks every buffer again (format, size), releases the
 * GIL around each library call and turns an rq_status into an exception.
 *
 * No numpy headers: arrays arrive through the buffer protocol, so building
 * needs only a C compiler and Python's headers.
 *
 * Threads (include/rotorquant.h): a quantizer is immutable after init, so
 * its methods run concurrently without a lock. A cache is mutated by append,
 * clear, set_key_basis and the sequence structure changes (add, remove,
 * fork, truncate, set_window, load) (exclusive) and read by attention,
 * batched attention, save and the counters; each cache
 * object holds a pthread read-write lock taken with the GIL released.
 * Attention is safe from any number of threads at once (the library keeps a
 * workspace per concurrent call), so attention calls share the lock.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "rotorquant.h"
#include "rotorquant_eval.h"

#define RQPY_ATTENTION_SHARED 1

/* ---- errors ---------------------------------------------------------------
 * One helper gives the library's message for a failed call: the status's
 * name, then rq_last_error()'s text naming the argument and value at fault
 * (thread-local; read on the thread that made the call — the GIL is re-taken
 * on the same OS thread), which is then cleared so it is never reused. */
static const char *rqpy_message(rq_status st) {
    static _Thread_local char buf[640];
    const char *detail = rq_last_error();
    if (detail[0]) snprintf(buf, sizeof buf, "%s (%s)", rq_status_str(st), detail);
    else snprintf(buf, sizeof buf, "%s", rq_status_str(st));
    rq_last_error_clear();
    return buf;
}

static PyObject *Error;      /* rotorquant.Error(Exception)                  */
static PyObject *InputError; /* rotorquant.InputError(Error, ValueError)     */

/* Raises the exception for st: MemoryError for RQ_ERR_NOMEM, InputError (a
 * ValueError) for bad input, rotorquant.Error otherwise; .status = st. */
static PyObject *raise_status(rq_status st, const char *what) {
    const char *msg = rqpy_message(st);
    if (st == RQ_ERR_NOMEM) return PyErr_Format(PyExc_MemoryError, "%s: %s", what, msg);
    PyObject *cls = Error;
    switch (st) {
    case RQ_ERR_INVALID_ARG: case RQ_ERR_DIM: case RQ_ERR_BITS: case RQ_ERR_NONFINITE:
    case RQ_ERR_UNKNOWN_TYPE: case RQ_ERR_RANGE: case RQ_ERR_SHAPE: case RQ_ERR_FORMAT:
        cls = InputError;
        break;
    default:
        break;
    }
    PyObject *text = PyUnicode_FromFormat("%s: %s", what, msg);
    if (!text) return NULL;
    PyObject *exc = PyObject_CallOneArg(cls, text);
    Py_DECREF(text);
    if (!exc) return NULL;
    PyObject *code = PyLong_FromLong((long)st);
    if (code) {
        PyObject_SetAttrString(exc, "status", code);
        Py_DECREF(code);
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- buffers --------------------------------------------------------------
 * kind 'f': float32; 'd': float64; 'B': uint8. A buffer of any shape is taken as a flat
 * C-contiguous run of items; the caller checks the count. */
static int get_buf(PyObject *obj, Py_buffer *view, char kind, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(InputError, "%s: expected a C-contiguous%s buffer", name, writable ? " writable" : "");
        return -1;
    }
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    size_t want = kind == 'f' ? 4 : kind == 'd' ? 8 : 1;
    int ok = (size_t)view->itemsize == want && f[0] == kind && f[1] == 0;
    if (!ok && kind == 'B' && view->itemsize == 1 && (f[0] == 'b' || f[0] == 'c') && f[1] == 0) ok = 1;
    if (!ok) {
        PyErr_Format(InputError, "%s: expected %s items, got format '%s'", name,
                     kind == 'f' ? "float32" : kind == 'd' ? "float64" : "uint8",
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static size_t buf_items(const Py_buffer *v) { return (size_t)v->len / (size_t)v->itemsize; }

/* ======================================================================== */
/* Quantizer                                                                  */
/* ======================================================================== */
typedef struct {
    PyObject_HEAD
    rq_quantizer *q;
    int dims;
    size_t bytes;
} QuantizerObject;

static void quantizer_dealloc(QuantizerObject *self) {
    rq_quantizer_free(self->q);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int quantizer_init(QuantizerObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"type", "dim", "seed", "law", "norm_correct", "qjl", NULL};
    const char *name;
    int dim, law = RQ_LAW_BETA, norm_correct = 0, qjl = RQ_QJL_GAUSSIAN;
    unsigned long long seed = 42;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "si|Kipi", kwlist, &name, &dim, &seed, &law, &norm_correct, &qjl))
        return -1;
    if (self->q) {
        PyErr_SetString(PyExc_RuntimeError, "Quantizer is already initialized");
        return -1;
    }
    rq_quant_config cfg = rq_quant_config_default();
    cfg.seed = seed, cfg.law = (rq_law)law, cfg.norm_correct = norm_correct, cfg.qjl = (rq_qjl_kind)qjl;
    rq_quantizer *q = NULL;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rq_quantizer_init(&q, name, dim, &cfg);
    Py_END_ALLOW_THREADS
    if (st) {
        char what[160];
        snprintf(what, sizeof what, "Quantizer('%.40s', dim=%d)", name, dim);
        raise_status(st, what);
        return -1;
    }
    self->q = q, self->dims = dim, self->bytes = rq_quantizer_bytes_per_vector(q);
    return 0;
}

static int need_q(QuantizerObject *self) {
    if (self->q) return 0;
    PyErr_SetString(PyExc_RuntimeError, "Quantizer is not initialized");
    return -1;
}

/* encode(x, out): x float32 n·d, out uint8 n·bytes. */
static PyObject *quantizer_encode(QuantizerObject *self, PyObject *args) {
    PyObject *xo, *oo;
    if (need_q(self) || !PyArg_ParseTuple(args, "OO", &xo, &oo)) return NULL;
    Py_buffer x, out;
    if (get_buf(xo, &x, 'f', 0, "x")) return NULL;
    if (get_buf(oo, &out, 'B', 1, "out")) {
        PyBuffer_Release(&x);
        return NULL;
    }
    size_t d = (size_t)self->dims, nx = buf_items(&x), n = nx / d;
    PyObject *ret = NULL;
    if (nx % d || buf_items(&out) != n * self->bytes) {
        PyErr_Format(InputError, "encode: %zu floats and %zu bytes do not make whole vectors of dim %zu / %zu bytes",
                     nx, buf_items(&out), d, self->bytes);
    } else {
        rq_status st;
        Py_BEGIN_ALLOW_THREADS
        st = rq_quantizer_encode(self->q, x.buf, out.buf, n);
        Py_END_ALLOW_THREADS
        if (st) raise_status(st, "encode");
        else ret = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    return ret;
}

/* decode(codes, out): codes uint8 n·bytes, out float32 n·d. */
static PyObject *quantizer_decode(QuantizerObject *self, PyObject *args) {
    PyObject *co, *oo;
    if (need_q(self) || !PyArg_ParseTuple(args, "OO", &co, &oo)) return NULL;
    Py_buffer c, out;
    if (get_buf(co, &c, 'B', 0, "codes")) return NULL;
    if (get_buf(oo, &out, 'f', 1, "out")) {
        PyBuffer_Release(&c);
        return NULL;
    }
    size_t d = (size_t)self->dims, nc = buf_items(&c), n = nc / self->bytes;
    PyObject *ret = NULL;
    if (nc % self->bytes || buf_items(&out) != n * d) {
        PyErr_Format(InputError, "decode: %zu bytes and %zu floats do not make whole vectors of %zu bytes / dim %zu",
                     nc, buf_items(&out), self->bytes, d);
    } else {
        rq_status st;
        Py_BEGIN_ALLOW_THREADS
        st = rq_quantizer_decode(self->q, c.buf, out.buf, n);
        Py_END_ALLOW_THREADS
        if (st) raise_status(st, "decode");
        else ret = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&c);
    PyBuffer_Release(&out);
    return ret;
}

/* dot(y, codes, out): y float32 m·d, codes uint8 n·bytes, out float32 m·n:
 * out[i][j] = <y_i, x̂_j> (rq_quantizer_dot, one call per query). */
static PyObject *quantizer_dot(QuantizerObject *self, PyObject *args) {
    PyObject *yo, *co, *oo;
    if (need_q(self) || !PyArg_ParseTuple(args, "OOO", &yo, &co, &oo)) return NULL;
    Py_buffer y, c, out;
    if (get_buf(yo, &y, 'f', 0, "y")) return NULL;
    if (get_buf(co, &c, 'B', 0, "codes")) {
        PyBuffer_Release(&y);
        return NULL;
    }
    if (get_buf(oo, &out, 'f', 1, "out")) {
        PyBuffer_Release(&y);
        PyBuffer_Release(&c);
        return NULL;
    }
    size_t d = (size_t)self->dims, m = buf_items(&y) / d, n = buf_items(&c) / self->bytes;
    PyObject *ret = NULL;
    if (buf_items(&y) % d || buf_items(&c) % self->bytes || buf_items(&out) != m * n) {
        PyErr_SetString(InputError, "inner_product: buffer sizes do not match (m, dim) x (n, bytes) -> (m, n)");
    } else {
        rq_status st = RQ_OK;
        Py_BEGIN_ALLOW_THREADS
        for (size_t i = 0; i < m && !st; i++)
            st = rq_quantizer_dot(self->q, (const float *)y.buf + i * d, c.buf, n, (float *)out.buf + i * n);
        Py_END_ALLOW_THREADS
        if (st) raise_status(st, "inner_product");
        else ret = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&y);
    PyBuffer_Release(&c);
    PyBuffer_Release(&out);
    return ret;
}

/* rotation(x, out, inverse): the quantizer's rotation Π (or Πᵀ) applied to
 * rows of x; for the reference implementations in the tests. */
static PyObject *quantizer_rotate(QuantizerObject *self, PyObject *args) {
    PyObject *xo, *oo;
    int inverse = 0;
    if (need_q(self) || !PyArg_ParseTuple(args, "OO|p", &xo, &oo, &inverse)) return NULL;
    const rq_rotation *rot = rq_quantizer_rotation(self->q);
    if (!rot) {
        PyErr_SetString(InputError, "this type has no rotation");
        return NULL;
    }
    Py_buffer x, out;
    if (get_buf(xo, &x, 'f', 0, "x")) return NULL;
    if (get_buf(oo, &out, 'f', 1, "out")) {
        PyBuffer_Release(&x);
        return NULL;
    }
    size_t d = (size_t)self->dims, n = buf_items(&x) / d;
    PyObject *ret = NULL;
    if (buf_items(&x) % d || buf_items(&out) != n * d) {
        PyErr_SetString(InputError, "rotate: buffer sizes do not match");
    } else {
        rq_status st;
        Py_BEGIN_ALLOW_THREADS
        st = inverse ? rq_rotation_inverse(rot, x.buf, out.buf, n) : rq_rotation_forward(rot, x.buf, out.buf, n);
        Py_END_ALLOW_THREADS
        if (st) raise_status(st, "rotate");
        else ret = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    return ret;
}

static const char *family_name(rq_family f) {
    switch (f) {
    case RQ_FAMILY_F32: return "f32";
    case RQ_FAMILY_F16: return "f16";
    case RQ_FAMILY_Q8_0: return "q8_0";
    case RQ_FAMILY_Q4_0: return "q4_0";
    case RQ_FAMILY_MSE: return "mse";
    case RQ_FAMILY_PROD: return "prod";
    case RQ_FAMILY_TCQ: return "tcq";
    }
    return "?";
}

static PyObject *type_tuple(const rq_type_info *t, int dim) {
    return Py_BuildValue("(sssiinO)", t->name, family_name(t->family), rq_rot_kind_name(t->rotation), t->n_bits,
                         t->block_values, (Py_ssize_t)rq_type_bytes_per_vector(t, dim),
                         t->key_scaled ? Py_True : Py_False);
}

/* info(): (name, family, rotation, n_bits, block_values, bytes_per_vector,
 * bits_per_value, n_params, has_codebook) */
static PyObject *quantizer_info(QuantizerObject *self, PyObject *unused) {
    if (need_q(self)) return NULL;
    const rq_type_info *t = rq_quantizer_type(self->q);
    return Py_BuildValue("(sssiindnO)", t->name, family_name(t->family), rq_rot_kind_name(t->rotation), t->n_bits,
                         t->block_values, (Py_ssize_t)self->bytes, rq_quantizer_bits_per_value(self->q),
                         (Py_ssize_t)rq_quantizer_n_params(self->q),
                         rq_quantizer_codebook(self->q) ? Py_True : Py_False);
}

static PyObject *codebook_dict(const rq_codebook *cb);

static PyObject *quantizer_codebook(QuantizerObject *self, PyObject *unused) {
    if (need_q(self)) return NULL;
    const rq_codebook *cb = rq_quantizer_codebook(self->q);
    if (!cb) Py_RETURN_NONE;
    return codebook_dict(cb);
}

static PyMethodDef quantizer_methods[] = {
    {"encode", (PyCFunction)quantizer_encode, METH_VARARGS, "encode(x, out): float32 n*dim -> uint8 n*bytes"},
    {"decode", (PyCFunction)quantizer_decode, METH_VARARGS, "decode(codes, out): uint8 n*bytes -> float32 n*dim"},
    {"dot", (PyCFunction)quantizer_dot, METH_VARARGS, "dot(y, codes, out): (m, dim) x (n, bytes) -> (m, n)"},
    {"rotate", (PyCFunction)quantizer_rotate, METH_VARARGS, "rotate(x, out, inverse=False): rows through the rotation"},
    {"info", (PyCFunction)quantizer_info, METH_NOARGS, "info() -> tuple of the quantizer's properties"},
    {"codebook", (PyCFunction)quantizer_codebook, METH_NOARGS, "codebook() -> dict or None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject QuantizerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rotorquant._ext.Quantizer",
    .tp_basicsize = sizeof(QuantizerObject),
    .tp_dealloc = (destructor)quantizer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Quantizer(type, dim, seed=42, law=0, norm_correct=0, qjl=0): an rq_quantizer (private; "
              "use rotorquant.Quantizer)",
    .tp_methods = quantizer_methods,
    .tp_init = (initproc)quantizer_init,
    .tp_new = PyType_GenericNew,
};

static rq_quantizer *quantizer_of(PyObject *o, const char *name) {
    if (!PyObject_TypeCheck(o, &QuantizerType) || !((QuantizerObject *)o)->q) {
        PyErr_Format(PyExc_TypeError, "%s: expected an initialized rotorquant._ext.Quantizer", name);
        return NULL;
    }
    return ((QuantizerObject *)o)->q;
}

/* ======================================================================== */
/* KV cache                                                                   */
/* ======================================================================== */
typedef struct {
    PyObject_HEAD
    rq_cache *c;
    pthread_rwlock_t lock;
    int lock_ok;
    int n_layers, n_kv_heads, head_dim;
} CacheObject;

static void cache_dealloc(CacheObject *self) {
    rq_cache_free(self->c);
    if (self->lock_ok) pthread_rwlock_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Per-layer type names: None, or a sequence of n_layers entries, each a str
 * or None (= the default type). *names gets a PyMem array (NULL for None)
 * pointing into *keep (the sequence, kept alive by the caller until
 * rq_cache_init returns). */
static int layer_names(PyObject *o, int n_layers, const char *what, PyObject **keep, const char ***names) {
    *keep = NULL, *names = NULL;
    if (o == Py_None) return 0;
    PyObject *seq = PySequence_Fast(o, "KVCache: layer types must be a sequence of str or None");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n != n_layers) {
        PyErr_Format(InputError, "KVCache: %s needs n_layers = %d entries, got %zd", what, n_layers, n);
        Py_DECREF(seq);
        return -1;
    }
    const char **a = PyMem_Malloc((size_t)(n ? n : 1) * sizeof *a);
    if (!a) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PySequence_Fast_GET_ITEM(seq, i);
        if (e == Py_None) a[i] = NULL;
        else if (!PyUnicode_Check(e) || !(a[i] = PyUnicode_AsUTF8(e))) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_UnicodeError)) {
                PyErr_Clear();
                PyErr_Format(InputError, "KVCache: %s[%zd] must be a type name (str) or None", what, i);
            }
            PyMem_Free(a);
            Py_DECREF(seq);
            return -1;
        }
    }
    *keep = seq, *names = a;
    return 0;
}

static int cache_init(CacheObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"n_layers", "n_kv_heads", "head_dim", "type_k", "type_v", "n_threads", "seed",
                             "page_tokens", "law", "norm_correct", "qjl", "max_bytes", "centre_keys",
                             "centre_window", "layer_types_k", "layer_types_v", "int8_scores", NULL};
    rq_cache_config cfg = rq_cache_config_default();
    unsigned long long seed = cfg.quant.seed, max_bytes = 0;
    int law = cfg.quant.law, norm_correct = cfg.quant.norm_correct, qjl = cfg.quant.qjl;
    PyObject *lto_k = Py_None, *lto_v = Py_None, *keep_k = NULL, *keep_v = NULL;
    const char **lt_k = NULL, **lt_v = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiiss|iKiipiKpiOOp", kwlist, &cfg.n_layers, &cfg.n_kv_heads,
                                     &cfg.head_dim, &cfg.type_k, &cfg.type_v, &cfg.n_threads, &seed,
                                     &cfg.page_tokens, &law, &norm_correct, &qjl, &max_bytes, &cfg.centre_keys,
                                     &cfg.centre_window, &lto_k, &lto_v, &cfg.int8_scores))
        return -1;
    if (max_bytes > SIZE_MAX) {
        PyErr_SetString(InputError, "KVCache: max_bytes does not fit size_t");
        return -1;
    }
    cfg.max_bytes = (size_t)max_bytes;
    if (self->c) {
        PyErr_SetString(PyExc_RuntimeError, "KVCache is already initialized");
        return -1;
    }
    if ((lto_k != Py_None || lto_v != Py_None) && (cfg.n_layers < 1 || cfg.n_layers > 4096)) {
        PyErr_Format(InputError, "KVCache: n_layers must be in [1, 4096], got %d", cfg.n_layers);
        return -1;
    }
    if (layer_names(lto_k, cfg.n_layers, "layer_types_k", &keep_k, &lt_k) ||
        layer_names(lto_v, cfg.n_layers, "layer_types_v", &keep_v, &lt_v)) {
        PyMem_Free(lt_k);
        Py_XDECREF(keep_k);
        return -1;
    }
    cfg.layer_type_k = lt_k, cfg.layer_type_v = lt_v;
    cfg.quant.seed = seed, cfg.quant.law = (rq_law)law, cfg.quant.norm_correct = norm_correct;
    cfg.quant.qjl = (rq_qjl_kind)qjl;
    rq_cache *c = NULL;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rq_cache_init(&c, &cfg);
    Py_END_ALLOW_THREADS
    PyMem_Free(lt_k);
    PyMem_Free(lt_v);
    Py_XDECREF(keep_k);
    Py_XDECREF(keep_v);
    if (st) {
        raise_status(st, "KVCache");
        return -1;
    }
    if (pthread_rwlock_init(&self->lock, NULL)) {
        rq_cache_free(c);
        PyErr_SetString(PyExc_MemoryError, "KVCache: cannot create its lock");
        return -1;
    }
    self->lock_ok = 1;
    self->c = c, self->n_layers = cfg.n_layers, self->n_kv_heads = cfg.n_kv_heads, self->head_dim = cfg.head_dim;
    return 0;
}

static int need_c(CacheObject *self) {
    if (self->c) return 0;
    PyErr_SetString(PyExc_RuntimeError, "KVCache is not initialized");
    return -1;
}

/* append(layer, k, v, seq=0): k, v float32 n_tokens·n_kv_heads·head_dim
 * each, onto sequence seq. */
static PyObject *cache_append(CacheObject *self, PyObject *args) {
    int layer, sq = 0;
    PyObject *ko, *vo;
    if (need_c(self) || !PyArg_ParseTuple(args, "iOO|i", &layer, &ko, &vo, &sq)) return NULL;
    Py_buffer k, v;
    if (get_buf(ko, &k, 'f', 0, "k")) return NULL;
    if (get_buf(vo, &v, 'f', 0, "v")) {
        PyBuffer_Release(&k);
        return NULL;
    }
    size_t row = (size_t)self->n_kv_heads * (size_t)self->head_dim, n = buf_items(&k) / row;
    PyObject *ret = NULL;
    if (buf_items(&k) % row || buf_items(&v) != buf_items(&k)) {
        PyErr_SetString(InputError, "append: k and v must both hold n_tokens x n_kv_heads x head_dim floats");
    } else {
        rq_status st;
        Py_BEGIN_ALLOW_THREADS
        pthread_rwlock_wrlock(&self->lock);
        st = rq_cache_seq_append(self->c, sq, layer, k.buf, v.buf, n);
        pthread_rwlock_unlock(&self->lock);
        Py_END_ALLOW_THREADS
        if (st) raise_status(st, "append");
        else ret = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&k);
    PyBuffer_Release(&v);
    return ret;
}

/* attention(layer, q, n_q_heads, n_ctx, scale, out, reference, causal): q,
 * out float32 n_q·n_q_heads·head_dim; n_ctx None or a sequence of n_q ints.
 * causal (with n_ctx None): query i sees n_tokens − n_q + i + 1 tokens,
 * n_tokens read under the same lock as the attention itself, so a
 * concurrent append cannot slip in between. */
static PyObject *cache_attention(CacheObject *self, PyObject *args) {
    int layer, n_q_heads, reference = 0, causal = 0, sq = 0;
    float scale = 0;
    PyObject *qo, *ctxo, *oo;
    if (need_c(self) || !PyArg_ParseTuple(args, "iOiOfO|ppi", &layer, &qo, &n_q_heads, &ctxo, &scale, &oo, &reference,
                                          &causal, &sq))
        return NULL;
    if (layer < 0 || layer >= self->n_layers) {
        PyErr_Format(InputError, "attention: layer %d outside [0, %d)", layer, self->n_layers);
        return NULL;
    }
    if (n_q_heads <= 0) {
        PyErr_SetString(InputError, "attention: n_q_heads must be positive");
        return NULL;
    }
    Py_buffer q, out;
    if (get_buf(qo, &q, 'f', 0, "q")) return NULL;
    if (get_buf(oo, &out, 'f', 1, "out")) {
        PyBuffer_Release(&q);
        return NULL;
    }
    size_t row = (size_t)n_q_heads * (size_t)self->head_dim, n = buf_items(&q) / row;
    size_t *ctx = NULL;
    PyObject *ret = NULL;
    if (buf_items(&q) % row || buf_items(&out) != buf_items(&q)) {
        PyErr_SetString(InputError, "attention: q and out must hold n_queries x n_q_heads x head_dim floats");
        goto done;
    }
    if (ctxo != Py_None) {
        PyObject *seq = PySequence_Fast(ctxo, "attention: n_ctx must be a sequence of ints");
        if (!seq) goto done;
        if ((size_t)PySequence_Fast_GET_SIZE(seq) != n) {
            PyErr_SetString(InputError, "attention: n_ctx needs one entry per query");
            Py_DECREF(seq);
            goto done;
        }
        ctx = PyMem_Malloc((n ? n : 1) * sizeof *ctx);
        if (!ctx) {
            PyErr_NoMemory();
            Py_DECREF(seq);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            ctx[i] = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i));
            if (ctx[i] == (size_t)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                PyErr_SetString(InputError, "attention: n_ctx entries must be non-negative ints");
                Py_DECREF(seq);
                goto done;
            }
        }
        Py_DECREF(seq);
    } else if (causal) {
        ctx = PyMem_Malloc((n ? n : 1) * sizeof *ctx);
        if (!ctx) {
            PyErr_NoMemory();
            goto done;
        }
    }
    rq_attn_params p;
    memset(&p, 0, sizeof p);
    p.n_q_heads = n_q_heads, p.scale = scale;
    rq_status st = RQ_OK;
    size_t n_tok = 0;
    int short_ctx = 0;
    Py_BEGIN_ALLOW_THREADS
    if (RQPY_ATTENTION_SHARED || reference) pthread_rwlock_rdlock(&self->lock);
    else pthread_rwlock_wrlock(&self->lock);
    if (ctxo == Py_None && causal) {
        n_tok = rq_cache_seq_n_tokens(self->c, sq, layer);
        short_ctx = n > n_tok;
        for (size_t i = 0; i < n && !short_ctx; i++) ctx[i] = n_tok - n + i + 1;
    }
    if (!short_ctx)
        st = (reference ? rq_cache_seq_attention_ref : rq_cache_seq_attention)(self->c, sq, layer, q.buf, n, ctx, &p,
                                                                              out.buf);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (short_ctx)
        PyErr_Format(InputError, "attention: causal with %zu queries needs at least as many cached tokens, layer %d "
                                 "of sequence %d has %zu", n, layer, sq, n_tok);
    else if (st) raise_status(st, "attention");
    else ret = Py_NewRef(Py_None);
done:
    PyMem_Free(ctx);
    PyBuffer_Release(&q);
    PyBuffer_Release(&out);
    return ret;
}

/* ---- many sequences ------------------------------------------------------ */
/* seq_add(seq), seq_remove(seq), seq_fork(parent, child), seq_truncate(seq,
 * n), set_window(layer, n): structure changes, the lock taken exclusively. */
static PyObject *cache_done(rq_status st, const char *what) {
    if (st) return raise_status(st, what);
    Py_RETURN_NONE;
}

static PyObject *cache_seq_add(CacheObject *self, PyObject *args) {
    int sq;
    if (need_c(self) || !PyArg_ParseTuple(args, "i", &sq)) return NULL;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_seq_add(self->c, sq);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return cache_done(st, "add_sequence");
}

static PyObject *cache_seq_remove(CacheObject *self, PyObject *args) {
    int sq;
    if (need_c(self) || !PyArg_ParseTuple(args, "i", &sq)) return NULL;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_seq_remove(self->c, sq);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return cache_done(st, "remove_sequence");
}

static PyObject *cache_seq_fork(CacheObject *self, PyObject *args) {
    int parent, child;
    if (need_c(self) || !PyArg_ParseTuple(args, "ii", &parent, &child)) return NULL;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_seq_fork(self->c, parent, child);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return cache_done(st, "fork");
}

static PyObject *cache_seq_truncate(CacheObject *self, PyObject *args) {
    int sq;
    Py_ssize_t n;
    if (need_c(self) || !PyArg_ParseTuple(args, "in", &sq, &n)) return NULL;
    if (n < 0) {
        PyErr_Format(InputError, "truncate: n_tokens must be >= 0, got %zd", n);
        return NULL;
    }
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_seq_truncate(self->c, sq, (size_t)n);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return cache_done(st, "truncate");
}

static PyObject *cache_set_window(CacheObject *self, PyObject *args) {
    int layer;
    Py_ssize_t n;
    if (need_c(self) || !PyArg_ParseTuple(args, "in", &layer, &n)) return NULL;
    if (n < 0) {
        PyErr_Format(InputError, "set_window: n_window must be >= 0, got %zd", n);
        return NULL;
    }
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_set_window(self->c, layer, (size_t)n);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return cache_done(st, "set_window");
}

/* seq_ids() -> list of ids, ascending (one read under the lock). */
static PyObject *cache_seq_ids(CacheObject *self, PyObject *unused) {
    if (need_c(self)) return NULL;
    size_t cap = 16, n = 0;
    int *ids = NULL;
    for (;;) {
        int *grown = PyMem_Realloc(ids, cap * sizeof *ids);
        if (!grown) {
            PyMem_Free(ids);
            return PyErr_NoMemory();
        }
        ids = grown;
        Py_BEGIN_ALLOW_THREADS
        pthread_rwlock_rdlock(&self->lock);
        n = rq_cache_seq_ids(self->c, ids, cap);
        pthread_rwlock_unlock(&self->lock);
        Py_END_ALLOW_THREADS
        if (n <= cap) break;
        cap = n;
    }
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) PyList_SET_ITEM(l, (Py_ssize_t)i, PyLong_FromLong(ids[i]));
    PyMem_Free(ids);
    return l;
}

/* seq_n_tokens(seq, layer) -> int; None for no such sequence. */
static PyObject *cache_seq_n_tokens(CacheObject *self, PyObject *args) {
    int sq, layer;
    if (need_c(self) || !PyArg_ParseTuple(args, "ii", &sq, &layer)) return NULL;
    if (layer < 0 || layer >= self->n_layers) {
        PyErr_Format(InputError, "n_tokens_of: layer %d outside [0, %d)", layer, self->n_layers);
        return NULL;
    }
    size_t n, n_ids;
    int present = 0;
    int *ids = NULL;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    n = rq_cache_seq_n_tokens(self->c, sq, layer);
    if (!n) { /* 0 tokens or no such sequence: tell them apart */
        n_ids = rq_cache_seq_ids(self->c, NULL, 0);
        ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
        if (ids) {
            rq_cache_seq_ids(self->c, ids, n_ids);
            for (size_t i = 0; i < n_ids; i++) present |= ids[i] == sq;
        }
    } else present = 1;
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (!n && !ids) return PyErr_NoMemory();
    free(ids);
    if (!present) {
        PyErr_Format(InputError, "n_tokens_of: no sequence %d", sq);
        return NULL;
    }
    return PyLong_FromSize_t(n);
}

/* pages() -> (in_use, available or None with no budget, page_bytes). */
static PyObject *cache_pages(CacheObject *self, PyObject *unused) {
    if (need_c(self)) return NULL;
    size_t used, avail, bytes;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    used = rq_cache_pages_in_use(self->c), avail = rq_cache_pages_available(self->c);
    bytes = rq_cache_page_bytes(self->c);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyObject *a = avail == SIZE_MAX ? Py_NewRef(Py_None) : PyLong_FromSize_t(avail);
    if (!a) return NULL;
    return Py_BuildValue("(nNn)", (Py_ssize_t)used, a, (Py_ssize_t)bytes);
}

/* attention_batch(layer, entries, n_q_heads, scale, causal): entries a list
 * of (seq, q, out) with q, out float32 n_q·n_q_heads·head_dim; one call to
 * rq_cache_attention_batch under the shared lock, the GIL released. causal:
 * each entry's queries are its sequence's last n_q positions (token counts
 * read under that same lock). */
static PyObject *cache_attention_batch(CacheObject *self, PyObject *args) {
    int layer, n_q_heads, causal = 0;
    float scale = 0;
    PyObject *eo;
    if (need_c(self) || !PyArg_ParseTuple(args, "iOif|p", &layer, &eo, &n_q_heads, &scale, &causal)) return NULL;
    if (layer < 0 || layer >= self->n_layers) {
        PyErr_Format(InputError, "attention_batch: layer %d outside [0, %d)", layer, self->n_layers);
        return NULL;
    }
    if (n_q_heads <= 0) {
        PyErr_SetString(InputError, "attention_batch: n_q_heads must be positive");
        return NULL;
    }
    PyObject *list = PySequence_Fast(eo, "attention_batch: entries must be a sequence of (seq, q, out)");
    if (!list) return NULL;
    size_t ne = (size_t)PySequence_Fast_GET_SIZE(list), nb = 0, total = 0;
    size_t row = (size_t)n_q_heads * (size_t)self->head_dim;
    Py_buffer *bufs = PyMem_Calloc(2 * (ne ? ne : 1), sizeof *bufs);
    rq_attn_seq *e = PyMem_Calloc(ne ? ne : 1, sizeof *e);
    size_t *ctx = NULL;
    PyObject *ret = NULL;
    if (!bufs || !e) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < ne; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(list, (Py_ssize_t)i), *qo, *oo;
        if (!PyTuple_Check(t) || !PyArg_ParseTuple(t, "iOO", &e[i].seq, &qo, &oo)) {
            if (!PyErr_Occurred()) PyErr_Format(InputError, "attention_batch: entry %zu is not (seq, q, out)", i);
            goto done;
        }
        if (get_buf(qo, &bufs[nb], 'f', 0, "q")) goto done;
        nb++;
        if (get_buf(oo, &bufs[nb], 'f', 1, "out")) goto done;
        nb++;
        size_t nq = buf_items(&bufs[nb - 2]);
        if (nq % row || buf_items(&bufs[nb - 1]) != nq) {
            PyErr_Format(InputError, "attention_batch: entry %zu: q and out must hold n_queries x n_q_heads x "
                                     "head_dim floats", i);
            goto done;
        }
        e[i].q = bufs[nb - 2].buf, e[i].out = bufs[nb - 1].buf, e[i].n_queries = nq / row;
        total += e[i].n_queries;
    }
    if (causal && !(ctx = PyMem_Malloc((total ? total : 1) * sizeof *ctx))) {
        PyErr_NoMemory();
        goto done;
    }
    rq_attn_params p;
    memset(&p, 0, sizeof p);
    p.n_q_heads = n_q_heads, p.scale = scale;
    rq_status st = RQ_OK;
    size_t bad = SIZE_MAX, bad_tok = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    if (causal) {
        size_t off = 0;
        for (size_t i = 0; i < ne && bad == SIZE_MAX; i++) {
            size_t n = e[i].n_queries, n_tok = rq_cache_seq_n_tokens(self->c, e[i].seq, layer);
            if (n > n_tok) bad = i, bad_tok = n_tok;
            for (size_t j = 0; j < n && bad == SIZE_MAX; j++) ctx[off + j] = n_tok - n + j + 1;
            e[i].n_ctx = ctx + off;
            off += n;
        }
    }
    if (bad == SIZE_MAX) st = rq_cache_attention_batch(self->c, layer, e, ne, &p);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (bad != SIZE_MAX)
        PyErr_Format(InputError, "attention_batch: entry %zu: causal with %zu queries needs at least as many cached "
                                 "tokens, layer %d of sequence %d has %zu", bad, e[bad].n_queries, layer, e[bad].seq,
                     bad_tok);
    else if (st) raise_status(st, "attention_batch");
    else ret = Py_NewRef(Py_None);
done:
    for (size_t i = 0; i < nb; i++) PyBuffer_Release(&bufs[i]);
    PyMem_Free(bufs);
    PyMem_Free(e);
    PyMem_Free(ctx);
    Py_DECREF(list);
    return ret;
}

/* save(seq, path) / load(seq, path): seq -1 = every sequence (RQ_SEQ_ALL). */
static PyObject *cache_save(CacheObject *self, PyObject *args) {
    int sq;
    PyObject *po;
    if (need_c(self) || !PyArg_ParseTuple(args, "iO&", &sq, PyUnicode_FSConverter, &po)) return NULL;
    const char *path = PyBytes_AS_STRING(po);
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    st = rq_cache_seq_save(self->c, sq, path);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyObject *ret = NULL;
    if (st) {
        char what[200];
        snprintf(what, sizeof what, "save(%.150s)", path);
        raise_status(st, what);
    } else ret = Py_NewRef(Py_None);
    Py_DECREF(po);
    return ret;
}

static PyObject *cache_load(CacheObject *self, PyObject *args) {
    int sq;
    PyObject *po;
    if (need_c(self) || !PyArg_ParseTuple(args, "iO&", &sq, PyUnicode_FSConverter, &po)) return NULL;
    const char *path = PyBytes_AS_STRING(po);
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_seq_load(self->c, sq, path);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyObject *ret = NULL;
    if (st) {
        char what[200];
        snprintf(what, sizeof what, "load(%.150s)", path);
        raise_status(st, what);
    } else ret = Py_NewRef(Py_None);
    Py_DECREF(po);
    return ret;
}

/* to_bytes(seq) -> bytes: size and contents read under one shared lock. */
static PyObject *cache_to_bytes(CacheObject *self, PyObject *args) {
    int sq;
    if (need_c(self) || !PyArg_ParseTuple(args, "i", &sq)) return NULL;
    rq_status st;
    size_t n = 0;
    void *buf = NULL;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    st = rq_cache_seq_save_mem(self->c, sq, NULL, 0, &n);
    if (!st) {
        buf = malloc(n ? n : 1);
        st = buf ? rq_cache_seq_save_mem(self->c, sq, buf, n, &n) : RQ_ERR_NOMEM;
    }
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyObject *ret = NULL;
    if (st) raise_status(st, "to_bytes");
    else ret = PyBytes_FromStringAndSize(buf, (Py_ssize_t)n);
    free(buf);
    return ret;
}

/* from_bytes(seq, data): data any bytes-like object. */
static PyObject *cache_from_bytes(CacheObject *self, PyObject *args) {
    int sq;
    PyObject *dobj;
    if (need_c(self) || !PyArg_ParseTuple(args, "iO", &sq, &dobj)) return NULL;
    Py_buffer d;
    if (PyObject_GetBuffer(dobj, &d, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        PyErr_SetString(InputError, "from_bytes: expected a C-contiguous bytes-like object");
        return NULL;
    }
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_seq_load_mem(self->c, sq, d.buf, (size_t)d.len);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&d);
    return cache_done(st, "from_bytes");
}

static PyObject *cache_clear(CacheObject *self, PyObject *unused) {
    if (need_c(self)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    rq_cache_clear(self->c);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* One read of the cache's counters under the lock. */
static PyObject *cache_stats(CacheObject *self, PyObject *unused) {
    if (need_c(self)) return NULL;
    PyObject *tokens = PyList_New(self->n_layers);
    if (!tokens) return NULL;
    size_t used, alloc, per_token;
    size_t *n = PyMem_Malloc(sizeof(size_t) * (size_t)self->n_layers);
    if (!n) {
        Py_DECREF(tokens);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    for (int l = 0; l < self->n_layers; l++) n[l] = rq_cache_n_tokens(self->c, l);
    used = rq_cache_bytes_used(self->c), alloc = rq_cache_bytes_allocated(self->c);
    per_token = rq_cache_bytes_per_token(self->c);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    for (int l = 0; l < self->n_layers; l++) PyList_SET_ITEM(tokens, l, PyLong_FromSize_t(n[l]));
    PyMem_Free(n);
    return Py_BuildValue("(Nnnn)", tokens, (Py_ssize_t)used, (Py_ssize_t)alloc, (Py_ssize_t)per_token);
}

/* set_key_basis(layer, kv_head, starts, A): starts a sequence of ints (empty:
 * remove), A float32 n_ranges·d·d (ignored when starts is empty). */
static PyObject *cache_set_key_basis(CacheObject *self, PyObject *args) {
    int layer, head;
    PyObject *so, *ao;
    if (need_c(self) || !PyArg_ParseTuple(args, "iiOO", &layer, &head, &so, &ao)) return NULL;
    PyObject *seq = PySequence_Fast(so, "set_key_basis: starts must be a sequence of ints");
    if (!seq) return NULL;
    size_t nr = (size_t)PySequence_Fast_GET_SIZE(seq), d = (size_t)self->head_dim;
    size_t *start = PyMem_Malloc((nr ? nr : 1) * sizeof *start);
    PyObject *ret = NULL;
    Py_buffer a = {0};
    int have_a = 0;
    if (!start) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < nr; i++) {
        start[i] = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i));
        if (start[i] == (size_t)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_SetString(InputError, "set_key_basis: starts must be non-negative ints");
            goto done;
        }
    }
    if (nr) {
        if (get_buf(ao, &a, 'f', 0, "A")) goto done;
        have_a = 1;
        if (buf_items(&a) != nr * d * d) {
            PyErr_SetString(InputError, "set_key_basis: A must hold n_ranges x head_dim x head_dim floats");
            goto done;
        }
    }
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rq_cache_set_key_basis(self->c, layer, head, nr, nr ? start : NULL, nr ? a.buf : NULL);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    if (st) raise_status(st, "set_key_basis");
    else ret = Py_NewRef(Py_None);
done:
    if (have_a) PyBuffer_Release(&a);
    PyMem_Free(start);
    Py_DECREF(seq);
    return ret;
}

/* Key-basis files (what `rotorquant calibrate` writes). */
static rq_status rqpy_cache_load_key_basis(rq_cache *c, const char *path) {
    rq_key_basis_info info;
    return rq_cache_load_key_basis(c, path, &info);
}

static PyObject *cache_load_key_basis(CacheObject *self, PyObject *args) {
    PyObject *po;
    if (need_c(self) || !PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &po)) return NULL;
    const char *path = PyBytes_AS_STRING(po);
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&self->lock);
    st = rqpy_cache_load_key_basis(self->c, path);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    PyObject *ret = NULL;
    if (st) {
        char what[200];
        snprintf(what, sizeof what, "load_key_basis(%.150s)", path);
        raise_status(st, what);
    } else ret = Py_NewRef(Py_None);
    Py_DECREF(po);
    return ret;
}

static PyObject *cache_quantizer_info(CacheObject *self, PyObject *args) {
    int is_value;
    if (need_c(self) || !PyArg_ParseTuple(args, "p", &is_value)) return NULL;
    const rq_quantizer *q = rq_cache_quantizer(self->c, is_value);
    if (!q) Py_RETURN_NONE;
    return type_tuple(rq_quantizer_type(q), self->head_dim);
}

/* bits_per_value(n_ctx) -> float (rq_cache_bits_per_value). */
static PyObject *cache_bits_per_value(CacheObject *self, PyObject *args) {
    unsigned long long n;
    if (need_c(self) || !PyArg_ParseTuple(args, "K", &n)) return NULL;
    if (n > SIZE_MAX) {
        PyErr_SetString(InputError, "bits_per_value: n_ctx does not fit size_t");
        return NULL;
    }
    double b;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(&self->lock);
    b = rq_cache_bits_per_value(self->c, (size_t)n);
    pthread_rwlock_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(b);
}

static PyObject *cache_layer_quantizer_info(CacheObject *self, PyObject *args) {
    int layer, is_value;
    if (need_c(self) || !PyArg_ParseTuple(args, "ip", &layer, &is_value)) return NULL;
    const rq_quantizer *q = rq_cache_layer_quantizer(self->c, layer, is_value);
    if (!q) Py_RETURN_NONE;
    return type_tuple(rq_quantizer_type(q), self->head_dim);
}

static PyMethodDef cache_methods[] = {
    {"append", (PyCFunction)cache_append, METH_VARARGS, "append(layer, k, v, seq=0)"},
    {"attention", (PyCFunction)cache_attention, METH_VARARGS,
     "attention(layer, q, n_q_heads, n_ctx, scale, out, reference=False, causal=False, seq=0)"},
    {"attention_batch", (PyCFunction)cache_attention_batch, METH_VARARGS,
     "attention_batch(layer, [(seq, q, out), ...], n_q_heads, scale, causal=False)"},
    {"seq_add", (PyCFunction)cache_seq_add, METH_VARARGS, "seq_add(seq)"},
    {"seq_remove", (PyCFunction)cache_seq_remove, METH_VARARGS, "seq_remove(seq)"},
    {"seq_fork", (PyCFunction)cache_seq_fork, METH_VARARGS, "seq_fork(parent, child)"},
    {"seq_truncate", (PyCFunction)cache_seq_truncate, METH_VARARGS, "seq_truncate(seq, n_tokens)"},
    {"seq_ids", (PyCFunction)cache_seq_ids, METH_NOARGS, "seq_ids() -> list of ids"},
    {"seq_n_tokens", (PyCFunction)cache_seq_n_tokens, METH_VARARGS, "seq_n_tokens(seq, layer) -> int"},
    {"set_window", (PyCFunction)cache_set_window, METH_VARARGS, "set_window(layer, n_window)"},
    {"pages", (PyCFunction)cache_pages, METH_NOARGS, "pages() -> (in_use, available or None, page_bytes)"},
    {"save", (PyCFunction)cache_save, METH_VARARGS, "save(seq, path); seq -1 = all"},
    {"load", (PyCFunction)cache_load, METH_VARARGS, "load(seq, path); seq -1 = all"},
    {"to_bytes", (PyCFunction)cache_to_bytes, METH_VARARGS, "to_bytes(seq) -> bytes; seq -1 = all"},
    {"from_bytes", (PyCFunction)cache_from_bytes, METH_VARARGS, "from_bytes(seq, data); seq -1 = all"},
    {"clear", (PyCFunction)cache_clear, METH_NOARGS, "clear()"},
    {"stats", (PyCFunction)cache_stats, METH_NOARGS, "stats() -> (tokens per layer, bytes used, allocated, per token)"},
    {"set_key_basis", (PyCFunction)cache_set_key_basis, METH_VARARGS, "set_key_basis(layer, kv_head, starts, A)"},
    {"load_key_basis", (PyCFunction)cache_load_key_basis, METH_VARARGS, "load_key_basis(path)"},
    {"quantizer_info", (PyCFunction)cache_quantizer_info, METH_VARARGS, "quantizer_info(is_value) -> type tuple"},
    {"layer_quantizer_info", (PyCFunction)cache_layer_quantizer_info, METH_VARARGS,
     "layer_quantizer_info(layer, is_value) -> type tuple or None"},
    {"bits_per_value", (PyCFunction)cache_bits_per_value, METH_VARARGS, "bits_per_value(n_ctx) -> float"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rotorquant._ext.KVCache",
    .tp_basicsize = sizeof(CacheObject),
    .tp_dealloc = (destructor)cache_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "KVCache(n_layers, n_kv_heads, head_dim, type_k, type_v, n_threads=0, seed=42, page_tokens=0, "
              "law=0, norm_correct=False, qjl=0, max_bytes=0, centre_keys=False, centre_window=0, layer_types_k=None, "
              "layer_types_v=None): an rq_cache (private; use rotorquant.KVCache)",
    .tp_methods = cache_methods,
    .tp_init = (initproc)cache_init,
    .tp_new = PyType_GenericNew,
};

/* ======================================================================== */
/* Module functions                                                           */
/* ======================================================================== */
static PyObject *floats_list(const float *v, int n) {
    PyObject *l = PyList_New(n);
    if (!l) return NULL;
    for (int i = 0; i < n; i++) PyList_SET_ITEM(l, i, PyFloat_FromDouble((double)v[i]));
    return l;
}

static PyObject *codebook_dict(const rq_codebook *cb) {
    return Py_BuildValue("{s:i,s:i,s:s,s:N,s:N,s:d,s:i}", "dim", cb->n_dims, "bits", cb->n_bits, "law",
                         cb->law == RQ_LAW_BETA ? "beta" : "gauss", "centroids",
                         floats_list(cb->centroids, cb->n_levels), "bounds", floats_list(cb->bounds, cb->n_levels - 1),
                         "distortion", cb->distortion, "n_iters", cb->n_iters);
}

static PyObject *mod_codebook(PyObject *m, PyObject *args) {
    int dim, bits, law = RQ_LAW_BETA;
    if (!PyArg_ParseTuple(args, "ii|i", &dim, &bits, &law)) return NULL;
    rq_codebook cb;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rq_codebook_init(&cb, dim, bits, (rq_law)law);
    Py_END_ALLOW_THREADS
    if (st) return raise_status(st, "codebook");
    return codebook_dict(&cb);
}

static PyObject *mod_types(PyObject *m, PyObject *args) {
    int dim;
    if (!PyArg_ParseTuple(args, "i", &dim)) return NULL;
    int n = rq_type_count();
    PyObject *l = PyList_New(n);
    if (!l) return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *t = type_tuple(rq_type_at(i), dim);
        if (!t) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, t);
    }
    return l;
}

/* data(kind, seed, out, dim): rq_data_generate into out (float32 n·dim). */
static PyObject *mod_data(PyObject *m, PyObject *args) {
    int kind, dim;
    unsigned long long seed;
    PyObject *oo;
    if (!PyArg_ParseTuple(args, "iKOi", &kind, &seed, &oo, &dim)) return NULL;
    if (dim <= 0) {
        PyErr_SetString(InputError, "data: dim must be positive");
        return NULL;
    }
    Py_buffer out;
    if (get_buf(oo, &out, 'f', 1, "out")) return NULL;
    size_t n = buf_items(&out) / (size_t)dim;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rq_data_generate((rq_dataset)kind, seed, out.buf, n, dim);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    if (st) return raise_status(st, "data");
    Py_RETURN_NONE;
}

static int opt_buf(PyObject *o, Py_buffer *v, const char *name) {
    if (o == Py_None) return 0;
    return get_buf(o, v, 'f', 0, name) ? -1 : 1;
}

/* eval_attention(qk, qv|None, keys, values|None, queries, n_ctx|None, scale)
 * -> dict of rq_eval_attn_result (keys/values n·d, queries m·d floats). */
static PyObject *mod_eval_attention(PyObject *m, PyObject *args) {
    PyObject *qko, *qvo, *ko, *vo, *qo, *ctxo;
    float scale;
    if (!PyArg_ParseTuple(args, "OOOOOOf", &qko, &qvo, &ko, &vo, &qo, &ctxo, &scale)) return NULL;
    rq_quantizer *qk = quantizer_of(qko, "eval_attention"), *qv = NULL;
    if (!qk) return NULL;
    if (qvo != Py_None && !(qv = quantizer_of(qvo, "eval_attention"))) return NULL;
    size_t d = (size_t)rq_quantizer_dims(qk);
    Py_buffer k, v, q;
    int hv = 0, hk = 0, hq = 0;
    size_t *ctx = NULL;
    PyObject *ret = NULL;
    if ((hk = opt_buf(ko, &k, "keys")) <= 0 || (hq = opt_buf(qo, &q, "queries")) <= 0 ||
        (hv = opt_buf(vo, &v, "values")) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(InputError, "eval_attention: keys and queries are required");
        goto done;
    }
    size_t n = buf_items(&k) / d, nq = buf_items(&q) / d;
    if (buf_items(&k) % d || buf_items(&q) % d || (hv && buf_items(&v) != n * d) ||
        (qv && rq_quantizer_dims(qv) != (int)d)) {
        PyErr_SetString(InputError, "eval_attention: shapes do not match");
        goto done;
    }
    if (ctxo != Py_None) {
        PyObject *seq = PySequence_Fast(ctxo, "n_ctx must be a sequence");
        if (!seq) goto done;
        if ((size_t)PySequence_Fast_GET_SIZE(seq) != nq) {
            Py_DECREF(seq);
            PyErr_SetString(InputError, "eval_attention: n_ctx needs one entry per query");
            goto done;
        }
        ctx = PyMem_Malloc((nq ? nq : 1) * sizeof *ctx);
        for (size_t i = 0; ctx && i < nq; i++) ctx[i] = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i));
        Py_DECREF(seq);
        if (!ctx) {
            PyErr_NoMemory();
            goto done;
        }
        if (PyErr_Occurred()) goto done;
    }
    rq_eval_attn_result r;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rq_eval_attention(qk, qv, k.buf, hv ? v.buf : NULL, n, q.buf, nq, ctx, scale, &r);
    Py_END_ALLOW_THREADS
    if (st) {
        raise_status(st, "eval");
        goto done;
    }
    ret = Py_BuildValue("{s:d,s:d,s:d,s:d,s:d,s:d,s:d,s:d,s:d,s:d}", "mse", r.mse, "mse_values", r.mse_values,
                        "ip_corr", r.ip_corr, "ip_bias", r.ip_bias, "ip_rmse", r.ip_rmse, "score_cosine",
                        r.score_cosine, "softmax_kl", r.softmax_kl, "top1", r.top1, "top5", r.top5, "output_cosine",
                        r.output_cosine);
done:
    PyMem_Free(ctx);
    if (hk > 0) PyBuffer_Release(&k);
    if (hq > 0) PyBuffer_Release(&q);
    if (hv > 0) PyBuffer_Release(&v);
    return ret;
}

/* eval_ip(q, x, y, n_sets) -> dict of rq_eval_ip_result (set 0). */
static PyObject *mod_eval_ip(PyObject *m, PyObject *args) {
    PyObject *qo, *xo, *yo;
    if (!PyArg_ParseTuple(args, "OOO", &qo, &xo, &yo)) return NULL;
    rq_quantizer *q = quantizer_of(qo, "eval_ip");
    if (!q) return NULL;
    size_t d = (size_t)rq_quantizer_dims(q);
    Py_buffer x, y;
    if (get_buf(xo, &x, 'f', 0, "x")) return NULL;
    if (get_buf(yo, &y, 'f', 0, "y")) {
        PyBuffer_Release(&x);
        return NULL;
    }
    PyObject *ret = NULL;
    size_t n = buf_items(&x) / d;
    if (buf_items(&x) % d || buf_items(&y) != n * d) {
        PyErr_SetString(InputError, "eval_ip: x and y must both hold n x dim floats");
    } else {
        rq_eval_ip_result r;
        rq_status st;
        Py_BEGIN_ALLOW_THREADS
        st = rq_eval_ip(q, x.buf, y.buf, n, 1, &r);
        Py_END_ALLOW_THREADS
        if (st) raise_status(st, "eval");
        else
            ret = Py_BuildValue("{s:n,s:d,s:d,s:d,s:d,s:d,s:d,s:d,s:d}", "n", (Py_ssize_t)r.n, "mse", r.mse,
                                "mean_exact", r.mean_exact, "mean_est", r.mean_est, "bias", r.bias, "ratio", r.ratio,
                                "err_std", r.err_std, "rmse", r.rmse, "corr", r.corr);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&y);
    return ret;
}

/* eval_speed(q, x, reps) -> (encode_vps, decode_vps), one thread. */
static PyObject *mod_eval_speed(PyObject *m, PyObject *args) {
    PyObject *qo, *xo;
    int reps;
    if (!PyArg_ParseTuple(args, "OOi", &qo, &xo, &reps)) return NULL;
    rq_quantizer *q = quantizer_of(qo, "eval_speed");
    if (!q) return NULL;
    size_t d = (size_t)rq_quantizer_dims(q);
    Py_buffer x;
    if (get_buf(xo, &x, 'f', 0, "x")) return NULL;
    PyObject *ret = NULL;
    if (buf_items(&x) % d) {
        PyErr_SetString(InputError, "eval_speed: x must hold n x dim floats");
    } else {
        rq_eval_speed_result r;
        rq_status st;
        Py_BEGIN_ALLOW_THREADS
        st = rq_eval_speed(q, x.buf, buf_items(&x) / d, reps, &r);
        Py_END_ALLOW_THREADS
        if (st) raise_status(st, "eval speed");
        else ret = Py_BuildValue("(dd)", r.encode_vps, r.decode_vps);
    }
    PyBuffer_Release(&x);
    return ret;
}

/* kv_alloc(cost_k, cost_v, types_k, types_v, n_layers, head_dim, budget,
 * overhead_bits) -> (choice_k list, choice_v list, bits, cost): rq_kv_alloc;
 * cost_k, cost_v float64 n_layers·n_types each, types sequences of str. */
static PyObject *mod_kv_alloc(PyObject *m, PyObject *args) {
    PyObject *cko, *cvo, *tko, *tvo;
    int n_layers, head_dim;
    double budget, overhead;
    if (!PyArg_ParseTuple(args, "OOOOiidd", &cko, &cvo, &tko, &tvo, &n_layers, &head_dim, &budget, &overhead))
        return NULL;
    PyObject *ret = NULL, *sk = NULL, *sv = NULL;
    const char **nk = NULL, **nv = NULL;
    int *ck = NULL, *cv = NULL;
    Py_buffer bk = {0}, bv = {0};
    int hk = 0, hv = 0;
    if (n_layers < 1 || n_layers > (1 << 20)) {
        PyErr_Format(InputError, "kv_alloc: n_layers must be in [1, 2^20], got %d", n_layers);
        return NULL;
    }
    if (!(sk = PySequence_Fast(tko, "kv_alloc: types_k must be a sequence of str")) ||
        !(sv = PySequence_Fast(tvo, "kv_alloc: types_v must be a sequence of str")))
        goto done;
    Py_ssize_t ntk = PySequence_Fast_GET_SIZE(sk), ntv = PySequence_Fast_GET_SIZE(sv);
    if (ntk < 1 || ntk > 64 || ntv < 1 || ntv > 64) {
        PyErr_Format(InputError, "kv_alloc: 1..64 candidate types per side, got %zd and %zd", ntk, ntv);
        goto done;
    }
    nk = PyMem_Malloc((size_t)ntk * sizeof *nk), nv = PyMem_Malloc((size_t)ntv * sizeof *nv);
    ck = PyMem_Malloc((size_t)n_layers * sizeof *ck), cv = PyMem_Malloc((size_t)n_layers * sizeof *cv);
    if (!nk || !nv || !ck || !cv) {
        PyErr_NoMemory();
        goto done;
    }
    for (int side = 0; side < 2; side++) {
        PyObject *sq = side ? sv : sk;
        const char **a = side ? nv : nk;
        for (Py_ssize_t i = 0; i < (side ? ntv : ntk); i++) {
            PyObject *e = PySequence_Fast_GET_ITEM(sq, i);
            if (!PyUnicode_Check(e) || !(a[i] = PyUnicode_AsUTF8(e))) {
                PyErr_Clear();
                PyErr_Format(InputError, "kv_alloc: types_%c[%zd] must be a type name (str)", side ? 'v' : 'k', i);
                goto done;
            }
        }
    }
    if (get_buf(cko, &bk, 'd', 0, "cost_k")) goto done;
    hk = 1;
    if (get_buf(cvo, &bv, 'd', 0, "cost_v")) goto done;
    hv = 1;
    if (buf_items(&bk) != (size_t)n_layers * (size_t)ntk || buf_items(&bv) != (size_t)n_layers * (size_t)ntv) {
        PyErr_SetString(InputError, "kv_alloc: cost_k and cost_v must be (n_layers, n_types) each");
        goto done;
    }
    rq_kv_alloc_problem pr = {.n_layers = n_layers, .head_dim = head_dim, .n_types_k = (int)ntk,
                              .n_types_v = (int)ntv, .types_k = nk, .types_v = nv, .cost_k = bk.buf,
                              .cost_v = bv.buf, .overhead_bits = overhead};
    double bits = 0, cost = 0;
    rq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rq_kv_alloc(&pr, budget, ck, cv, &bits, &cost);
    Py_END_ALLOW_THREADS
    if (st) {
        raise_status(st, "kv_alloc");
        goto done;
    }
    PyObject *lk = PyList_New(n_layers), *lv = lk ? PyList_New(n_layers) : NULL;
    if (!lv) {
        Py_XDECREF(lk);
        goto done;
    }
    for (int l = 0; l < n_layers; l++) {
        PyList_SET_ITEM(lk, l, PyLong_FromLong(ck[l]));
        PyList_SET_ITEM(lv, l, PyLong_FromLong(cv[l]));
    }
    ret = Py_BuildValue("(NNdd)", lk, lv, bits, cost);
done:
    if (hk) PyBuffer_Release(&bk);
    if (hv) PyBuffer_Release(&bv);
    PyMem_Free(nk);
    PyMem_Free(nv);
    PyMem_Free(ck);
    PyMem_Free(cv);
    Py_XDECREF(sk);
    Py_XDECREF(sv);
    return ret;
}

static PyObject *mod_status_str(PyObject *m, PyObject *args) {
    int st;
    if (!PyArg_ParseTuple(args, "i", &st)) return NULL;
    return PyUnicode_FromString(rq_status_str((rq_status)st));
}

static PyMethodDef module_methods[] = {
    {"codebook", mod_codebook, METH_VARARGS, "codebook(dim, bits, law=0) -> dict"},
    {"types", mod_types, METH_VARARGS, "types(dim) -> list of (name, family, rotation, bits, block_values, bytes)"},
    {"data", mod_data, METH_VARARGS, "data(kind, seed, out, dim): rq_data_generate"},
    {"eval_attention", mod_eval_attention, METH_VARARGS, "rq_eval_attention"},
    {"eval_ip", mod_eval_ip, METH_VARARGS, "rq_eval_ip with one set of partners"},
    {"eval_speed", mod_eval_speed, METH_VARARGS, "rq_eval_speed"},
    {"kv_alloc", mod_kv_alloc, METH_VARARGS,
     "kv_alloc(cost_k, cost_v, types_k, types_v, n_layers, head_dim, budget, overhead_bits) -> "
     "(choice_k, choice_v, bits, cost)"},
    {"status_str", mod_status_str, METH_VARARGS, "rq_status_str"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rotorquant._ext", "CPython binding of librotorquant (private; use rotorquant).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ext(void) {
    if (PyType_Ready(&QuantizerType) < 0 || PyType_Ready(&CacheType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    Error = PyErr_NewExceptionWithDoc("rotorquant.Error",
                                      "An error reported by librotorquant; .status is its rq_status (negative int).",
                                      PyExc_Exception, NULL);
    PyObject *bases = Error ? PyTuple_Pack(2, Error, PyExc_ValueError) : NULL;
    InputError = bases ? PyErr_NewExceptionWithDoc("rotorquant.InputError",
                                                   "Input the library rejects (shape, dtype, NaN/Inf, unknown type, "
                                                   "unsupported dimension): both a rotorquant.Error and a ValueError.",
                                                   bases, NULL)
                       : NULL;
    Py_XDECREF(bases);
    if (!InputError || PyModule_AddObjectRef(m, "Error", Error) < 0 ||
        PyModule_AddObjectRef(m, "InputError", InputError) < 0 ||
        PyModule_AddObjectRef(m, "Quantizer", (PyObject *)&QuantizerType) < 0 ||
        PyModule_AddObjectRef(m, "KVCache", (PyObject *)&CacheType) < 0 ||
        PyModule_AddStringConstant(m, "version", rq_version_str()) < 0 ||
        PyModule_AddStringConstant(m, "simd", rq_simd_name()) < 0 ||
        PyModule_AddIntConstant(m, "format_version", RQ_FORMAT_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "RQ_LAW_BETA", RQ_LAW_BETA) < 0 ||
        PyModule_AddIntConstant(m, "RQ_LAW_GAUSS", RQ_LAW_GAUSS) < 0 ||
        PyModule_AddIntConstant(m, "RQ_QJL_GAUSSIAN", RQ_QJL_GAUSSIAN) < 0 ||
        PyModule_AddIntConstant(m, "RQ_QJL_STRUCTURED", RQ_QJL_STRUCTURED) < 0 ||
        PyModule_AddIntConstant(m, "RQ_DATA_ISOTROPIC", RQ_DATA_ISOTROPIC) < 0 ||
        PyModule_AddIntConstant(m, "RQ_DATA_OUTLIER", RQ_DATA_OUTLIER) < 0 ||
        PyModule_AddIntConstant(m, "RQ_MIN_DIMS", RQ_MIN_DIMS) < 0 ||
        PyModule_AddIntConstant(m, "RQ_MAX_DIMS", RQ_MAX_DIMS) < 0 ||
        PyModule_AddIntConstant(m, "RQ_SEQ_ALL", RQ_SEQ_ALL) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
