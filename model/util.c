/*
 * util.c — helpers shared by every model/ file (model/util.h).
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

rq_status rqm_say(char *err, size_t err_len, rq_status st, const char *fmt, ...) {
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return st;
}

int rqm_str_eq(rqm_str a, const char *b) {
    if (!b) return 0;
    size_t n = strlen(b);
    return a.len == n && (n == 0 || !memcmp(a.ptr, b, n));
}
