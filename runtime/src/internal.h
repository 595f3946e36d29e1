/* internal.h - structures shared by the runtime's files (never seen by users or by the Lua binding). */
#ifndef DPL_INTERNAL_H
#define DPL_INTERNAL_H

#include "dpl.h"
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define DPL_UNUSED(x) ((void)(x))

/* ---- errors (error.c) ------------------------------------------------------------------------------------------ */
/* Records an error for dpl_last_error() and returns its status, so callers can `return dpl_fail(...)`. */
int dpl_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current error message with "<fn>: " when it does not already name a function. */
void dpl_error_prefix(const char *fn);
/* "[2, 3, 4]" into buf (for error messages). */
const char *dpl_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);
/* Bytes read from a file (a tensor name, a key, a zip member) made safe to quote in a message: every byte outside
 * printable ASCII, and the quote and backslash, becomes \xNN, so a hostile file cannot send escape sequences to the
 * user's terminal; longer than fits in buf, it ends with "...". Returns buf. */
const char *dpl_quote(char *buf, size_t cap, const char *s, size_t len);
/* dpl_quote of a NUL-terminated string into a buffer of DPL_QUOTE_CAP bytes */
enum { DPL_QUOTE_CAP = 256 };
#define DPL_QUOTE(buf, s) dpl_quote((buf), sizeof(buf), (s), strlen(s))

/* ---- argument checks shared by the ops (ops/checks.c) ---------------------------------------------------------- */
/* t is non-NULL and 4-D; `layout` names its dims in the message ("N x C x H x W") */
int dpl_check_4d(const char *fn, const char *what, const dpl_tensor *t, const char *layout);
/* a shape argument (input_size, weight_size): 4 sizes, none negative */
int dpl_check_shape_arg(const char *fn, const char *what, int ndim, const int64_t *shape);
/* a and b (named na, nb in the message) are on the same device */
int dpl_check_same_device(const char *fn, const dpl_tensor *a, const char *na, const dpl_tensor *b, const char *nb);

/* ---- background loader (io/loader.c) --------------------------------------------------------------------------- */
/* Stops every loader's threads (queued files fail, files being decoded finish); dpl_shutdown calls it first. */
void dpl_loader_stop_all(void);

/* ---- storage and tensors --------------------------------------------------------------------------------------- */
struct dpl_vk_allocation;

typedef struct dpl_storage {
  int refcount;
  dpl_device *dev;
  size_t bytes;
  float *host;                       /* CPU: the data. Vulkan: the mapped memory when host-visible, else NULL */
  struct dpl_vk_allocation *vk;      /* Vulkan only */
  uint64_t last_use_serial;          /* Vulkan: serial of the last command buffer that touched it */
  uint64_t last_write_serial;        /* Vulkan: serial of the last command buffer that wrote it */
  /* For caches of data derived from a storage (cpu/winograd_cpu.c keeps transformed kernels): id is unique among
   * the process's storages, never reused; version counts writes, bumped by every op before it writes the storage
   * (dpl_storage_written). Together they say "these bytes have not changed". */
  uint64_t id, version;
} dpl_storage;

static inline void dpl_storage_written(dpl_storage *s) {
  if (s) __atomic_add_fetch(&s->version, 1, __ATOMIC_RELAXED);
}

struct dpl_tensor {
  dpl_storage *storage;
  int64_t offset;                    /* in elements */
  int ndim;
  int64_t shape[DPL_MAX_DIMS];
  int64_t stride[DPL_MAX_DIMS];
};

/* Iteration space of an elementwise op after broadcasting and dimension coalescing: operand 0 is the output. */
enum { DPL_ITER_MAX_OPERANDS = 4 };
typedef struct dpl_operand {
  dpl_storage *storage;
  int64_t offset;
  int64_t stride[DPL_MAX_DIMS];
} dpl_operand;

typedef struct dpl_iter {
  int ndim;                          /* >= 1 */
  int64_t shape[DPL_MAX_DIMS];
  int64_t numel;
  int nops;
  dpl_operand op[DPL_ITER_MAX_OPERANDS];
} dpl_iter;

/* Builds the iteration space of `nops` tensors that all have (or broadcast to) out's shape. */
int dpl_iter_build(dpl_iter *it, int nops, const dpl_tensor *const *tensors);
/* Element offsets [lo, hi] (inclusive) that operand k touches. */
void dpl_iter_extent(const dpl_iter *it, int k, int64_t *lo, int64_t *hi);

/* Reduction over a middle block of a contiguous tensor: input viewed as (outer, r, inner), output (outer, inner). */
typedef struct dpl_reduce_args {
  int op;
  int unbiased;
  int64_t outer, r, inner;
} dpl_reduce_args;

/* Batched matrix product: C[b] = alpha * A[b] @ B[b] + beta * C[b], with any element strides. */
typedef struct dpl_gemm_args {
  int64_t batch, m, n, k;
  const dpl_tensor *a, *b, *c;       /* used for storage and offset only */
  int64_t a_bs, a_rs, a_cs;          /* batch, row and column strides of A (m x k) */
  int64_t b_bs, b_rs, b_cs;          /* ... of B (k x n) */
  int64_t c_bs, c_rs, c_cs;          /* ... of C (m x n) */
  float alpha, beta;
} dpl_gemm_args;

/* 2-D convolution (ops/conv.c checks the shapes): every tensor is contiguous, on one device. Forward reads input,
 * weight and bias (NULL: none) and writes output; backward_input reads output (= grad_output) and weight and writes
 * input (= grad_input); backward_weight reads input and output (= grad_output) and writes weight (= grad_weight). */
typedef struct dpl_conv2d_args {
  int64_t n, c, h, w;                /* input: n x c x h x w */
  int64_t o, kh, kw;                 /* weight: o x (c / groups) x kh x kw */
  int64_t oh, ow;                    /* output: n x o x oh x ow */
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
  int act;                           /* forward: dpl_activation of the output (backends with fused_conv_activation) */
  const dpl_tensor *input, *weight, *bias, *output;
} dpl_conv2d_args;

/* Spatial ops (ops/spatial.c): a separable gather over `planes` planes, from src (planes x sh x sw) into dst (planes x
 * dh x dw), every tensor contiguous. Destination (y, x) reads the source elements listed for row y times those listed
 * for column x. `table` is a float tensor holding both axes' lists in CSR form: entry numbers ptr_y[0..dh] and
 * ptr_x[0..dw], and entries (source index, weight) as float pairs at ent_y + 2e and ent_x + 2e (offsets in elements).
 *   DPL_SPATIAL_SUM:      dst = sum wy * wx * src, or `value` when fill is set and a list is empty;
 *   DPL_SPATIAL_MAX:      dst = the max of the listed elements (the last NaN if any, else the first max), -inf for
 *                         empty lists; idx (dst's shape) receives its position sy * sw + sx (-1 for empty lists);
 *   DPL_SPATIAL_MAX_GRAD: dst = sum of the listed src elements whose idx (src's shape) equals dst's position
 *                         y * dw + x. */
enum { DPL_SPATIAL_SUM = 0, DPL_SPATIAL_MAX = 1, DPL_SPATIAL_MAX_GRAD = 2 };
typedef struct dpl_spatial_args {
  int mode;
  int fill;
  float value;
  int64_t planes, sh, sw, dh, dw;
  int64_t ptr_y, ptr_x, ent_y, ent_x;
  const dpl_tensor *dst, *src, *idx, *table;
} dpl_spatial_args;

/* Batch normalization in training mode (ops/norm.c), every tensor contiguous: x and g are n x c x hw; weight, bias (or
 * NULL), mean, var, grad_weight and grad_bias hold c values. Forward: writes y, mean and var. Backward: reads g, x,
 * weight, mean and var; writes grad_weight and grad_bias, and grad_input (y) unless it is NULL. */
typedef struct dpl_batch_norm_args {
  int64_t n, c, hw;
  float eps;
  const dpl_tensor *x, *g, *weight, *bias, *mean, *var, *y, *grad_weight, *grad_bias;
} dpl_batch_norm_args;
/* what a backend's batch norm returns for a shape its kernel does not take (ops/norm.c then composes it) */
enum { DPL_NOT_FUSED = -1 };

/* ---- backends: each device kind fills this table --------------------------------------------------------------- */
typedef struct dpl_backend {
  const char *name;
  int (*storage_alloc)(dpl_device *dev, dpl_storage *s);           /* s->bytes is set */
  void (*storage_free)(dpl_device *dev, dpl_storage *s);
  int (*write)(dpl_device *dev, dpl_storage *s, size_t byte_offset, const void *src, size_t bytes);
  int (*read)(dpl_device *dev, dpl_storage *s, size_t byte_offset, void *dst, size_t bytes);
  int (*copy)(dpl_device *dev, const dpl_iter *it);                /* op[0] = dst, op[1] = src */
  int (*fill)(dpl_device *dev, const dpl_iter *it, float value);
  /* mode 0: op[1] (op) op[2]; 1: op[1] (op) s; 2: s (op) op[1] */
  int (*binary)(dpl_device *dev, int op, const dpl_iter *it, float s, int mode);
  int (*unary)(dpl_device *dev, int op, const dpl_iter *it, float p0, float p1);
  int (*where)(dpl_device *dev, const dpl_iter *it);               /* op[0] = op[1] ? op[2] : op[3] */
  int (*muladd)(dpl_device *dev, const dpl_iter *it);              /* op[0] = op[1] * op[2] + op[3] */
  int (*reduce)(dpl_device *dev, const dpl_reduce_args *r, const dpl_tensor *out, const dpl_tensor *in);
  int (*gemm)(dpl_device *dev, const dpl_gemm_args *g);
  int (*random)(dpl_device *dev, const dpl_tensor *out, int dist, float a, float b, uint64_t seed, uint64_t offset);
  int (*synchronize)(dpl_device *dev);
  void (*destroy)(dpl_device *dev);
  int (*conv2d_forward)(dpl_device *dev, const dpl_conv2d_args *a);
  int (*conv2d_backward_input)(dpl_device *dev, const dpl_conv2d_args *a);
  int (*conv2d_backward_weight)(dpl_device *dev, const dpl_conv2d_args *a);
  int (*spatial2d)(dpl_device *dev, const dpl_spatial_args *a);
  /* NULL where the backend has no fused kernel, or DPL_NOT_FUSED for a shape it does not take: ops/norm.c then
   * composes them of reductions and muladd */
  int (*batch_norm_forward)(dpl_device *dev, const dpl_batch_norm_args *a);
  int (*batch_norm_backward)(dpl_device *dev, const dpl_batch_norm_args *a);
  bool fused_conv_activation;        /* conv2d_forward applies a->act itself; else ops/conv.c runs it after */
} dpl_backend;

struct dpl_device {
  const dpl_backend *backend;
  char spec[32];
  char banner[512];
  int is_vulkan;
  int alloc_class;
  int64_t bytes, peak_bytes;
  int64_t n_dispatches, n_submits, n_barriers, n_uploads, n_downloads;
  void *impl;                        /* backend-specific state */
};

/* Backends */
dpl_device *dpl_cpu_device_create(void);
/* environment settings (env.c), the one place the runtime reads them: whether `name` is set to exactly `value`
 * (switches such as DPL_CPU_DNNL=0, read on every call so tests can flip them); a size in MB as bytes (unset or
 * empty: default_mb; 0 or less: 0, off) */
bool dpl_env_is(const char *name, const char *value);
size_t dpl_env_megabytes(const char *name, long default_mb);
/* the value, or NULL when unset or empty */
const char *dpl_env_string(const char *name);
/* set at all, even to "" or "0" (switches such as DPL_NO_VULKAN) */
bool dpl_env_present(const char *name);
/* set to something other than "" and "0" (DPL_VALIDATION=1) */
bool dpl_env_flag(const char *name);
/* an integer (unset or empty: default_value) */
long long dpl_env_int(const char *name, long long default_value);
/* oneDNN's use counts for dpl_device_stat (cpu/dnnl_cpu.c): convolutions (activations) run; -1: built without it */
int64_t dpl_cpu_dnnl_count(bool activations);
dpl_device *dpl_vulkan_device_create(int index);    /* NULL with an error set when unavailable */
int64_t dpl_vulkan_stat(dpl_device *dev, const char *name);

/* Tensor helpers (tensor.c) */
dpl_tensor *dpl_tensor_alloc_like_shape(dpl_device *dev, int ndim, const int64_t *shape);
/* A view of base's storage with any shape, strides (>= 0) and offset (relative to base's), checked to lie inside it. */
dpl_tensor *dpl_tensor_as_strided(dpl_tensor *base, int64_t offset, int ndim, const int64_t *shape,
                                  const int64_t *stride);
bool dpl_shape_equal(int na, const int64_t *a, int nb, const int64_t *b);
int64_t dpl_shape_numel(int ndim, const int64_t *shape);
/* The element count of a shape read from a file, or -1 when a size is negative or the product of the nonzero sizes
 * exceeds `limit` (so every later product of these sizes - strides, byte counts - is free of overflow too). */
int64_t dpl_shape_numel_checked(int ndim, const int64_t *shape, int64_t limit);
/* Broadcast shape of a and b into out (ndim in *nout); error names `fn`. */
int dpl_broadcast_shapes(const char *fn, int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out);

/* Philox4x32-10 (random.c), shared by the CPU backend; shaders/random.comp implements the same function. */
void dpl_philox4x32(uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
float dpl_random_value(int dist, float a, float b, uint64_t seed, uint64_t index);

#endif
