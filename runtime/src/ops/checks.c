/* checks.c - argument checks shared by the ops (elementwise.c, matmul.c, conv.c, conv_transpose.c, spatial.c): each
 * records a clear error naming the op, the argument and its shape, and returns its status. */
#include "internal.h"

int dpl_check_4d(const char *fn, const char *what, const dpl_tensor *t, const char *layout) {
  char b[160];
  if (!t) return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s is NULL", fn, what);
  if (t->ndim != 4)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s must be 4-D (%s), got %d-D %s", fn, what, layout, t->ndim,
                    dpl_shape_str(b, sizeof b, t->ndim, t->shape));
  return DPL_OK;
}

int dpl_check_shape_arg(const char *fn, const char *what, int ndim, const int64_t *shape) {
  if (ndim != 4 || !shape) return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s must have 4 sizes, got %d", fn, what, ndim);
  for (int i = 0; i < 4; i++)
    if (shape[i] < 0) return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s has a negative size", fn, what);
  return DPL_OK;
}

int dpl_check_same_device(const char *fn, const dpl_tensor *a, const char *na, const dpl_tensor *b, const char *nb) {
  if (a->storage->dev != b->storage->dev)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s is on %s but %s is on %s (tensors on different devices; copy one with "
                    ":to())", fn, na, a->storage->dev->spec, nb, b->storage->dev->spec);
  return DPL_OK;
}
