/* fuzz.h — shared by the libFuzzer harnesses in fuzz/ (make fuzz).
 * A harness calls FUZZ_ASSERT for the properties it checks beyond "no
 * crash, no sanitizer report": a failure aborts, so libFuzzer saves the
 * input that caused it. */
#ifndef RQ_FUZZ_H
#define RQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond, what)                                                          \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: property failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                    what);                                                               \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Reads fixed-size fields off the front of the input; 0 once it runs out. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline unsigned fuzz_u8(fuzz_in *in) {
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

static inline unsigned fuzz_u16(fuzz_in *in) { return fuzz_u8(in) | fuzz_u8(in) << 8; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
