/* dpl.h - the whole public C API of the dpl runtime.
 *
 * LuaJIT's FFI reads this very file (lua/dpl/ffi.lua strips the lines that start with '#'), so it holds only plain
 * C declarations: opaque handles, enums and functions. No macros, no inline code, no C++ guards.
 *
 * Conventions
 *  - Functions that create a tensor return a new handle, or NULL on error.
 *  - Functions that return int return 0 (DPL_OK) on success, a dpl_status code otherwise.
 *  - After an error, dpl_last_error() gives a one-line message naming the function and the shapes involved.
 *  - Every handle returned must be released with dpl_tensor_free(); views share storage with their base, which is
 *    released when the last view goes.
 *  - Tensors are float32, at most 8 dimensions; sizes and strides are in elements.
 */
#ifndef DPL_H
#define DPL_H

#include <stdint.h>
#include <stddef.h>

typedef struct dpl_device dpl_device;
typedef struct dpl_tensor dpl_tensor;

enum { DPL_MAX_DIMS = 8, DPL_ALL_DIMS = 127 };

typedef enum dpl_status {
  DPL_OK = 0,
  DPL_ERR_ARGUMENT = 1,     /* bad shape, index or argument */
  DPL_ERR_OUT_OF_MEMORY = 2,
  DPL_ERR_DEVICE = 3,       /* a device or driver failure */
  DPL_ERR_IO = 4,
  DPL_ERR_UNSUPPORTED = 5
} dpl_status;

/* ---- errors and version ---------------------------------------------------------------------------------------- */
const char *dpl_last_error(void);   /* message of the last error on this thread ("" if none) */
int dpl_last_status(void);          /* dpl_status of the last error on this thread */
void dpl_clear_error(void);
const char *dpl_version(void);

/* ---- devices ---------------------------------------------------------------------------------------------------- */
/* Vulkan devices visible through the loader (0 when there is no loader, no driver or no device). */
int dpl_vulkan_device_count(void);
/* Why Vulkan is unavailable ("" when it is available). */
const char *dpl_vulkan_unavailable_reason(void);
/* One-line description of Vulkan device i, without creating a logical device. */
const char *dpl_vulkan_device_banner(int index);

/* Opens (once per process) and returns a device. spec: "cpu", "vulkan" (the default Vulkan device), "vulkan:N",
 * or NULL / "" / "auto" for the default choice: $DPL_DEVICE if set, else the first discrete or integrated GPU, else
 * the CPU. Devices live until dpl_shutdown(). */
dpl_device *dpl_device_open(const char *spec);
const char *dpl_device_banner(dpl_device *dev);
const char *dpl_device_spec(dpl_device *dev);     /* "cpu" or "vulkan:N" */
int dpl_device_is_vulkan(dpl_device *dev);
/* Submits all recorded work and waits for it. */
int dpl_device_synchronize(dpl_device *dev);
/* Counters: "bytes" (device memory held by tensors), "peak_bytes", "reserved_bytes" (allocator blocks),
 * "dispatches", "submits", "barriers", "pipelines", "uploads", "downloads"; on the CPU also "dnnl_convs" and
 * "dnnl_activations" (convolutions and activations run by oneDNN; -1 when built without it); on Vulkan also
 * "conv_<family>" and "gemm_<family>" (convolutions and products each kernel family ran, docs/vulkan.md). Unknown
 * name: -1. */
int64_t dpl_device_stat(dpl_device *dev, const char *name);
/* "peak_bytes" starts again from the bytes held now (to measure the peak of one piece of work). */
void dpl_device_reset_peak(dpl_device *dev);
/* Per-kernel GPU time since the last call (a text table, largest first) into out; resets the totals. Returns its
 * length, or -1 when dev is not a Vulkan device profiled with DPL_VK_PROFILE=1. */
int dpl_device_profile(dpl_device *dev, char *out, size_t size);
/* Allocation class for new tensors: 0 activations (default), 1 weights. Returns the previous class. */
int dpl_device_set_alloc_class(dpl_device *dev, int alloc_class);
/* Number of Vulkan validation messages seen since start (validation is on when DPL_VALIDATION=1). */
int64_t dpl_validation_message_count(void);
/* Releases every device (saves the Vulkan pipeline caches). Safe to call more than once. */
void dpl_shutdown(void);

/* ---- tensors: creation ------------------------------------------------------------------------------------------ */
dpl_tensor *dpl_tensor_empty(dpl_device *dev, int ndim, const int64_t *shape);
dpl_tensor *dpl_tensor_full(dpl_device *dev, int ndim, const int64_t *shape, float value);
/* start, start+step, ... while < end (> end for negative steps), as torch.arange */
dpl_tensor *dpl_tensor_arange(dpl_device *dev, double start, double end, double step);
/* Copies numel floats, row-major, from host memory. */
dpl_tensor *dpl_tensor_from_host(dpl_device *dev, int ndim, const int64_t *shape, const float *data);
/* Counter-based random numbers (Philox4x32-10): element i of the result depends only on (seed, offset + i), so both
 * backends give the same numbers. dist 0: uniform in [a, b); dist 1: normal with mean a and std b. */
dpl_tensor *dpl_tensor_random(dpl_device *dev, int ndim, const int64_t *shape, int dist, float a, float b,
                              uint64_t seed, uint64_t offset);

/* ---- tensors: lifetime and metadata ---------------------------------------------------------------------------- */
void dpl_tensor_free(dpl_tensor *t);
/* A new handle to the same view (for handing out a second owner). */
dpl_tensor *dpl_tensor_ref(dpl_tensor *t);
int dpl_tensor_ndim(const dpl_tensor *t);
int64_t dpl_tensor_size(const dpl_tensor *t, int dim);
int64_t dpl_tensor_stride(const dpl_tensor *t, int dim);
int64_t dpl_tensor_storage_offset(const dpl_tensor *t);
int64_t dpl_tensor_numel(const dpl_tensor *t);
int dpl_tensor_is_contiguous(const dpl_tensor *t);
dpl_device *dpl_tensor_device(const dpl_tensor *t);
/* Nonzero when a and b share storage. */
int dpl_tensor_same_storage(const dpl_tensor *a, const dpl_tensor *b);
/* The tensor's storage (an id unique in the process, never reused) and its version, which every write to the storage
 * changes: equal pairs mean unchanged data (for caches of values derived from weights). */
void dpl_tensor_version(const dpl_tensor *t, uint64_t *storage_id, uint64_t *version);

/* ---- tensors: host data ----------------------------------------------------------------------------------------- */
/* Copies the tensor's elements in row-major logical order to dst (numel floats). Waits for pending work. */
int dpl_tensor_to_host(dpl_tensor *t, float *dst);
/* Writes numel floats, row-major, into the tensor (which may be a strided view). */
int dpl_tensor_from_host_(dpl_tensor *t, const float *src);
/* The single element of a one-element tensor. */
int dpl_tensor_item(dpl_tensor *t, float *out);

/* ---- tensors: views (no copy) ----------------------------------------------------------------------------------- */
/* shape may hold one -1, inferred. Fails when the strides do not allow a view (use dpl_tensor_reshape). */
dpl_tensor *dpl_tensor_view(dpl_tensor *t, int ndim, const int64_t *shape);
/* A view when possible, else a contiguous copy. */
dpl_tensor *dpl_tensor_reshape(dpl_tensor *t, int ndim, const int64_t *shape);
dpl_tensor *dpl_tensor_narrow(dpl_tensor *t, int dim, int64_t start, int64_t length);
dpl_tensor *dpl_tensor_select(dpl_tensor *t, int dim, int64_t index);
dpl_tensor *dpl_tensor_permute(dpl_tensor *t, const int *dims);
dpl_tensor *dpl_tensor_transpose(dpl_tensor *t, int dim0, int dim1);
/* Broadcasts size-1 dimensions (stride 0); new leading dimensions may be added. -1 keeps a size. */
dpl_tensor *dpl_tensor_expand(dpl_tensor *t, int ndim, const int64_t *shape);
dpl_tensor *dpl_tensor_squeeze(dpl_tensor *t, int dim);     /* dim -1 .. : that dim; DPL_ALL_DIMS: every size-1 dim */
dpl_tensor *dpl_tensor_unsqueeze(dpl_tensor *t, int dim);

/* ---- tensors: copies ------------------------------------------------------------------------------------------- */
/* The same tensor if already contiguous (a new handle), else a contiguous copy. */
dpl_tensor *dpl_tensor_contiguous(dpl_tensor *t);
dpl_tensor *dpl_tensor_clone(dpl_tensor *t);
/* Copies src into dst; src broadcasts to dst's shape; the two may be on different devices. */
int dpl_tensor_copy_(dpl_tensor *dst, dpl_tensor *src);
/* A copy on another device (a new handle to t when dev is t's device). */
dpl_tensor *dpl_tensor_to_device(dpl_tensor *t, dpl_device *dev);
int dpl_tensor_fill_(dpl_tensor *t, float value);

/* ---- elementwise ------------------------------------------------------------------------------------------------ */
typedef enum dpl_binary_op {
  DPL_ADD = 0, DPL_SUB = 1, DPL_MUL = 2, DPL_DIV = 3, DPL_POW = 4, DPL_MAXIMUM = 5, DPL_MINIMUM = 6,
  DPL_EQ = 7, DPL_NE = 8, DPL_LT = 9, DPL_LE = 10, DPL_GT = 11, DPL_GE = 12,
  DPL_RELU_GRAD = 13,      /* b > 0 ? a : 0: ReLU's backward in one pass (a = the output's gradient, b = its input) */
  DPL_BINARY_COUNT         /* not an op: the number of ops (every backend rejects op >= this) */
} dpl_binary_op;

typedef enum dpl_unary_op {
  DPL_NEG = 0, DPL_EXP = 1, DPL_LOG = 2, DPL_SQRT = 3, DPL_ABS = 4, DPL_SQUARE = 5, DPL_RSQRT = 6,
  DPL_SIGN = 7, DPL_RELU = 8, DPL_SIGMOID = 9, DPL_TANH = 10,
  DPL_CLAMP = 11,          /* p0 = min, p1 = max (use +-INFINITY for one side) */
  DPL_AFFINE = 12,         /* x * p0 + p1 */
  DPL_SILU = 13,           /* x * sigmoid(x), one pass (EfficientNet's activation) */
  DPL_UNARY_COUNT          /* not an op: the number of ops */
} dpl_unary_op;

/* Binary op with numpy/PyTorch broadcasting. Comparisons give 1.0 or 0.0. */
dpl_tensor *dpl_binary(int op, dpl_tensor *a, dpl_tensor *b);
/* op(a, s), or op(s, a) when scalar_first is nonzero. */
dpl_tensor *dpl_binary_scalar(int op, dpl_tensor *a, float s, int scalar_first);
dpl_tensor *dpl_unary(int op, dpl_tensor *a, float p0, float p1);
/* cond != 0 ? a : b, broadcasting all three. */
dpl_tensor *dpl_where(dpl_tensor *cond, dpl_tensor *a, dpl_tensor *b);
/* x * a + b in one pass, the three broadcast together (batch norm's per-channel scale and shift). */
dpl_tensor *dpl_muladd(dpl_tensor *x, dpl_tensor *a, dpl_tensor *b);
/* In-place / into forms: out must already have the broadcast shape (it may alias a or b elementwise). */
int dpl_binary_into(int op, dpl_tensor *out, dpl_tensor *a, dpl_tensor *b);
int dpl_binary_scalar_into(int op, dpl_tensor *out, dpl_tensor *a, float s, int scalar_first);
int dpl_unary_into(int op, dpl_tensor *out, dpl_tensor *a, float p0, float p1);

/* ---- batch normalization with the batch's statistics (training mode) ------------------------------------------ */
/* PyTorch's F.batch_norm(x, training=True) for an N x C [x H x W ...] input: per channel, over every dim but 1, the
 * mean and the biased variance var of the batch (two passes, accumulated in double on the CPU), then
 * y = x * (weight / sqrt(var + eps)) + (bias - mean * weight / sqrt(var + eps)). weight and bias (C values) may be
 * NULL (1 and 0). mean and var (C values each, new tensors) are returned through the pointers for the backward and
 * the running statistics. */
dpl_tensor *dpl_batch_norm_forward(dpl_tensor *x, dpl_tensor *weight, dpl_tensor *bias, float eps, dpl_tensor **mean,
                                   dpl_tensor **var);
/* Its gradients from grad_output g, given the forward's x, weight (or NULL), mean and var, with
 * invstd = 1 / sqrt(var + eps) and n the elements per channel: grad_weight = sum(g (x - mean)) invstd,
 * grad_bias = sum(g) (C values each) and grad_input = weight invstd (g - sum(g) / n - (x - mean) invstd^2
 * sum(g (x - mean)) / n), as PyTorch's batch norm backward. Each result is a new tensor through its pointer; a NULL
 * pointer skips it (grad_input's pass is the costly one). */
int dpl_batch_norm_backward(dpl_tensor *grad_output, dpl_tensor *x, dpl_tensor *weight, dpl_tensor *mean,
                            dpl_tensor *var, float eps, dpl_tensor **grad_input, dpl_tensor **grad_weight,
                            dpl_tensor **grad_bias);

/* ---- reductions ------------------------------------------------------------------------------------------------- */
typedef enum dpl_reduce_op {
  DPL_SUM = 0, DPL_MEAN = 1, DPL_MAX = 2, DPL_MIN = 3, DPL_ARGMAX = 4, DPL_ARGMIN = 5,
  DPL_VAR = 6,             /* unbiased (divides by n-1) when `unbiased` is nonzero, else by n */
  DPL_REDUCE_COUNT         /* not an op: the number of ops */
} dpl_reduce_op;

/* Reduces over the listed dims (ndims 0 = all dims). ARGMAX/ARGMIN take exactly one dim (or all, giving the flat
 * index) and return indices as floats. keepdim keeps reduced dims with size 1. */
dpl_tensor *dpl_reduce(int op, dpl_tensor *t, int ndims, const int *dims, int keepdim, int unbiased);

/* ---- linear algebra --------------------------------------------------------------------------------------------- */
/* Matrix product as torch.matmul for 2-D and batched (>= 3-D, batch dims broadcast) operands; 1-D operands are
 * treated as a row (left) or a column (right) vector and that dim is dropped from the result. */
dpl_tensor *dpl_matmul(dpl_tensor *a, dpl_tensor *b);
/* C = alpha * op(A) op(B) + beta * C on 2-D tensors, op = transpose when the flag is set; C must be preallocated. */
int dpl_gemm(dpl_tensor *c, dpl_tensor *a, dpl_tensor *b, int trans_a, int trans_b, float alpha, float beta);

/* ---- convolution ----------------------------------------------------------------------------------------------- */
/* 2-D convolution with PyTorch's F.conv2d semantics (cross-correlation). input: N x C x H x W; weight: O x C/groups x
 * kh x kw; bias: O (or NULL); output: N x O x OH x OW with OH = floor((H + 2 pad_h - dilation_h (kh - 1) - 1) /
 * stride_h) + 1 (same for OW). params NULL means stride 1, padding 0, dilation 1, groups 1, no activation.
 * `activation` is applied by the forward to its output (bias included) in the same pass where the device can
 * (Vulkan); the gradient functions ignore it (the caller masks grad_output, as for a separate ReLU). */
typedef enum dpl_activation { DPL_ACT_NONE = 0, DPL_ACT_RELU = 1 } dpl_activation;
typedef struct dpl_conv2d_params {
  int stride_h, stride_w;
  int pad_h, pad_w;
  int dilation_h, dilation_w;
  int groups;
  int activation;          /* dpl_activation */
} dpl_conv2d_params;

dpl_tensor *dpl_conv2d_forward(dpl_tensor *input, dpl_tensor *weight, dpl_tensor *bias, const dpl_conv2d_params *params);
/* Gradient with respect to the input (shape input_shape, 4 sizes: the output size alone does not determine it). */
dpl_tensor *dpl_conv2d_backward_input(dpl_tensor *grad_output, dpl_tensor *weight, int ndim, const int64_t *input_shape,
                                      const dpl_conv2d_params *params);
/* Gradient with respect to the weight (shape weight_shape, 4 sizes). */
dpl_tensor *dpl_conv2d_backward_weight(dpl_tensor *input, dpl_tensor *grad_output, int ndim, const int64_t *weight_shape,
                                       const dpl_conv2d_params *params);
/* Gradient with respect to the bias: grad_output summed over N, H and W (a tensor of O values). */
dpl_tensor *dpl_conv2d_backward_bias(dpl_tensor *grad_output);

/* ---- transposed convolution ------------------------------------------------------------------------------------ */
/* 2-D transposed convolution with PyTorch's F.conv_transpose2d semantics (the gradient of conv2d with respect to its
 * input). input: N x C_in x H x W; weight: C_in x C_out/groups x kh x kw (PyTorch's layout); bias: C_out (or NULL);
 * output: N x C_out x OH x OW with OH = (H - 1) stride_h - 2 pad_h + dilation_h (kh - 1) + output_pad_h + 1 (same for
 * OW). output_pad must be smaller than the stride or the dilation. params NULL means stride 1, padding 0,
 * output_padding 0, dilation 1, groups 1. The bias gradient is dpl_conv2d_backward_bias(grad_output). */
typedef struct dpl_conv_transpose2d_params {
  int stride_h, stride_w;
  int pad_h, pad_w;
  int output_pad_h, output_pad_w;
  int dilation_h, dilation_w;
  int groups;
} dpl_conv_transpose2d_params;

dpl_tensor *dpl_conv_transpose2d_forward(dpl_tensor *input, dpl_tensor *weight, dpl_tensor *bias,
                                         const dpl_conv_transpose2d_params *params);
/* Gradient with respect to the input (shape input_shape, 4 sizes). */
dpl_tensor *dpl_conv_transpose2d_backward_input(dpl_tensor *grad_output, dpl_tensor *weight, int ndim,
                                                const int64_t *input_shape, const dpl_conv_transpose2d_params *params);
/* Gradient with respect to the weight (shape weight_shape, 4 sizes). */
dpl_tensor *dpl_conv_transpose2d_backward_weight(dpl_tensor *input, dpl_tensor *grad_output, int ndim,
                                                 const int64_t *weight_shape, const dpl_conv_transpose2d_params *params);

/* ---- spatial ops ------------------------------------------------------------------------------------------------ */
/* Pooling, padding and resizing of N x C x H x W tensors with PyTorch's semantics (F.max_pool2d, F.avg_pool2d,
 * F.adaptive_avg_pool2d, F.pad, F.interpolate with align_corners=False). Each forward returns a new tensor; each
 * backward takes grad_output (and what else it needs) and returns the gradient with respect to the input, whose shape
 * it is given as input_shape (ndim = 4 sizes). */
typedef struct dpl_pool2d_params {
  int kernel_h, kernel_w;
  int stride_h, stride_w;        /* 0: the kernel size (PyTorch's default) */
  int pad_h, pad_w;              /* implicit padding (-inf for max, 0 for average), at most half the kernel */
  int dilation_h, dilation_w;    /* max pooling only; 0 means 1 */
  int ceil_mode;                 /* OH = ceil(...) instead of floor(...); the last window must start inside the input
                                    or its left padding */
  int count_include_pad;         /* average pooling only: the divisor counts the padding */
} dpl_pool2d_params;

/* OH = floor((H + 2 pad_h - dilation_h (kernel_h - 1) - 1 [+ stride_h - 1 with ceil_mode]) / stride_h) + 1, same for
 * OW. indices (may be NULL) receives a new N x C x OH x OW tensor of the argmax positions (y * W + x within each
 * plane, as floats), which the backward needs. */
dpl_tensor *dpl_max_pool2d_forward(dpl_tensor *input, const dpl_pool2d_params *params, dpl_tensor **indices);
/* Each input position receives the sum of the output gradients whose argmax it is. */
dpl_tensor *dpl_max_pool2d_backward(dpl_tensor *grad_output, dpl_tensor *indices, int ndim, const int64_t *input_shape,
                                    const dpl_pool2d_params *params);
dpl_tensor *dpl_avg_pool2d_forward(dpl_tensor *input, const dpl_pool2d_params *params);
dpl_tensor *dpl_avg_pool2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape,
                                    const dpl_pool2d_params *params);

/* Output (i, j) averages rows floor(i H / out_h) .. ceil((i + 1) H / out_h) - 1, and the same for columns. */
dpl_tensor *dpl_adaptive_avg_pool2d_forward(dpl_tensor *input, int64_t out_h, int64_t out_w);
dpl_tensor *dpl_adaptive_avg_pool2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape);

typedef enum dpl_pad_mode {
  DPL_PAD_CONSTANT = 0,          /* the padding holds `value`; negative pads crop */
  DPL_PAD_REFLECT = 1,           /* mirrored without repeating the edge; each pad must be smaller than its dim */
  DPL_PAD_REPLICATE = 2          /* the edge repeated */
} dpl_pad_mode;

/* Output: N x C x (top + H + bottom) x (left + W + right). */
dpl_tensor *dpl_pad2d_forward(dpl_tensor *input, int left, int right, int top, int bottom, int mode, float value);
dpl_tensor *dpl_pad2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape, int left, int right, int top,
                               int bottom, int mode);

typedef enum dpl_upsample_mode {
  DPL_UPSAMPLE_NEAREST = 0,      /* source index floor(dst * ratio) */
  DPL_UPSAMPLE_BILINEAR = 1      /* align_corners=False: source position max((dst + 0.5) * ratio - 0.5, 0) */
} dpl_upsample_mode;

/* Resizes to out_h x out_w. ratio = 1 / scale when the scale (F.interpolate's scale_factor) is > 0, else in / out;
 * pass 0 for sizes given directly. The backward takes the output size from grad_output. */
dpl_tensor *dpl_upsample2d_forward(dpl_tensor *input, int64_t out_h, int64_t out_w, int mode, double scale_h,
                                   double scale_w);
dpl_tensor *dpl_upsample2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape, int mode,
                                    double scale_h, double scale_w);

/* ---- files ------------------------------------------------------------------------------------------------------ */
/* NumPy .npy: any float/int/uint/bool dtype, either byte order, C or Fortran order, read as float32. */
dpl_tensor *dpl_npy_load(dpl_device *dev, const char *path);
/* Writes float32, C order; the file appears whole or not at all (written to a temporary name, then renamed). */
int dpl_npy_save(dpl_tensor *t, const char *path);

/* Tensor files: PyTorch checkpoints (torch.save zip format and the legacy pre-1.6 format, read by a safe unpickler
 * that accepts only what a state_dict needs), and safetensors. Opening reads the index only; tensors are read one
 * at a time, converted to float32. Names are the state_dict keys, in file order. */
typedef struct dpl_tensor_file dpl_tensor_file;

dpl_tensor_file *dpl_tensor_file_open(const char *path);
void dpl_tensor_file_close(dpl_tensor_file *f);
/* "safetensors", "pth-zip" or "pth-legacy" */
const char *dpl_tensor_file_format(const dpl_tensor_file *f);
int dpl_tensor_file_count(const dpl_tensor_file *f);
const char *dpl_tensor_file_name(const dpl_tensor_file *f, int index);
/* Index of a name, or -1. */
int dpl_tensor_file_find(const dpl_tensor_file *f, const char *name);
/* Number of dims (shape written to `shape`, up to DPL_MAX_DIMS), or -1 for a bad index. */
int dpl_tensor_file_shape(const dpl_tensor_file *f, int index, int64_t *shape);
/* The stored element type: "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
 * "bool". */
const char *dpl_tensor_file_dtype(const dpl_tensor_file *f, int index);
dpl_tensor *dpl_tensor_file_load(dpl_tensor_file *f, dpl_device *dev, int index);
/* Writes tensors as a safetensors file (float32) with optional string metadata (keys[i] -> values[i]); the file
 * appears whole or not at all. */
int dpl_safetensors_save(const char *path, int n, const char *const *names, dpl_tensor *const *tensors,
                         int nmeta, const char *const *meta_keys, const char *const *meta_values);
/* A metadata value of a safetensors file ("" when absent). */
const char *dpl_tensor_file_metadata(const dpl_tensor_file *f, const char *key);

/* ---- background file loading (runtime/src/io/loader.c) ---------------------------------------------------------- */
/* A pool of threads that decode files into CPU tensors while the caller does other work (LuaJIT has no threads; the
 * dataset iterators use this to prefetch the next batch). A job is a list of files of one kind; results come back
 * as C x H x W (images, as dpl_image_load with `channels`) or as stored (.npy) CPU tensors. */
typedef struct dpl_loader dpl_loader;
typedef struct dpl_load_job dpl_load_job;
enum { DPL_LOAD_IMAGE = 0, DPL_LOAD_NPY = 1 };

dpl_loader *dpl_loader_new(int nthreads);
int dpl_loader_threads(const dpl_loader *l);
/* Finishes the queued files, stops the threads and drops the caller's reference (jobs stay valid until freed). */
void dpl_loader_free(dpl_loader *l);
/* Queues n files (the paths are copied); returns at once. */
dpl_load_job *dpl_loader_submit(dpl_loader *l, int n, const char *const *paths, int kind, int channels);
int dpl_load_job_count(const dpl_load_job *j);
/* Nonzero when every file of the job has been decoded (or has failed); never blocks. */
int dpl_load_job_done(dpl_load_job *j);
/* Waits for the job; DPL_OK, or the status and message of the first file that failed (the message names it). */
int dpl_load_job_wait(dpl_load_job *j);
/* Waits, then hands over file `index`'s tensor (once; the caller frees it), or NULL with that file's error. */
dpl_tensor *dpl_load_job_take(dpl_load_job *j, int index);
/* Waits for the job's files, then frees the job and the tensors not taken. */
void dpl_load_job_free(dpl_load_job *j);
/* The entries of a directory (without . and ..), sorted bytewise, each followed by '\n', directories with a trailing
 * '/'. Returns the bytes the listing needs (written to buf only when cap is large enough), or -1 on error. */
int64_t dpl_dir_list(const char *path, char *buf, int64_t cap);

/* ---- in-memory 8-bit image sets (runtime/src/io/imageset.c) ----------------------------------------------------- */
/* SVHN format-2 .mat files (MATLAB 5 with zlib-compressed elements: X is H x W x 3 x N uint8, y is N x 1 with 1..10,
 * 10 meaning the digit 0) and STL-10 binaries (N records of 3 x 96 x 96 bytes, planes stored column by column; labels
 * one byte each, 1..10). Images are kept as bytes; batches come out as N x 3 x H x W floats v / 255, as ToTensor.
 * Labels are class indices 0..9 (SVHN 10 -> 0, STL-10 k -> k - 1, as torchvision). */
typedef struct dpl_image_set dpl_image_set;
dpl_image_set *dpl_svhn_open(const char *mat_path);
/* labels_path NULL: unlabeled (the "unlabeled" split). */
dpl_image_set *dpl_stl10_open(const char *images_path, const char *labels_path);
int64_t dpl_image_set_count(const dpl_image_set *s);
int dpl_image_set_shape(const dpl_image_set *s, int64_t *chw);
/* The label of image index (0-based), or -1 when unlabeled or out of range. */
int dpl_image_set_label(const dpl_image_set *s, int64_t index);
dpl_tensor *dpl_image_set_batch(dpl_image_set *s, dpl_device *dev, int n, const int64_t *indices);
void dpl_image_set_free(dpl_image_set *s);

/* ---- images (runtime/src/io/image.c) ----------------------------------------------------------------------------- */
/* Reads a PNG (1-16 bit; gray, gray+alpha, palette, RGB, RGBA; interlaced), JPEG (baseline or progressive, gray or
 * colour; decoded by libjpeg-turbo as Pillow does) or TIFF (anything libtiff reads, at 8 bits) into a new
 * C x H x W float tensor with values sample / (2^bits - 1) in [0, 1]. The format is taken from the file's content.
 * channels: 0 keeps the file's channels (1 L, 2 LA, 3 RGB, 4 RGBA; a palette gives RGB, or RGBA with transparency),
 * 1 converts to luminance as Pillow's convert("L") (integer ITU-R 601-2 weights), 3 converts to RGB (gray repeated,
 * alpha dropped, as Pillow's convert("RGB")). A corrupt or truncated file is an error that names it. */
dpl_tensor *dpl_image_load(dpl_device *dev, const char *path, int channels);
/* Writes an 8-bit PNG from a C x H x W, 1 x C x H x W or H x W tensor with C in 1..4 (L, LA, RGB, RGBA). Each value
 * is clamped to [0, 1] and stored as floor(255 v + 0.5), as torchvision.utils.save_image does. The file appears whole
 * or not at all. */
int dpl_image_save(dpl_tensor *t, const char *path);

/* ---- image processing (runtime/src/image/) ----------------------------------------------------------------------- */
/* Each takes a (..., H, W) tensor on any device (processed on the host, returned on the same device) holding images
 * with values in [0, 1]. With uint8 nonzero the input is taken as the 8-bit image round(255 x) (halves up, clamped)
 * and the function works exactly as the reference does on 8-bit images, returning k / 255; with uint8 0 it works on
 * the floats. */
typedef enum dpl_resample_filter {       /* Pillow's constants */
  DPL_RESAMPLE_LANCZOS = 1,
  DPL_RESAMPLE_BILINEAR = 2,
  DPL_RESAMPLE_BICUBIC = 3,
  DPL_RESAMPLE_BOX = 4
} dpl_resample_filter;
/* Pillow's Image.resize (antialiased separable resampling, horizontal pass first; bicubic a = -0.5), bit-identical
 * to Pillow 9 with uint8 (its fixed-point path) and to mode "F" images without. */
dpl_tensor *dpl_image_resize_pil(dpl_tensor *x, int64_t out_h, int64_t out_w, int filter, int uint8);
/* Pillow's ImageFilter.GaussianBlur(radius): three extended box blurs per axis (horizontal passes first), edges
 * replicated; bit-identical to Pillow with uint8. */
dpl_tensor *dpl_image_gaussian_blur_pil(dpl_tensor *x, float radius, int uint8);
/* MATLAB's imresize(..., 'bicubic') with antialiasing: scale > 0 gives imresize(A, scale) (output ceil(scale * size));
 * scale <= 0 gives imresize(A, [out_h out_w]). Out-of-range taps replicate the edge, as imresize.m (symmetric 1:
 * mirror them instead). With uint8 each pass (rows, then columns) rounds to 8 bits as MATLAB does for uint8 input. */
dpl_tensor *dpl_image_resize_matlab(dpl_tensor *x, int64_t out_h, int64_t out_w, double scale, int symmetric,
                                    int uint8);

#endif /* DPL_H */
