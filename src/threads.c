/*
 * threads.c — the one pool of worker threads behind every parallel loop:
 * the cache's attention (kvcache.c) and the model's matrix products
 * (model/ggml.c) share it, so a forward pass that alternates between them
 * never has two sets of threads competing for the same cores.
 *
 * A call posts a job (generation++), works on it itself, and waits until
 * every task is done; tasks are handed out through an atomic counter. A
 * worker takes part only if it joins the job while it is open (one atomic
 * word: generation, closed bit, joined count); once the caller has run out
 * of tasks it closes the job and waits only for the workers that joined —
 * never for one that has not been scheduled yet (on an oversubscribed
 * machine that wait cost more than the job), which then finds the job
 * closed and leaves it alone.
 * Waking a sleeping thread costs tens of microseconds (more in a VM) — as
 * much as a whole decode-size product or one layer's attention — so
 * workers spin for SPIN_NS before they sleep, and the caller spins before
 * it waits: back-to-back calls (a dozen per layer) never sleep. g_call_mu
 * makes concurrent callers take turns; a call made from inside a task runs
 * inline, so nesting cannot deadlock.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define MAX_WORKERS 63
#define SPIN_NS 100000         /* a worker's spin before it sleeps: 0.1 ms */
#define CALLER_SPIN_NS 1000000 /* the caller's, waiting for the last tasks */

static pthread_mutex_t g_call_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int t_in_task; /* this thread is running a task */

static struct {
    pthread_mutex_t mu; /* guards the sleeping side: cv_work, cv_done */
    pthread_cond_t cv_work, cv_done;
    pthread_t threads[MAX_WORKERS];
    uint64_t birth[MAX_WORKERS]; /* `posted` when the worker was created */
    int n_workers; /* touched only with g_call_mu held */
    /* the job: written before `posted` is released, read only by workers
     * that joined it, not rewritten until every one of them has left it */
    rq_task_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next_task;
    /* generation << 32 | JOIN_CLOSED | workers joined and not yet done */
    atomic_uint_fast64_t join;
    /* generation << 8 | n_helpers (workers 0..n_helpers−1 take part), one
     * word, so a worker learns whether it is in the job it sees */
    atomic_uint_fast64_t posted;
    atomic_int stop;
} g_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv_work = PTHREAD_COND_INITIALIZER, .cv_done = PTHREAD_COND_INITIALIZER};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spins until done(arg) or `ns` have passed; returns done(arg). */
static int spin_until(int (*done)(uint64_t), uint64_t arg, uint64_t ns) {
    uint64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        if (done(arg)) return 1;
        if ((i & 63) == 63) { /* the clock costs more than a pause */
            uint64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > ns) return done(arg);
        }
        cpu_relax();
    }
}

static int new_job_or_stop(uint64_t seen) {
    return atomic_load_explicit(&g_pool.posted, memory_order_acquire) != seen ||
           atomic_load_explicit(&g_pool.stop, memory_order_acquire);
}

#define JOIN_CLOSED (1u << 31)
#define JOIN_COUNT 0x7fffffffu

/* Every worker that joined the (closed) job has left it. */
static int helpers_left(uint64_t unused) {
    (void)unused;
    return (atomic_load_explicit(&g_pool.join, memory_order_acquire) & JOIN_COUNT) == 0;
}

/* Joins job `gen` if it is still open; 1 if joined. */
static int join_job(uint64_t gen) {
    uint_fast64_t w = atomic_load_explicit(&g_pool.join, memory_order_acquire);
    while (w >> 32 == gen && !(w & JOIN_CLOSED))
        if (atomic_compare_exchange_weak_explicit(&g_pool.join, &w, w + 1, memory_order_acq_rel, memory_order_acquire))
            return 1;
    return 0;
}

/* Takes tasks until none is left; returns how many this thread ran. */
static int run_tasks(rq_task_fn fn, void *ctx, int n_tasks) {
    int n = 0;
    t_in_task = 1;
    for (;;) {
        int t = atomic_fetch_add_explicit(&g_pool.next_task, 1, memory_order_relaxed);
        if (t >= n_tasks) break;
        fn(ctx, t);
        n++;
    }
    t_in_task = 0;
    return n;
}

static void *worker_main(void *arg) {
    const int id = (int)(intptr_t)arg;
    /* not `posted` now: a job may have been posted before this thread ran */
    uint64_t seen = g_pool.birth[id];
    for (;;) {
        if (!spin_until(new_job_or_stop, seen, SPIN_NS)) {
            pthread_mutex_lock(&g_pool.mu);
            while (!new_job_or_stop(seen)) pthread_cond_wait(&g_pool.cv_work, &g_pool.mu);
            pthread_mutex_unlock(&g_pool.mu);
        }
        if (atomic_load_explicit(&g_pool.stop, memory_order_acquire)) break;
        seen = atomic_load_explicit(&g_pool.posted, memory_order_acquire);
        if (id >= (int)(seen & 0xff) || !join_job(seen >> 8)) continue;
        run_tasks(g_pool.fn, g_pool.ctx, g_pool.n_tasks);
        const uint_fast64_t w = atomic_fetch_sub_explicit(&g_pool.join, 1, memory_order_acq_rel);
        if ((w & JOIN_CLOSED) && (w & JOIN_COUNT) == 1) {
            pthread_mutex_lock(&g_pool.mu); /* the caller may be about to sleep */
            pthread_cond_signal(&g_pool.cv_done);
            pthread_mutex_unlock(&g_pool.mu);
        }
    }
    return NULL;
}

/* Workers running (called with g_call_mu held); returns how many. */
static int pool_grow(int want) {
    while (g_pool.n_workers < want && g_pool.n_workers < MAX_WORKERS) {
        const int id = g_pool.n_workers;
        g_pool.birth[id] = atomic_load_explicit(&g_pool.posted, memory_order_relaxed);
        if (pthread_create(&g_pool.threads[id], NULL, worker_main, (void *)(intptr_t)id) != 0) break;
        g_pool.n_workers = id + 1;
    }
    return g_pool.n_workers < want ? g_pool.n_workers : want;
}

void rq_parallel_for(int n_threads, int n_tasks, rq_task_fn fn, void *ctx) {
    if (n_tasks <= 0 || !fn) return;
    int helpers = n_threads - 1 < n_tasks - 1 ? n_threads - 1 : n_tasks - 1;
    if (helpers <= 0 || t_in_task) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t);
        return;
    }
    pthread_mutex_lock(&g_call_mu);
    helpers = pool_grow(helpers);
    g_pool.fn = fn, g_pool.ctx = ctx, g_pool.n_tasks = n_tasks;
    atomic_store_explicit(&g_pool.next_task, 0, memory_order_relaxed);
    pthread_mutex_lock(&g_pool.mu); /* so a worker between its check and its wait sees the broadcast */
    const uint64_t gen = ((atomic_load_explicit(&g_pool.posted, memory_order_relaxed) >> 8) + 1) & 0xffffffffu;
    atomic_store_explicit(&g_pool.join, (uint_fast64_t)gen << 32, memory_order_release);
    atomic_store_explicit(&g_pool.posted, gen << 8 | (uint64_t)helpers, memory_order_release);
    pthread_cond_broadcast(&g_pool.cv_work);
    pthread_mutex_unlock(&g_pool.mu);

    run_tasks(fn, ctx, n_tasks); /* returns when every task is taken */
    /* no one joins from here on; the tasks still running belong to workers
     * that joined, and a task is done once its worker has left */
    atomic_fetch_or_explicit(&g_pool.join, JOIN_CLOSED, memory_order_acq_rel);
    if (!spin_until(helpers_left, 0, CALLER_SPIN_NS)) {
        pthread_mutex_lock(&g_pool.mu);
        while (!helpers_left(0)) pthread_cond_wait(&g_pool.cv_done, &g_pool.mu);
        pthread_mutex_unlock(&g_pool.mu);
    }
    pthread_mutex_unlock(&g_call_mu);
}

void rq_threads_shutdown(void) {
    pthread_mutex_lock(&g_call_mu);
    pthread_mutex_lock(&g_pool.mu);
    atomic_store(&g_pool.stop, 1);
    pthread_cond_broadcast(&g_pool.cv_work);
    pthread_mutex_unlock(&g_pool.mu);
    for (int id = 0; id < g_pool.n_workers; id++) pthread_join(g_pool.threads[id], NULL);
    atomic_store(&g_pool.stop, 0);
    g_pool.n_workers = 0;
    pthread_mutex_unlock(&g_call_mu);
}
