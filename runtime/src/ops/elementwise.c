/* elementwise.c - argument checks and broadcasting for binary, unary and where; the backends do the arithmetic. */
#include "internal.h"
#include "dpl_op_names.h"   /* generated from dpl.h's enums (cmake/op_codes.cmake) */
#include <stdio.h>

int dpl_broadcast_shapes(const char *fn, int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char b1[160], b2[160];
      return dpl_fail(DPL_ERR_ARGUMENT, "%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)", fn,
                      dpl_shape_str(b1, sizeof b1, na, a), dpl_shape_str(b2, sizeof b2, nb, b), i, (long long)sa,
                      (long long)sb);
    }
    out[i] = sa == 1 ? sb : sa;
  }
  *nout = n;
  return DPL_OK;
}

static int check_out(const char *fn, const dpl_tensor *out, int n, const int64_t *shape) {
  if (!dpl_shape_equal(out->ndim, out->shape, n, shape)) {
    char b1[160], b2[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: output has shape %s, expected %s", fn,
                    dpl_shape_str(b1, sizeof b1, out->ndim, out->shape), dpl_shape_str(b2, sizeof b2, n, shape));
  }
  return DPL_OK;
}

static int valid_op(const char *kind, int op, int count) {
  if (op < 0 || op >= count) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_%s: unknown op %d (0..%d)", kind, op, count - 1);
  return DPL_OK;
}

int dpl_binary_into(int op, dpl_tensor *out, dpl_tensor *a, dpl_tensor *b) {
  if (valid_op("binary", op, DPL_BINARY_COUNT)) return dpl_last_status();
  const char *fn = dpl_binary_op_name(op);
  if (!out || !a || !b) return dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL tensor", fn);
  if (dpl_check_same_device(fn, a, "a", b, "b") || dpl_check_same_device(fn, out, "out", a, "a"))
    return dpl_last_status();
  int n;
  int64_t shape[DPL_MAX_DIMS];
  if (dpl_broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &n, shape)) return dpl_last_status();
  if (check_out(fn, out, n, shape)) return dpl_last_status();
  if (dpl_tensor_numel(out) == 0) return DPL_OK;
  const dpl_tensor *ops[3] = {out, a, b};
  dpl_iter it;
  dpl_iter_build(&it, 3, ops);
  dpl_storage_written(out->storage);
  int rc = out->storage->dev->backend->binary(out->storage->dev, op, &it, 0.0f, 0);
  if (rc) dpl_error_prefix(fn);
  return rc;
}

dpl_tensor *dpl_binary(int op, dpl_tensor *a, dpl_tensor *b) {
  if (valid_op("binary", op, DPL_BINARY_COUNT)) return NULL;
  const char *fn = dpl_binary_op_name(op);
  if (!a || !b) { dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL tensor", fn); return NULL; }
  if (dpl_check_same_device(fn, a, "a", b, "b")) return NULL;
  int n;
  int64_t shape[DPL_MAX_DIMS];
  if (dpl_broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &n, shape)) return NULL;
  dpl_tensor *out = dpl_tensor_alloc_like_shape(a->storage->dev, n, shape);
  if (!out) { dpl_error_prefix(fn); return NULL; }
  if (dpl_binary_into(op, out, a, b)) { dpl_tensor_free(out); return NULL; }
  return out;
}

/* out = op(a) for a unary op (mode 0, parameters p0, p1) or a binary op with a scalar p0 (mode 1: a op p0, 2: p0 op a):
 * the checks and the backend call the into forms share */
static int one_operand_into(const char *fn, int op, int mode, dpl_tensor *out, dpl_tensor *a, float p0, float p1) {
  if (!out || !a) return dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL tensor", fn);
  if (dpl_check_same_device(fn, out, "out", a, "a") || check_out(fn, out, a->ndim, a->shape))
    return dpl_last_status();
  if (dpl_tensor_numel(out) == 0) return DPL_OK;
  const dpl_tensor *ops[2] = {out, a};
  dpl_iter it;
  dpl_iter_build(&it, 2, ops);
  dpl_storage_written(out->storage);
  dpl_device *dev = out->storage->dev;
  int rc = mode == 0 ? dev->backend->unary(dev, op, &it, p0, p1) : dev->backend->binary(dev, op, &it, p0, mode);
  if (rc) dpl_error_prefix(fn);
  return rc;
}

/* a new tensor shaped like a, for the into form to fill (NULL with the error set) */
static dpl_tensor *alloc_like(const char *fn, const dpl_tensor *a) {
  if (!a) { dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL tensor", fn); return NULL; }
  dpl_tensor *out = dpl_tensor_alloc_like_shape(a->storage->dev, a->ndim, a->shape);
  if (!out) dpl_error_prefix(fn);
  return out;
}

int dpl_binary_scalar_into(int op, dpl_tensor *out, dpl_tensor *a, float s, int scalar_first) {
  if (valid_op("binary", op, DPL_BINARY_COUNT)) return dpl_last_status();
  return one_operand_into(dpl_binary_op_name(op), op, scalar_first ? 2 : 1, out, a, s, 0.0f);
}

dpl_tensor *dpl_binary_scalar(int op, dpl_tensor *a, float s, int scalar_first) {
  if (valid_op("binary", op, DPL_BINARY_COUNT)) return NULL;
  dpl_tensor *out = alloc_like(dpl_binary_op_name(op), a);
  if (out && dpl_binary_scalar_into(op, out, a, s, scalar_first)) { dpl_tensor_free(out); return NULL; }
  return out;
}

int dpl_unary_into(int op, dpl_tensor *out, dpl_tensor *a, float p0, float p1) {
  if (valid_op("unary", op, DPL_UNARY_COUNT)) return dpl_last_status();
  if (op == DPL_CLAMP && p0 > p1) return dpl_fail(DPL_ERR_ARGUMENT, "clamp: min %g is greater than max %g", p0, p1);
  return one_operand_into(dpl_unary_op_name(op), op, 0, out, a, p0, p1);
}

dpl_tensor *dpl_unary(int op, dpl_tensor *a, float p0, float p1) {
  if (valid_op("unary", op, DPL_UNARY_COUNT)) return NULL;
  dpl_tensor *out = alloc_like(dpl_unary_op_name(op), a);
  if (out && dpl_unary_into(op, out, a, p0, p1)) { dpl_tensor_free(out); return NULL; }
  return out;
}

/* where(cond, a, b) and muladd(x, a, b): three operands broadcast together into a new tensor by the backend's kernel */
static dpl_tensor *ternary(const char *fn, dpl_tensor *p, dpl_tensor *a, dpl_tensor *b, bool muladd) {
  if (!p || !a || !b) { dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL tensor", fn); return NULL; }
  const char *np = muladd ? "x" : "cond";
  if (dpl_check_same_device(fn, p, np, a, "a") || dpl_check_same_device(fn, a, "a", b, "b")) return NULL;
  int n1, n2;
  int64_t s1[DPL_MAX_DIMS], s2[DPL_MAX_DIMS];
  if (dpl_broadcast_shapes(fn, p->ndim, p->shape, a->ndim, a->shape, &n1, s1) ||
      dpl_broadcast_shapes(fn, n1, s1, b->ndim, b->shape, &n2, s2))
    return NULL;
  dpl_tensor *out = dpl_tensor_alloc_like_shape(a->storage->dev, n2, s2);
  if (!out) { dpl_error_prefix(fn); return NULL; }
  if (dpl_tensor_numel(out) == 0) return out;
  const dpl_tensor *ops[4] = {out, p, a, b};
  dpl_iter it;
  dpl_iter_build(&it, 4, ops);
  dpl_storage_written(out->storage);
  const dpl_backend *be = out->storage->dev->backend;
  if ((muladd ? be->muladd : be->where)(out->storage->dev, &it)) {
    dpl_error_prefix(fn);
    dpl_tensor_free(out);
    return NULL;
  }
  return out;
}

dpl_tensor *dpl_where(dpl_tensor *cond, dpl_tensor *a, dpl_tensor *b) { return ternary("where", cond, a, b, false); }

dpl_tensor *dpl_muladd(dpl_tensor *x, dpl_tensor *a, dpl_tensor *b) { return ternary("muladd", x, a, b, true); }
