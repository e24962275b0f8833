/*
 * error.c — the message behind a failed call (rq_last_error): one buffer per
 * thread, written only when a public function fails, so a shared const cache
 * attended from many threads keeps each thread's message its own. The
 * message is formatted into a local buffer first, so a caller may pass
 * rq_last_error() itself as an argument (to prefix an inner failure).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

#define MSG_BYTES 512

static _Thread_local char t_msg[MSG_BYTES];

const char *rq_last_error(void) { return t_msg; }

void rq_last_error_clear(void) { t_msg[0] = '\0'; }

rq_status rq__fail(rq_status st, const char *fmt, ...) {
    char buf[MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(t_msg, buf, sizeof buf);
    return st;
}
