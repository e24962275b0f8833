/* Small helpers every model/ file shares (model/util.c): the in-file string
 * view and the one-line error convention. */
#ifndef RQ_MODEL_UTIL_H
#define RQ_MODEL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "rotorquant.h"

/* A string inside a file: not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} rqm_str;

/* Writes a one-line reason to err (if err and err_len) and returns st: the
 * error convention of every model/ function. */
rq_status rqm_say(char *err, size_t err_len, rq_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* 1 if two in-file strings / a string and a C string are equal. */
int rqm_str_eq(rqm_str a, const char *b);

#endif
