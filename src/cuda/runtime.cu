/*
 * runtime.cu — the small host API around the CUDA runtime: whether a device
 * is there, device memory, copies, and the last CUDA error's text. Lets C
 * callers (tests/test_cuda.c, the CLI) use the GPU path without the CUDA
 * headers.
 */
#include <stdio.h>
#include <string.h>

extern "C" {
#include "internal.h"
}
#include "rq_cuda.cuh"
#include "rq_cuda_host.h"

static char g_err[160];

int rq__cuda_check(cudaError_t e) {
    if (e == cudaSuccess) return 0;
    snprintf(g_err, sizeof g_err, "%s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
    return 1;
}

extern "C" const char *rq_cuda_error_str(void) { return g_err; }

extern "C" int rq_cuda_available(void) {
    static int cached = -1;
    if (cached < 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        cached = (e == cudaSuccess && n > 0) ? 1 : 0;
        if (e != cudaSuccess) {
            rq__cuda_check(e);
            (void)cudaGetLastError(); /* clear the sticky "no device" error */
        }
    }
    return cached;
}

extern "C" rq_status rq_cuda_device_name(char *buf, size_t n) {
    if (!buf || !n) return RQ_ERR_INVALID_ARG;
    buf[0] = 0;
    if (!rq_cuda_available()) return RQ_ERR_UNSUPPORTED;
    int dev = 0;
    cudaDeviceProp p;
    if (rq__cuda_check(cudaGetDevice(&dev)) || rq__cuda_check(cudaGetDeviceProperties(&p, dev)))
        return RQ_ERR_UNSUPPORTED;
    snprintf(buf, n, "%s (sm_%d%d, %d SMs, %.1f GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return RQ_OK;
}

extern "C" rq_status rq_cuda_malloc(void **d_ptr, size_t bytes) {
    if (!d_ptr) return RQ_ERR_INVALID_ARG;
    *d_ptr = NULL;
    if (!rq_cuda_available()) return RQ_ERR_UNSUPPORTED;
    if (rq__cuda_check(cudaMalloc(d_ptr, bytes ? bytes : 1))) {
        *d_ptr = NULL;
        return RQ_ERR_NOMEM;
    }
    return RQ_OK;
}

extern "C" void rq_cuda_free(void *d_ptr) {
    if (d_ptr) cudaFree(d_ptr);
}

extern "C" rq_status rq_cuda_upload(void *d_dst, const void *src, size_t bytes) {
    if (bytes && (!d_dst || !src)) return RQ_ERR_INVALID_ARG;
    if (!bytes) return RQ_OK;
    return rq__cuda_check(cudaMemcpy(d_dst, src, bytes, cudaMemcpyHostToDevice)) ? RQ_ERR_UNSUPPORTED : RQ_OK;
}

extern "C" rq_status rq_cuda_download(void *dst, const void *d_src, size_t bytes) {
    if (bytes && (!dst || !d_src)) return RQ_ERR_INVALID_ARG;
    if (!bytes) return RQ_OK;
    return rq__cuda_check(cudaMemcpy(dst, d_src, bytes, cudaMemcpyDeviceToHost)) ? RQ_ERR_UNSUPPORTED : RQ_OK;
}

extern "C" rq_status rq_cuda_memset(void *d_dst, int value, size_t bytes) {
    if (bytes && !d_dst) return RQ_ERR_INVALID_ARG;
    if (!bytes) return RQ_OK;
    return rq__cuda_check(cudaMemset(d_dst, value, bytes)) ? RQ_ERR_UNSUPPORTED : RQ_OK;
}

extern "C" rq_status rq_cuda_synchronize(void) {
    if (!rq_cuda_available()) return RQ_ERR_UNSUPPORTED;
    if (rq__cuda_check(cudaDeviceSynchronize())) return RQ_ERR_UNSUPPORTED;
    return rq__cuda_check(cudaGetLastError()) ? RQ_ERR_UNSUPPORTED : RQ_OK;
}
