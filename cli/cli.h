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

/* One clear line on stderr; returns the exit code 1. */
int cli_fail(const char *what, rq_status st);

int cmd_bench(int argc, char **argv);
int cmd_types(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_fidelity(int argc, char **argv);
int cmd_dump_kv(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

#endif
