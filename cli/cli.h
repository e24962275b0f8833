/*
 * cli.h — shared helpers of the rotorquant commands (one file per command).
 */
#ifndef RQ_CLI_H
#define RQ_CLI_H

#include "rotorquant.h"
#include "rotorquant_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one error printer: "rotorquant: CMD: WHAT: <status text>" on stderr
 * (st = RQ_OK: no status text, for errors that are not a library status;
 * cmd NULL: no command).
 * Every error line of the tool goes through here. Returns the exit code 1. */
int cli_fail(const char *cmd, rq_status st, const char *what);
/* cli_fail with WHAT formatted. */
int cli_failf(const char *cmd, rq_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A usage error: WHAT, then "(see `rotorquant CMD --help`)"; returns the exit code 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* v formatted with fmt, or "-" when v is not finite (an undefined metric:
 * 0/0, nothing measured). Returns buf (cap ≥ 32). */
const char *cli_num(char *buf, size_t cap, const char *fmt, double v);

int cmd_bench(int argc, char **argv);
int cmd_types(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_fidelity(int argc, char **argv);
int cmd_dump_kv(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_batched(int argc, char **argv);

#endif
