/*
 * npy.c — NumPy .npy reader and writer (format versions 1.0, 2.0, 3.0;
 * numpy/lib/format.py is the specification):
 *
 *   "\x93NUMPY" | major | minor | HEADER_LEN (u16 LE for 1.x, u32 LE for 2.x/3.x)
 *   | header: a Python dict literal {'descr': '<f4', 'fortran_order': False,
 *     'shape': (n, d), } padded with spaces, ending in '\n'
 *   | data: prod(shape) items, C order
 *
 * Files are untrusted: every length is checked against the file size before
 * anything is allocated, the header dict is parsed strictly (exactly the
 * three keys, each once), the shape product is checked for overflow and must
 * account for exactly the bytes after the header. Only little-endian float32
 * ('<f4') and float16 ('<f2') are accepted; data are converted to float32 on
 * any host byte order.
 *
 * Writes are atomic: the array goes to a new temporary file next to the
 * target (PATH.tmp.PID.N), is flushed to disk and renamed over PATH, so a
 * failed or interrupted write leaves the old file (or no file) and no
 * temporary behind.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Longest header accepted (numpy itself refuses headers beyond 10,000 bytes
 * by default; real ones are < 200). */
#define NPY_MAX_HEADER 65536

static rq_status fail(rq_npy_array *a, rq_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->error, sizeof a->error, fmt, ap);
    va_end(ap);
    free(a->data);
    a->data = NULL;
    return st;
}

/* ---- header dict parser -------------------------------------------------- */
typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted string without escapes into buf (NUL-terminated). */
static bool parse_string(cursor *c, char *buf, size_t cap) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return false;
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end) return false;
    c->p++;
    buf[n] = '\0';
    return true;
}

static bool parse_word(cursor *c, const char *w) {
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return false;
    c->p += n;
    return true;
}

/* Parses the header dict; fills shape/descr/fortran. */
static rq_status parse_header(rq_npy_array *a, const char *hdr, size_t len, char *descr, size_t descr_cap,
                              int *fortran) {
    cursor c = {hdr, hdr + len};
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!eat(&c, '{')) return fail(a, RQ_ERR_FORMAT, "header is not a dict (expected '{')");
    for (;;) {
        if (eat(&c, '}')) break;
        char key[32];
        if (!parse_string(&c, key, sizeof key)) return fail(a, RQ_ERR_FORMAT, "malformed header: expected a quoted key");
        if (!eat(&c, ':')) return fail(a, RQ_ERR_FORMAT, "malformed header: expected ':' after '%s'", key);
        if (!strcmp(key, "descr")) {
            if (have_descr) return fail(a, RQ_ERR_FORMAT, "header repeats 'descr'");
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[')
                return fail(a, RQ_ERR_UNSUPPORTED, "structured dtype not supported (float32 '<f4' or float16 '<f2' only)");
            if (!parse_string(&c, descr, descr_cap)) return fail(a, RQ_ERR_FORMAT, "malformed 'descr' in header");
            have_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran) return fail(a, RQ_ERR_FORMAT, "header repeats 'fortran_order'");
            if (parse_word(&c, "True")) *fortran = 1;
            else if (parse_word(&c, "False")) *fortran = 0;
            else return fail(a, RQ_ERR_FORMAT, "malformed 'fortran_order' in header (True or False)");
            have_fortran = true;
        } else if (!strcmp(key, "shape")) {
            if (have_shape) return fail(a, RQ_ERR_FORMAT, "header repeats 'shape'");
            if (!eat(&c, '(')) return fail(a, RQ_ERR_FORMAT, "malformed 'shape' in header (expected a tuple)");
            int nd = 0;
            for (;;) {
                if (eat(&c, ')')) break;
                skip_ws(&c);
                if (c.p >= c.end || *c.p < '0' || *c.p > '9')
                    return fail(a, RQ_ERR_FORMAT, "malformed 'shape' in header (expected a non-negative integer)");
                size_t v = 0;
                while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
                    size_t digit = (size_t)(*c.p++ - '0');
                    if (v > (SIZE_MAX - digit) / 10) return fail(a, RQ_ERR_FORMAT, "shape dimension overflows");
                    v = v * 10 + digit;
                }
                if (c.p < c.end && *c.p == 'L') c.p++; /* Python 2 long literal */
                if (nd == RQ_NPY_MAX_DIMS)
                    return fail(a, RQ_ERR_UNSUPPORTED, "more than %d dimensions not supported", RQ_NPY_MAX_DIMS);
                a->shape[nd++] = v;
                if (eat(&c, ')')) break;
                if (!eat(&c, ',')) return fail(a, RQ_ERR_FORMAT, "malformed 'shape' in header (expected ',' or ')')");
            }
            a->n_dims = nd;
            have_shape = true;
        } else {
            return fail(a, RQ_ERR_FORMAT, "unexpected key '%s' in header", key);
        }
        if (eat(&c, '}')) break;
        if (!eat(&c, ',')) return fail(a, RQ_ERR_FORMAT, "malformed header: expected ',' or '}'");
    }
    skip_ws(&c);
    if (c.p != c.end) return fail(a, RQ_ERR_FORMAT, "malformed header: text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return fail(a, RQ_ERR_FORMAT, "header lacks '%s'", !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return RQ_OK;
}

/* ---- reader -------------------------------------------------------------- */
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static rq_status read_file(FILE *f, const char *path, rq_npy_array *a) {
    if (fseeko(f, 0, SEEK_END)) return fail(a, RQ_ERR_IO, "cannot seek in %s", path);
    off_t fsize_o = ftello(f);
    if (fsize_o < 0 || fseeko(f, 0, SEEK_SET)) return fail(a, RQ_ERR_IO, "cannot seek in %s", path);
    uint64_t fsize = (uint64_t)fsize_o;

    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (memcmp(pre, "\x93NUMPY", got < 6 ? got : 6))
        return fail(a, RQ_ERR_FORMAT, "not a .npy file (bad magic)");
    if (got < 6) return fail(a, RQ_ERR_TRUNCATED, "file ends inside the magic string (%zu bytes)", got);
    if (got < 10) return fail(a, RQ_ERR_TRUNCATED, "file ends inside the preamble");
    int major = pre[6], minor = pre[7];
    uint64_t hlen, pre_len;
    if (major == 1 && minor == 0) {
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
        pre_len = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (fread(pre + 10, 1, 2, f) != 2) return fail(a, RQ_ERR_TRUNCATED, "file ends inside the preamble");
        hlen = le32(pre + 8);
        pre_len = 12;
    } else {
        return fail(a, RQ_ERR_UNSUPPORTED, "NPY format version %d.%d not supported (1.0, 2.0, 3.0)", major, minor);
    }
    if (hlen > fsize - pre_len)
        return fail(a, RQ_ERR_TRUNCATED, "header length %llu exceeds the file size (%llu bytes)",
                    (unsigned long long)hlen, (unsigned long long)fsize);
    if (hlen == 0 || hlen > NPY_MAX_HEADER)
        return fail(a, RQ_ERR_FORMAT, "implausible header length %llu", (unsigned long long)hlen);
    char *hdr = malloc((size_t)hlen);
    if (!hdr) return fail(a, RQ_ERR_NOMEM, "out of memory");
    if (fread(hdr, 1, (size_t)hlen, f) != hlen) {
        free(hdr);
        return fail(a, RQ_ERR_IO, "cannot read the header of %s", path);
    }
    for (uint64_t i = 0; i < hlen; i++)
        if (hdr[i] == '\0') {
            free(hdr);
            return fail(a, RQ_ERR_FORMAT, "NUL byte in header");
        }
    char descr[16];
    int fortran = 0;
    rq_status st = parse_header(a, hdr, (size_t)hlen, descr, sizeof descr, &fortran);
    free(hdr);
    if (st) return st;

    if (!strcmp(descr, "<f4")) a->file_itemsize = 4;
    else if (!strcmp(descr, "<f2")) a->file_itemsize = 2;
    else return fail(a, RQ_ERR_UNSUPPORTED, "dtype '%s' not supported (float32 '<f4' or float16 '<f2' only)", descr);
    if (fortran) return fail(a, RQ_ERR_UNSUPPORTED, "fortran_order arrays not supported (save in C order)");
    if (a->n_dims == 0) return fail(a, RQ_ERR_SHAPE, "0-dimensional array (a scalar, not vectors)");

    size_t n = 1;
    for (int i = 0; i < a->n_dims; i++) {
        if (a->shape[i] && n > SIZE_MAX / 4 / a->shape[i]) return fail(a, RQ_ERR_FORMAT, "shape product overflows");
        n *= a->shape[i];
    }
    uint64_t need = (uint64_t)n * (uint64_t)a->file_itemsize, have = fsize - pre_len - hlen;
    if (need > have)
        return fail(a, RQ_ERR_TRUNCATED, "data truncated: shape needs %llu bytes, file has %llu",
                    (unsigned long long)need, (unsigned long long)have);
    if (need < have)
        return fail(a, RQ_ERR_FORMAT, "file has %llu bytes after the data the shape describes",
                    (unsigned long long)(have - need));
    a->n_elems = n;
    a->data = malloc(n ? n * sizeof(float) : 1);
    if (!a->data) return fail(a, RQ_ERR_NOMEM, "out of memory for %zu floats", n);

    unsigned char buf[4096];
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done < sizeof buf / 4 ? n - done : sizeof buf / 4;
        size_t bytes = chunk * (size_t)a->file_itemsize;
        if (fread(buf, 1, bytes, f) != bytes) return fail(a, RQ_ERR_IO, "cannot read the data of %s", path);
        for (size_t i = 0; i < chunk; i++) {
            if (a->file_itemsize == 4) {
                uint32_t u = le32(buf + 4 * i);
                memcpy(&a->data[done + i], &u, 4);
            } else {
                a->data[done + i] = rq_f16_to_f32((uint16_t)(buf[2 * i] | buf[2 * i + 1] << 8));
            }
        }
        done += chunk;
    }
    return RQ_OK;
}

rq_status rq_npy_read(const char *path, rq_npy_array *out) {
    if (!out) return RQ_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (!path) return fail(out, RQ_ERR_INVALID_ARG, "no path");
    FILE *f = fopen(path, "rb");
    if (!f) return fail(out, RQ_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (!fstat(fileno(f), &sb) && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return fail(out, RQ_ERR_IO, "%s is a directory, not a .npy file", path);
    }
    rq_status st = read_file(f, path, out);
    fclose(f);
    if (st) {
        out->n_elems = 0;
        out->n_dims = 0;
    }
    return st;
}

void rq_npy_free(rq_npy_array *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
    a->n_elems = 0;
}

/* ---- writer -------------------------------------------------------------- */
/* A new temporary file beside path (same directory, so rename is atomic);
 * its name in tmp. NULL with errno on failure. */
static FILE *tmp_open(const char *path, char *tmp, size_t cap) {
    static atomic_uint counter;
    for (int tries = 0; tries < 16; tries++) {
        unsigned n = atomic_fetch_add(&counter, 1);
        if (snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), n) >= (int)cap) {
            errno = ENAMETOOLONG;
            return NULL;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) {
            FILE *f = fdopen(fd, "wb");
            if (!f) close(fd), unlink(tmp);
            return f;
        }
        if (errno != EEXIST) return NULL;
    }
    return NULL;
}

/* Closes the temporary file and, if everything was written, flushes it to
 * disk and renames it over path; otherwise removes it. */
static bool tmp_commit(FILE *f, const char *tmp, const char *path, bool ok) {
    ok = fflush(f) == 0 && ok;
    ok = ok && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) unlink(tmp);
    return ok;
}

/* NPY 1.0, C order, little-endian items of 4 ('<f4') or 2 ('<f2') bytes. */
static rq_status write_npy(const char *path, const float *data, int n_dims, const size_t *shape, int itemsize) {
    if (!path || n_dims < 1 || n_dims > RQ_NPY_MAX_DIMS || !shape) return RQ_ERR_INVALID_ARG;
    size_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (shape[i] && n > SIZE_MAX / 4 / shape[i]) return RQ_ERR_INVALID_ARG;
        n *= shape[i];
    }
    if (n && !data) return RQ_ERR_INVALID_ARG;
    for (size_t i = 0; itemsize == 2 && i < n; i++)
        if (!isfinite(data[i]) || fabsf(data[i]) > 65504.0f) return RQ_ERR_RANGE;
    char hdr[512];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f%d', 'fortran_order': False, 'shape': (", itemsize);
    for (int i = 0; i < n_dims; i++)
        len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%zu%s", shape[i], n_dims == 1 ? "," : i + 1 < n_dims ? ", " : "");
    len += snprintf(hdr + len, sizeof hdr - (size_t)len, "), }");
    /* pad with spaces so preamble (10) + header is a multiple of 64, end with '\n' */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    memset(hdr + len, ' ', (size_t)pad);
    len += pad;
    hdr[len++] = '\n';
    char tmp[4200];
    FILE *f = tmp_open(path, tmp, sizeof tmp);
    if (!f) return RQ_ERR_IO;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
    unsigned char buf[4096];
    const size_t per = sizeof buf / (size_t)itemsize;
    for (size_t done = 0; ok && done < n;) {
        size_t chunk = n - done < per ? n - done : per;
        for (size_t i = 0; i < chunk; i++) {
            uint32_t u;
            if (itemsize == 2) u = rq_f32_to_f16(data[done + i]);
            else memcpy(&u, &data[done + i], 4);
            for (int b = 0; b < itemsize; b++) buf[(size_t)itemsize * i + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        ok = fwrite(buf, 1, chunk * (size_t)itemsize, f) == chunk * (size_t)itemsize;
        done += chunk;
    }
    return tmp_commit(f, tmp, path, ok) ? RQ_OK : RQ_ERR_IO;
}

rq_status rq_npy_write(const char *path, const float *data, int n_dims, const size_t *shape) {
    return write_npy(path, data, n_dims, shape, 4);
}

rq_status rq_npy_write_f16(const char *path, const float *data, int n_dims, const size_t *shape) {
    return write_npy(path, data, n_dims, shape, 2);
}
