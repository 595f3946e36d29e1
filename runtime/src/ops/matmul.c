/* matmul.c - torch.matmul semantics (1-D, 2-D and broadcast batched operands) on top of the backends' batched GEMM. */
#include "internal.h"
#include <stdio.h>

enum { GEMM_MAX_K = 32768 };   /* longest inner dim of one Vulkan gemm dispatch */

static int run_gemm(dpl_tensor *c, dpl_tensor *a, dpl_tensor *b, int64_t batch, float alpha, float beta,
                    int trans_a, int trans_b) {
  /* a, b, c are 3-D (batch, rows, cols) views; a batch stride of 0 broadcasts */
  dpl_gemm_args g = {0};
  g.batch = batch;
  g.a = a; g.b = b; g.c = c;
  g.m = c->shape[1];
  g.n = c->shape[2];
  g.k = trans_a ? a->shape[1] : a->shape[2];
  g.a_bs = a->shape[0] == 1 ? 0 : a->stride[0];
  g.a_rs = trans_a ? a->stride[2] : a->stride[1];
  g.a_cs = trans_a ? a->stride[1] : a->stride[2];
  g.b_bs = b->shape[0] == 1 ? 0 : b->stride[0];
  g.b_rs = trans_b ? b->stride[2] : b->stride[1];
  g.b_cs = trans_b ? b->stride[1] : b->stride[2];
  g.c_bs = c->stride[0];
  g.c_rs = c->stride[1];
  g.c_cs = c->stride[2];
  g.alpha = alpha;
  g.beta = beta;
  if (g.m == 0 || g.n == 0) return DPL_OK;
  /* an empty inner dim with beta 0 gives zeros, whatever C held before (beta * C would keep NaN from fresh memory) */
  if (g.k == 0 && beta == 0.0f) return dpl_tensor_fill_(c, 0.0f);
  dpl_device *dev = c->storage->dev;
  dpl_storage_written(c->storage);
  if (!dev->is_vulkan || g.k <= GEMM_MAX_K) return dev->backend->gemm(dev, &g);
  /* Vulkan drivers may cut long shader loops short (lavapipe ends any loop after about 65535 iterations, which made
   * 1 x 100000 @ 100000 x 1 give 65535): very long inner dims run as several products accumulated with beta = 1. */
  for (int64_t k0 = 0; k0 < g.k; k0 += GEMM_MAX_K) {
    dpl_tensor as = *a, bs = *b;   /* views for storage and offset only, as dpl_gemm_args wants */
    as.offset += k0 * g.a_cs;
    bs.offset += k0 * g.b_rs;
    dpl_gemm_args h = g;
    h.a = &as;
    h.b = &bs;
    h.k = g.k - k0 < GEMM_MAX_K ? g.k - k0 : GEMM_MAX_K;
    h.beta = k0 ? 1.0f : beta;
    int rc = dev->backend->gemm(dev, &h);
    if (rc) return rc;
  }
  return DPL_OK;
}

int dpl_gemm(dpl_tensor *c, dpl_tensor *a, dpl_tensor *b, int trans_a, int trans_b, float alpha, float beta) {
  if (!a || !b || !c) return dpl_fail(DPL_ERR_ARGUMENT, "gemm: NULL tensor");
  if (a->ndim != 2 || b->ndim != 2 || c->ndim != 2)
    return dpl_fail(DPL_ERR_ARGUMENT, "gemm: needs 2-D tensors (got %d-D, %d-D, %d-D)", a->ndim, b->ndim, c->ndim);
  if (dpl_check_same_device("gemm", a, "a", b, "b") || dpl_check_same_device("gemm", a, "a", c, "c"))
    return dpl_last_status();
  int64_t m = trans_a ? a->shape[1] : a->shape[0], k = trans_a ? a->shape[0] : a->shape[1];
  int64_t k2 = trans_b ? b->shape[1] : b->shape[0], n = trans_b ? b->shape[0] : b->shape[1];
  if (k != k2 || c->shape[0] != m || c->shape[1] != n)
    return dpl_fail(DPL_ERR_ARGUMENT, "gemm: op(A) is %lldx%lld, op(B) is %lldx%lld, C is %lldx%lld", (long long)m,
                    (long long)k, (long long)k2, (long long)n, (long long)c->shape[0], (long long)c->shape[1]);
  dpl_tensor *a3 = dpl_tensor_unsqueeze(a, 0), *b3 = dpl_tensor_unsqueeze(b, 0), *c3 = dpl_tensor_unsqueeze(c, 0);
  int rc = a3 && b3 && c3 ? run_gemm(c3, a3, b3, 1, alpha, beta, trans_a, trans_b) : dpl_last_status();
  dpl_tensor_free(a3); dpl_tensor_free(b3); dpl_tensor_free(c3);
  if (rc) dpl_error_prefix("gemm");
  return rc;
}

/* The (1, rows, cols) view of the first matrix of t, whose nb leading (batch) dims all have stride 0: the one matrix
 * that every batch shares, whether it was broadcast here or expanded by the caller. */
static dpl_tensor *first_matrix(dpl_tensor *t, int nb, int64_t rows, int64_t cols) {
  dpl_tensor *v = dpl_tensor_ref(t);
  for (int i = 0; i < nb && v; i++) {
    dpl_tensor *one = dpl_tensor_narrow(v, i, 0, 1);
    dpl_tensor_free(v);
    v = one;
  }
  if (!v) return NULL;
  int64_t s3[3] = {1, rows, cols};
  dpl_tensor *r = dpl_tensor_view(v, 3, s3);
  dpl_tensor_free(v);
  return r;
}

dpl_tensor *dpl_matmul(dpl_tensor *a, dpl_tensor *b) {
  char b1[160], b2[160];
  if (!a || !b) { dpl_fail(DPL_ERR_ARGUMENT, "matmul: NULL tensor"); return NULL; }
  if (dpl_check_same_device("matmul", a, "a", b, "b")) return NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    dpl_fail(DPL_ERR_ARGUMENT, "matmul: both arguments need at least 1 dimension");
    return NULL;
  }
  /* promote 1-D operands */
  dpl_tensor *A = a->ndim == 1 ? dpl_tensor_unsqueeze(a, 0) : dpl_tensor_ref(a);
  dpl_tensor *B = b->ndim == 1 ? dpl_tensor_unsqueeze(b, 1) : dpl_tensor_ref(b);
  dpl_tensor *out = NULL, *A3 = NULL, *B3 = NULL, *C3 = NULL, *Ae = NULL, *Be = NULL;
  int64_t m = A->shape[A->ndim - 2], k = A->shape[A->ndim - 1], k2 = B->shape[B->ndim - 2], n = B->shape[B->ndim - 1];
  if (k != k2) {
    dpl_fail(DPL_ERR_ARGUMENT, "matmul: shapes %s and %s cannot be multiplied (%lld vs %lld)",
             dpl_shape_str(b1, sizeof b1, a->ndim, a->shape), dpl_shape_str(b2, sizeof b2, b->ndim, b->shape),
             (long long)k, (long long)k2);
    goto done;
  }
  /* broadcast batch dims */
  int nb;
  int64_t bshape[DPL_MAX_DIMS];
  if (dpl_broadcast_shapes("matmul", A->ndim - 2, A->shape, B->ndim - 2, B->shape, &nb, bshape)) {
    dpl_fail(DPL_ERR_ARGUMENT, "matmul: the batch dims of shapes %s and %s do not broadcast",
             dpl_shape_str(b1, sizeof b1, a->ndim, a->shape), dpl_shape_str(b2, sizeof b2, b->ndim, b->shape));
    goto done;
  }
  if (nb + 2 > DPL_MAX_DIMS) { dpl_fail(DPL_ERR_ARGUMENT, "matmul: too many dims"); goto done; }
  int64_t batch = dpl_shape_numel(nb, bshape);
  int64_t full[DPL_MAX_DIMS];
  for (int i = 0; i < nb; i++) full[i] = bshape[i];
  full[nb] = m; full[nb + 1] = k;
  Ae = dpl_tensor_expand(A, nb + 2, full);
  full[nb] = k; full[nb + 1] = n;
  Be = dpl_tensor_expand(B, nb + 2, full);
  if (!Ae || !Be) goto done;
  /* collapse batch dims: a view when possible (broadcast batches become stride 0), else a copy */
  int64_t s3a[3] = {batch, m, k}, s3b[3] = {batch, k, n};
  bool a_bcast = true, b_bcast = true;
  for (int i = 0; i < nb; i++) { if (Ae->stride[i]) a_bcast = false; if (Be->stride[i]) b_bcast = false; }
  A3 = a_bcast && batch > 1 ? first_matrix(Ae, nb, m, k) : dpl_tensor_reshape(Ae, 3, s3a);
  B3 = b_bcast && batch > 1 ? first_matrix(Be, nb, k, n) : dpl_tensor_reshape(Be, 3, s3b);
  if (!A3 || !B3) goto done;
  int64_t oshape[DPL_MAX_DIMS];
  int on = 0;
  for (int i = 0; i < nb; i++) oshape[on++] = bshape[i];
  if (a->ndim > 1) oshape[on++] = m;
  if (b->ndim > 1) oshape[on++] = n;
  out = dpl_tensor_alloc_like_shape(a->storage->dev, on, oshape);
  if (!out) goto done;
  int64_t s3c[3] = {batch, m, n};
  C3 = dpl_tensor_view(out, 3, s3c);
  if (!C3 || run_gemm(C3, A3, B3, batch, 1.0f, 0.0f, 0, 0)) { dpl_tensor_free(out); out = NULL; }
done:
  if (!out) dpl_error_prefix("matmul");
  dpl_tensor_free(A); dpl_tensor_free(B); dpl_tensor_free(Ae); dpl_tensor_free(Be);
  dpl_tensor_free(A3); dpl_tensor_free(B3); dpl_tensor_free(C3);
  return out;
}
