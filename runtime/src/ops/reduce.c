/* reduce.c - reductions over dims: the dims to reduce are brought together into one middle block of a contiguous
 * tensor (outer, r, inner), which every backend reduces in one pass. */
#include "internal.h"
#include "dpl_op_names.h"   /* generated from dpl.h's enums (cmake/op_codes.cmake) */
#include <stdbool.h>
#include <stdio.h>

dpl_tensor *dpl_reduce(int op, dpl_tensor *t, int ndims, const int *dims, int keepdim, int unbiased) {
  if (op < 0 || op >= DPL_REDUCE_COUNT) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_reduce: unknown op %d (0..%d)", op, DPL_REDUCE_COUNT - 1);
    return NULL;
  }
  const char *fn = dpl_reduce_op_name(op);
  if (!t) { dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL tensor", fn); return NULL; }
  if (ndims < 0 || ndims > t->ndim || (ndims > 0 && !dims)) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: %d dims given for a %d-d tensor", fn, ndims, t->ndim);
    return NULL;
  }
  bool red[DPL_MAX_DIMS] = {0};
  int nred = 0;
  for (int i = 0; i < ndims; i++) {
    int d = dims[i];
    if (d < 0) d += t->ndim;
    if (d < 0 || d >= t->ndim || red[d]) {
      char buf[160];
      dpl_fail(DPL_ERR_ARGUMENT, "%s: dim %d is out of range or repeated for a tensor of shape %s", fn, dims[i],
               dpl_shape_str(buf, sizeof buf, t->ndim, t->shape));
      return NULL;
    }
    red[d] = true;
    nred++;
  }
  if (ndims == 0) { for (int d = 0; d < t->ndim; d++) red[d] = true; nred = t->ndim; }
  bool arg = op == DPL_ARGMAX || op == DPL_ARGMIN;
  char sbuf[160];
  if (arg && ndims > 1) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: takes one dim (or none for the flat index), got %d for a tensor of shape %s", fn,
             ndims, dpl_shape_str(sbuf, sizeof sbuf, t->ndim, t->shape));
    return NULL;
  }
  int64_t r = 1;
  for (int d = 0; d < t->ndim; d++) if (red[d]) r *= t->shape[d];
  if (r == 0 && op != DPL_SUM && op != DPL_MEAN) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: cannot reduce over an empty dimension of a tensor of shape %s", fn,
             dpl_shape_str(sbuf, sizeof sbuf, t->ndim, t->shape));
    return NULL;
  }
  /* output shape */
  int64_t oshape[DPL_MAX_DIMS];
  int on = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (!red[d]) oshape[on++] = t->shape[d];
    else if (keepdim) oshape[on++] = 1;
  }
  /* bring the reduced dims together: are they already one consecutive block of a contiguous tensor? */
  int first = -1, last = -1;
  for (int d = 0; d < t->ndim; d++) if (red[d]) { if (first < 0) first = d; last = d; }
  bool block = true;
  for (int d = first; d >= 0 && d <= last; d++) if (!red[d]) block = false;
  dpl_tensor *src = NULL;
  int64_t outer = 1, inner = 1;
  if (block && dpl_tensor_is_contiguous(t)) {
    src = dpl_tensor_ref(t);
    for (int d = 0; d < first; d++) outer *= t->shape[d];
    for (int d = last + 1; d < t->ndim; d++) inner *= t->shape[d];
  } else {
    int perm[DPL_MAX_DIMS], k = 0;
    for (int d = 0; d < t->ndim; d++) if (!red[d]) { perm[k++] = d; outer *= t->shape[d]; }
    for (int d = 0; d < t->ndim; d++) if (red[d]) perm[k++] = d;
    dpl_tensor *p = dpl_tensor_permute(t, perm);
    src = p ? dpl_tensor_contiguous(p) : NULL;
    dpl_tensor_free(p);
  }
  if (!src) { dpl_error_prefix(fn); return NULL; }
  dpl_tensor *out = dpl_tensor_alloc_like_shape(t->storage->dev, on, oshape);
  if (!out) { dpl_tensor_free(src); dpl_error_prefix(fn); return NULL; }
  if (t->ndim == 0) { outer = 1; inner = 1; r = 1; }
  dpl_reduce_args ra = {op, unbiased, outer, r, inner};
  int rc = DPL_OK;
  dpl_storage_written(out->storage);
  if (dpl_tensor_numel(out) > 0) rc = t->storage->dev->backend->reduce(t->storage->dev, &ra, out, src);
  dpl_tensor_free(src);
  if (rc) { dpl_error_prefix(fn); dpl_tensor_free(out); return NULL; }
  return out;
}
