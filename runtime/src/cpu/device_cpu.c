/* device_cpu.c - the CPU backend: plain C loops (OpenMP across cores) and OpenBLAS sgemm. It is the reference that
 * every Vulkan shader is tested against, so it favours clarity and float accuracy over tricks. */
#include "cpu.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PARALLEL_MIN = 32768 };   /* below this many elements, threads cost more than they give */

/* ---- memory ----------------------------------------------------------------------------------------------------- */
/* DPL_CPU_POISON=1 (set by the test suites): new storages start as NaN, so that a kernel that leaves part of its
 * output unwritten fails its tests instead of passing on whatever a reused block held (often the same result) */
static int cpu_storage_alloc(dpl_device *dev, dpl_storage *s) {
  DPL_UNUSED(dev);
  s->host = dpl_host_alloc(s->bytes);
  if (!s->host) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory allocating %zu bytes", s->bytes);
  static int poison = -1;
  if (poison < 0) poison = dpl_env_is("DPL_CPU_POISON", "1");
  if (poison) memset(s->host, 0xff, s->bytes);
  return DPL_OK;
}

static void cpu_storage_free(dpl_device *dev, dpl_storage *s) {
  DPL_UNUSED(dev);
  dpl_host_free(s->host, s->bytes);
  s->host = NULL;
}

static int cpu_write(dpl_device *dev, dpl_storage *s, size_t off, const void *src, size_t bytes) {
  DPL_UNUSED(dev);
  memcpy((char *)s->host + off, src, bytes);
  return DPL_OK;
}

static int cpu_read(dpl_device *dev, dpl_storage *s, size_t off, void *dst, size_t bytes) {
  DPL_UNUSED(dev);
  memcpy(dst, (const char *)s->host + off, bytes);
  return DPL_OK;
}

/* ---- strided iteration ------------------------------------------------------------------------------------------ */
/* Runs RUN for every run of consecutive elements along the innermost iteration dim: p0..p3 point at the operands'
 * first elements of the run, s0_..s3_ are their strides along it and run_ its length. Each thread takes a contiguous
 * range of the flat index and walks it with an odometer over the dims. Handing a whole run to RUN (rather than one
 * element) lets hot ops pick a plain loop the compiler vectorises when the inner strides are 1 or 0 (the broadcast
 * patterns of bias / batch-norm: (N,C,H,W) op (1,C,1,1) coalesces to (N*C, H*W) with inner strides 1 and 0). */
#define FOR_EACH_RUN(it, RUN)                                                                           \
  do {                                                                                                  \
    const dpl_iter *it_ = (it);                                                                         \
    float *base_[DPL_ITER_MAX_OPERANDS];                                                                \
    for (int k_ = 0; k_ < it_->nops; k_++) base_[k_] = it_->op[k_].storage->host + it_->op[k_].offset; \
    int64_t total_ = it_->numel;                                                                        \
    int nth_ = total_ >= PARALLEL_MIN ? omp_get_max_threads() : 1;                                      \
    _Pragma("omp parallel num_threads(nth_)") {                                                         \
      int tid_ = omp_get_thread_num(), nt_ = omp_get_num_threads();                                     \
      int64_t lo_ = total_ * tid_ / nt_, hi_ = total_ * (tid_ + 1) / nt_;                               \
      int64_t idx_[DPL_MAX_DIMS];                                                                       \
      int64_t rem_ = lo_;                                                                               \
      float *ptr_[DPL_ITER_MAX_OPERANDS];                                                               \
      for (int k_ = 0; k_ < it_->nops; k_++) ptr_[k_] = base_[k_];                                      \
      for (int d_ = it_->ndim - 1; d_ >= 0; d_--) {                                                     \
        idx_[d_] = rem_ % it_->shape[d_];                                                               \
        rem_ /= it_->shape[d_];                                                                         \
        for (int k_ = 0; k_ < it_->nops; k_++) ptr_[k_] += idx_[d_] * it_->op[k_].stride[d_];          \
      }                                                                                                 \
      int last_ = it_->ndim - 1;                                                                        \
      int64_t inner_n_ = it_->shape[last_];                                                             \
      int64_t s0_ = it_->op[0].stride[last_], s1_ = it_->nops > 1 ? it_->op[1].stride[last_] : 0;       \
      int64_t s2_ = it_->nops > 2 ? it_->op[2].stride[last_] : 0;                                       \
      int64_t s3_ = it_->nops > 3 ? it_->op[3].stride[last_] : 0;                                       \
      (void)s1_; (void)s2_; (void)s3_;                                                                  \
      for (int64_t i_ = lo_; i_ < hi_;) {                                                               \
        int64_t run_ = inner_n_ - idx_[last_];                                                          \
        if (run_ > hi_ - i_) run_ = hi_ - i_;                                                           \
        float *p0 = ptr_[0];                                                                            \
        float *p1 = it_->nops > 1 ? ptr_[1] : NULL;                                                     \
        float *p2 = it_->nops > 2 ? ptr_[2] : NULL;                                                     \
        float *p3 = it_->nops > 3 ? ptr_[3] : NULL;                                                     \
        (void)p1; (void)p2; (void)p3;                                                                   \
        RUN;                                                                                            \
        i_ += run_;                                                                                     \
        /* advance the odometer by run_ along the last dim, carrying into outer dims */                 \
        for (int k_ = 0; k_ < it_->nops; k_++) ptr_[k_] += run_ * it_->op[k_].stride[last_];            \
        idx_[last_] += run_;                                                                            \
        for (int d_ = last_; d_ > 0 && idx_[d_] >= it_->shape[d_]; d_--) {                              \
          for (int k_ = 0; k_ < it_->nops; k_++)                                                        \
            ptr_[k_] += it_->op[k_].stride[d_ - 1] - it_->shape[d_] * it_->op[k_].stride[d_];           \
          idx_[d_] = 0;                                                                                 \
          idx_[d_ - 1]++;                                                                               \
        }                                                                                               \
      }                                                                                                 \
    }                                                                                                   \
  } while (0)

/* Runs BODY for every element of the iteration space `it`, with p0..p3 pointing at the operands' elements. */
#define FOR_EACH_ELEMENT(it, BODY)                                                                      \
  FOR_EACH_RUN(it, {                                                                                    \
    for (int64_t j_ = 0; j_ < run_; j_++) {                                                             \
      BODY;                                                                                             \
      p0 += s0_;                                                                                        \
      if (p1) p1 += s1_;                                                                                \
      if (p2) p2 += s2_;                                                                                \
      if (p3) p3 += s3_;                                                                                \
    }                                                                                                   \
  })

/* Every operand laid out exactly as a contiguous tensor of the iteration's shape (no broadcast, no transposition):
 * the flat index is then the element offset, and hot ops take a plain loop the compiler vectorizes. */
static bool iter_dense(const dpl_iter *it) {
  for (int k = 0; k < it->nops; k++) {
    int64_t expect = 1;
    for (int d = it->ndim - 1; d >= 0; d--) {
      if (it->shape[d] != 1 && it->op[k].stride[d] != expect) return false;
      expect *= it->shape[d];
    }
  }
  return true;
}

/* BODY over i in [0, it->numel) with x0..x2 the dense operands' bases, split over the threads */
#define FOR_DENSE(it, BODY)                                                                             \
  do {                                                                                                  \
    float *x0 = (it)->op[0].storage->host + (it)->op[0].offset;                                         \
    const float *x1 = (it)->nops > 1 ? (it)->op[1].storage->host + (it)->op[1].offset : NULL;           \
    const float *x2 = (it)->nops > 2 ? (it)->op[2].storage->host + (it)->op[2].offset : NULL;           \
    (void)x1; (void)x2;                                                                                 \
    int64_t n_ = (it)->numel;                                                                           \
    _Pragma("omp parallel for if (n_ >= PARALLEL_MIN) schedule(static)")                                \
    for (int64_t i = 0; i < n_; i++) BODY;                                                              \
  } while (0)

static int cpu_copy(dpl_device *dev, const dpl_iter *it) {
  DPL_UNUSED(dev);
  if (iter_dense(it) && it->nops == 2) { FOR_DENSE(it, x0[i] = x1[i]); return DPL_OK; }
  /* cat / narrow / permute copies: memcpy the runs that are contiguous on both sides */
  FOR_EACH_RUN(it, {
    if (s0_ == 1 && s1_ == 1) memcpy(p0, p1, (size_t)run_ * sizeof(float));
    else for (int64_t j = 0; j < run_; j++) p0[j * s0_] = p1[j * s1_];
  });
  return DPL_OK;
}

static int cpu_fill(dpl_device *dev, const dpl_iter *it, float v) {
  DPL_UNUSED(dev);
  FOR_EACH_ELEMENT(it, *p0 = v);
  return DPL_OK;
}

/* g where x > 0, else +0: a bit mask rather than a branch, which random signs mispredict half the time (5x slower) */
static inline float relu_grad(float g, float x) {
  uint32_t bits;
  memcpy(&bits, &g, sizeof bits);
  bits &= -(uint32_t)(x > 0);
  memcpy(&g, &bits, sizeof g);
  return g;
}

static inline float binary_apply(int op, float x, float y) {
  switch (op) {
  case DPL_ADD: return x + y;
  case DPL_SUB: return x - y;
  case DPL_MUL: return x * y;
  case DPL_DIV: return x / y;
  case DPL_POW: return powf(x, y);
  case DPL_MAXIMUM: return (x != x || y != y) ? NAN : (x > y ? x : y);
  case DPL_MINIMUM: return (x != x || y != y) ? NAN : (x < y ? x : y);
  case DPL_EQ: return x == y;
  case DPL_NE: return x != y;
  case DPL_LT: return x < y;
  case DPL_LE: return x <= y;
  case DPL_GT: return x > y;
  case DPL_GE: return x >= y;
  case DPL_RELU_GRAD: return relu_grad(x, y);
  }
  return NAN;
}

/* One run of a tensor-tensor op: out[j*so] = a[j*sa] OP b[j*sb]. Runs whose strides are 1 or 0 (contiguous or
 * broadcast along the run) take plain loops the compiler vectorises; the rest go element by element. */
#define BINARY_RUN_LOOPS(EXPR)                                                                          \
  do {                                                                                                  \
    if (so == 1 && sa == 1 && sb == 1) { for (int64_t j = 0; j < n; j++) { float x = a[j], y = b[j]; o[j] = EXPR; } } \
    else if (so == 1 && sa == 1 && sb == 0) { float y = *b; for (int64_t j = 0; j < n; j++) { float x = a[j]; o[j] = EXPR; } } \
    else if (so == 1 && sa == 0 && sb == 1) { float x = *a; for (int64_t j = 0; j < n; j++) { float y = b[j]; o[j] = EXPR; } } \
    else { for (int64_t j = 0; j < n; j++) { float x = a[j * sa], y = b[j * sb]; o[j * so] = EXPR; } } \
  } while (0)

static void binary_run(int op, int64_t n, float *o, int64_t so, const float *a, int64_t sa, const float *b,
                       int64_t sb) {
  switch (op) {
  case DPL_ADD: BINARY_RUN_LOOPS(x + y); return;
  case DPL_SUB: BINARY_RUN_LOOPS(x - y); return;
  case DPL_MUL: BINARY_RUN_LOOPS(x * y); return;
  case DPL_DIV: BINARY_RUN_LOOPS(x / y); return;
  default: for (int64_t j = 0; j < n; j++) o[j * so] = binary_apply(op, a[j * sa], b[j * sb]); return;
  }
}

static int cpu_binary(dpl_device *dev, int op, const dpl_iter *it, float s, int mode) {
  DPL_UNUSED(dev);
  if (op < 0 || op >= DPL_BINARY_COUNT) return dpl_fail(DPL_ERR_UNSUPPORTED, "cpu: no kernel for binary op %d", op);
  if (iter_dense(it)) {
    if (mode == 0 && it->nops == 3) {
      switch (op) {   /* the ops of a network's inner loop and of its backward pass */
      case DPL_ADD: FOR_DENSE(it, x0[i] = x1[i] + x2[i]); return DPL_OK;
      case DPL_SUB: FOR_DENSE(it, x0[i] = x1[i] - x2[i]); return DPL_OK;
      case DPL_MUL: FOR_DENSE(it, x0[i] = x1[i] * x2[i]); return DPL_OK;
      case DPL_RELU_GRAD: FOR_DENSE(it, x0[i] = relu_grad(x1[i], x2[i])); return DPL_OK;
      default: break;
      }
    } else if (mode == 1 && it->nops == 2) {
      switch (op) {
      case DPL_MUL: FOR_DENSE(it, x0[i] = x1[i] * s); return DPL_OK;
      case DPL_ADD: FOR_DENSE(it, x0[i] = x1[i] + s); return DPL_OK;
      case DPL_GT: FOR_DENSE(it, x0[i] = x1[i] > s); return DPL_OK;
      default: break;
      }
    }
  }
  switch (mode) {
  case 0: FOR_EACH_RUN(it, binary_run(op, run_, p0, s0_, p1, s1_, p2, s2_)); break;
  case 1: FOR_EACH_ELEMENT(it, *p0 = binary_apply(op, *p1, s)); break;
  default: FOR_EACH_ELEMENT(it, *p0 = binary_apply(op, s, *p1)); break;
  }
  return DPL_OK;
}

static inline float unary_apply(int op, float x, float p0, float p1) {
  switch (op) {
  case DPL_NEG: return -x;
  case DPL_EXP: return expf(x);
  case DPL_LOG: return logf(x);
  case DPL_SQRT: return sqrtf(x);
  case DPL_ABS: return fabsf(x);
  case DPL_SQUARE: return x * x;
  case DPL_RSQRT: return 1.0f / sqrtf(x);
  case DPL_SIGN: return x > 0 ? 1.0f : (x < 0 ? -1.0f : x);
  case DPL_RELU: return x > 0 ? x : 0.0f;
  case DPL_SIGMOID: return 1.0f / (1.0f + expf(-x));
  case DPL_TANH: return tanhf(x);
  case DPL_CLAMP: return x != x ? x : (x < p0 ? p0 : (x > p1 ? p1 : x));
  case DPL_AFFINE: return x * p0 + p1;
  case DPL_SILU: return x * (1.0f / (1.0f + expf(-x)));   /* = x * sigmoid(x), as the two ops gave */
  }
  return NAN;
}

/* One run of a unary op, the op's switch outside the element loop (SiLU's sigmoid, GELU's pieces, ...): contiguous
 * runs get a plain loop per op that the compiler can vectorise, strided ones a strided loop. */
#define UNARY_RUN_LOOP(EXPR)                                                                            \
  do {                                                                                                  \
    if (so == 1 && sx == 1) { for (int64_t j = 0; j < n; j++) { float x = xs[j]; o[j] = EXPR; } }      \
    else { for (int64_t j = 0; j < n; j++) { float x = xs[j * sx]; o[j * so] = EXPR; } }               \
  } while (0)

static void unary_run(int op, int64_t n, float *o, int64_t so, const float *xs, int64_t sx, float p0, float p1) {
  switch (op) {
  case DPL_NEG: UNARY_RUN_LOOP(-x); return;
  case DPL_EXP: UNARY_RUN_LOOP(expf(x)); return;
  case DPL_LOG: UNARY_RUN_LOOP(logf(x)); return;
  case DPL_SQRT: UNARY_RUN_LOOP(sqrtf(x)); return;
  case DPL_ABS: UNARY_RUN_LOOP(fabsf(x)); return;
  case DPL_SQUARE: UNARY_RUN_LOOP(x * x); return;
  case DPL_RELU: UNARY_RUN_LOOP(x > 0 ? x : 0.0f); return;
  case DPL_SIGMOID: UNARY_RUN_LOOP(1.0f / (1.0f + expf(-x))); return;
  case DPL_AFFINE: UNARY_RUN_LOOP(x * p0 + p1); return;
  case DPL_SILU: UNARY_RUN_LOOP(x * (1.0f / (1.0f + expf(-x)))); return;
  default: for (int64_t j = 0; j < n; j++) o[j * so] = unary_apply(op, xs[j * sx], p0, p1); return;
  }
}

static int cpu_unary(dpl_device *dev, int op, const dpl_iter *it, float a, float b) {
  DPL_UNUSED(dev);
  if (op < 0 || op >= DPL_UNARY_COUNT) return dpl_fail(DPL_ERR_UNSUPPORTED, "cpu: no kernel for unary op %d", op);
  if (iter_dense(it) && it->nops == 2) {
    switch (op) {   /* the ops of a network's inner loop */
    case DPL_RELU: FOR_DENSE(it, x0[i] = x1[i] > 0 ? x1[i] : 0.0f); return DPL_OK;
    case DPL_AFFINE: FOR_DENSE(it, x0[i] = x1[i] * a + b); return DPL_OK;
    case DPL_NEG: FOR_DENSE(it, x0[i] = -x1[i]); return DPL_OK;
    default: {
      int rc = dpl_cpu_dnnl_unary(op, it->numel, it->op[0].storage->host + it->op[0].offset,
                                  it->op[1].storage->host + it->op[1].offset);
      if (rc != DPL_CPU_NOT_HANDLED) return rc;
      break;
    }
    }
  }
  FOR_EACH_RUN(it, unary_run(op, run_, p0, s0_, p1, s1_, a, b));
  return DPL_OK;
}

static int cpu_where(dpl_device *dev, const dpl_iter *it) {
  DPL_UNUSED(dev);
  FOR_EACH_ELEMENT(it, *p0 = *p1 != 0.0f ? *p2 : *p3);
  return DPL_OK;
}

/* x * a + b; the batch-norm pattern (N,C,H,W) * (1,C,1,1) + (1,C,1,1) comes as runs of H*W with a and b fixed */
static void muladd_run(int64_t n, float *y, int64_t sy, const float *x, int64_t sx, const float *a, int64_t sa,
                       const float *b, int64_t sb) {
  if (sy == 1 && sx == 1 && sa == 0 && sb == 0) {
    const float av = *a, bv = *b;
    for (int64_t j = 0; j < n; j++) y[j] = x[j] * av + bv;
  } else if (sy == 1 && sx == 1 && sa == 1 && sb == 1) {
    for (int64_t j = 0; j < n; j++) y[j] = x[j] * a[j] + b[j];
  } else {
    for (int64_t j = 0; j < n; j++) y[j * sy] = x[j * sx] * a[j * sa] + b[j * sb];
  }
}

static int cpu_muladd(dpl_device *dev, const dpl_iter *it) {
  DPL_UNUSED(dev);
  FOR_EACH_RUN(it, muladd_run(run_, p0, s0_, p1, s1_, p2, s2_, p3, s3_));
  return DPL_OK;
}

/* ---- reductions ------------------------------------------------------------------------------------------------- */
/* Sums in double so the CPU reference is at least as accurate as any shader's tree reduction. */

/* a contiguous run's sum in 8 running double sums, so that the loop vectorises (one chain of dependent adds ran at
 * ~1 ns per element: squeeze-and-excitation's global average pools were 6% of EfficientNet) */
static double sum_contiguous(const float *x, int64_t n) {
  double s[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) s[k] += x[i + k];
  double acc = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; i < n; i++) acc += x[i];
  return acc;
}

static float reduce_one(const dpl_reduce_args *r, const float *x, int64_t step) {
  int64_t n = r->r;
  switch (r->op) {
  case DPL_SUM:
  case DPL_MEAN: {
    double acc = 0;
    if (step == 1) acc = sum_contiguous(x, n);
    else for (int64_t i = 0; i < n; i++) acc += x[i * step];
    return (float)(r->op == DPL_MEAN ? (n ? acc / (double)n : NAN) : acc);
  }
  case DPL_MAX:
  case DPL_MIN:
  case DPL_ARGMAX:
  case DPL_ARGMIN: {
    bool want_max = r->op == DPL_MAX || r->op == DPL_ARGMAX;
    float best = x[0];
    int64_t at = 0;
    for (int64_t i = 1; i < n && best == best; i++) {   /* NaN wins and stops, as in torch */
      float v = x[i * step];
      if (v != v || (want_max ? v > best : v < best)) { best = v; at = i; }
    }
    return (r->op == DPL_MAX || r->op == DPL_MIN) ? best : (float)at;
  }
  case DPL_VAR: {
    double mean = 0, m2 = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i * step];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) { double d = x[i * step] - mean; m2 += d * d; }
    double div = r->unbiased ? (double)(n - 1) : (double)n;
    return div > 0 ? (float)(m2 / div) : NAN;
  }
  }
  return NAN;
}

enum { REDUCE_CHUNK = 256 };   /* outputs summed together by cpu_reduce's middle-dimension path */

static int cpu_reduce(dpl_device *dev, const dpl_reduce_args *r, const dpl_tensor *out, const dpl_tensor *in) {
  DPL_UNUSED(dev);
  if (r->op < 0 || r->op >= DPL_REDUCE_COUNT)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "cpu: no kernel for reduce op %d", r->op);
  const float *x = in->storage->host + in->offset;
  float *y = out->storage->host + out->offset;
  int64_t nout = r->outer * r->inner;
  if ((r->op == DPL_SUM || r->op == DPL_MEAN) && r->inner >= REDUCE_CHUNK / 4) {
    /* a sum over a middle dimension (the channels of N x C x H x W): a chunk of neighbouring outputs at a time, each
     * row of the reduced dimension added to all of them at once (contiguous, vectorised), every output still summed
     * in double in the same order as reduce_one */
    int64_t chunks = (r->inner + REDUCE_CHUNK - 1) / REDUCE_CHUNK;
    #pragma omp parallel for collapse(2) if (nout * r->r >= PARALLEL_MIN) schedule(static)
    for (int64_t outer = 0; outer < r->outer; outer++)
      for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t i0 = ch * REDUCE_CHUNK, n = r->inner - i0 < REDUCE_CHUNK ? r->inner - i0 : REDUCE_CHUNK;
        double acc[REDUCE_CHUNK];
        for (int64_t i = 0; i < n; i++) acc[i] = 0;
        const float *base = x + outer * r->r * r->inner + i0;
        for (int64_t k = 0; k < r->r; k++) {
          const float *row = base + k * r->inner;
          for (int64_t i = 0; i < n; i++) acc[i] += row[i];
        }
        float *dst = y + outer * r->inner + i0;
        for (int64_t i = 0; i < n; i++)
          dst[i] = (float)(r->op == DPL_MEAN ? (r->r ? acc[i] / (double)r->r : NAN) : acc[i]);
      }
    return DPL_OK;
  }
  #pragma omp parallel for if (nout * r->r >= PARALLEL_MIN && nout > 1) schedule(static)
  for (int64_t o = 0; o < nout; o++) {
    int64_t outer = o / r->inner, inner = o % r->inner;
    y[o] = reduce_one(r, x + outer * r->r * r->inner + inner, r->inner);
  }
  return DPL_OK;
}

/* ---- matrix product --------------------------------------------------------------------------------------------- */
/* BLAS wants each matrix with unit stride along rows or columns; anything else is copied to a packed buffer. */
static const float *blas_operand(const float *p, int64_t rows, int64_t cols, int64_t rs, int64_t cs, CBLAS_TRANSPOSE *tr,
                                 int64_t *ld, float **scratch) {
  if (cs == 1 && rs >= (cols > 1 ? cols : 1)) { *tr = CblasNoTrans; *ld = rs; return p; }
  if (rs == 1 && cs >= (rows > 1 ? rows : 1)) { *tr = CblasTrans; *ld = cs; return p; }
  if (!*scratch) *scratch = malloc((size_t)(rows * cols) * sizeof(float));
  if (!*scratch) return NULL;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) (*scratch)[i * cols + j] = p[i * rs + j * cs];
  *tr = CblasNoTrans;
  *ld = cols > 1 ? cols : 1;
  return *scratch;
}

static int cpu_gemm(dpl_device *dev, const dpl_gemm_args *g) {
  DPL_UNUSED(dev);
  const float *A0 = g->a->storage->host + g->a->offset, *B0 = g->b->storage->host + g->b->offset;
  float *C0 = g->c->storage->host + g->c->offset;
  bool c_rowmajor = g->c_cs == 1 && g->c_rs >= (g->n > 1 ? g->n : 1);
  float *cbuf = NULL;
  if (!c_rowmajor) cbuf = malloc((size_t)(g->m * g->n) * sizeof(float));
  if (!c_rowmajor && !cbuf) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
  int rc = DPL_OK;
  for (int64_t bi = 0; bi < g->batch; bi++) {
    float *sa = NULL, *sb = NULL;
    CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
    int64_t lda = 0, ldb = 0;
    const float *A = blas_operand(A0 + bi * g->a_bs, g->m, g->k, g->a_rs, g->a_cs, &ta, &lda, &sa);
    const float *B = blas_operand(B0 + bi * g->b_bs, g->k, g->n, g->b_rs, g->b_cs, &tb, &ldb, &sb);
    float *C = C0 + bi * g->c_bs;
    if (!A || !B) { rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); free(sa); free(sb); break; }
    if (g->k == 0) {
      for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
          float *c = &C[i * g->c_rs + j * g->c_cs];
          *c = g->beta == 0 ? 0 : g->beta * *c;
        }
    } else if (c_rowmajor) {
      dpl_cpu_sgemm(ta == CblasTrans, tb == CblasTrans, g->m, g->n, g->k, g->alpha, A, lda, B, ldb, g->beta, C,
                    g->c_rs);
    } else {
      for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) cbuf[i * g->n + j] = C[i * g->c_rs + j * g->c_cs];
      dpl_cpu_sgemm(ta == CblasTrans, tb == CblasTrans, g->m, g->n, g->k, g->alpha, A, lda, B, ldb, g->beta, cbuf,
                    g->n);
      for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) C[i * g->c_rs + j * g->c_cs] = cbuf[i * g->n + j];
    }
    free(sa);
    free(sb);
  }
  free(cbuf);
  return rc;
}

/* ---- random ----------------------------------------------------------------------------------------------------- */
static int cpu_random(dpl_device *dev, const dpl_tensor *out, int dist, float a, float b, uint64_t seed, uint64_t offset) {
  DPL_UNUSED(dev);
  float *y = out->storage->host + out->offset;
  int64_t n = dpl_tensor_numel(out);
  #pragma omp parallel for if (n >= PARALLEL_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = dpl_random_value(dist, a, b, seed, offset + (uint64_t)i);
  return DPL_OK;
}

static int cpu_synchronize(dpl_device *dev) { DPL_UNUSED(dev); return DPL_OK; }
static void cpu_destroy(dpl_device *dev) {
  dpl_host_cache_release();
  dpl_cpu_kernel_cache_release();
  dpl_cpu_dnnl_release();
  free(dev);
}

static const dpl_backend cpu_backend = {
  .name = "cpu",
  .storage_alloc = cpu_storage_alloc,
  .storage_free = cpu_storage_free,
  .write = cpu_write,
  .read = cpu_read,
  .copy = cpu_copy,
  .fill = cpu_fill,
  .binary = cpu_binary,
  .unary = cpu_unary,
  .where = cpu_where,
  .muladd = cpu_muladd,
  .reduce = cpu_reduce,
  .gemm = cpu_gemm,
  .random = cpu_random,
  .synchronize = cpu_synchronize,
  .destroy = cpu_destroy,
  .conv2d_forward = dpl_cpu_conv2d_forward,
  .conv2d_backward_input = dpl_cpu_conv2d_backward_input,
  .conv2d_backward_weight = dpl_cpu_conv2d_backward_weight,
  .spatial2d = dpl_cpu_spatial2d,
  .batch_norm_forward = dpl_cpu_batch_norm_forward,
  .batch_norm_backward = dpl_cpu_batch_norm_backward,
};

dpl_device *dpl_cpu_device_create(void) {
  dpl_device *dev = calloc(1, sizeof *dev);
  if (!dev) return NULL;
  dev->backend = &cpu_backend;
  snprintf(dev->spec, sizeof dev->spec, "cpu");
  dpl_cpu_blas_init();
  char *cfg = openblas_get_config();
  char dnnl[64];
  dpl_cpu_dnnl_describe(dnnl, sizeof dnnl);
  snprintf(dev->banner, sizeof dev->banner,
           "cpu: %d OpenMP threads, OpenBLAS %s (%s kernels, single-threaded in ours), %s",
           omp_get_max_threads(), cfg ? cfg : "?", openblas_get_corename(), dnnl);
  return dev;
}
