/* ops_vulkan.c - each op of the Vulkan backend: binding ranges, push constants, specialization constants and the
 * dispatch grid. Work whose bindings would exceed maxStorageBufferRange (128 MiB on lavapipe) or that has more dims
 * than a shader takes is split along its outermost dim into several dispatches. */
#include "vk_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ELT_LOCAL = 256, ELT_MAX_DIMS = 4 };

/* mirrors EltwiseParams in shaders/common/eltwise.glsl */
typedef struct eltwise_params {
  uint32_t numel, ndim;
  float p0, p1;
  uint32_t shape[4];
  uint32_t offset[4];
  int32_t stride[16];
} eltwise_params;

void vk_grid_1d(uint64_t invocations, uint32_t local, uint32_t *gx, uint32_t *gy) {
  uint64_t groups = (invocations + local - 1) / local;
  if (groups == 0) groups = 1;
  *gx = groups > 65535 ? 65535 : (uint32_t)groups;
  *gy = (uint32_t)((groups + *gx - 1) / *gx);
}

static int fits(dpl_device *dev, const dpl_iter *it) {
  vk_device *v = vkdev(dev);
  if (it->ndim > ELT_MAX_DIMS) return 0;
  for (int k = 0; k < it->nops; k++) {
    int64_t lo, hi;
    dpl_iter_extent(it, k, &lo, &hi);
    if ((uint64_t)(hi - lo + 1) * 4 + v->alignment > v->max_binding) return 0;
  }
  return 1;
}

/* Runs one elementwise shader over `it` (operand 0 written, the others read), splitting it when needed. */
static int eltwise(dpl_device *dev, int shader, const uint32_t *spec, int nspec, const dpl_iter *it, float p0, float p1,
                   int extra_bindings_alias) {
  if (!fits(dev, it)) {
    /* split the outermost dim: in halves when it is the size problem, one slice at a time for too many dims */
    dpl_iter sub = *it;
    if (it->shape[0] == 1) {
      /* an outer dim already split down to one slice (e.g. a transposed operand whose rows each span more than a
       * binding): drop it and split the next dim */
      if (it->ndim == 1) return dpl_fail(DPL_ERR_UNSUPPORTED, "an element is larger than a binding");
      sub.ndim = it->ndim - 1;
      for (int d = 0; d < sub.ndim; d++) sub.shape[d] = it->shape[d + 1];
      for (int k = 0; k < it->nops; k++)
        for (int d = 0; d < sub.ndim; d++) sub.op[k].stride[d] = it->op[k].stride[d + 1];
      return eltwise(dev, shader, spec, nspec, &sub, p0, p1, extra_bindings_alias);
    }
    int64_t n0 = it->shape[0];
    if (it->ndim > ELT_MAX_DIMS) {
      sub.ndim = it->ndim - 1;
      for (int d = 0; d < sub.ndim; d++) sub.shape[d] = it->shape[d + 1];
      for (int k = 0; k < it->nops; k++)
        for (int d = 0; d < sub.ndim; d++) sub.op[k].stride[d] = it->op[k].stride[d + 1];
      sub.numel = it->numel / n0;
      for (int64_t i = 0; i < n0; i++) {
        for (int k = 0; k < it->nops; k++) sub.op[k].offset = it->op[k].offset + i * it->op[k].stride[0];
        int rc = eltwise(dev, shader, spec, nspec, &sub, p0, p1, extra_bindings_alias);
        if (rc) return rc;
      }
      return DPL_OK;
    }
    int64_t half = n0 / 2;
    for (int part = 0; part < 2; part++) {
      int64_t start = part ? half : 0, len = part ? n0 - half : half;
      sub.shape[0] = len;
      sub.numel = it->numel / n0 * len;
      for (int k = 0; k < it->nops; k++) sub.op[k].offset = it->op[k].offset + start * it->op[k].stride[0];
      int rc = eltwise(dev, shader, spec, nspec, &sub, p0, p1, extra_bindings_alias);
      if (rc) return rc;
    }
    return DPL_OK;
  }
  eltwise_params pc;
  memset(&pc, 0, sizeof pc);
  pc.numel = (uint32_t)it->numel;
  pc.ndim = (uint32_t)it->ndim;
  pc.p0 = p0;
  pc.p1 = p1;
  vk_binding b[VK_MAX_BINDINGS];
  int nb = 0;
  for (int k = 0; k < it->nops; k++) {
    int64_t lo, hi;
    dpl_iter_extent(it, k, &lo, &hi);
    int rc = vk_bind(dev, it->op[k].storage, lo, hi, k == 0, &b[nb], &pc.offset[k]);
    if (rc) return rc;
    nb++;
    for (int d = 0; d < it->ndim; d++) pc.stride[k * 4 + d] = (int32_t)it->op[k].stride[d];
  }
  for (int d = 0; d < it->ndim; d++) pc.shape[d] = (uint32_t)it->shape[d];
  /* offsets: vk_bind returned where element `lo` sits in the binding; the shader adds strides from op offset */
  for (int k = 0; k < it->nops; k++) {
    int64_t lo, hi;
    dpl_iter_extent(it, k, &lo, &hi);
    pc.offset[k] += (uint32_t)(it->op[k].offset - lo);
  }
  /* shaders that read an optional operand get operand 1's binding again */
  for (int e = 0; e < extra_bindings_alias; e++) { b[nb] = b[1]; nb++; }
  uint32_t gx, gy;
  vk_grid_1d((uint64_t)it->numel, ELT_LOCAL, &gx, &gy);
  return vk_dispatch(dev, shader, spec, nspec, b, nb, &pc, sizeof pc, gx, gy, 1);
}

static int vk_op_copy(dpl_device *dev, const dpl_iter *it) {
  uint32_t spec[1] = {ELT_LOCAL};
  return eltwise(dev, DPL_SHADER_COPY, spec, 1, it, 0, 0, 0);
}

static int vk_op_fill(dpl_device *dev, const dpl_iter *it, float value) {
  uint32_t spec[1] = {ELT_LOCAL};
  return eltwise(dev, DPL_SHADER_FILL, spec, 1, it, value, 0, 0);
}

static int vk_op_binary(dpl_device *dev, int op, const dpl_iter *it, float s, int mode) {
  if (op < 0 || op >= DPL_BINARY_COUNT) return dpl_fail(DPL_ERR_UNSUPPORTED, "vulkan: no kernel for binary op %d", op);
  uint32_t spec[3] = {ELT_LOCAL, (uint32_t)op, (uint32_t)mode};
  return eltwise(dev, DPL_SHADER_BINARY, spec, 3, it, s, 0, mode == 0 ? 0 : 1);
}

static int vk_op_unary(dpl_device *dev, int op, const dpl_iter *it, float p0, float p1) {
  if (op < 0 || op >= DPL_UNARY_COUNT) return dpl_fail(DPL_ERR_UNSUPPORTED, "vulkan: no kernel for unary op %d", op);
  uint32_t spec[2] = {ELT_LOCAL, (uint32_t)op};
  return eltwise(dev, DPL_SHADER_UNARY, spec, 2, it, p0, p1, 0);
}

static int vk_op_where(dpl_device *dev, const dpl_iter *it) {
  uint32_t spec[1] = {ELT_LOCAL};
  return eltwise(dev, DPL_SHADER_WHERE, spec, 1, it, 0, 0, 0);
}

static int vk_op_muladd(dpl_device *dev, const dpl_iter *it) {
  uint32_t spec[1] = {ELT_LOCAL};
  return eltwise(dev, DPL_SHADER_MULADD, spec, 1, it, 0, 0, 0);
}

/* ---- reductions ------------------------------------------------------------------------------------------------- */
typedef struct reduce_params { uint32_t outer, r, inner, in_off, out_off, unbiased; } reduce_params;

static int vk_op_reduce(dpl_device *dev, const dpl_reduce_args *ra, const dpl_tensor *out, const dpl_tensor *in);

/* A contiguous 3-D view of t's storage at `offset`, on the stack: valid while t is, never freed. */
static dpl_tensor view3(const dpl_tensor *t, int64_t offset, int64_t d0, int64_t d1, int64_t d2) {
  dpl_tensor v = *t;
  v.offset = offset;
  v.ndim = 3;
  v.shape[0] = d0; v.shape[1] = d1; v.shape[2] = d2;
  v.stride[0] = d1 * d2; v.stride[1] = d2; v.stride[2] = 1;
  return v;
}

/* Reductions with long rows: the (r x inner) block of one outer index exceeds a binding, or r exceeds
 * REDUCE_MAX_R, past which one workgroup per output would loop too long (lavapipe's loop limiter silently cuts
 * shader loops near 65535 iterations, which gave wrong sums from r of about 4M on). Each row is reduced in chunks of
 * a power of two of at most REDUCE_MAX_R indices (so chunk-local argmax indices and chunk offsets are exact floats)
 * into partial results of shape (outer, chunks, inner), which ordinary ops then combine: sums add; max/min reduce
 * again; argmax takes the first chunk holding the best value and adds its offset; var merges the chunks' means and
 * variances (Chan et al.). When even one r-slice (inner elements) is too large for a binding, the input is first
 * transposed to (outer, inner, r). */
enum { REDUCE_MAX_R = 1 << 20 };

static int reduce_long_rows(dpl_device *dev, const dpl_reduce_args *ra, const dpl_tensor *out, const dpl_tensor *in,
                            int64_t max_elems) {
  int64_t outer = ra->outer, r = ra->r, inner = ra->inner;
  if (inner > max_elems / 2) {
    dpl_tensor v = view3(in, in->offset, outer, r, inner);
    int perm[3] = {0, 2, 1};
    dpl_tensor *p = dpl_tensor_permute(&v, perm);
    dpl_tensor *c = p ? dpl_tensor_contiguous(p) : NULL;
    dpl_tensor_free(p);
    if (!c) return dpl_last_status();
    dpl_reduce_args a = *ra;
    a.outer = outer * inner;
    a.inner = 1;
    int rc = vk_op_reduce(dev, &a, out, c);
    dpl_tensor_free(c);
    return rc;
  }
  int64_t chunk = 1;
  while (chunk * 2 <= max_elems / inner && chunk * 2 <= REDUCE_MAX_R) chunk *= 2;
  int64_t nfull = r / chunk, rem = r - nfull * chunk, nchunk = nfull + (rem ? 1 : 0);
  int op = ra->op, arg = op == DPL_ARGMAX || op == DPL_ARGMIN;
  int part_op = op == DPL_SUM || op == DPL_MEAN ? DPL_SUM
              : op == DPL_VAR                    ? DPL_MEAN
              : op == DPL_ARGMAX                 ? DPL_MAX
              : op == DPL_ARGMIN                 ? DPL_MIN
                                                 : op;
  int64_t pshape[3] = {outer, nchunk, inner}, cshape[2] = {nchunk, 1};
  int dim1[1] = {1};
  dpl_tensor *P = dpl_tensor_alloc_like_shape(dev, 3, pshape);
  dpl_tensor *Q = arg || op == DPL_VAR ? dpl_tensor_alloc_like_shape(dev, 3, pshape) : NULL;
  dpl_tensor *R = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL, *col = NULL;
  int rc = !P || (!Q && (arg || op == DPL_VAR)) ? dpl_last_status() : DPL_OK;
  /* partial results: P = sum / max / min / mean of each chunk, Q = its argmax / argmin / biased variance. The full
   * chunks of a row are one (nfull, chunk, inner) reduction; without a remainder, those of all rows together. */
  int64_t groups = rem ? outer : 1, full_per_group = rem ? nfull : outer * nfull;
  for (int64_t g = 0; g < groups && !rc; g++)
    for (int part = 0; part < 2 && !rc; part++) {
      int64_t count = part ? 1 : full_per_group, len = part ? rem : chunk;
      if (count == 0 || len == 0) continue;
      int64_t first = part ? nfull : 0;   /* chunk index within the row */
      dpl_tensor src = view3(in, in->offset + (g * r + first * chunk) * inner, count, len, inner);
      dpl_reduce_args a = {part_op, 0, count, len, inner};
      for (int which = 0; which < (Q ? 2 : 1) && !rc; which++) {
        dpl_tensor *T = which ? Q : P;
        dpl_tensor dst = view3(T, T->offset + (g * nchunk + first) * inner, count, 1, inner);
        a.op = which == 0 ? part_op : arg ? op : DPL_VAR;
        rc = vk_op_reduce(dev, &a, &dst, &src);
      }
    }
  if (rc) goto done;
  /* combine over the chunks (dim 1) into R of shape (outer, 1, inner) */
  if (op == DPL_SUM || op == DPL_MAX || op == DPL_MIN) {
    R = dpl_reduce(op, P, 1, dim1, 1, 0);
  } else if (op == DPL_MEAN) {
    if ((t1 = dpl_reduce(DPL_SUM, P, 1, dim1, 1, 0))) R = dpl_binary_scalar(DPL_DIV, t1, (float)r, 0);
  } else if (arg) {
    /* chunk offsets c * chunk; the first chunk with the best value; its local index plus its offset */
    float *offs = malloc((size_t)nchunk * sizeof(float));
    if (!offs) { rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); goto done; }
    for (int64_t c = 0; c < nchunk; c++) offs[c] = (float)(c * chunk);
    col = dpl_tensor_from_host(dev, 2, cshape, offs);
    free(offs);
    if (col && (t1 = dpl_reduce(op, P, 1, dim1, 1, 0)) && (t2 = dpl_binary_scalar(DPL_MUL, t1, (float)chunk, 0)) &&
        (t3 = dpl_binary(DPL_EQ, col, t2)) && dpl_binary_into(DPL_ADD, Q, Q, col) == DPL_OK &&
        (t4 = dpl_binary(DPL_MUL, t3, Q)))
      R = dpl_reduce(DPL_SUM, t4, 1, dim1, 1, 0);
  } else {
    /* var: n = sum n_c; mean = sum n_c m_c / n; M2 = sum n_c (v_c + (m_c - mean)^2) */
    float *lens = malloc((size_t)nchunk * sizeof(float));
    if (!lens) { rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); goto done; }
    for (int64_t c = 0; c < nchunk; c++) lens[c] = (float)(r - c * chunk < chunk ? r - c * chunk : chunk);
    col = dpl_tensor_from_host(dev, 2, cshape, lens);
    free(lens);
    if (col && (t1 = dpl_binary(DPL_MUL, P, col)) && (t2 = dpl_reduce(DPL_SUM, t1, 1, dim1, 1, 0)) &&
        dpl_binary_scalar_into(DPL_DIV, t2, t2, (float)r, 0) == DPL_OK && (t3 = dpl_binary(DPL_SUB, P, t2)) &&
        dpl_binary_into(DPL_MUL, t3, t3, t3) == DPL_OK && dpl_binary_into(DPL_ADD, t3, t3, Q) == DPL_OK &&
        dpl_binary_into(DPL_MUL, t3, t3, col) == DPL_OK && (t4 = dpl_reduce(DPL_SUM, t3, 1, dim1, 1, 0)))
      R = dpl_binary_scalar(DPL_DIV, t4, (float)(ra->unbiased ? r - 1 : r), 0);
  }
  if (!R) { rc = dpl_last_status() ? dpl_last_status() : DPL_ERR_DEVICE; goto done; }
  dpl_tensor dst = view3(out, out->offset, outer, 1, inner);
  rc = dpl_tensor_copy_(&dst, R);
done:
  dpl_tensor_free(P); dpl_tensor_free(Q); dpl_tensor_free(R); dpl_tensor_free(col);
  dpl_tensor_free(t1); dpl_tensor_free(t2); dpl_tensor_free(t3); dpl_tensor_free(t4);
  return rc;
}

static int vk_op_reduce(dpl_device *dev, const dpl_reduce_args *ra, const dpl_tensor *out, const dpl_tensor *in) {
  if (ra->op < 0 || ra->op >= DPL_REDUCE_COUNT)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "vulkan: no kernel for reduce op %d", ra->op);
  vk_device *v = vkdev(dev);
  int64_t row = ra->r * ra->inner;           /* input elements per outer index */
  int64_t max_elems = (int64_t)((v->max_binding - v->alignment) / 4);
  if (row > max_elems || ra->r > REDUCE_MAX_R) return reduce_long_rows(dev, ra, out, in, max_elems);
  int64_t per = max_elems / (row ? row : 1);
  int mode = ra->r >= 64 ? 1 : 0;            /* long rows: a workgroup per output */
  uint32_t wg = 64;
  for (int64_t o0 = 0; o0 < ra->outer; o0 += per) {
    int64_t outer = ra->outer - o0 < per ? ra->outer - o0 : per;
    reduce_params pc = {(uint32_t)outer, (uint32_t)ra->r, (uint32_t)ra->inner, 0, 0, (uint32_t)ra->unbiased};
    vk_binding b[2];
    int64_t in_lo = in->offset + o0 * row, out_lo = out->offset + o0 * ra->inner;
    int rc = vk_bind(dev, out->storage, out_lo, out_lo + outer * ra->inner - 1, 1, &b[0], &pc.out_off);
    if (!rc) rc = vk_bind(dev, in->storage, in_lo, in_lo + (row ? outer * row : 1) - 1, 0, &b[1], &pc.in_off);
    if (rc) return rc;
    uint32_t spec[4] = {mode ? wg : ELT_LOCAL, (uint32_t)ra->op, (uint32_t)mode, wg};
    uint32_t gx, gy;
    uint64_t outputs = (uint64_t)(outer * ra->inner);
    if (mode) vk_grid_1d(outputs, 1, &gx, &gy);
    else vk_grid_1d(outputs, ELT_LOCAL, &gx, &gy);
    rc = vk_dispatch(dev, DPL_SHADER_REDUCE, spec, 4, b, 2, &pc, sizeof pc, gx, gy, 1);
    if (rc) return rc;
  }
  return DPL_OK;
}

/* ---- batch norm with the batch's statistics (shaders/batch_norm.comp) -------------------------------------------- */
/* mirrors Params in shaders/batch_norm.comp */
typedef struct bn_params {
  uint32_t n, c, hw, has_weight, has_bias, x_off, g_off, y_off, mean_off, var_off, w_off, b_off, gw_off, gb_off;
  float eps;
} bn_params;

/* workgroup size of the per-channel sums, and the longest loop they may run per invocation (lavapipe's loop limiter
 * silently cuts loops near 65535 iterations) */
enum { BN_WG = 256, BN_MAX_LOOP = 16384 };

/* Whether the kernels take the shape: every tensor in one binding, per-channel loops well under the limiter. Else
 * (or with DPL_VK_BATCH_NORM=0, which tests use to check both forms) ops/norm.c composes the op of reductions and
 * muladd, which split. */
static bool bn_fits(dpl_device *dev, const dpl_batch_norm_args *a) {
  if (dpl_env_is("DPL_VK_BATCH_NORM", "0")) return false;
  vk_device *v = vkdev(dev);
  int64_t numel = a->n * a->c * a->hw;
  return (uint64_t)numel * 4 + v->alignment <= v->max_binding && a->n * a->hw <= (int64_t)BN_WG * BN_MAX_LOOP &&
         a->c <= 65535LL * 65535LL;
}

/* One binding of a batch norm dispatch: the first `count` elements of a contiguous tensor, read or written, and the
 * push-constant field that receives its offset in the binding. */
typedef struct bn_operand { const dpl_tensor *t; int64_t count; int write; uint32_t *off; } bn_operand;

static bn_params bn_base(const dpl_batch_norm_args *a) {
  bn_params pc;
  memset(&pc, 0, sizeof pc);
  pc.n = (uint32_t)a->n; pc.c = (uint32_t)a->c; pc.hw = (uint32_t)a->hw;
  pc.has_weight = a->weight != NULL; pc.has_bias = a->bias != NULL;
  pc.eps = a->eps;
  return pc;
}

/* Binds the operands in order and records the dispatch: per channel (one workgroup each) or elementwise. */
static int bn_dispatch(dpl_device *dev, int shader, const bn_operand *ops, int nops, const bn_params *pc,
                       bool per_channel, int64_t numel) {
  vk_binding b[VK_MAX_BINDINGS];
  for (int i = 0; i < nops; i++) {
    const dpl_tensor *t = ops[i].t;
    int rc = vk_bind(dev, t->storage, t->offset, t->offset + ops[i].count - 1, ops[i].write, &b[i], ops[i].off);
    if (rc) return rc;
  }
  uint32_t spec[2] = {per_channel ? BN_WG : ELT_LOCAL, BN_WG}, gx, gy;
  if (per_channel) vk_grid_1d((uint64_t)pc->c, 1, &gx, &gy);
  else vk_grid_1d((uint64_t)numel, ELT_LOCAL, &gx, &gy);
  return vk_dispatch(dev, shader, spec, 2, b, nops, pc, sizeof *pc, gx, gy, 1);
}

/* A missing weight or bias binds the mean again (has_weight / has_bias tell the shader). */
static int vk_op_batch_norm_forward(dpl_device *dev, const dpl_batch_norm_args *a) {
  if (!bn_fits(dev, a)) return DPL_NOT_FUSED;
  const int64_t numel = a->n * a->c * a->hw, c = a->c;
  bn_params pc = bn_base(a);
  const bn_operand stats[] = {{a->mean, c, 1, &pc.mean_off}, {a->var, c, 1, &pc.var_off},
                              {a->x, numel, 0, &pc.x_off}};
  int rc = bn_dispatch(dev, DPL_SHADER_BATCH_NORM, stats, 3, &pc, true, numel);
  if (rc) return rc;
  const bn_operand apply[] = {{a->y, numel, 1, &pc.y_off}, {a->x, numel, 0, &pc.x_off},
                              {a->mean, c, 0, &pc.mean_off}, {a->var, c, 0, &pc.var_off},
                              {a->weight ? a->weight : a->mean, c, 0, &pc.w_off},
                              {a->bias ? a->bias : a->mean, c, 0, &pc.b_off}};
  return bn_dispatch(dev, DPL_SHADER_BATCH_NORM_APPLY, apply, 6, &pc, false, numel);
}

static int vk_op_batch_norm_backward(dpl_device *dev, const dpl_batch_norm_args *a) {
  if (!bn_fits(dev, a)) return DPL_NOT_FUSED;
  const int64_t numel = a->n * a->c * a->hw, c = a->c;
  bn_params pc = bn_base(a);
  const bn_operand sums[] = {{a->grad_weight, c, 1, &pc.gw_off}, {a->grad_bias, c, 1, &pc.gb_off},
                             {a->x, numel, 0, &pc.x_off}, {a->g, numel, 0, &pc.g_off},
                             {a->mean, c, 0, &pc.mean_off}, {a->var, c, 0, &pc.var_off}};
  int rc = bn_dispatch(dev, DPL_SHADER_BATCH_NORM_GRAD_SUMS, sums, 6, &pc, true, numel);
  if (rc || !a->y) return rc;
  const bn_operand input[] = {{a->y, numel, 1, &pc.y_off}, {a->x, numel, 0, &pc.x_off}, {a->g, numel, 0, &pc.g_off},
                              {a->mean, c, 0, &pc.mean_off}, {a->var, c, 0, &pc.var_off},
                              {a->weight ? a->weight : a->mean, c, 0, &pc.w_off},
                              {a->grad_weight, c, 0, &pc.gw_off}, {a->grad_bias, c, 0, &pc.gb_off}};
  return bn_dispatch(dev, DPL_SHADER_BATCH_NORM_GRAD_INPUT, input, 8, &pc, false, numel);
}

/* ---- matrix product --------------------------------------------------------------------------------------------- */
typedef struct matmul_params {
  uint32_t m, n, k, batch_base;
  uint32_t a_off; int32_t a_rs, a_cs, a_bs;
  uint32_t b_off; int32_t b_rs, b_cs, b_bs;
  uint32_t c_off; int32_t c_rs, c_cs, c_bs;
  float alpha, beta;
} matmul_params;

static int64_t extent_hi(int64_t off, int64_t batch, int64_t bs, int64_t rows, int64_t rs, int64_t cols, int64_t cs) {
  return off + (batch - 1) * bs + (rows - 1) * rs + (cols - 1) * cs;
}

int vk_gemm(dpl_device *dev, const dpl_gemm_args *g) {
  enum { TM = 4, TN = 4 };
  if (g->k == 0) {
    /* C = beta * C */
    dpl_tensor cview = *g->c;
    cview.ndim = 3;
    cview.shape[0] = g->batch; cview.shape[1] = g->m; cview.shape[2] = g->n;
    cview.stride[0] = g->c_bs; cview.stride[1] = g->c_rs; cview.stride[2] = g->c_cs;
    const dpl_tensor *ops[2] = {&cview, &cview};
    dpl_iter it;
    dpl_iter_build(&it, 2, ops);
    uint32_t spec[3] = {ELT_LOCAL, DPL_MUL, 1};
    return eltwise(dev, DPL_SHADER_BINARY, spec, 3, &it, g->beta, 0, 1);
  }
  int family = vk_choose_gemm(dev, g);
  if (family == VK_GEMM_TEXEL) return vk_gemm_texel(dev, g);
  if (family == VK_GEMM_TILED) return vk_gemm_tiled(dev, g);
  for (int64_t b0 = 0; b0 < g->batch; b0 += 65535) {
    int64_t nb = g->batch - b0 < 65535 ? g->batch - b0 : 65535;
    matmul_params pc = {(uint32_t)g->m, (uint32_t)g->n, (uint32_t)g->k, 0,
                        0, (int32_t)g->a_rs, (int32_t)g->a_cs, (int32_t)g->a_bs,
                        0, (int32_t)g->b_rs, (int32_t)g->b_cs, (int32_t)g->b_bs,
                        0, (int32_t)g->c_rs, (int32_t)g->c_cs, (int32_t)g->c_bs, g->alpha, g->beta};
    int64_t a_lo = g->a->offset + b0 * g->a_bs, b_lo = g->b->offset + b0 * g->b_bs, c_lo = g->c->offset + b0 * g->c_bs;
    vk_binding b[3];
    int rc = vk_bind(dev, g->c->storage, c_lo, extent_hi(c_lo, nb, g->c_bs, g->m, g->c_rs, g->n, g->c_cs), 1, &b[0],
                     &pc.c_off);
    if (!rc) rc = vk_bind(dev, g->a->storage, a_lo, extent_hi(a_lo, nb, g->a_bs, g->m, g->a_rs, g->k, g->a_cs), 0,
                          &b[1], &pc.a_off);
    if (!rc) rc = vk_bind(dev, g->b->storage, b_lo, extent_hi(b_lo, nb, g->b_bs, g->k, g->b_rs, g->n, g->b_cs), 0,
                          &b[2], &pc.b_off);
    if (rc) return rc;
    uint32_t spec[3] = {64, TM, TN};
    uint32_t gx = (uint32_t)((g->n + 8 * TN - 1) / (8 * TN)), gy = (uint32_t)((g->m + 8 * TM - 1) / (8 * TM));
    rc = vk_dispatch(dev, DPL_SHADER_MATMUL, spec, 3, b, 3, &pc, sizeof pc, gx, gy, (uint32_t)nb);
    if (rc) return rc;
  }
  return DPL_OK;
}

/* ---- random ----------------------------------------------------------------------------------------------------- */
typedef struct random_params { uint32_t n, out_off, seed_lo, seed_hi, offset_lo, offset_hi; float a, b; } random_params;

static int vk_op_random(dpl_device *dev, const dpl_tensor *out, int dist, float a, float b, uint64_t seed,
                        uint64_t offset) {
  vk_device *v = vkdev(dev);
  int64_t n = dpl_tensor_numel(out);
  int64_t chunk = (int64_t)((v->max_binding - v->alignment) / 4);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    int64_t len = n - i0 < chunk ? n - i0 : chunk;
    uint64_t off = offset + (uint64_t)i0;
    random_params pc = {(uint32_t)len, 0, (uint32_t)seed, (uint32_t)(seed >> 32), (uint32_t)off,
                        (uint32_t)(off >> 32), a, b};
    vk_binding bind;
    int rc = vk_bind(dev, out->storage, out->offset + i0, out->offset + i0 + len - 1, 1, &bind, &pc.out_off);
    if (rc) return rc;
    uint32_t spec[2] = {ELT_LOCAL, (uint32_t)dist}, gx, gy;
    vk_grid_1d((uint64_t)len, ELT_LOCAL, &gx, &gy);
    rc = vk_dispatch(dev, DPL_SHADER_RANDOM, spec, 2, &bind, 1, &pc, sizeof pc, gx, gy, 1);
    if (rc) return rc;
  }
  return DPL_OK;
}

static void vk_destroy_device(dpl_device *dev);

const dpl_backend dpl_vulkan_backend = {
  .name = "vulkan",
  .storage_alloc = vk_storage_alloc,
  .storage_free = vk_storage_free,
  .write = vk_write,
  .read = vk_read,
  .copy = vk_op_copy,
  .fill = vk_op_fill,
  .binary = vk_op_binary,
  .unary = vk_op_unary,
  .where = vk_op_where,
  .muladd = vk_op_muladd,
  .reduce = vk_op_reduce,
  .gemm = vk_gemm,
  .random = vk_op_random,
  .synchronize = vk_synchronize,
  .destroy = vk_destroy_device,
  .conv2d_forward = vk_op_conv2d_forward,
  .conv2d_backward_input = vk_op_conv2d_backward_input,
  .conv2d_backward_weight = vk_op_conv2d_backward_weight,
  .spatial2d = vk_op_spatial2d,
  .batch_norm_forward = vk_op_batch_norm_forward,
  .batch_norm_backward = vk_op_batch_norm_backward,
  .fused_conv_activation = true,
};

/* defined in device_vulkan.c */
void dpl_vulkan_device_destroy(dpl_device *dev);
static void vk_destroy_device(dpl_device *dev) { dpl_vulkan_device_destroy(dev); }
