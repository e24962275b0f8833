/*
 * test_npy.c — the .npy reader on files built byte by byte (hand-written
 * headers, not our writer): every accepted dtype, version and shape, then
 * malformed magic/versions/headers, wrong dtypes and byte orders, fortran
 * order, truncated and over-long data, absurd shapes — each must give its
 * error code and a message, never a crash. Files live in a mkdtemp directory
 * under /tmp that is removed at the end. The writer replaces files
 * atomically: a failed write leaves the old file and no temporary.
 */
#include "test.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];
static int g_files;

/* Writes preamble (version major.0) + header + data to a new file; returns its path. */
static const char *npy_file(int major, const char *header, const void *data, size_t n_data) {
    static char path[128];
    snprintf(path, sizeof path, "%s/f%d.npy", g_dir, g_files++);
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    size_t hl = strlen(header);
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    size_t np = major == 1 ? 10 : 12;
    pre[8] = (unsigned char)hl, pre[9] = (unsigned char)(hl >> 8);
    if (major != 1) pre[10] = (unsigned char)(hl >> 16), pre[11] = (unsigned char)(hl >> 24);
    fwrite(pre, 1, np, f);
    fwrite(header, 1, hl, f);
    if (n_data) fwrite(data, 1, n_data, f);
    fclose(f);
    return path;
}

static const char *raw_file(const void *bytes, size_t n) {
    static char path[128];
    snprintf(path, sizeof path, "%s/r%d.npy", g_dir, g_files++);
    FILE *f = fopen(path, "wb");
    if (f) {
        if (n) fwrite(bytes, 1, n, f);
        fclose(f);
    }
    return path;
}

static void le_f32(float v, unsigned char *p) {
    uint32_t u;
    memcpy(&u, &v, 4);
    p[0] = (unsigned char)u, p[1] = (unsigned char)(u >> 8), p[2] = (unsigned char)(u >> 16), p[3] = (unsigned char)(u >> 24);
}

/* Expects reading `path` to fail with `want` and an error message. */
#define EXPECT_FAIL(path, want, what)                                                        \
    do {                                                                                     \
        rq_npy_array a_;                                                                     \
        rq_status st_ = rq_npy_read((path), &a_);                                            \
        CHECK(st_ == (want), "%s: got %s, want %s (%s)", what, rq_status_str(st_),           \
              rq_status_str(want), a_.error);                                                \
        CHECK(a_.data == NULL && a_.error[0], "%s: data freed and a message", what);         \
        rq_npy_free(&a_);                                                                    \
    } while (0)

static int setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/rq_npy_XXXXXX");
    g_files = 0;
    return mkdtemp(g_dir) != NULL;
}

static void teardown(void) {
    char path[160];
    for (int i = 0; i < g_files; i++) {
        snprintf(path, sizeof path, "%s/f%d.npy", g_dir, i);
        remove(path);
        snprintf(path, sizeof path, "%s/r%d.npy", g_dir, i);
        remove(path);
        snprintf(path, sizeof path, "%s/w%d.npy", g_dir, i);
        remove(path);
    }
    rmdir(g_dir);
}

static void test_npy_valid(void) {
    if (!setup()) TEST_SKIP("cannot create a temporary directory under /tmp");
    /* float32 (2, 3), version 1.0, numpy's own header text */
    unsigned char d32[24];
    for (int i = 0; i < 6; i++) le_f32(0.5f * (float)i - 1.0f, d32 + 4 * i);
    rq_npy_array a;
    const char *h1 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                    \n";
    CHECK_OK(rq_npy_read(npy_file(1, h1, d32, 24), &a));
    CHECK(a.n_dims == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.n_elems == 6 && a.file_itemsize == 4, "shape");
    for (int i = 0; a.data && i < 6; i++) CHECK(a.data[i] == 0.5f * (float)i - 1.0f, "value %d = %g", i, a.data[i]);
    rq_npy_free(&a);

    /* float16 (2, 1, 4), version 2.0, keys reordered, double quotes, no trailing comma */
    static const uint16_t h16[8] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x3555, 0x0400, 0xfbff};
    static const float want16[8] = {1.0f, -2.0f, 65504.0f, 5.9604645e-08f, -0.0f, 0.33325195f, 6.1035156e-05f, -65504.0f};
    unsigned char d16[16];
    for (int i = 0; i < 8; i++) d16[2 * i] = (unsigned char)h16[i], d16[2 * i + 1] = (unsigned char)(h16[i] >> 8);
    const char *h2 = "{\"shape\": (2, 1, 4), \"fortran_order\": False, \"descr\": \"<f2\"}\n";
    CHECK_OK(rq_npy_read(npy_file(2, h2, d16, 16), &a));
    CHECK(a.n_dims == 3 && a.shape[0] == 2 && a.shape[1] == 1 && a.shape[2] == 4 && a.file_itemsize == 2, "f16 shape");
    for (int i = 0; a.data && i < 8; i++) CHECK(a.data[i] == want16[i], "f16 value %d = %.9g", i, a.data[i]);
    rq_npy_free(&a);

    /* version 3.0 (utf-8 header), 1-D shape with the one-element tuple comma */
    const char *h3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n";
    CHECK_OK(rq_npy_read(npy_file(3, h3, d32, 24), &a));
    CHECK(a.n_dims == 1 && a.shape[0] == 6 && a.n_elems == 6, "1-D");
    rq_npy_free(&a);

    /* Python 2 long literals, and an empty (0, 4) array */
    CHECK_OK(rq_npy_read(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 2L), }\n", d32, 24), &a));
    CHECK(a.shape[0] == 3 && a.shape[1] == 2, "2L");
    rq_npy_free(&a);
    CHECK_OK(rq_npy_read(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }\n", NULL, 0), &a));
    CHECK(a.n_elems == 0 && a.n_dims == 2 && a.shape[1] == 4, "empty");
    rq_npy_free(&a);

    /* our writer: header padded to 64 bytes, reads back bit-exactly */
    float w[3 * 5];
    for (int i = 0; i < 15; i++) w[i] = (float)i * 0.37f - 2.0f;
    char wp[160];
    snprintf(wp, sizeof wp, "%s/w%d.npy", g_dir, g_files++);
    size_t shape[2] = {3, 5};
    CHECK_OK(rq_npy_write(wp, w, 2, shape));
    CHECK_OK(rq_npy_read(wp, &a));
    CHECK(a.n_elems == 15 && a.data && !memcmp(a.data, w, sizeof w), "writer round trip");
    rq_npy_free(&a);
    FILE *f = fopen(wp, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        CHECK((ftell(f) - 60) % 64 == 0, "header padded to 64 bytes: file has %ld bytes", ftell(f));
        fclose(f);
    }
    teardown();
}

static void test_npy_malformed(void) {
    if (!setup()) TEST_SKIP("cannot create a temporary directory under /tmp");
    unsigned char d[64] = {0};
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
    /* magic and preamble */
    EXPECT_FAIL(raw_file("", 0), RQ_ERR_TRUNCATED, "empty file");
    EXPECT_FAIL(raw_file("\x93NUM", 4), RQ_ERR_TRUNCATED, "cut inside the magic");
    EXPECT_FAIL(raw_file("\x93NUMPY\x01", 7), RQ_ERR_TRUNCATED, "cut inside the preamble");
    EXPECT_FAIL(raw_file("PK\x03\x04 not npy at all", 20), RQ_ERR_FORMAT, "bad magic");
    EXPECT_FAIL(raw_file("\x93NUMPX\x01\x00\x10\x00", 10), RQ_ERR_FORMAT, "bad magic (last byte)");
    EXPECT_FAIL(npy_file(4, ok, d, 16), RQ_ERR_UNSUPPORTED, "version 4.0");
    unsigned char v11[10 + 64] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 1, 64, 0};
    memcpy(v11 + 10, ok, strlen(ok));
    EXPECT_FAIL(raw_file(v11, sizeof v11), RQ_ERR_UNSUPPORTED, "version 1.1");
    /* header length beyond the file */
    unsigned char big[10 + 8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xff, 0x7f, '{', '}'};
    EXPECT_FAIL(raw_file(big, sizeof big), RQ_ERR_TRUNCATED, "header length > file");
    unsigned char big2[12 + 4] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    EXPECT_FAIL(raw_file(big2, sizeof big2), RQ_ERR_TRUNCATED, "4 GiB header length (v2)");
    /* the header dict */
    struct {
        const char *h;
        const char *what;
    } bad[] = {
        {"['descr', '<f4']\n", "not a dict"},
        {"{'descr': '<f4', 'fortran_order': False}\n", "missing shape"},
        {"{'fortran_order': False, 'shape': (2, 2)}\n", "missing descr"},
        {"{'descr': '<f4', 'shape': (2, 2)}\n", "missing fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': 1}\n", "unknown key"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}\n", "repeated key"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2, 2)}\n", "unterminated string"},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (2, 2)}\n", "lowercase false"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2)}\n", "negative dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2}\n", "unclosed tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 2]}\n", "shape as a list"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 2)}\n", "missing comma"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} x\n", "text after the dict"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 2)}\n", "missing comma between items"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)\n", "unclosed dict"},
        {"{descr: '<f4', 'fortran_order': False, 'shape': (2, 2)}\n", "unquoted key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 2)}\n", "dimension overflow"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_FAIL(npy_file(1, bad[i].h, d, 16), RQ_ERR_FORMAT, bad[i].what);
    /* a NUL byte inside the header */
    char nul[80];
    memcpy(nul, ok, strlen(ok) + 1);
    nul[3] = '\0';
    {
        unsigned char buf[10 + 80];
        size_t hl = strlen(ok);
        unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hl, 0};
        memcpy(buf, pre, 10);
        memcpy(buf + 10, nul, hl);
        EXPECT_FAIL(raw_file(buf, 10 + hl), RQ_ERR_FORMAT, "NUL in header");
    }
    EXPECT_FAIL("/nonexistent/dir/k.npy", RQ_ERR_IO, "missing file");
    teardown();
}

static void test_npy_unsupported_and_sizes(void) {
    if (!setup()) TEST_SKIP("cannot create a temporary directory under /tmp");
    unsigned char d[64] = {0};
    /* dtypes and byte orders */
    static const char *dtypes[] = {"<f8", ">f4", ">f2", "|u1", "<i4", "<c8", "=f4", "f4"};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (2, 2), }\n", dtypes[i]);
        EXPECT_FAIL(npy_file(1, h, d, 16), RQ_ERR_UNSUPPORTED, dtypes[i]);
    }
    EXPECT_FAIL(npy_file(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", d, 8),
                RQ_ERR_UNSUPPORTED, "structured dtype");
    EXPECT_FAIL(npy_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", d, 16), RQ_ERR_UNSUPPORTED,
                "fortran order");
    EXPECT_FAIL(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", d, 4),
                RQ_ERR_UNSUPPORTED, "9 dimensions");
    EXPECT_FAIL(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", d, 4), RQ_ERR_SHAPE,
                "0-d array");
    /* data size against the shape */
    const char *h22 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    EXPECT_FAIL(npy_file(1, h22, d, 20), RQ_ERR_TRUNCATED, "4 bytes short");
    EXPECT_FAIL(npy_file(1, h22, d, 0), RQ_ERR_TRUNCATED, "no data");
    EXPECT_FAIL(npy_file(1, h22, d, 28), RQ_ERR_FORMAT, "4 bytes too many");
    EXPECT_FAIL(npy_file(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }\n", d, 11), RQ_ERR_TRUNCATED,
                "f16 one byte short");
    /* absurd shapes: rejected before any allocation */
    EXPECT_FAIL(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 128), }\n", d, 16),
                RQ_ERR_TRUNCATED, "1e12 x 128 with 16 bytes");
    EXPECT_FAIL(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }\n", d, 16),
                RQ_ERR_FORMAT, "product overflows");
    EXPECT_FAIL(npy_file(2, "{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (65536, 65536, 65536, 65536), }\n", d, 16),
                RQ_ERR_FORMAT, "2^64 elements");
    /* bad arguments */
    rq_npy_array a;
    CHECK(rq_npy_read(NULL, &a) == RQ_ERR_INVALID_ARG, "NULL path");
    rq_npy_free(&a);
    CHECK(rq_npy_read("x", NULL) == RQ_ERR_INVALID_ARG, "NULL out");
    size_t shape[2] = {2, 2};
    float fz[4] = {0};
    CHECK(rq_npy_write("/nonexistent/dir/w.npy", fz, 2, shape) == RQ_ERR_IO, "unwritable");
    CHECK(rq_npy_write("x.npy", fz, 0, shape) == RQ_ERR_INVALID_ARG, "0 dims");
    teardown();
}

/* Entries of g_dir other than "." and "..". */
static int dir_entries(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    return n;
}

/* Writes are atomic: a write that fails half-way (the file size limit
 * simulates a full disk) or cannot start leaves the old file byte for byte
 * and no temporary file; a successful one replaces it. A directory given as
 * a .npy is named as such. */
static void test_npy_write_atomic(void) {
    if (!setup()) TEST_SKIP("cannot create a temporary directory");
    char path[160];
    snprintf(path, sizeof path, "%s/w0.npy", g_dir);
    g_files = 1;
    const size_t old_shape[1] = {4}, big_shape[2] = {64, 64};
    const float old[4] = {1, 2, 3, 4};
    static float big[64 * 64];
    for (int i = 0; i < 64 * 64; i++) big[i] = (float)i;
    CHECK_OK(rq_npy_write(path, old, 1, old_shape));
    struct rlimit lim, small;
    CHECK(getrlimit(RLIMIT_FSIZE, &lim) == 0, "getrlimit");
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    small = lim, small.rlim_cur = 1024;           /* the new file stops after 1 KiB */
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit");
    rq_status st = rq_npy_write(path, big, 2, big_shape);
    rq_status st16 = rq_npy_write_f16(path, big, 2, big_shape);
    setrlimit(RLIMIT_FSIZE, &lim);
    signal(SIGXFSZ, prev);
    CHECK(st == RQ_ERR_IO && st16 == RQ_ERR_IO, "a write cut short fails: %s, %s", rq_status_str(st),
          rq_status_str(st16));
    rq_npy_array a;
    CHECK_OK(rq_npy_read(path, &a));
    CHECK(a.n_dims == 1 && a.n_elems == 4 && a.data && !memcmp(a.data, old, sizeof old), "the old file is intact");
    rq_npy_free(&a);
    CHECK(dir_entries() == 1, "no temporary file left: %d entries", dir_entries());
    /* the target is a directory: rename fails, nothing left behind */
    char sub[192];
    snprintf(sub, sizeof sub, "%s/d.npy", g_dir);
    CHECK(mkdir(sub, 0755) == 0, "mkdir");
    CHECK(rq_npy_write(sub, old, 1, old_shape) == RQ_ERR_IO, "a directory is not overwritten");
    CHECK(dir_entries() == 2, "no temporary file left: %d entries", dir_entries());
    CHECK(rq_npy_read(sub, &a) == RQ_ERR_IO && strstr(a.error, "is a directory"), "read: '%s'", a.error);
    rq_npy_free(&a);
    rmdir(sub);
    /* success replaces the file */
    CHECK_OK(rq_npy_write(path, big, 2, big_shape));
    CHECK_OK(rq_npy_read(path, &a));
    CHECK(a.n_elems == 64 * 64 && a.data && !memcmp(a.data, big, sizeof big), "replaced");
    rq_npy_free(&a);
    CHECK(dir_entries() == 1, "only the target: %d entries", dir_entries());
    teardown();
}

const rq_test tests_npy[] = {
    {"npy_valid", test_npy_valid},
    {"npy_malformed", test_npy_malformed},
    {"npy_unsupported_and_sizes", test_npy_unsupported_and_sizes},
    {"npy_write_atomic", test_npy_write_atomic},
    {NULL, NULL},
};
