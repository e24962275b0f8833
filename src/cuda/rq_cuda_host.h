/*
 * rq_cuda_host.h — host-side helpers shared by the the src/cuda .cu files
 * (never installed; the public API is the rq_cuda_* section of
 * include/rotorquant.h).
 */
#ifndef RQ_CUDA_HOST_H
#define RQ_CUDA_HOST_H

#include <cuda_runtime.h>

/* Records a failed CUDA call (rq_cuda_error_str names it); returns 1 on
 * failure, 0 on success. */
int rq__cuda_check(cudaError_t e);
/* Multiprocessors of the current device (cached; 1 if unknown). */
int rq__cuda_num_sms(void);
/* Device description of a host rotation; arrays are uploaded and owned by g. */
rq_status rq__cuda_dev_rot(rq_cuda_quantizer *g, const rq_rotation *rot, rq_dev_rot *R);

#endif
