/* fuzz_npy.c — rq_npy_read on arbitrary bytes (written to a temporary
 * file: the reader takes a path). Properties: never crashes; on success the
 * shape's product is n_elems and every element was read; on failure no
 * array is returned and the error text is set. */
#include "fuzz.h"

#include "rotorquant.h"
#include "rotorquant_eval.h"

#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[] = "/tmp/rq_fuzz_npy_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(path);
        return 0;
    }
    fwrite(data, 1, size, f);
    fclose(f);
    rq_npy_array a;
    rq_status st = rq_npy_read(path, &a);
    unlink(path);
    if (st == RQ_OK) {
        size_t n = 1;
        for (int i = 0; i < a.n_dims; i++) n *= a.shape[i];
        FUZZ_ASSERT(a.n_dims >= 1 && a.n_dims <= RQ_NPY_MAX_DIMS, "dims in range");
        FUZZ_ASSERT(n == a.n_elems, "shape product = n_elems");
        FUZZ_ASSERT(a.n_elems == 0 || a.data, "data present");
        FUZZ_ASSERT(size >= a.n_elems * (size_t)a.file_itemsize, "elements came from the file");
        volatile float sink = 0;
        for (size_t i = 0; i < a.n_elems; i++) sink += a.data[i]; /* every element readable */
        (void)sink;
    } else {
        FUZZ_ASSERT(a.data == NULL, "no data on error");
        FUZZ_ASSERT(a.error[0] != 0, "an error message on error");
    }
    rq_npy_free(&a);
    return 0;
}
