/* cpu.h - what the CPU backend's files share (runtime/src/cpu/): threads and sgemm, host memory, the convolution
 * paths and their choice, oneDNN, the derived-weights cache, the spatial kernel. Not seen outside cpu/. */
#ifndef DPL_CPU_H
#define DPL_CPU_H
#include "internal.h"

/* CPU threads and sgemm (cpu/gemm_cpu.c): OpenBLAS single-threaded inside the OpenMP threads; dpl_cpu_sgemm is
 * row-major cblas_sgemm split over the threads (serial when called inside a parallel region) */
void dpl_cpu_blas_init(void);
int dpl_cpu_threads(void);
void dpl_cpu_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* Host blocks for the CPU backend (cpu/host_cache.c): 64-byte aligned; large freed blocks are cached for reuse */
void *dpl_host_alloc(size_t bytes);
void dpl_host_free(void *p, size_t bytes);
void dpl_host_cache_release(void);
/* CPU convolution kernels (cpu/conv_cpu.c) */
int dpl_cpu_conv2d_forward(dpl_device *dev, const dpl_conv2d_args *a);
int dpl_cpu_conv2d_backward_input(dpl_device *dev, const dpl_conv2d_args *a);
int dpl_cpu_conv2d_backward_weight(dpl_device *dev, const dpl_conv2d_args *a);
/* batches of small images as one channels-last GEMM (cpu/conv_fold_cpu.c): images per fold, 0 when it does not
 * apply */
int64_t dpl_cpu_conv_fold_images(const dpl_conv2d_args *a);
int dpl_cpu_conv_fold_forward(const dpl_conv2d_args *a, int64_t images);
int dpl_cpu_conv_fold_backward_input(const dpl_conv2d_args *a, int64_t images);
int dpl_cpu_conv_fold_backward_weight(const dpl_conv2d_args *a, int64_t images);
/* 3x3 stride-1 convolutions by Winograd F(2x2, 3x3) (cpu/winograd_cpu.c); conv_cpu.c asks whether it applies */
bool dpl_cpu_winograd_forward_applies(const dpl_conv2d_args *a);
/* convolution forward, input and weight gradient through oneDNN when dpl is built with it (cpu/dnnl_cpu.c): DPL_OK,
 * an error, or DPL_CPU_NOT_HANDLED when it does not apply (not built in, DPL_CPU_DNNL=0, a shape oneDNN cannot do) */
enum { DPL_CPU_NOT_HANDLED = -1 };
bool dpl_cpu_dnnl_enabled(void);
void dpl_cpu_dnnl_describe(char *out, size_t size);  /* "oneDNN 2.6.3 convolutions and activations", "no oneDNN" */
void dpl_cpu_dnnl_release(void);                     /* its plans, engine and stream, freed */
/* out = op(in) over n contiguous floats (in == out allowed) for DPL_SIGMOID, DPL_SILU and DPL_TANH: DPL_OK,
 * an error, or DPL_CPU_NOT_HANDLED (another op, too few elements, not built in, DPL_CPU_DNNL=0) */
int dpl_cpu_dnnl_unary(int op, int64_t n, float *out, const float *in);
int dpl_cpu_conv_dnnl_forward(const dpl_conv2d_args *a);
int dpl_cpu_conv_dnnl_backward_input(const dpl_conv2d_args *a);
int dpl_cpu_conv_dnnl_backward_weight(const dpl_conv2d_args *a);
bool dpl_cpu_winograd_backward_input_applies(const dpl_conv2d_args *a);
int dpl_cpu_winograd_forward(const dpl_conv2d_args *a);
int dpl_cpu_winograd_backward_input(const dpl_conv2d_args *a);
/* Data derived from a weight tensor, cached per storage, kind, variant and size while the storage's version stays
 * (cpu/kernel_cache.c): derive(W, out, ctx) fills out (floats long, 64-byte aligned) from the weights; use(data, ctx)
 * runs with it (under the cache's lock) and its result is returned. `variant` tells apart layouts of one kind (0 if
 * the kind has one). */
enum { DPL_DERIVED_WINOGRAD = 1, DPL_DERIVED_WINOGRAD_T = 2, DPL_DERIVED_FOLD = 3, DPL_DERIVED_DNNL = 4 };
typedef void (*dpl_derive_fn)(const float *W, float *out, void *ctx);
typedef int (*dpl_use_fn)(const float *data, void *ctx);
int dpl_cpu_with_derived(const dpl_tensor *w, int kind, uint64_t variant, size_t floats, dpl_derive_fn derive,
                         dpl_use_fn use, void *ctx);
void dpl_cpu_kernel_cache_release(void);   /* all cached derived data, freed */
/* batch normalization with the batch's statistics (cpu/norm_cpu.c) */
int dpl_cpu_batch_norm_forward(dpl_device *dev, const dpl_batch_norm_args *a);
int dpl_cpu_batch_norm_backward(dpl_device *dev, const dpl_batch_norm_args *a);
/* CPU spatial kernel (cpu/spatial_cpu.c) */
int dpl_cpu_spatial2d(dpl_device *dev, const dpl_spatial_args *a);

#endif
