/*
 * cmd_model.c — the commands that run a real LLM (model/: GGUF, tokenizer,
 * llama forward pass) with the library's compressed KV cache inside it.
 *
 *   rotorquant generate   -m MODEL -p PROMPT [-n N] [-ctk T] [-ctv T] [--temp X] [--seed S]
 *   rotorquant perplexity -m MODEL -f TEXT [--ctx N] [--chunks N] [-ctk T -ctv T | --configs K/V,..]
 *                         [--decode-ctx 512,2048] [--llamacpp-chunks] [--json]
 *   rotorquant fidelity   -m MODEL -f TEXT [--ctx N] [--chunks N] [-ctk T] [-ctv T] [--json]
 *   rotorquant dump-kv    -m MODEL -f TEXT -o DIR [--layers L,..] [--n-tokens N] [--offset N] [--f16]
 *   rotorquant calibrate  -m MODEL [-f TEXT] -o BASIS.gguf [--n-tokens N] [--ctx N] [--ranges R] [--temp X] [--seed S]
 *
 * generate, perplexity and fidelity take --key-basis BASIS.gguf: the cache
 * stores keys in the calibrated basis (rq_cache_set_key_basis; model/calib.h)
 * for every compressed key type (an f32 key cache is exact and gets none).
 *
 * MODEL defaults to $RQ_MODEL, else the `make model` cache; TEXT to the
 * `make evaltext` cache (model/llama.h: rqm_default_path).
 *
 * One option table (OPTS) says which command takes which option; the
 * computations live in model/ (ppl.c: perplexity, KLD, top-1; sample.c;
 * roundtrip.c: fidelity's key round trip); this file parses, runs, prints.
 */
#include "cli.h"
#include "budget.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../model/alloc.h"
#include "../model/calib.h"
#include "../model/llama.h"
#include "../model/ppl.h"
#include "../model/prompt_cache.h"
#include "../model/roundtrip.h"
#include "../model/sample.h"
#include "../model/tokenizer.h"

#define MAX_CONFIGS 32

typedef struct {
    const char *k, *v;
    const char **lk, **lv; /* per-layer types (a --kv-bits row), or NULL */
    double budget;         /* that row's budget in bits/value             */
} kv_pair;

#define MAX_BUDGETS 8

typedef struct {
    const char *model, *prompt, *text, *out_dir, *layers, *key_basis;
    const char *prompt_cache; /* generate --prompt-cache FILE (model/prompt_cache.h) */
    kv_pair cfg[MAX_CONFIGS];
    int n_cfg;
    const char *ctk, *ctv;
    long n_predict, ctx, chunks, threads, n_tokens, offset, batch, ranges;
    int offset_given;
    long decode_ctx[8];
    int n_decode_ctx;
    double temp;
    unsigned long long seed;
    int centre_keys;    /* --centre-keys: keys stored as k − μ, position 0 exact (rq_cache_config) */
    long centre_window; /* --centre-window N: positions 1..N fix μ (0: the library's 64) */
    int int8_scores;    /* --int8-scores: int8 key scores (rq_cache_config) */
    double kv_bits[MAX_BUDGETS]; /* --kv-bits B,..: per-layer types within B bits/value */
    int n_kv_bits;
    int json, f16, norm_correct, llamacpp;
    int kv_tcq; /* --kv-family tcq: the budget picks among tcq2..5 (and turbo1) */
} mopts;

typedef struct {
    rqm_gguf *gguf;
    rqm_llama *llama;
    rqm_tokenizer *tok;
    const rqm_llama_hparams *hp;
    float *key_basis;   /* --key-basis: A per layer, KV head and position range, or NULL */
    rqm_key_basis_info key_basis_info;
    float *key_basis_t; /* A⁻ᵀ of each (checked invertible; fidelity decodes keys with it) */
    char model_path[4096];
} model;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void model_free(model *m) {
    rqm_matmul_shutdown();
    free(m->key_basis), free(m->key_basis_t);
    rqm_tokenizer_free(m->tok);
    rqm_llama_free(m->llama);
    rqm_gguf_close(m->gguf);
    memset(m, 0, sizeof *m);
}

static int model_open(const char *cmd, const mopts *o, model *m) {
    char err[256] = "", buf[4096];
    const char *path = o->model;
    memset(m, 0, sizeof *m);
    /* -m smollm2 / -m gemma3: the downloaded models by name */
    const int gemma = path && !strcmp(path, "gemma3");
    if (!path || !strcmp(path, "smollm2")) path = rqm_default_path(RQM_PATH_MODEL, buf, sizeof buf);
    else if (gemma) path = rqm_default_path(RQM_PATH_GEMMA3, buf, sizeof buf);
    snprintf(m->model_path, sizeof m->model_path, "%s", path);
    rq_status st = rqm_gguf_open(&m->gguf, path, err, sizeof err);
    if (st) {
        return cli_failf(cmd, err[0] ? RQ_OK : st, "%s: %s%s", path, err,
                         st != RQ_ERR_IO ? ""
                         : gemma         ? " (run `make model MODEL=gemma3` to download Gemma 3 270M)"
                                         : " (run `make model` to download SmolLM2-135M, or pass -m)");
    }
    if ((st = rqm_llama_load(&m->llama, m->gguf, err, sizeof err)) ||
        (st = rqm_tokenizer_from_gguf(&m->tok, m->gguf, err, sizeof err))) {
        model_free(m);
        return cli_failf(cmd, err[0] ? RQ_OK : st, "%s: %s", path, err);
    }
    m->hp = rqm_llama_hparams_of(m->llama);
    if (!o->key_basis) return 0;
    const size_t dd = (size_t)m->hp->head_dim * (size_t)m->hp->head_dim;
    st = rqm_key_basis_load(o->key_basis, m->hp, &m->key_basis, &m->key_basis_info, err, sizeof err);
    const size_t R = m->key_basis_info.n_ranges, G = (size_t)m->hp->n_kv_heads;
    const size_t n = (size_t)m->hp->n_layers * G * R; /* matrices */
    if (!st && !(m->key_basis_t = malloc(n * dd * sizeof(float)))) st = RQ_ERR_NOMEM;
    for (size_t i = 0; i < n && !st; i++)
        if ((st = rq_key_basis_inverse_t(m->key_basis + i * dd, m->hp->head_dim, m->key_basis_t + i * dd)))
            snprintf(err, sizeof err, "the basis of layer %zu, KV head %zu, range %zu is singular or ill-conditioned",
                     i / (G * R), i / R % G, i % R);
    if (st) {
        model_free(m);
        return cli_failf(cmd, err[0] ? RQ_OK : st, "--key-basis %s: %s%s", o->key_basis, err,
                         st == RQ_ERR_IO ? " (make one with `rotorquant calibrate -o FILE`)" : "");
    }
    return 0;
}

/* The whole file, NUL-terminated; NULL with a message on error. */
static char *read_text(const char *cmd, const char *path, size_t *len) {
    char buf[4096];
    if (!path) path = rqm_default_path(RQM_PATH_TEXT, buf, sizeof buf);
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_failf(cmd, RQ_OK, "cannot open %s: %s%s", path, strerror(errno),
                  errno == ENOENT ? " (run `make evaltext`, or pass -f)" : "");
        return NULL;
    }
    struct stat sb;
    if (!fstat(fileno(f), &sb) && S_ISDIR(sb.st_mode)) {
        fclose(f);
        cli_failf(cmd, RQ_OK, "%s is a directory, not a text file", path);
        return NULL;
    }
    char *s = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? 2 * cap : 1 << 20;
            char *t = realloc(s, cap + 1);
            if (!t) break;
            s = t;
        }
        size_t r = fread(s + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f) || !s;
    fclose(f);
    if (bad) {
        free(s);
        cli_failf(cmd, RQ_OK, "cannot read %s", path);
        return NULL;
    }
    s[n] = 0;
    *len = n;
    return s;
}

/* Token ids of text; NULL with a message on error. special: parse control
 * tokens, and put BOS first when the model wants it (add_bos_token). */
static int32_t *tokenize(const char *cmd, const model *m, const char *text, size_t len, int special,
                         size_t *n_out) {
    size_t n = 0, cap = len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        cli_fail(cmd, RQ_ERR_NOMEM, "tokenizer");
        return NULL;
    }
    const int32_t bos = special ? rqm_tokenizer_seq_bos(m->tok) : -1;
    if (bos >= 0) ids[0] = bos;
    rq_status st = rqm_tokenize(m->tok, text, len, special, ids + (bos >= 0), cap - (size_t)(bos >= 0), &n);
    n += (size_t)(bos >= 0);
    if (st) {
        free(ids);
        cli_fail(cmd, st, "tokenizer");
        return NULL;
    }
    *n_out = n;
    return ids;
}

/* The token ids of a text file (read_text + tokenize); NULL with a message. */
static int32_t *text_ids(const char *cmd, const model *m, const char *path, size_t *n_ids) {
    size_t len = 0;
    char *text = read_text(cmd, path, &len);
    int32_t *ids = text ? tokenize(cmd, m, text, len, 0, n_ids) : NULL;
    free(text);
    return ids;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* The model commands, as bits: which options apply to which command. */
enum { GEN = 1, PPL = 2, FID = 4, DUMP = 8, CAL = 16, ALL = 31 };

typedef enum {
    O_MODEL, O_PROMPT, O_TEXT, O_OUT, O_LAYERS, O_KEY_BASIS, O_CTK, O_CTV, O_N_PREDICT, O_CTX, O_CHUNKS,
    O_THREADS, O_BATCH, O_N_TOKENS, O_RANGES, O_OFFSET, O_TEMP, O_SEED, O_CONFIGS, O_DECODE_CTX, O_JSON, O_F16,
    O_NORM_CORRECT, O_CENTRE_KEYS, O_CENTRE_WINDOW, O_KV_BITS, O_NO_NORM_CORRECT, O_NO_CENTRE_KEYS,
    O_LLAMACPP, O_KV_FAMILY, O_PROMPT_CACHE, O_INT8_SCORES,
} opt_id;

static const struct {
    const char *name, *alias; /* alias: NULL or a second spelling */
    opt_id id;
    int has_value;
    unsigned cmds;            /* the commands it applies to */
} OPTS[] = {
    {"-m", "--model", O_MODEL, 1, ALL},
    {"-p", "--prompt", O_PROMPT, 1, GEN},
    {"-f", "--file", O_TEXT, 1, PPL | FID | DUMP | CAL},
    {"-o", "--out", O_OUT, 1, DUMP | CAL},
    {"--layers", NULL, O_LAYERS, 1, DUMP},
    {"--key-basis", NULL, O_KEY_BASIS, 1, GEN | PPL | FID},
    {"-ctk", "--cache-type-k", O_CTK, 1, GEN | PPL | FID},
    {"-ctv", "--cache-type-v", O_CTV, 1, GEN | PPL | FID},
    {"-n", "--n-predict", O_N_PREDICT, 1, GEN},
    {"-c", "--ctx", O_CTX, 1, PPL | FID | CAL},
    {"--chunks", NULL, O_CHUNKS, 1, PPL | FID},
    {"-t", "--threads", O_THREADS, 1, ALL},
    {"-b", "--batch", O_BATCH, 1, ALL},
    {"--n-tokens", NULL, O_N_TOKENS, 1, DUMP | CAL},
    {"--ranges", NULL, O_RANGES, 1, CAL},
    {"--offset", NULL, O_OFFSET, 1, DUMP | CAL},
    {"--temp", NULL, O_TEMP, 1, GEN | CAL},
    {"--seed", NULL, O_SEED, 1, GEN | PPL | FID | CAL},
    {"--configs", NULL, O_CONFIGS, 1, PPL},
    {"--decode-ctx", NULL, O_DECODE_CTX, 1, PPL},
    {"--json", NULL, O_JSON, 0, PPL | FID},
    {"--f16", NULL, O_F16, 0, DUMP},
    {"--norm-correct", NULL, O_NORM_CORRECT, 0, GEN | PPL | FID},
    {"--centre-keys", NULL, O_CENTRE_KEYS, 0, GEN | PPL | FID},
    {"--no-norm-correct", NULL, O_NO_NORM_CORRECT, 0, GEN | PPL | FID},
    {"--no-centre-keys", NULL, O_NO_CENTRE_KEYS, 0, GEN | PPL | FID},
    {"--centre-window", NULL, O_CENTRE_WINDOW, 1, GEN | PPL | FID},
    {"--kv-bits", NULL, O_KV_BITS, 1, GEN | PPL | FID},
    {"--llamacpp-chunks", NULL, O_LLAMACPP, 0, PPL},
    {"--kv-family", NULL, O_KV_FAMILY, 1, GEN | PPL | FID},
    {"--prompt-cache", NULL, O_PROMPT_CACHE, 1, GEN},
    {"--int8-scores", NULL, O_INT8_SCORES, 0, GEN | PPL},
};

/* A cache type named in option opt (token tok of the value whole, or NULL):
 * 0, or 2 after a usage error that names the token. */
static int cache_type(const char *cmd, const char *opt, const char *tok, const char *whole, const char **out) {
    if (rq_type_find(tok)) {
        *out = tok;
        return 0;
    }
    if (whole && strcmp(whole, tok))
        return cli_usage(cmd, "%s: unknown cache type '%s' in '%s' (`rotorquant types` lists them)", opt, tok, whole);
    return cli_usage(cmd, "%s: unknown cache type '%s' (`rotorquant types` lists them)", opt, tok);
}

/* --configs K/V,T,..: each item "K/V" or "T" (both). */
static int parse_configs(const char *cmd, char *v, mopts *o) {
    char whole[512];
    snprintf(whole, sizeof whole, "%s", v);
    for (char *p = strtok(v, ","); p; p = strtok(NULL, ",")) {
        if (o->n_cfg >= MAX_CONFIGS) return cli_usage(cmd, "--configs: more than %d configurations", MAX_CONFIGS);
        kv_pair *c = &o->cfg[o->n_cfg];
        char *slash = strchr(p, '/');
        if (slash) *slash = 0;
        if (cache_type(cmd, "--configs", p, whole, &c->k)) return 2;
        if (cache_type(cmd, "--configs", slash ? slash + 1 : p, whole, &c->v)) return 2;
        o->n_cfg++;
    }
    if (!o->n_cfg) return cli_usage(cmd, "--configs: no configuration in '%s'", whole);
    return 0;
}

/* Options of one model command (bit `me`) into o, with that command's
 * defaults; 0, or 2 after a usage error line. */
static int parse(const char *cmd, unsigned me, int argc, char **argv, mopts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 32, o->ctx = 512, o->threads = 2, o->seed = 42;
    o->chunks = me == FID ? 2 : 8; /* fidelity: every position of a chunk is a query */
    o->n_tokens = me == CAL ? 2048 : 256;
    o->temp = me == CAL ? 1.0 : 0.0; /* calibrate samples the model's own text */
    /* on by default: both lower the KLD of every configuration measured
     * (docs/RESULTS.md, "Key centring"); the --no- options turn them off */
    o->norm_correct = 1, o->centre_keys = 1;
    o->layers = "0";
    const size_t n_opts = sizeof OPTS / sizeof OPTS[0];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        size_t k = 0;
        while (k < n_opts && strcmp(a, OPTS[k].name) && !(OPTS[k].alias && !strcmp(a, OPTS[k].alias))) k++;
        if (k == n_opts) return cli_usage(cmd, "unknown option '%s'", a);
        if (!(OPTS[k].cmds & me)) return cli_usage(cmd, "option %s does not apply to %s", a, cmd);
        if (OPTS[k].has_value && i + 1 >= argc) return cli_usage(cmd, "option %s needs a value", a);
        char *v = OPTS[k].has_value ? argv[++i] : NULL;
        const char *want = NULL; /* set: the value is bad; what is expected */
        switch (OPTS[k].id) {
        case O_MODEL: o->model = v; break;
        case O_PROMPT: o->prompt = v; break;
        case O_TEXT: o->text = v; break;
        case O_OUT: o->out_dir = v; break;
        case O_LAYERS: o->layers = v; break;
        case O_KEY_BASIS: o->key_basis = v; break;
        case O_CTK:
            if (cache_type(cmd, a, v, NULL, &o->ctk)) return 2;
            break;
        case O_CTV:
            if (cache_type(cmd, a, v, NULL, &o->ctv)) return 2;
            break;
        case O_N_PREDICT:
            if (parse_long(v, 0, 1 << 20, &o->n_predict)) want = "0 .. 2^20 tokens";
            break;
        case O_CTX:
            if (parse_long(v, 2, 1 << 20, &o->ctx)) want = "2 .. 2^20 tokens";
            break;
        case O_CHUNKS:
            if (parse_long(v, 1, 1 << 20, &o->chunks)) want = "1 .. 2^20";
            break;
        case O_THREADS:
            if (parse_long(v, 1, 256, &o->threads)) want = "1 .. 256 threads";
            break;
        case O_BATCH:
            if (parse_long(v, 1, 4096, &o->batch)) want = "1 .. 4096 tokens";
            break;
        case O_N_TOKENS:
            if (parse_long(v, 1, 1 << 20, &o->n_tokens)) want = "1 .. 2^20 tokens";
            break;
        case O_RANGES:
            if (parse_long(v, 1, RQM_KB_MAX_RANGES, &o->ranges)) want = "1 .. the most ranges a basis holds";
            break;
        case O_OFFSET:
            if (parse_long(v, 0, 1L << 40, &o->offset)) want = "a token offset >= 0";
            o->offset_given = 1;
            break;
        case O_TEMP: {
            char *end;
            o->temp = strtod(v, &end);
            if (*end || end == v || !(o->temp >= 0) || o->temp > 100) want = "a temperature in [0, 100]";
            break;
        }
        case O_SEED: {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 0);
            if (errno || *end || end == v || v[0] == '-') want = "an unsigned 64-bit integer";
            break;
        }
        case O_CONFIGS:
            if (parse_configs(cmd, v, o)) return 2;
            break;
        case O_DECODE_CTX: {
            char whole[256];
            snprintf(whole, sizeof whole, "%s", v);
            for (char *p = strtok(v, ","); p; p = strtok(NULL, ","))
                if (o->n_decode_ctx >= 8 || parse_long(p, 1, 1 << 20, &o->decode_ctx[o->n_decode_ctx++]))
                    return cli_usage(cmd, "--decode-ctx: bad length '%s' in '%s' (at most 8 of 1 .. 2^20)", p, whole);
            break;
        }
        case O_JSON: o->json = 1; break;
        case O_F16: o->f16 = 1; break;
        case O_NORM_CORRECT: o->norm_correct = 1; break;
        case O_CENTRE_KEYS: o->centre_keys = 1; break;
        case O_NO_NORM_CORRECT: o->norm_correct = 0; break;
        case O_NO_CENTRE_KEYS: o->centre_keys = 0; break;
        case O_INT8_SCORES: o->int8_scores = 1; break;
        case O_KV_BITS: {
            char whole[256];
            snprintf(whole, sizeof whole, "%s", v);
            for (char *tok = strtok(v, ","); tok; tok = strtok(NULL, ",")) {
                char *end;
                const double b = strtod(tok, &end);
                if (o->n_kv_bits >= (me == PPL ? MAX_BUDGETS : 1) || *end || end == tok || !(b >= 1) || b > 32)
                    return cli_usage(cmd, "--kv-bits: bad budget '%s' in '%s' (%s of 1 .. 32 bits/value)", tok, whole,
                                     me == PPL ? "at most 8" : "one");
                o->kv_bits[o->n_kv_bits++] = b;
            }
            break;
        }
        case O_CENTRE_WINDOW:
            if (parse_long(v, 1, 1 << 20, &o->centre_window)) want = "a number of positions in 1 .. 2^20";
            break;
        case O_LLAMACPP: o->llamacpp = 1; break;
        case O_KV_FAMILY:
            if (!strcmp(v, "tcq")) o->kv_tcq = 1;
            else if (!strcmp(v, "turbo")) o->kv_tcq = 0;
            else want = "turbo or tcq";
            break;
        case O_PROMPT_CACHE: o->prompt_cache = v; break;
        }
        if (want) return cli_usage(cmd, "bad value for %s: '%s' (expected %s)", a, v, want);
    }
    if (me == CAL && o->offset_given && !o->text)
        return cli_usage(cmd, "--offset applies to -f TEXT (the model's own text has no offset)");
    if ((o->ctk || o->ctv) && o->n_cfg < MAX_CONFIGS) {
        o->cfg[o->n_cfg].k = o->ctk ? o->ctk : "f16";
        o->cfg[o->n_cfg].v = o->ctv ? o->ctv : "f16";
        o->n_cfg++;
    }
    return 0;
}

/* ---- outputs, checked before the long run ---------------------------------- */
/* 0 if a file can be created in dir (a probe file, removed again); else 1
 * after an error line. */
static int probe_writable(const char *cmd, const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/.rotorquant-probe.%ld", dir, (long)getpid());
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return cli_failf(cmd, RQ_OK, "-o: cannot write in %s: %s", dir, strerror(errno));
    close(fd);
    unlink(p);
    return 0;
}

/* dump-kv's output directory: made (one level) if missing, probed for
 * writing, and a manifest of an earlier dump removed (the manifest, written
 * last, vouches for a complete dump). 0, or 1 after an error line. */
static int out_dir_ready(const char *cmd, const char *dir) {
    struct stat sb;
    if (stat(dir, &sb)) {
        if (errno != ENOENT || mkdir(dir, 0777))
            return cli_failf(cmd, RQ_OK, "-o %s: cannot create the directory: %s", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return cli_failf(cmd, RQ_OK, "-o %s exists and is not a directory", dir);
    }
    if (probe_writable(cmd, dir)) return 1;
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (unlink(path) && errno != ENOENT)
        return cli_failf(cmd, RQ_OK, "cannot remove the old %s: %s", path, strerror(errno));
    return 0;
}

/* calibrate's output file: not a directory, in a directory that exists and
 * can be written. 0, or 1 after an error line. */
static int out_file_ready(const char *cmd, const char *path) {
    struct stat sb;
    if (!stat(path, &sb) && S_ISDIR(sb.st_mode))
        return cli_failf(cmd, RQ_OK, "-o %s is a directory; give a file name (e.g. %s/basis.gguf)", path, path);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    return probe_writable(cmd, dir);
}

/* A key basis serves the positions it was calibrated on (model/calib.h):
 * 0 and one error line when a run needs more. */
static int basis_ctx_ok(const char *cmd, const model *m, long n_ctx) {
    if (!m->key_basis || n_ctx <= m->key_basis_info.n_ctx) return 1;
    cli_failf(cmd, RQ_OK,
              "the key basis was calibrated on %ld positions and serves contexts up to that; this run needs %ld "
              "(RoPE turns keys with position: `rotorquant calibrate --ctx %ld`)",
              m->key_basis_info.n_ctx, n_ctx, n_ctx);
    return 0;
}

static rq_status session_new_kv(rqm_session **s, const model *m, const kv_pair *kv, long n_ctx, const mopts *o,
                                rqm_observer obs, void *user) {
    const char *tk = kv->k, *tv = kv->v;
    rqm_session_config sc;
    memset(&sc, 0, sizeof sc);
    sc.type_k = tk, sc.type_v = tv;
    sc.layer_type_k = kv->lk, sc.layer_type_v = kv->lv;
    sc.seed = o->seed;
    sc.norm_correct = o->norm_correct;
    sc.centre_keys = o->centre_keys && strcmp(tk, "f32"); /* the f32 reference stays as it is */
    sc.centre_window = (int)o->centre_window;
    sc.int8_scores = o->int8_scores;
    sc.key_basis = strcmp(tk, "f32") ? m->key_basis : NULL;
    sc.key_basis_ranges = m->key_basis_info.n_ranges, sc.key_basis_start = m->key_basis_info.start;
    sc.key_basis_ctx = (int)m->key_basis_info.n_ctx; /* checked before (basis_ctx_ok) */
    sc.n_ctx = (int)n_ctx;
    sc.n_threads = (int)o->threads;
    sc.n_batch = (int)(o->batch ? o->batch : 256);
    sc.observer = obs, sc.observer_user = user;
    return rqm_session_init(s, m->llama, &sc);
}

static rq_status session_new(rqm_session **s, const model *m, const char *tk, const char *tv, long n_ctx,
                             const mopts *o, rqm_observer obs, void *user) {
    const kv_pair kv = {tk, tv, NULL, NULL, 0};
    return session_new_kv(s, m, &kv, n_ctx, o, obs, user);
}

/* ---- --kv-bits: per-layer types within a budget (cli/budget.h) --------------
 * Keys centred and norms corrected as --centre-keys / --norm-correct say. */
static cli_budget_opts budget_opts(const mopts *o) {
    return (cli_budget_opts){o->kv_tcq, o->centre_keys, o->norm_correct, (int)o->centre_window, o->seed,
                             (int)o->threads, (int)(o->batch ? o->batch : 256)};
}

static rq_status budget_measure(const model *m, const mopts *o, cli_budget *b) {
    const cli_budget_opts bo = budget_opts(o);
    return cli_budget_measure(b, m->llama, m->tok, &bo);
}

/* Row kv for budget number i, planned for n_ctx positions (note: how that
 * was chosen, or NULL); prints the choice. */
static rq_status budget_row(cli_budget *b, const mopts *o, int i, long n_ctx, const char *note, kv_pair *kv) {
    cli_budget_plan p;
    rq_status st = cli_budget_plan_row(b, i, o->kv_bits[i], n_ctx, note, &p);
    if (!st) *kv = (kv_pair){"turbo3", "turbo3", p.lk, p.lv, o->kv_bits[i]};
    return st;
}

static void print_token(const model *m, int32_t id) {
    rqm_str b = rqm_token_bytes(m->tok, id);
    fwrite(b.ptr, 1, (size_t)b.len, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    mopts o;
    if (parse("generate", GEN, argc, argv, &o)) return 2;
    if (!o.prompt) return cli_usage("generate", "missing -p PROMPT");
    model m;
    if (model_open("generate", &o, &m)) return 1;
    kv_pair kv = o.n_cfg ? o.cfg[o.n_cfg - 1] : (kv_pair){.k = "f16", .v = "f16"};
    cli_budget bud;
    memset(&bud, 0, sizeof bud);
    size_t n_prompt = 0;
    int32_t *ids = tokenize("generate", &m, o.prompt, strlen(o.prompt), 1, &n_prompt);
    float *logits = malloc((size_t)m.hp->n_vocab * sizeof *logits);
    rqm_session *s = NULL;
    int rc = 1;
    rq_status st = logits ? RQ_OK : RQ_ERR_NOMEM;
    if (!ids || st) goto done; /* tokenize said why */
    if (n_prompt == 0) {
        cli_fail("generate", RQ_OK, "the prompt has no tokens");
        goto done;
    }
    const long n_ctx = (long)n_prompt + o.n_predict;
    if (n_ctx > m.hp->n_ctx_train) {
        cli_failf("generate", RQ_OK, "prompt + -n (%ld tokens) exceeds the model's context length %d", n_ctx,
                  m.hp->n_ctx_train);
        goto done;
    }
    if (!basis_ctx_ok("generate", &m, n_ctx)) goto done;
    if (o.n_kv_bits) {
        /* generate has no --ctx: the budget is planned for prompt + n, but at
         * least CLI_BUDGET_MIN_CTX positions (within the model's context), so
         * that the fixed costs of key centring do not eat a short run's bits */
        long plan = cli_budget_ctx(n_ctx);
        if (plan > m.hp->n_ctx_train) plan = m.hp->n_ctx_train; /* ≥ n_ctx, checked above */
        char note[96];
        snprintf(note, sizeof note, "prompt + n = %ld, at least %d", n_ctx, CLI_BUDGET_MIN_CTX);
        if ((st = budget_measure(&m, &o, &bud)) || (st = budget_row(&bud, &o, 0, plan, note, &kv))) goto done;
    }
    if ((st = session_new_kv(&s, &m, &kv, n_ctx, &o, NULL, NULL))) goto done;
    fwrite(o.prompt, 1, strlen(o.prompt), stdout);
    double t0 = now_s();
    size_t n_reused = 0; /* --prompt-cache: prompt tokens restored, not prefilled */
    int pc_same = 0;
    const uint64_t model_id = o.prompt_cache ? rqm_model_identity(m.gguf, m.hp) : 0;
    if (o.prompt_cache && !access(o.prompt_cache, F_OK)) {
        char err[512] = "";
        if (rqm_prompt_cache_load(o.prompt_cache, model_id, s, ids, n_prompt, &n_reused, &pc_same, err, sizeof err))
            fprintf(stderr, "rotorquant: generate: warning: --prompt-cache: %s; prefilling the whole prompt\n", err);
        /* Centred keys: μ is the mean of key positions 1..W of the first
         * prefill, so a restored prefix gives the cache a run without the
         * file would build only when it holds all W + 1 of them (or the
         * prompt is the saved one); a shorter prefix is prefilled again. */
        const size_t w1 = (size_t)(o.centre_window > 0 ? o.centre_window : 64) + 1;
        if (o.centre_keys && n_reused && !pc_same && n_reused < w1) {
            fprintf(stderr, "rotorquant: prompt cache %s: the common prefix (%zu tokens) is shorter than the key "
                    "centring window (%zu); prefilling the whole prompt\n", o.prompt_cache, n_reused, w1);
            rqm_session_reset(s);
            n_reused = 0;
        }
    }
    if ((st = rqm_session_eval(s, ids + n_reused, n_prompt - n_reused, 0, logits))) goto done;
    double t1 = now_s();
    if (o.prompt_cache) {
        char err[512] = "";
        const int save = !pc_same;
        if (save && rqm_prompt_cache_save(o.prompt_cache, model_id, ids, n_prompt, s, err, sizeof err))
            fprintf(stderr, "rotorquant: generate: warning: --prompt-cache: %s; not saved\n", err);
        fprintf(stderr, "rotorquant: prompt cache %s: reused %zu of %zu prompt tokens, prefilled %zu; time to first "
                "token %.1f ms; %s\n", o.prompt_cache, n_reused, n_prompt, n_prompt - n_reused, 1e3 * (t1 - t0),
                save && !err[0] ? "saved" : save ? "not saved" : "file unchanged");
    }
    rq_rng rng;
    rq_rng_seed(&rng, o.seed);
    long n_gen = 0;
    for (; n_gen < o.n_predict; n_gen++) {
        int32_t next = rqm_sample(logits, (size_t)m.hp->n_vocab, o.temp, &rng);
        if (next == rqm_tokenizer_eos(m.tok)) break;
        print_token(&m, next);
        if (n_gen + 1 < o.n_predict && (st = rqm_session_eval(s, &next, 1, 0, logits))) goto done;
    }
    double t2 = now_s();
    printf("\n");
    fflush(stdout);
    char tps[32]; /* decode speed: undefined ("-") with fewer than 2 tokens generated */
    cli_num(tps, sizeof tps, "%.1f", n_gen > 1 ? (double)(n_gen - 1) / (t2 - t1) : NAN);
    fprintf(stderr, "rotorquant: cache K %s / V %s, %zu B/token; prompt %zu tokens %.1f tok/s; generated %ld tokens %s tok/s\n",
            kv.lk ? "per layer" : kv.k, kv.lk ? "per layer" : kv.v, rq_cache_bytes_per_token(rqm_session_cache(s)),
            n_prompt - n_reused, (double)(n_prompt - n_reused) / (t1 - t0),
            n_gen, tps);
    rc = 0;
    st = RQ_OK;
done:
    if (st && rc) cli_fail("generate", st, "running the model");
    cli_budget_free(&bud);
    rqm_session_free(s);
    free(logits);
    free(ids);
    model_free(&m);
    return rc;
}

/* ----------------------------------------------------------------------- */
/* perplexity                                                               */

/* Decode tokens/s after a prefill of n_ctx tokens (rqm_decode_speed), in a
 * session of its own. */
static rq_status decode_speed(const model *m, const kv_pair *kv, const mopts *o, const int32_t *ids, long n_ctx,
                              double *tps) {
    rqm_session *s = NULL;
    rq_status st = session_new_kv(&s, m, kv, n_ctx + RQM_DECODE_TOKENS, o, NULL, NULL);
    if (!st)
        st = rqm_decode_speed(s, (size_t)m->hp->n_vocab, rqm_tokenizer_seq_bos(m->tok), ids, (size_t)n_ctx, tps);
    rqm_session_free(s);
    return st;
}

static void progress_cb(void *user, size_t done, size_t total) { cli_progress(user, done, total); }

/* A JSON number, or null when undefined (not finite). buf[48]. */
static const char *jnum(char *buf, const char *fmt, double v) {
    if (!isfinite(v)) return "null";
    snprintf(buf, 48, fmt, v);
    return buf;
}

int cmd_perplexity(int argc, char **argv) {
    mopts o;
    if (parse("perplexity", PPL, argc, argv, &o)) return 2;
    model m;
    if (model_open("perplexity", &o, &m)) return 1;
    /* row 0: the f32 cache, the reference every other row is compared with */
    kv_pair kv[MAX_CONFIGS + MAX_BUDGETS + 1];
    const int n_rows = o.n_cfg + o.n_kv_bits + 1;
    kv[0] = (kv_pair){.k = "f32", .v = "f32"};
    for (int r = 1; r <= o.n_cfg; r++) kv[r] = o.cfg[r - 1];
    cli_budget bud;
    memset(&bud, 0, sizeof bud);
    rqm_session *sess[MAX_CONFIGS + MAX_BUDGETS + 1] = {0};
    rqm_ppl_result res[MAX_CONFIGS + MAX_BUDGETS + 1];
    double decode_tps[MAX_CONFIGS + MAX_BUDGETS + 1][8];
    memset(decode_tps, 0, sizeof decode_tps);
    int rc = 1;
    rq_status st = RQ_OK;
    size_t n_ids = 0;
    int32_t *ids = text_ids("perplexity", &m, o.text, &n_ids);
    if (!ids) goto done;
    const size_t V = (size_t)m.hp->n_vocab, ctx = (size_t)o.ctx;
    if (o.ctx > m.hp->n_ctx_train) {
        cli_failf("perplexity", RQ_OK, "--ctx %ld exceeds the model's context length %d", o.ctx, m.hp->n_ctx_train);
        goto done;
    }
    size_t n_chunks = n_ids / ctx;
    if (n_chunks > (size_t)o.chunks) n_chunks = (size_t)o.chunks;
    if (n_chunks == 0) {
        cli_failf("perplexity", RQ_OK, "the text has %zu tokens, fewer than --ctx %ld", n_ids, o.ctx);
        goto done;
    }
    for (int i = 0; i < o.n_decode_ctx; i++)
        if ((size_t)o.decode_ctx[i] > n_ids || o.decode_ctx[i] + 16 > m.hp->n_ctx_train) {
            cli_failf("perplexity", RQ_OK, "--decode-ctx %ld larger than the text or the model's context", o.decode_ctx[i]);
            goto done;
        }
    long need = o.ctx;
    for (int i = 0; i < o.n_decode_ctx; i++) need = o.decode_ctx[i] + 16 > need ? o.decode_ctx[i] + 16 : need;
    if (!basis_ctx_ok("perplexity", &m, need)) goto done;
    if (o.n_kv_bits && (st = budget_measure(&m, &o, &bud))) goto done;
    for (int i = 0; i < o.n_kv_bits && !st; i++) st = budget_row(&bud, &o, i, (long)ctx, "--ctx", &kv[1 + o.n_cfg + i]);
    for (int r = 0; r < n_rows && !st; r++) st = session_new_kv(&sess[r], &m, &kv[r], (long)ctx, &o, NULL, NULL);
    if (st) goto done;
    const int32_t bos = rqm_tokenizer_seq_bos(m.tok);
    rqm_ppl_config pc = {ctx, n_chunks, V, progress_cb, (void *)"perplexity", bos >= 0, bos, o.llamacpp};
    double t_start = now_s();
    if ((st = rqm_perplexity_run(sess, (size_t)n_rows, ids, n_ids, &pc, res))) goto done;
    const double t_ppl = now_s() - t_start;
    for (int r = 0; r < n_rows && !st; r++)
        for (int i = 0; i < o.n_decode_ctx && !st; i++) {
            st = decode_speed(&m, &kv[r], &o, ids, o.decode_ctx[i], &decode_tps[r][i]);
            cli_progress("decode speed", (size_t)(r * o.n_decode_ctx + i + 1), (size_t)(n_rows * o.n_decode_ctx));
        }
    if (st) goto done;
    if (o.n_decode_ctx) /* the rows are timed one after another: a pointer to the interleaved timing */
        fprintf(stderr, "perplexity: decode tok/s rows run one after another (on a shared machine they swing with its "
                        "load); `make build/bench/decode_profile` times configurations interleaved: "
                        "build/bench/decode_profile -m MODEL --ctx N --types f16,... [--kv-bits B,.. --kv-family F] "
                        "[--int8-scores-also]\n");
    const double ppl0 = res[0].ppl;
    if (o.json) {
        printf("{\"model_vocab\": %zu, \"ctx\": %zu, \"chunks\": %zu, \"scored_tokens\": %zu, \"seconds\": %.1f,"
               " \"key_basis\": %s%s%s, \"rows\": [\n",
               V, ctx, n_chunks, res[0].n_targets, t_ppl, o.key_basis ? "\"" : "", o.key_basis ? o.key_basis : "null",
               o.key_basis ? "\"" : "");
    } else {
        printf("perplexity over %zu chunks of %zu tokens (the second half of each scored: %zu tokens%s), "
               "%ld threads, %.1f s\n\n",
               n_chunks, ctx, res[0].n_targets, o.llamacpp ? ", llama-perplexity's chunks" : "", o.threads, t_ppl);
        if (o.key_basis) printf("keys in the calibrated basis %s (\"+ basis\": every compressed key type)\n\n", o.key_basis);
        printf("| K | V | bits/value | bytes/token | PPL | ΔPPL | mean KLD | p99 KLD | top-1 |");
        for (int i = 0; i < o.n_decode_ctx; i++) printf(" tok/s @%ld |", o.decode_ctx[i]);
        printf("\n|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for (int i = 0; i < o.n_decode_ctx; i++) printf("---:|");
        printf("\n");
    }
    for (int r = 0; r < n_rows; r++) {
        const rqm_ppl_result *w = &res[r];
        /* every stored bit at this context: blocks, and μ and the sink when centred */
        const double bits = rq_cache_bits_per_value(rqm_session_cache(sess[r]), ctx);
        const size_t bytes_per_token = rq_cache_bytes_per_token(rqm_session_cache(sess[r]));
        const int kb = m.key_basis && strcmp(kv[r].k, "f32");
        char b1[48], b2[48]; /* perplexity is undefined (0/0) when no scored position has a next token */
        /* a --kv-bits row: its budget, and the turbo bits of every layer's K and V */
        char tk[64], tv[64], dk[4097] = "", dv[4097] = "";
        snprintf(tk, sizeof tk, "%s", kv[r].k), snprintf(tv, sizeof tv, "%s", kv[r].v);
        if (kv[r].lk && m.hp->n_layers <= 4096) {
            cli_budget_digits(kv[r].lk, m.hp->n_layers, dk), cli_budget_digits(kv[r].lv, m.hp->n_layers, dv);
            snprintf(tk, sizeof tk, "kv-bits %.2f", kv[r].budget), snprintf(tv, sizeof tv, "per layer");
        }
        if (o.json) {
            printf("  {\"type_k\": \"%s\", \"type_v\": \"%s\", \"key_basis\": %s, \"bits_per_value\": %.4f,"
                   " \"bytes_per_token\": %zu, \"ppl\": %s, \"delta_ppl\": %s, \"kld_mean\": %.8f,"
                   " \"kld_p99\": %.8f, \"top1\": %.6f, \"centre_keys\": %s, \"norm_correct\": %s",
                   tk, tv, kb ? "true" : "false", bits, bytes_per_token, jnum(b1, "%.6f", w->ppl),
                   jnum(b2, "%.6f", w->ppl - ppl0), w->kld_mean, w->kld_p99, w->top1,
                   o.centre_keys && strcmp(kv[r].k, "f32") ? "true" : "false", o.norm_correct ? "true" : "false");
            if (kv[r].lk)
                printf(", \"kv_bits\": %.4f, \"kv_family\": \"%s\", \"layer_bits_k\": \"%s\", \"layer_bits_v\": \"%s\"",
                       kv[r].budget, cli_budget_family(o.kv_tcq), dk, dv);
            for (int i = 0; i < o.n_decode_ctx; i++)
                printf(", \"decode_tps_%ld\": %.2f", o.decode_ctx[i], decode_tps[r][i]);
            printf("}%s\n", r + 1 < n_rows ? "," : "");
        } else {
            printf("| %s%s | %s | %.3f | %zu | %s | %s | %.5f | %.5f | %.4f |", tk, kb ? " + basis" : "", tv,
                   bits, bytes_per_token, cli_num(b1, sizeof b1, "%.4f", w->ppl),
                   cli_num(b2, sizeof b2, "%+.4f", w->ppl - ppl0), w->kld_mean, w->kld_p99, w->top1);
            for (int i = 0; i < o.n_decode_ctx; i++) printf(" %.1f |", decode_tps[r][i]);
            printf("\n");
        }
    }
    for (int r = 0; r < n_rows; r++) { /* k8 keys: norms clamped to the ends of 2^-2·σ .. 2^2·σ (stderr) */
        const rq_cache *c = rqm_session_cache(sess[r]);
        int k8 = 0;
        for (int l = 0; l < m.hp->n_layers && !k8; l++) k8 = rq_quantizer_type(rq_cache_layer_quantizer(c, l, 0))->key_scaled;
        uint64_t hi = 0, all = rq_cache_key_clamps(c, &hi);
        if (k8)
            fprintf(stderr, "k8 key clamps, K %s / V %s: %llu (%llu high, %llu low)\n", kv[r].lk ? "per layer" : kv[r].k,
                    kv[r].lk ? "per layer" : kv[r].v, (unsigned long long)all, (unsigned long long)hi,
                    (unsigned long long)(all - hi));
    }
    if (o.json) printf("]}\n");
    for (int r = 0; !o.json && r < n_rows; r++) /* the per-layer choices of --kv-bits rows */
        if (kv[r].lk) {
            char *dg = malloc(2 * ((size_t)m.hp->n_layers + 1));
            if (!dg) continue;
            cli_budget_digits(kv[r].lk, m.hp->n_layers, dg);
            cli_budget_digits(kv[r].lv, m.hp->n_layers, dg + m.hp->n_layers + 1);
            printf("%skv-bits %.2f, %s bits of layers 0..%d: K %s / V %s\n", r == 1 + o.n_cfg ? "\n" : "",
                   kv[r].budget,
                   o.kv_tcq ? (o.centre_keys ? "tcq (1: turbo1; K k8, V n8)" : "tcq (1: turbo1; V n8)")
                            : o.centre_keys ? "turbo (K k8, V n8)" : "turbo (V n8)",
                   m.hp->n_layers - 1, dg,
                   dg + m.hp->n_layers + 1);
            free(dg);
        }
    rc = 0;
done:
    if (st) rc = cli_fail("perplexity", st, "running the model");
    cli_budget_free(&bud);
    for (int r = 0; r < n_rows; r++) rqm_session_free(sess[r]);
    free(ids);
    model_free(&m);
    return rc;
}

/* ----------------------------------------------------------------------- */
/* fidelity: run with the f32 cache; at every layer also evaluate the      */
/* compressed K/V on the same queries, without feeding it forward.         */

typedef struct {
    const model *m;
    rq_quantizer *qk, *qv;
    rq_quantizer **lq;     /* --kv-bits: [layer][2] K, V quantizers, or NULL */
    int centre;            /* keys as k − μ (+ μ back), position 0 exact fp16 */
    size_t centre_window;  /* positions 1..N fix μ                          */
    float *mu;             /* [layer][kv_head][D]                           */
    size_t cap;            /* positions per chunk                           */
    float *keys, *values;  /* [layer][kv_head][cap][D], this chunk so far   */
    float *keys_hat, *values_hat; /* the same, decoded (k̂ through the basis) */
    uint8_t *blk;          /* one encoded block                             */
    float *qbuf;           /* [group·n][D] queries of one KV head           */
    size_t *n_ctx;
    double *sum;           /* [layer][F_N]: metric sums weighted by queries */
    double *weight;        /* [layer]                                       */
} fid_state;

enum { F_SCOS, F_KL, F_OCOS, F_TOP1, F_TOP5, F_N };

static rq_status fid_observe(void *user, const rqm_layer_event *ev) {
    fid_state *f = user;
    const rqm_llama_hparams *hp = f->m->hp;
    const size_t D = (size_t)hp->head_dim, H = (size_t)hp->n_heads, G = (size_t)hp->n_kv_heads;
    const size_t group = H / G, L = (size_t)ev->layer;
    if (ev->pos0 + ev->n_tokens > f->cap) return RQ_ERR_RANGE;
    for (size_t g = 0; g < G; g++) {
        /* new positions: exact and decoded keys and values (keys through the
         * key basis of their position range, as the cache stores them) */
        const model *m = f->m;
        const size_t R = m->key_basis ? m->key_basis_info.n_ranges : 0;
        float *kd = f->keys + (L * G + g) * f->cap * D, *vd = f->values + (L * G + g) * f->cap * D;
        float *kh = f->keys_hat + (L * G + g) * f->cap * D, *vh = f->values_hat + (L * G + g) * f->cap * D;
        const rq_quantizer *qk = f->lq ? f->lq[2 * L] : f->qk, *qv = f->lq ? f->lq[2 * L + 1] : f->qv;
        float *mu = f->mu ? f->mu + (L * G + g) * D : NULL;
        if (mu && ev->pos0 <= 1 && ev->pos0 + ev->n_tokens >= 2) {
            /* as the cache: μ = fp16 mean of positions 1..window of the
             * first batch past position 0 (sequences start at 0 here) */
            const size_t p0 = 1, p1 = ev->pos0 + ev->n_tokens - 1 < f->centre_window ? ev->pos0 + ev->n_tokens - 1
                                                                                      : f->centre_window;
            for (size_t x = 0; x < D; x++) {
                double sum = 0;
                for (size_t p = p0; p <= p1; p++) sum += ev->k[((p - ev->pos0) * G + g) * D + x];
                mu[x] = rq_f16_to_f32(rq_f32_to_f16((float)(sum / (double)(p1 - p0 + 1))));
            }
        }
        for (size_t t = 0; t < ev->n_tokens; t++) {
            const size_t p = ev->pos0 + t;
            const float *A = NULL, *At = NULL;
            if (R) {
                const size_t r = rqm_key_basis_range(m->key_basis_info.start, R, p);
                A = m->key_basis + ((L * G + g) * R + r) * D * D;
                At = m->key_basis_t + ((L * G + g) * R + r) * D * D;
            }
            memcpy(kd + p * D, ev->k + (t * G + g) * D, D * sizeof(float));
            memcpy(vd + p * D, ev->v + (t * G + g) * D, D * sizeof(float));
            if (mu && p == 0) { /* the exact sink */
                for (size_t x = 0; x < D; x++)
                    kh[x] = rq_f16_to_f32(rq_f32_to_f16(kd[x])), vh[x] = rq_f16_to_f32(rq_f32_to_f16(vd[x]));
                continue;
            }
            float kc[RQ_MAX_DIMS];
            for (size_t x = 0; x < D; x++) kc[x] = kd[p * D + x] - (mu ? mu[x] : 0.0f);
            rq_status st = rqm_key_roundtrip(qk, A, At, kc, D, f->blk, kh + p * D);
            for (size_t x = 0; mu && x < D; x++) kh[p * D + x] += mu[x];
            if (!st) st = rqm_key_roundtrip(qv, NULL, NULL, vd + p * D, D, f->blk, vh + p * D);
            if (st) return st;
        }
        size_t nq = 0;
        for (size_t t = 0; t < ev->n_tokens; t++)
            for (size_t h = g * group; h < (g + 1) * group; h++) {
                memcpy(f->qbuf + nq * D, ev->q + (t * H + h) * D, D * sizeof(float));
                f->n_ctx[nq++] = ev->pos0 + t + 1;
            }
        rq_eval_attn_result r;
        const size_t n_keys = ev->pos0 + ev->n_tokens, W = rqm_llama_layer_window(m->llama, ev->layer);
        double *s = f->sum + L * F_N;
        /* a sliding-window layer past its window: each token's queries over
         * its own window of keys (the positions the model attends) */
        const int windowed = W && n_keys > W;
        for (size_t t = 0; t < (windowed ? ev->n_tokens : 1); t++) {
            size_t lo = 0, nk = n_keys, n_q = nq;
            const float *qs = f->qbuf;
            if (windowed) {
                const size_t p = ev->pos0 + t;
                lo = p + 1 > W ? p + 1 - W : 0;
                nk = p + 1 - lo, n_q = group, qs = f->qbuf + t * group * D;
                for (size_t i = 0; i < group; i++) f->n_ctx[t * group + i] = nk;
            }
            rq_status st = rq_eval_attention_decoded((int)D, kd + lo * D, kh + lo * D, vd + lo * D, vh + lo * D, nk, qs,
                                                     n_q, f->n_ctx + (windowed ? t * group : 0), 0, &r);
            if (st) return st;
            const double w = (double)n_q;
            s[F_SCOS] += w * r.score_cosine, s[F_KL] += w * r.softmax_kl, s[F_OCOS] += w * r.output_cosine;
            s[F_TOP1] += w * r.top1, s[F_TOP5] += w * r.top5;
            f->weight[L] += w;
        }
    }
    return RQ_OK;
}

int cmd_fidelity(int argc, char **argv) {
    mopts o;
    if (parse("fidelity", FID, argc, argv, &o)) return 2;
    const kv_pair kv = o.n_cfg ? o.cfg[o.n_cfg - 1] : (kv_pair){.k = "turbo3", .v = "turbo3"};
    model m;
    if (model_open("fidelity", &o, &m)) return 1;
    size_t n_ids = 0;
    int32_t *ids = basis_ctx_ok("fidelity", &m, o.ctx) ? text_ids("fidelity", &m, o.text, &n_ids) : NULL;
    if (!ids) {
        model_free(&m);
        return 1;
    }
    const rqm_llama_hparams *hp = m.hp;
    const size_t ctx = (size_t)o.ctx, D = (size_t)hp->head_dim, L = (size_t)hp->n_layers;
    const size_t G = (size_t)hp->n_kv_heads, H = (size_t)hp->n_heads;
    size_t n_chunks = n_ids / ctx;
    if (n_chunks > (size_t)o.chunks) n_chunks = (size_t)o.chunks;
    fid_state f;
    memset(&f, 0, sizeof f);
    f.m = &m, f.cap = ctx;
    const size_t B = (size_t)(o.batch ? o.batch : 256);
    rq_quant_config qc = rq_quant_config_default();
    qc.seed = o.seed;
    qc.norm_correct = o.norm_correct;
    rq_status st = rq_quantizer_init(&f.qk, kv.k, (int)D, &qc);
    if (!st) st = rq_quantizer_init(&f.qv, kv.v, (int)D, &qc);
    /* key centring as the cache does it; --kv-bits: per-layer quantizers */
    f.centre = o.centre_keys, f.centre_window = o.centre_window ? (size_t)o.centre_window : 64;
    if (f.centre && !(f.mu = calloc(L * G * D, sizeof(float)))) st = RQ_ERR_NOMEM;
    cli_budget bud;
    memset(&bud, 0, sizeof bud);
    kv_pair bkv = kv;
    if (!st && o.n_kv_bits && !(st = budget_measure(&m, &o, &bud)) && !(st = budget_row(&bud, &o, 0, (long)ctx, "--ctx", &bkv))) {
        if (!(f.lq = calloc(2 * L, sizeof *f.lq))) st = RQ_ERR_NOMEM;
        for (size_t l = 0; l < L && !st; l++)
            if (!(st = rq_quantizer_init(&f.lq[2 * l], bkv.lk[l], (int)D, &qc)))
                st = rq_quantizer_init(&f.lq[2 * l + 1], bkv.lv[l], (int)D, &qc);
    }
    f.keys = malloc(L * G * ctx * D * sizeof(float));
    f.values = malloc(L * G * ctx * D * sizeof(float));
    f.keys_hat = malloc(L * G * ctx * D * sizeof(float));
    f.values_hat = malloc(L * G * ctx * D * sizeof(float));
    f.blk = malloc(8 * D + 64); /* ≥ any type's block (f32: 4·D) */
    f.qbuf = malloc(B * H * D * sizeof(float));
    f.n_ctx = malloc(B * H * sizeof(size_t));
    f.sum = calloc(L * F_N, sizeof(double));
    f.weight = calloc(L, sizeof(double));
    if (!st && (!f.keys || !f.values || !f.keys_hat || !f.values_hat || !f.blk || !f.qbuf || !f.n_ctx || !f.sum ||
                !f.weight))
        st = RQ_ERR_NOMEM;
    rqm_session *s = NULL;
    int rc = 0;
    if (n_chunks == 0) {
        rc = cli_failf("fidelity", RQ_OK, "the text has %zu tokens, fewer than --ctx %ld", n_ids, o.ctx);
        goto done;
    }
    if (!st) st = session_new(&s, &m, "f32", "f32", (long)ctx, &o, fid_observe, &f);
    for (size_t c = 0; c < n_chunks && !st; c++) {
        rqm_session_reset(s);
        st = rqm_session_eval_seq(s, rqm_tokenizer_seq_bos(m.tok), ids + c * ctx, ctx, 0, NULL);
        cli_progress("fidelity", c + 1, n_chunks);
    }
    if (st) {
        rc = cli_fail("fidelity", st, "running the model");
        goto done;
    }
    double tot[F_N] = {0}, wtot = 0;
    if (!o.json)
        printf("attention fidelity, K %s%s / V %s%s, f32 cache forward, %zu chunks of %zu tokens, every position "
               "a query (%zu query heads)\n\n| layer | score cos | softmax KL | output cos | top-1 | top-5 |\n"
               "|---:|---:|---:|---:|---:|---:|\n",
               f.lq ? "per layer (--kv-bits)" : kv.k, m.key_basis ? " + basis" : "", f.lq ? "per layer" : kv.v,
               f.centre ? " (keys centred, position 0 exact)" : "", n_chunks, ctx, H);
    else
        printf("{\"type_k\": \"%s\", \"type_v\": \"%s\", \"ctx\": %zu, \"chunks\": %zu, \"layers\": [\n", kv.k, kv.v,
               ctx, n_chunks);
    for (size_t l = 0; l <= L; l++) {
        /* each layer, then (l == L) the mean over layers; a metric with no
         * queries behind it is 0/0: "-" (JSON null) */
        const double *sm = l < L ? f.sum + l * F_N : tot, w = l < L ? f.weight[l] : wtot;
        char c[F_N][48];
        if (o.json) {
            static const char *const fmt[F_N] = {"%.6f", "%.6g", "%.6f", "%.5f", "%.5f"};
            for (int i = 0; i < F_N; i++) {
                const char *j = jnum(c[i], fmt[i], sm[i] / w);
                if (j != c[i]) snprintf(c[i], sizeof c[i], "%s", j);
            }
            if (l < L) printf("  {\"layer\": %zu, \"window\": %zu, ", l, rqm_llama_layer_window(m.llama, (int)l));
            else printf("], \"mean\": {");
            printf("\"score_cosine\": %s, \"softmax_kl\": %s, \"output_cosine\": %s, \"top1\": %s, \"top5\": %s}%s\n",
                   c[F_SCOS], c[F_KL], c[F_OCOS], c[F_TOP1], c[F_TOP5], l + 1 < L ? "," : l == L ? "}" : "");
        } else {
            static const char *const fmt[F_N] = {"%.5f", "%.5f", "%.5f", "%.4f", "%.4f"};
            for (int i = 0; i < F_N; i++) cli_num(c[i], sizeof c[i], fmt[i], sm[i] / w);
            if (l < L) printf("| %zu%s ", l, rqm_llama_layer_window(m.llama, (int)l) ? " (local)" : "");
            else printf("| mean ");
            printf("| %s | %s | %s | %s | %s |\n", c[F_SCOS], c[F_KL], c[F_OCOS], c[F_TOP1], c[F_TOP5]);
        }
        if (l < L) {
            for (int i = 0; i < F_N; i++) tot[i] += sm[i];
            wtot += w;
        }
    }
done:
    if (st && !rc) rc = cli_fail("fidelity", st, "setting up");
    rqm_session_free(s);
    rq_quantizer_free(f.qk), rq_quantizer_free(f.qv);
    for (size_t l = 0; f.lq && l < 2 * L; l++) rq_quantizer_free(f.lq[l]);
    free(f.lq), free(f.mu);
    cli_budget_free(&bud);
    free(f.keys), free(f.values), free(f.keys_hat), free(f.values_hat), free(f.blk), free(f.qbuf), free(f.n_ctx), free(f.sum), free(f.weight);
    free(ids);
    model_free(&m);
    return rc;
}

/* ----------------------------------------------------------------------- */
/* dump-kv                                                                 */

typedef struct {
    const model *m;
    int want[256];
    size_t n_tokens;
    float *q, *k, *v; /* [layer][heads][n_tokens][D] for wanted layers */
} dump_state;

static rq_status dump_observe(void *user, const rqm_layer_event *ev) {
    dump_state *d = user;
    const rqm_llama_hparams *hp = d->m->hp;
    if (ev->layer >= 256 || d->want[ev->layer] < 0) return RQ_OK;
    const size_t D = (size_t)hp->head_dim, H = (size_t)hp->n_heads, G = (size_t)hp->n_kv_heads;
    const size_t slot = (size_t)d->want[ev->layer], N = d->n_tokens;
    for (size_t t = 0; t < ev->n_tokens; t++) {
        const size_t p = ev->pos0 + t;
        for (size_t h = 0; h < H; h++)
            memcpy(d->q + ((slot * H + h) * N + p) * D, ev->q + (t * H + h) * D, D * sizeof(float));
        for (size_t g = 0; g < G; g++) {
            memcpy(d->k + ((slot * G + g) * N + p) * D, ev->k + (t * G + g) * D, D * sizeof(float));
            memcpy(d->v + ((slot * G + g) * N + p) * D, ev->v + (t * G + g) * D, D * sizeof(float));
        }
    }
    return RQ_OK;
}

/* DIR/layerNN_WHAT.npy (its name left in path[4200]); an f16 file holds the
 * floats rounded to f16. */
static rq_status write_npy(const char *dir, long layer, const char *what, float *x, size_t h, size_t n, size_t d,
                           int f16, char *path) {
    snprintf(path, 4200, "%s/layer%02ld_%s.npy", dir, layer, what);
    const size_t shape[3] = {h, n, d};
    if (f16) return rq_npy_write_f16(path, x, 3, shape);
    return rq_npy_write(path, x, 3, shape);
}

/* s as a JSON string literal. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* DIR/manifest.json, written last and atomically (a temporary file renamed
 * over it): what the dump holds. Its path in path[4200]; 0, or -1 with errno. */
static int write_manifest(const mopts *o, const char *model_path, const long *layers, size_t n_layers,
                          const size_t shape_q[3], const size_t shape_kv[3], char *path) {
    char tmp[4300], text[4096];
    snprintf(path, 4200, "%s/manifest.json", o->out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    fprintf(f, "{\"tool\": \"rotorquant %s\", \"model\": ", rq_version_str());
    json_str(f, model_path);
    fprintf(f, ", \"text\": ");
    json_str(f, o->text ? o->text : rqm_default_path(RQM_PATH_TEXT, text, sizeof text));
    fprintf(f, ", \"offset\": %ld, \"n_tokens\": %ld, \"dtype\": \"%s\", \"post_rope\": true,\n", o->offset,
            o->n_tokens, o->f16 ? "float16" : "float32");
    fprintf(f, " \"shape_q\": [%zu, %zu, %zu], \"shape_kv\": [%zu, %zu, %zu],\n \"layers\": [", shape_q[0],
            shape_q[1], shape_q[2], shape_kv[0], shape_kv[1], shape_kv[2]);
    for (size_t i = 0; i < n_layers; i++) fprintf(f, "%s%ld", i ? ", " : "", layers[i]);
    fprintf(f, "],\n \"files\": [");
    for (size_t i = 0; i < n_layers; i++)
        fprintf(f, "%s\"layer%02ld_q.npy\", \"layer%02ld_k.npy\", \"layer%02ld_v.npy\"", i ? ", " : "", layers[i],
                layers[i], layers[i]);
    fprintf(f, "]}\n");
    int ok = !ferror(f);
    ok = fflush(f) == 0 && ok;
    ok = ok && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        const int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

int cmd_dump_kv(int argc, char **argv) {
    mopts o;
    if (parse("dump-kv", DUMP, argc, argv, &o)) return 2;
    if (!o.out_dir) return cli_usage("dump-kv", "missing -o DIR");
    if (out_dir_ready("dump-kv", o.out_dir)) return 1;
    model m;
    if (model_open("dump-kv", &o, &m)) return 1;
    const rqm_llama_hparams *hp = m.hp;
    dump_state d;
    memset(&d, 0, sizeof d);
    d.m = &m;
    for (int i = 0; i < 256; i++) d.want[i] = -1;
    long layers[256];
    size_t n_layers = 0;
    char lbuf[1024];
    snprintf(lbuf, sizeof lbuf, "%s", o.layers);
    int bad = 0;
    for (char *p = strtok(lbuf, ","); p && !bad; p = strtok(NULL, ",")) {
        long l;
        bad = parse_long(p, 0, hp->n_layers - 1, &l) || n_layers >= 256 || d.want[l] >= 0;
        if (!bad) d.want[l] = (int)n_layers, layers[n_layers++] = l;
    }
    if (bad || !n_layers) {
        model_free(&m);
        return cli_usage("dump-kv", "--layers '%s': a comma list of distinct layer numbers of the model (0 .. %d)",
                         o.layers, hp->n_layers - 1);
    }
    size_t n_ids = 0;
    int32_t *ids = text_ids("dump-kv", &m, o.text, &n_ids);
    int rc = 1;
    rqm_session *s = NULL;
    rq_status st = RQ_OK;
    if (!ids) goto done;
    if ((size_t)o.offset + (size_t)o.n_tokens > n_ids || o.n_tokens > hp->n_ctx_train) {
        cli_failf("dump-kv", RQ_OK, "--offset + --n-tokens (%ld) exceeds the text (%zu tokens) or the model's context (%d)",
                  o.offset + o.n_tokens, n_ids, hp->n_ctx_train);
        goto done;
    }
    const size_t N = (size_t)o.n_tokens, D = (size_t)hp->head_dim, H = (size_t)hp->n_heads;
    const size_t G = (size_t)hp->n_kv_heads;
    d.n_tokens = N;
    d.q = malloc(n_layers * H * N * D * sizeof(float));
    d.k = malloc(n_layers * G * N * D * sizeof(float));
    d.v = malloc(n_layers * G * N * D * sizeof(float));
    st = d.q && d.k && d.v ? RQ_OK : RQ_ERR_NOMEM;
    if (!st) st = session_new(&s, &m, "f32", "f32", (long)N, &o, dump_observe, &d);
    if (!st) st = rqm_session_eval_seq(s, rqm_tokenizer_seq_bos(m.tok), ids + o.offset, N, 0, NULL);
    if (st) {
        cli_fail("dump-kv", st, "running the model");
        goto done;
    }
    char path[4200];
    for (size_t i = 0; i < n_layers && !st; i++) {
        if (!st) st = write_npy(o.out_dir, layers[i], "q", d.q + i * H * N * D, H, N, D, o.f16, path);
        if (!st) st = write_npy(o.out_dir, layers[i], "k", d.k + i * G * N * D, G, N, D, o.f16, path);
        if (!st) st = write_npy(o.out_dir, layers[i], "v", d.v + i * G * N * D, G, N, D, o.f16, path);
    }
    if (st) {
        cli_failf("dump-kv", st, "writing %s", path);
        goto done;
    }
    const size_t shape_q[3] = {H, N, D}, shape_kv[3] = {G, N, D};
    if (write_manifest(&o, m.model_path, layers, n_layers, shape_q, shape_kv, path)) {
        cli_failf("dump-kv", RQ_OK, "writing %s: %s", path, strerror(errno));
        goto done;
    }
    printf("wrote %zu layers × {q (%zu, %zu, %zu), k and v (%zu, %zu, %zu)} to %s/layerNN_{q,k,v}.npy "
           "(post-RoPE, tokens %ld..%ld)\n",
           n_layers, H, N, D, G, N, D, o.out_dir, o.offset, o.offset + o.n_tokens - 1);
    printf("manifest: %s\n", path);
    rc = 0;
done:
    rqm_session_free(s);
    free(d.q), free(d.k), free(d.v), free(ids);
    model_free(&m);
    return rc;
}

/* ----------------------------------------------------------------------- */
/* calibrate: a key basis per layer and KV head (model/calib.h) from the   */
/* model's keys and queries on text it writes itself (sequences of --ctx   */
/* tokens sampled from the first token), or on -f TEXT from --offset in    */
/* chunks of --ctx; f32 cache throughout. The positions matter (RoPE turns */
/* keys with position): calibrate at the context length you will run.     */

int cmd_calibrate(int argc, char **argv) {
    mopts o;
    if (parse("calibrate", CAL, argc, argv, &o)) return 2;
    if (!o.out_dir) return cli_usage("calibrate", "missing -o BASIS.gguf");
    if (out_file_ready("calibrate", o.out_dir)) return 1;
    const double t_start = now_s();
    model m;
    if (model_open("calibrate", &o, &m)) return 1;
    const rqm_llama_hparams *hp = m.hp;
    rqm_calib *cal = NULL;
    rqm_session *s = NULL;
    int32_t *ids = NULL;
    const size_t N = (size_t)o.n_tokens;
    /* the positions calibrated: 0 .. ctx_used − 1 (sequences of --ctx tokens) */
    size_t ctx_used = (size_t)(o.ctx < hp->n_ctx_train ? o.ctx : hp->n_ctx_train);
    if (ctx_used > N) ctx_used = N;
    rqm_key_basis_info info;
    memset(&info, 0, sizeof info);
    float *logits = malloc((size_t)hp->n_vocab * sizeof *logits), *basis = NULL;
    int rc = 1;
    rq_status st = logits ? rqm_calib_init(&cal, hp, ctx_used, (size_t)o.ranges) : RQ_ERR_NOMEM;
    if (!st) {
        const size_t *start;
        info.n_ranges = rqm_calib_ranges(cal, &start);
        memcpy(info.start, start, info.n_ranges * sizeof *start);
        basis = malloc((size_t)hp->n_layers * (size_t)hp->n_kv_heads * info.n_ranges * (size_t)hp->head_dim *
                       (size_t)hp->head_dim * sizeof(float));
        if (!basis) st = RQ_ERR_NOMEM;
    }
    if (!st && o.text) { /* a text, in chunks of --ctx */
        size_t n_ids = 0;
        if (!(ids = text_ids("calibrate", &m, o.text, &n_ids))) goto done;
        if ((size_t)o.offset + N > n_ids) {
            rc = cli_failf("calibrate", RQ_OK, "--offset + --n-tokens (%ld) exceeds the text (%zu tokens)",
                           o.offset + o.n_tokens, n_ids);
            goto done;
        }
        const size_t ctx = ctx_used;
        st = session_new(&s, &m, "f32", "f32", (long)ctx, &o, rqm_calib_observe, cal);
        for (size_t p = 0; p < N && !st; p += ctx) {
            rqm_session_reset(s);
            st = rqm_session_eval_seq(s, rqm_tokenizer_seq_bos(m.tok), ids + o.offset + p, N - p < ctx ? N - p : ctx, 0,
                                      NULL);
            cli_progress("calibrate", p + ctx < N ? p + ctx : N, N);
        }
    } else if (!st) { /* the model's own text: sequences of --ctx tokens sampled from the first token */
        const size_t ctx = ctx_used;
        const int32_t first = rqm_tokenizer_bos(m.tok) >= 0 ? rqm_tokenizer_bos(m.tok) : rqm_tokenizer_eos(m.tok);
        rq_rng rng;
        rq_rng_seed(&rng, o.seed);
        st = session_new(&s, &m, "f32", "f32", (long)ctx, &o, rqm_calib_observe, cal);
        int32_t tok = first;
        for (size_t i = 0; i < N && !st; i++) {
            if (i % ctx == 0) rqm_session_reset(s), tok = first;
            if (!(st = rqm_session_eval(s, &tok, 1, 0, logits)))
                tok = rqm_sample(logits, (size_t)hp->n_vocab, o.temp, &rng);
            if ((i + 1) % 64 == 0 || i + 1 == N) cli_progress("calibrate", i + 1, N);
        }
    }
    if (!st) st = rqm_calib_fit(cal, basis);
    info.n_ctx = (long)ctx_used, info.n_tokens = (long)rqm_calib_tokens(cal), info.self_generated = !o.text;
    if (st) {
        rc = cli_fail("calibrate", st, "running the model");
        goto done;
    }
    if ((st = rqm_key_basis_save(o.out_dir, hp, basis, &info))) {
        rc = cli_failf("calibrate", st, "writing %s", o.out_dir);
        goto done;
    }
    printf("key bases of %d layers × %d KV heads × %zu position ranges (%d×%d) from %zu tokens of %s at positions "
           "0..%zu (serves contexts up to %zu), written to %s in %.0f s\n",
           hp->n_layers, hp->n_kv_heads, info.n_ranges, hp->head_dim, hp->head_dim, rqm_calib_tokens(cal),
           o.text ? o.text : "the model's own sampled text", ctx_used - 1, ctx_used, o.out_dir, now_s() - t_start);
    rc = 0;
done:
    rqm_session_free(s);
    rqm_calib_free(cal);
    free(logits), free(basis), free(ids);
    model_free(&m);
    return rc;
}
