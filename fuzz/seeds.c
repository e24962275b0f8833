/* seeds.c — writes the seed corpora of the fuzz harnesses into DIR/NAME/
 * (fuzz/corpus is its committed output: `make fuzz-seeds`). Each seed is a
 * small valid input, so the fuzzers start past the format checks:
 *   fuzz_gguf       a tiny llama GGUF (1 layer, 8-wide, f32 and q8_0
 *                   tensors) with a byte-level BPE tokenizer in its metadata,
 *                   and a tiny SentencePiece vocabulary (tiny_spm.gguf)
 *   fuzz_npy        .npy files, float32 and float16, 1-D to 3-D
 *   fuzz_decode     (type, dim) selector bytes + real encoded blocks
 *   fuzz_cache      operation streams for a few configurations
 *   fuzz_tokenizer  texts: ASCII, UTF-8, control literal, invalid bytes
 *   fuzz_keybasis   a key-basis file (2 layers, 1 KV head, d = 4, 2 ranges) */
#include "../tests/gguf_build.h"
#include "rotorquant.h"
#include "rotorquant_eval.h"
#include "fuzz_seqload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *dir;

static void put(const char *target, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "seeds: cannot write %s\n", path);
        exit(1);
    }
}

static void append(unsigned char **buf, size_t *n, const void *p, size_t k) {
    *buf = realloc(*buf, *n + k);
    if (!*buf) abort();
    memcpy(*buf + *n, p, k);
    *n += k;
}

/* a GGUF array of strings (type 9: element type 8, count, (len, bytes)…) */
static void kv_strings(rqm_gguf_builder *b, const char *key, const char *const *s, size_t count) {
    unsigned char *p = NULL;
    size_t n = 0;
    uint32_t et = 8;
    uint64_t c = count;
    append(&p, &n, &et, 4);
    append(&p, &n, &c, 8);
    for (size_t i = 0; i < count; i++) {
        uint64_t l = strlen(s[i]);
        append(&p, &n, &l, 8);
        append(&p, &n, s[i], (size_t)l);
    }
    rqm_gguf_builder_kv_raw(b, key, 9, p, n);
    free(p);
}

static void gguf_seed(void) {
    enum { E = 8, V = 12, F = 16 };
    static const char *const tokens[V] = {"a", "b", "c", "d", "e", "\xC4\xA0", "ab", "cd", "\xC4\xA0" "a", "1", "2",
                                          "<|im_start|>"};
    static const char *const merges[] = {"a b", "c d", "\xC4\xA0 a"};
    float w[F * E];
    for (int i = 0; i < F * E; i++) w[i] = (float)sin(0.7 * i) * 0.3f;
    rqm_gguf_builder *b = rqm_gguf_builder_new();
    rqm_gguf_builder_kv_str(b, "general.architecture", "llama");
    rqm_gguf_builder_kv_u32(b, "llama.block_count", 1);
    rqm_gguf_builder_kv_u32(b, "llama.embedding_length", E);
    rqm_gguf_builder_kv_u32(b, "llama.feed_forward_length", F);
    rqm_gguf_builder_kv_u32(b, "llama.attention.head_count", 2);
    rqm_gguf_builder_kv_u32(b, "llama.attention.head_count_kv", 1);
    rqm_gguf_builder_kv_u32(b, "llama.context_length", 16);
    rqm_gguf_builder_kv_f32(b, "llama.rope.freq_base", 10000.0f);
    rqm_gguf_builder_kv_f32(b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    rqm_gguf_builder_kv_str(b, "tokenizer.ggml.model", "gpt2");
    rqm_gguf_builder_kv_str(b, "tokenizer.ggml.pre", "smollm");
    kv_strings(b, "tokenizer.ggml.tokens", tokens, V);
    kv_strings(b, "tokenizer.ggml.merges", merges, 3);
    rqm_gguf_builder_kv_u32(b, "tokenizer.ggml.bos_token_id", V - 1);
    rqm_gguf_builder_tensor_f32(b, "token_embd.weight", w, E, V);
    rqm_gguf_builder_tensor_f32(b, "output_norm.weight", w, E, 1);
    rqm_gguf_builder_tensor_f32(b, "blk.0.attn_norm.weight", w, E, 1);
    rqm_gguf_builder_tensor_f32(b, "blk.0.ffn_norm.weight", w, E, 1);
    rqm_gguf_builder_tensor_f32(b, "blk.0.attn_q.weight", w, E, E);
    rqm_gguf_builder_tensor_f32(b, "blk.0.attn_k.weight", w, E, E / 2);
    rqm_gguf_builder_tensor_f32(b, "blk.0.attn_v.weight", w, E, E / 2);
    rqm_gguf_builder_tensor_f32(b, "blk.0.attn_output.weight", w, E, E);
    rqm_gguf_builder_tensor_f32(b, "blk.0.ffn_gate.weight", w, E, F);
    rqm_gguf_builder_tensor_f32(b, "blk.0.ffn_up.weight", w, E, F);
    rqm_gguf_builder_tensor_f32(b, "blk.0.ffn_down.weight", w, F, E);
    size_t n;
    const void *bytes = rqm_gguf_builder_bytes(b, &n);
    put("fuzz_gguf", "tiny_llama.gguf", bytes, n);
    rqm_gguf_builder_free(b);
}

/* a tiny SentencePiece vocabulary (tokenizer.ggml.model = llama: scores,
 * token types, byte fallback <0xNN>, control and user-defined tokens) for
 * the tokenizer step of fuzz_gguf; no weights, so the model load fails */
static void spm_seed(void) {
    static const char *const named[] = {"<pad>", "<eos>", "<bos>", "\xE2\x96\x81", "a", "b", "ab",
                                        "\xE2\x96\x81\x62", "ba", "\n", "<start_of_turn>"}; /* ▁b */
    static const float named_score[] = {0, 0, 0, -3, -4, -4, -1, -2, -1, 0, 0};
    static const int32_t named_type[] = {3, 3, 3, 1, 1, 1, 1, 1, 1, 4, 3};
    enum { NN = 11, NV = NN + 256 };
    static char byte_tok[256][8];
    const char *tokens[NV];
    unsigned char *sc = NULL, *ty = NULL;
    size_t n_sc = 0, n_ty = 0;
    uint32_t et = 6;
    uint64_t cnt = NV;
    append(&sc, &n_sc, &et, 4), append(&sc, &n_sc, &cnt, 8);
    et = 5, append(&ty, &n_ty, &et, 4), append(&ty, &n_ty, &cnt, 8);
    for (int i = 0; i < NV; i++) {
        if (i >= NN) snprintf(byte_tok[i - NN], sizeof byte_tok[0], "<0x%02X>", i - NN);
        tokens[i] = i < NN ? named[i] : byte_tok[i - NN];
        const float f = i < NN ? named_score[i] : 0;
        const int32_t y = i < NN ? named_type[i] : 6;
        append(&sc, &n_sc, &f, 4), append(&ty, &n_ty, &y, 4);
    }
    rqm_gguf_builder *b = rqm_gguf_builder_new();
    rqm_gguf_builder_kv_str(b, "general.architecture", "gemma3");
    rqm_gguf_builder_kv_str(b, "tokenizer.ggml.model", "llama");
    kv_strings(b, "tokenizer.ggml.tokens", tokens, NV);
    rqm_gguf_builder_kv_raw(b, "tokenizer.ggml.scores", 9, sc, n_sc);
    rqm_gguf_builder_kv_raw(b, "tokenizer.ggml.token_type", 9, ty, n_ty);
    rqm_gguf_builder_kv_u32(b, "tokenizer.ggml.bos_token_id", 2);
    rqm_gguf_builder_kv_u32(b, "tokenizer.ggml.eos_token_id", 1);
    size_t n = 0;
    const void *bytes = rqm_gguf_builder_bytes(b, &n);
    put("fuzz_gguf", "tiny_spm.gguf", bytes, n);
    rqm_gguf_builder_free(b);
    free(sc), free(ty);
}

static void npy_seeds(void) {
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i * 0.25f - 2.0f;
    const size_t s1[1] = {24}, s2[2] = {4, 6}, s3[3] = {2, 3, 4};
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz_npy", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/fuzz_npy/f4_1d.npy", dir);
    if (rq_npy_write(path, x, 1, s1)) exit(1);
    snprintf(path, sizeof path, "%s/fuzz_npy/f4_2d.npy", dir);
    if (rq_npy_write(path, x, 2, s2)) exit(1);
    snprintf(path, sizeof path, "%s/fuzz_npy/f2_3d.npy", dir);
    if (rq_npy_write_f16(path, x, 3, s3)) exit(1);
}

/* the fuzz_decode harness's dim list, index for index */
static const int DIMS[] = {2, 3, 4, 8, 31, 32, 64, 96, 128, 256};

static void decode_seeds(void) {
    static const char *const names[] = {"turbo3", "turbo2p", "rotor3", "planar4", "iso2", "dense3p", "q8_0",
                                        "q4_0h", "f16", "turbo5"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int ti = -1;
        for (int i = 0; i < rq_type_count(); i++)
            if (!strcmp(rq_type_at(i)->name, names[k])) ti = i;
        const int di = 6; /* d = 64 */
        rq_quantizer *q;
        if (ti < 0 || rq_quantizer_init(&q, names[k], DIMS[di], NULL)) exit(1);
        float x[2 * 64];
        for (int i = 0; i < 2 * 64; i++) x[i] = (float)cos(1.3 * i) * (i % 9 == 0 ? 8.0f : 1.0f);
        size_t bpv = rq_quantizer_bytes_per_vector(q), n = 2 + 2 * bpv;
        unsigned char *buf = malloc(n);
        buf[0] = (unsigned char)ti;
        buf[1] = (unsigned char)di;
        if (rq_quantizer_encode(q, x, buf + 2, 2)) exit(1);
        char name[64];
        snprintf(name, sizeof name, "%s_d64", names[k]);
        put("fuzz_decode", name, buf, n);
        free(buf);
        rq_quantizer_free(q);
    }
}

static void cache_seeds(void) {
    /* config bytes: type_k, type_v, dim index, kv heads, page, threads, seed,
     * group; then ops (layer, op, args…) — see fuzz_cache.c */
    for (int s = 0; s < 4; s++) {
        unsigned char b[600];
        for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(i * 131 + s * 17 + (i >> 3));
        b[0] = (unsigned char)(3 * s + 1);
        b[1] = (unsigned char)(5 * s + 2);
        b[2] = (unsigned char)(s + 2);
        b[8] = 0, b[9] = 0;  /* layer 0, append */
        b[10] = 20;          /* 21 tokens */
        b[11] = 7;
        char name[32];
        snprintf(name, sizeof name, "ops_%d", s);
        put("fuzz_cache", name, b, sizeof b);
    }
}

/* fuzz_seqload: a saved cache of each configuration (two sequences, one a
 * fork), after the configuration byte */
static void seqload_seeds(void) {
    for (size_t ci = 0; ci < SEQLOAD_N_CONFIGS; ci++) {
        const seqload_config *sc = &SEQLOAD_CONFIGS[ci];
        rq_cache *c = seqload_cache(sc);
        if (!c) continue;
        float k[30 * 2 * 64], v[30 * 2 * 64];
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
            k[i] = (float)((i * 13) % 17) / 4 - 2, v[i] = (float)((i * 7) % 19) / 5 - 1.9f;
        for (int l = 0; l < sc->n_layers; l++) rq_cache_append(c, l, k, v, 23);
        rq_cache_seq_fork(c, 0, 3);
        for (int l = 0; l < sc->n_layers; l++) rq_cache_seq_append(c, 3, l, k, v, 2);
        size_t n = 0;
        rq_cache_seq_save_mem(c, RQ_SEQ_ALL, NULL, 0, &n);
        unsigned char *b = malloc(n + 1);
        if (b && !rq_cache_seq_save_mem(c, RQ_SEQ_ALL, b + 1, n, &n)) {
            b[0] = (unsigned char)ci;
            char name[32];
            snprintf(name, sizeof name, "saved_%zu", ci);
            put("fuzz_seqload", name, b, n + 1);
        }
        free(b);
        rq_cache_free(c);
    }
}

static void tokenizer_seeds(void) {
    static const char *const texts[] = {
        "Hello, world! It's 2026 and the cat's   whitespace\t\n\n runs.",
        "na\xC3\xAFve caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80 12345",
        "<|im_start|>user\nhi<|im_start|>",
        "\xFF\xFE\x80 broken \xC3 utf-8 \xE2\x82",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "text_%zu", i);
        put("fuzz_tokenizer", name, texts[i], strlen(texts[i]));
    }
}

static void keybasis_seed(void) {
    rq_key_basis_info info = {.n_layers = 2, .n_kv_heads = 1, .head_dim = 4, .n_ranges = 2, .start = {0, 8},
                              .n_ctx = 16, .n_tokens = 16, .self_generated = 1};
    float b[2 * 2 * 16];
    for (int i = 0; i < 2 * 2 * 16; i++) b[i] = ((i % 16) % 5 == 0 ? 1.0f : 0.0f) + 0.01f * (float)(i % 7);
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz_keybasis", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/fuzz_keybasis/basis.gguf", dir);
    if (rq_key_basis_save(path, &info, b)) exit(1);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seeds DIR\n");
        return 2;
    }
    dir = argv[1];
    mkdir(dir, 0755);
    gguf_seed();
    spm_seed();
    npy_seeds();
    decode_seeds();
    cache_seeds();
    tokenizer_seeds();
    keybasis_seed();
    seqload_seeds();
    return 0;
}
