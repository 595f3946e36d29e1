/* tensor.c - shapes, strides, views, creation, host transfers and copies. Backend-independent: the work itself is
 * done by dev->backend. */
#include "internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_TENSOR(fn, t)                                                                 \
  do {                                                                                      \
    if (!(t)) { dpl_fail(DPL_ERR_ARGUMENT, "%s: tensor argument is NULL", fn); return NULL; } \
  } while (0)

int64_t dpl_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

int64_t dpl_shape_numel_checked(int ndim, const int64_t *shape, int64_t limit) {
  int64_t n = 1, nonzero = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] == 0) { n = 0; continue; }
    if (__builtin_mul_overflow(nonzero, shape[i], &nonzero) || nonzero > limit) return -1;
    n = n ? nonzero : 0;
  }
  return n;
}

bool dpl_shape_equal(int na, const int64_t *a, int nb, const int64_t *b) {
  if (na != nb) return false;
  for (int i = 0; i < na; i++)
    if (a[i] != b[i]) return false;
  return true;
}

static int check_shape(const char *fn, int ndim, const int64_t *shape) {
  char buf[160];
  if (ndim < 0 || ndim > DPL_MAX_DIMS)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: %d dimensions (at most %d are supported)", fn, ndim, DPL_MAX_DIMS);
  if (ndim > 0 && !shape) return dpl_fail(DPL_ERR_ARGUMENT, "%s: shape is NULL", fn);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return dpl_fail(DPL_ERR_ARGUMENT, "%s: negative size in shape %s", fn, dpl_shape_str(buf, sizeof buf, ndim, shape));
  /* the nonzero sizes too: a 0 x 2^40 x 2^40 tensor is empty, but its strides would overflow */
  if (dpl_shape_numel_checked(ndim, shape, INT64_C(1) << 40) < 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: shape %s is too large", fn, dpl_shape_str(buf, sizeof buf, ndim, shape));
  return DPL_OK;
}

/* ---- storage ---------------------------------------------------------------------------------------------------- */
static dpl_storage *storage_new(dpl_device *dev, size_t bytes) {
  dpl_storage *s = calloc(1, sizeof *s);
  if (!s) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); return NULL; }
  static uint64_t next_id;
  s->refcount = 1;
  s->dev = dev;
  s->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
  s->bytes = bytes ? bytes : 4; /* never a zero-sized allocation */
  if (dev->backend->storage_alloc(dev, s) != DPL_OK) { free(s); return NULL; }
  /* atomic: the background file loader (io/loader.c) creates CPU tensors on its worker threads */
  int64_t now = __atomic_add_fetch(&dev->bytes, (int64_t)s->bytes, __ATOMIC_RELAXED);
  int64_t peak = __atomic_load_n(&dev->peak_bytes, __ATOMIC_RELAXED);
  while (now > peak &&
         !__atomic_compare_exchange_n(&dev->peak_bytes, &peak, now, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return s;
}

static void storage_release(dpl_storage *s) {
  if (!s || --s->refcount > 0) return;
  __atomic_sub_fetch(&s->dev->bytes, (int64_t)s->bytes, __ATOMIC_RELAXED);
  s->dev->backend->storage_free(s->dev, s);
  free(s);
}

static dpl_tensor *tensor_wrap(dpl_storage *s, int64_t offset, int ndim, const int64_t *shape, const int64_t *stride) {
  dpl_tensor *t = calloc(1, sizeof *t);
  if (!t) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); return NULL; }
  t->storage = s;
  s->refcount++;
  t->offset = offset;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; t->stride[i] = stride[i]; }
  return t;
}

dpl_tensor *dpl_tensor_as_strided(dpl_tensor *base, int64_t offset, int ndim, const int64_t *shape,
                                  const int64_t *stride) {
  int64_t hi = base->offset + offset, numel = dpl_shape_numel_checked(ndim, shape, INT64_C(1) << 40);
  for (int d = 0; d < ndim && numel > 0; d++) hi += (shape[d] - 1) * stride[d];
  if (ndim < 0 || ndim > DPL_MAX_DIMS || numel < 0 || base->offset + offset < 0 ||
      (numel > 0 && (uint64_t)hi >= base->storage->bytes / sizeof(float))) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_as_strided: view outside its storage");
    return NULL;
  }
  return tensor_wrap(base->storage, base->offset + offset, ndim, shape, stride);
}

static void contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) { stride[i] = s; s *= shape[i] > 1 ? shape[i] : 1; }
}

dpl_tensor *dpl_tensor_alloc_like_shape(dpl_device *dev, int ndim, const int64_t *shape) {
  int64_t stride[DPL_MAX_DIMS];
  contiguous_strides(ndim, shape, stride);
  dpl_storage *s = storage_new(dev, (size_t)dpl_shape_numel(ndim, shape) * sizeof(float));
  if (!s) return NULL;
  dpl_tensor *t = tensor_wrap(s, 0, ndim, shape, stride);
  storage_release(s); /* the tensor holds the only reference */
  return t;
}

/* ---- creation ---------------------------------------------------------------------------------------------------- */
dpl_tensor *dpl_tensor_empty(dpl_device *dev, int ndim, const int64_t *shape) {
  if (!dev) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_empty: no device"); return NULL; }
  if (check_shape("dpl_tensor_empty", ndim, shape)) return NULL;
  return dpl_tensor_alloc_like_shape(dev, ndim, shape);
}

dpl_tensor *dpl_tensor_full(dpl_device *dev, int ndim, const int64_t *shape, float value) {
  dpl_tensor *t = dpl_tensor_empty(dev, ndim, shape);
  if (t && dpl_tensor_fill_(t, value) != DPL_OK) { dpl_tensor_free(t); return NULL; }
  return t;
}

dpl_tensor *dpl_tensor_arange(dpl_device *dev, double start, double end, double step) {
  if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_arange: step must be nonzero and bounds finite (start %g, end %g, step %g)",
             start, end, step);
    return NULL;
  }
  double count = ceil((end - start) / step);
  if (count < 0) count = 0;
  if (count > 1e9) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_arange: %g elements is too many", count); return NULL; }
  int64_t n = (int64_t)count;
  float *tmp = malloc((size_t)(n ? n : 1) * sizeof(float));
  if (!tmp) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "dpl_tensor_arange: out of host memory"); return NULL; }
  for (int64_t i = 0; i < n; i++) tmp[i] = (float)(start + (double)i * step);
  dpl_tensor *t = dpl_tensor_from_host(dev, 1, &n, tmp);
  free(tmp);
  return t;
}

dpl_tensor *dpl_tensor_from_host(dpl_device *dev, int ndim, const int64_t *shape, const float *data) {
  if (!data && dpl_shape_numel(ndim, shape) > 0) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_from_host: data is NULL");
    return NULL;
  }
  dpl_tensor *t = dpl_tensor_empty(dev, ndim, shape);
  if (!t) { dpl_error_prefix("dpl_tensor_from_host"); return NULL; }
  size_t bytes = (size_t)dpl_tensor_numel(t) * sizeof(float);
  dpl_storage_written(t->storage);
  if (bytes && dev->backend->write(dev, t->storage, 0, data, bytes) != DPL_OK) {
    dpl_tensor_free(t);
    return NULL;
  }
  return t;
}

dpl_tensor *dpl_tensor_random(dpl_device *dev, int ndim, const int64_t *shape, int dist, float a, float b,
                              uint64_t seed, uint64_t offset) {
  if (dist != 0 && dist != 1) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_random: dist must be 0 (uniform) or 1 (normal)"); return NULL; }
  dpl_tensor *t = dpl_tensor_empty(dev, ndim, shape);
  if (!t) { dpl_error_prefix("dpl_tensor_random"); return NULL; }
  dpl_storage_written(t->storage);
  if (dpl_tensor_numel(t) > 0 && dev->backend->random(dev, t, dist, a, b, seed, offset) != DPL_OK) {
    dpl_tensor_free(t);
    return NULL;
  }
  return t;
}

/* ---- lifetime and metadata --------------------------------------------------------------------------------------- */
void dpl_tensor_free(dpl_tensor *t) {
  if (!t) return;
  storage_release(t->storage);
  free(t);
}

dpl_tensor *dpl_tensor_ref(dpl_tensor *t) {
  CHECK_TENSOR("dpl_tensor_ref", t);
  return tensor_wrap(t->storage, t->offset, t->ndim, t->shape, t->stride);
}

int dpl_tensor_ndim(const dpl_tensor *t) { return t ? t->ndim : 0; }
int64_t dpl_tensor_size(const dpl_tensor *t, int dim) {
  if (!t) return -1;
  if (dim < 0) dim += t->ndim;
  return dim >= 0 && dim < t->ndim ? t->shape[dim] : -1;
}
int64_t dpl_tensor_stride(const dpl_tensor *t, int dim) {
  if (!t) return -1;
  if (dim < 0) dim += t->ndim;
  return dim >= 0 && dim < t->ndim ? t->stride[dim] : -1;
}
int64_t dpl_tensor_storage_offset(const dpl_tensor *t) { return t ? t->offset : -1; }
int64_t dpl_tensor_numel(const dpl_tensor *t) { return t ? dpl_shape_numel(t->ndim, t->shape) : 0; }
dpl_device *dpl_tensor_device(const dpl_tensor *t) { return t ? t->storage->dev : NULL; }
int dpl_tensor_same_storage(const dpl_tensor *a, const dpl_tensor *b) { return a && b && a->storage == b->storage; }
void dpl_tensor_version(const dpl_tensor *t, uint64_t *storage_id, uint64_t *version) {
  *storage_id = t ? t->storage->id : 0;
  *version = t ? __atomic_load_n(&t->storage->version, __ATOMIC_RELAXED) : 0;
}

int dpl_tensor_is_contiguous(const dpl_tensor *t) {
  if (!t) return 0;
  int64_t expected = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 1) continue;
    if (t->stride[i] != expected) return 0;
    expected *= t->shape[i];
  }
  return 1;
}

/* ---- iteration spaces -------------------------------------------------------------------------------------------- */
int dpl_iter_build(dpl_iter *it, int nops, const dpl_tensor *const *tensors) {
  const dpl_tensor *out = tensors[0];
  memset(it, 0, sizeof *it);
  it->nops = nops;
  /* right-align every operand to the output's dims; broadcast dims get stride 0 */
  int64_t strides[DPL_ITER_MAX_OPERANDS][DPL_MAX_DIMS];
  for (int k = 0; k < nops; k++) {
    const dpl_tensor *t = tensors[k];
    int shift = out->ndim - t->ndim;
    for (int d = 0; d < out->ndim; d++) {
      int sd = d - shift;
      strides[k][d] = (sd < 0 || t->shape[sd] == 1) ? 0 : t->stride[sd];
    }
    it->op[k].storage = t->storage;
    it->op[k].offset = t->offset;
  }
  /* drop size-1 dims and merge dims that are contiguous for every operand */
  int n = 0;
  for (int d = 0; d < out->ndim; d++) {
    if (out->shape[d] == 1) continue;
    if (n > 0) {
      bool mergeable = true;
      for (int k = 0; k < nops; k++)
        if (strides[k][n - 1] != strides[k][d] * out->shape[d]) { mergeable = false; break; }
      if (mergeable) {
        it->shape[n - 1] *= out->shape[d];
        for (int k = 0; k < nops; k++) it->op[k].stride[n - 1] = strides[k][d];
        for (int k = 0; k < nops; k++) strides[k][n - 1] = strides[k][d];
        continue;
      }
    }
    it->shape[n] = out->shape[d];
    for (int k = 0; k < nops; k++) { it->op[k].stride[n] = strides[k][d]; strides[k][n] = strides[k][d]; }
    n++;
  }
  if (n == 0) { it->shape[0] = 1; n = 1; }
  it->ndim = n;
  it->numel = dpl_shape_numel(n, it->shape);
  return DPL_OK;
}

void dpl_iter_extent(const dpl_iter *it, int k, int64_t *lo, int64_t *hi) {
  int64_t l = it->op[k].offset, h = it->op[k].offset;
  for (int d = 0; d < it->ndim; d++) {
    int64_t span = (it->shape[d] - 1) * it->op[k].stride[d];
    if (span < 0) l += span; else h += span;
  }
  *lo = l;
  *hi = h;
}

/* ---- host data ------------------------------------------------------------------------------------------------- */
int dpl_tensor_to_host(dpl_tensor *t, float *dst) {
  if (!t || !dst) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_to_host: NULL argument");
  int64_t n = dpl_tensor_numel(t);
  if (n == 0) return DPL_OK;
  dpl_device *dev = t->storage->dev;
  dpl_tensor *c = dpl_tensor_contiguous(t);
  if (!c) { dpl_error_prefix("dpl_tensor_to_host"); return dpl_last_status(); }
  int rc = dev->backend->read(dev, c->storage, (size_t)c->offset * sizeof(float), dst, (size_t)n * sizeof(float));
  dpl_tensor_free(c);
  return rc;
}

int dpl_tensor_from_host_(dpl_tensor *t, const float *src) {
  if (!t || !src) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_from_host_: NULL argument");
  int64_t n = dpl_tensor_numel(t);
  if (n == 0) return DPL_OK;
  dpl_device *dev = t->storage->dev;
  if (dpl_tensor_is_contiguous(t)) {
    dpl_storage_written(t->storage);
    return dev->backend->write(dev, t->storage, (size_t)t->offset * sizeof(float), src, (size_t)n * sizeof(float));
  }
  dpl_tensor *tmp = dpl_tensor_from_host(dev, t->ndim, t->shape, src);
  if (!tmp) return dpl_last_status();
  int rc = dpl_tensor_copy_(t, tmp);
  dpl_tensor_free(tmp);
  return rc;
}

int dpl_tensor_item(dpl_tensor *t, float *out) {
  if (!t || !out) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_item: NULL argument");
  if (dpl_tensor_numel(t) != 1) {
    char buf[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_item: tensor of shape %s has %lld elements, not 1",
                    dpl_shape_str(buf, sizeof buf, t->ndim, t->shape), (long long)dpl_tensor_numel(t));
  }
  return dpl_tensor_to_host(t, out);
}

/* ---- views ------------------------------------------------------------------------------------------------------ */
static int resolve_view_shape(const char *fn, const dpl_tensor *t, int ndim, const int64_t *shape, int64_t *out) {
  char b1[160], b2[160];
  if (ndim < 0 || ndim > DPL_MAX_DIMS) return dpl_fail(DPL_ERR_ARGUMENT, "%s: %d dimensions", fn, ndim);
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == -1) {
      if (infer >= 0) return dpl_fail(DPL_ERR_ARGUMENT, "%s: only one size may be -1", fn);
      infer = i;
    } else if (shape[i] < 0) {
      return dpl_fail(DPL_ERR_ARGUMENT, "%s: invalid size %lld", fn, (long long)shape[i]);
    } else known *= shape[i];
    out[i] = shape[i];
  }
  int64_t n = dpl_tensor_numel(t);
  if (infer >= 0) {
    if (known == 0 || n % known) goto mismatch;
    out[infer] = n / known;
  } else if (known != n) goto mismatch;
  return DPL_OK;
mismatch:
  return dpl_fail(DPL_ERR_ARGUMENT, "%s: shape %s is invalid for a tensor of shape %s (%lld elements)", fn,
                  dpl_shape_str(b1, sizeof b1, ndim, shape), dpl_shape_str(b2, sizeof b2, t->ndim, t->shape),
                  (long long)n);
}

/* Strides for viewing t with a new shape without copying, as torch's computeStride; false when impossible. */
static bool view_strides(const dpl_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  if (dpl_tensor_numel(t) == 0 || t->ndim == 0) { contiguous_strides(ndim, shape, stride); return true; }
  int view_d = ndim - 1;
  int64_t chunk_base_stride = t->stride[t->ndim - 1], tensor_numel = 1, view_numel = 1;
  for (int td = t->ndim - 1; td >= 0; td--) {
    tensor_numel *= t->shape[td];
    if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        stride[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) { chunk_base_stride = t->stride[td - 1]; tensor_numel = 1; view_numel = 1; }
    }
  }
  return view_d == -1;
}

dpl_tensor *dpl_tensor_view(dpl_tensor *t, int ndim, const int64_t *shape) {
  CHECK_TENSOR("dpl_tensor_view", t);
  int64_t s[DPL_MAX_DIMS], st[DPL_MAX_DIMS];
  if (resolve_view_shape("dpl_tensor_view", t, ndim, shape, s)) return NULL;
  if (!view_strides(t, ndim, s, st)) {
    char b1[160], b2[160];
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_view: a tensor of shape %s with these strides cannot be viewed as %s; "
             "use reshape (which copies)", dpl_shape_str(b1, sizeof b1, t->ndim, t->shape),
             dpl_shape_str(b2, sizeof b2, ndim, s));
    return NULL;
  }
  return tensor_wrap(t->storage, t->offset, ndim, s, st);
}

dpl_tensor *dpl_tensor_reshape(dpl_tensor *t, int ndim, const int64_t *shape) {
  CHECK_TENSOR("dpl_tensor_reshape", t);
  int64_t s[DPL_MAX_DIMS], st[DPL_MAX_DIMS];
  if (resolve_view_shape("dpl_tensor_reshape", t, ndim, shape, s)) return NULL;
  if (view_strides(t, ndim, s, st)) return tensor_wrap(t->storage, t->offset, ndim, s, st);
  dpl_tensor *c = dpl_tensor_contiguous(t);
  if (!c) return NULL;
  dpl_tensor *v = dpl_tensor_view(c, ndim, s);
  dpl_tensor_free(c);
  return v;
}

static int norm_dim(const char *fn, const dpl_tensor *t, int *dim, int extra) {
  int n = t->ndim + extra;
  if (*dim < -n || *dim >= n) {
    char buf[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: dim %d out of range for a tensor of shape %s", fn, *dim,
                    dpl_shape_str(buf, sizeof buf, t->ndim, t->shape));
  }
  if (*dim < 0) *dim += n;
  return DPL_OK;
}

dpl_tensor *dpl_tensor_narrow(dpl_tensor *t, int dim, int64_t start, int64_t length) {
  CHECK_TENSOR("dpl_tensor_narrow", t);
  if (norm_dim("dpl_tensor_narrow", t, &dim, 0)) return NULL;
  if (start < 0) start += t->shape[dim];
  if (start < 0 || length < 0 || start + length > t->shape[dim]) {
    char buf[160];
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_narrow: range [%lld, %lld) out of bounds for dim %d of shape %s",
             (long long)start, (long long)(start + length), dim, dpl_shape_str(buf, sizeof buf, t->ndim, t->shape));
    return NULL;
  }
  dpl_tensor *v = tensor_wrap(t->storage, t->offset + start * t->stride[dim], t->ndim, t->shape, t->stride);
  if (v) v->shape[dim] = length;
  return v;
}

dpl_tensor *dpl_tensor_select(dpl_tensor *t, int dim, int64_t index) {
  CHECK_TENSOR("dpl_tensor_select", t);
  if (norm_dim("dpl_tensor_select", t, &dim, 0)) return NULL;
  if (index < 0) index += t->shape[dim];
  if (index < 0 || index >= t->shape[dim]) {
    char buf[160];
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_select: index %lld out of range for dim %d of shape %s", (long long)index,
             dim, dpl_shape_str(buf, sizeof buf, t->ndim, t->shape));
    return NULL;
  }
  int64_t shape[DPL_MAX_DIMS], stride[DPL_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < t->ndim; d++)
    if (d != dim) { shape[n] = t->shape[d]; stride[n] = t->stride[d]; n++; }
  return tensor_wrap(t->storage, t->offset + index * t->stride[dim], n, shape, stride);
}

dpl_tensor *dpl_tensor_permute(dpl_tensor *t, const int *dims) {
  CHECK_TENSOR("dpl_tensor_permute", t);
  int64_t shape[DPL_MAX_DIMS], stride[DPL_MAX_DIMS];
  bool seen[DPL_MAX_DIMS] = {0};
  for (int i = 0; i < t->ndim; i++) {
    int d = dims[i];
    if (d < 0) d += t->ndim;
    if (d < 0 || d >= t->ndim || seen[d]) {
      dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_permute: dims are not a permutation of 0..%d", t->ndim - 1);
      return NULL;
    }
    seen[d] = true;
    shape[i] = t->shape[d];
    stride[i] = t->stride[d];
  }
  return tensor_wrap(t->storage, t->offset, t->ndim, shape, stride);
}

dpl_tensor *dpl_tensor_transpose(dpl_tensor *t, int dim0, int dim1) {
  CHECK_TENSOR("dpl_tensor_transpose", t);
  if (norm_dim("dpl_tensor_transpose", t, &dim0, 0) || norm_dim("dpl_tensor_transpose", t, &dim1, 0)) return NULL;
  int dims[DPL_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) dims[i] = i;
  dims[dim0] = dim1;
  dims[dim1] = dim0;
  return dpl_tensor_permute(t, dims);
}

dpl_tensor *dpl_tensor_expand(dpl_tensor *t, int ndim, const int64_t *shape) {
  CHECK_TENSOR("dpl_tensor_expand", t);
  char b1[160], b2[160];
  if (ndim < t->ndim || ndim > DPL_MAX_DIMS) goto bad;
  int64_t s[DPL_MAX_DIMS], st[DPL_MAX_DIMS];
  int shift = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int sd = d - shift;
    int64_t want = shape[d];
    if (sd < 0) {
      if (want < 0) goto bad;
      s[d] = want; st[d] = 0;
    } else if (want == -1 || want == t->shape[sd]) {
      s[d] = t->shape[sd]; st[d] = t->stride[sd];
    } else if (t->shape[sd] == 1 && want >= 0) {
      s[d] = want; st[d] = 0;
    } else goto bad;
  }
  return tensor_wrap(t->storage, t->offset, ndim, s, st);
bad:
  dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_expand: cannot expand shape %s to %s",
           dpl_shape_str(b1, sizeof b1, t->ndim, t->shape), dpl_shape_str(b2, sizeof b2, ndim, shape));
  return NULL;
}

dpl_tensor *dpl_tensor_squeeze(dpl_tensor *t, int dim) {
  CHECK_TENSOR("dpl_tensor_squeeze", t);
  int all = dim == DPL_ALL_DIMS;
  if (!all && norm_dim("dpl_tensor_squeeze", t, &dim, 0)) return NULL;
  int64_t shape[DPL_MAX_DIMS], stride[DPL_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 1 && (all || d == dim)) continue;
    shape[n] = t->shape[d]; stride[n] = t->stride[d]; n++;
  }
  return tensor_wrap(t->storage, t->offset, n, shape, stride);
}

dpl_tensor *dpl_tensor_unsqueeze(dpl_tensor *t, int dim) {
  CHECK_TENSOR("dpl_tensor_unsqueeze", t);
  if (t->ndim >= DPL_MAX_DIMS) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_unsqueeze: already %d dims", DPL_MAX_DIMS); return NULL; }
  if (norm_dim("dpl_tensor_unsqueeze", t, &dim, 1)) return NULL;
  int64_t shape[DPL_MAX_DIMS], stride[DPL_MAX_DIMS];
  int n = 0;
  for (int d = 0; d <= t->ndim; d++) {
    if (d == dim) {
      shape[n] = 1;
      stride[n] = d < t->ndim ? t->stride[d] * t->shape[d] : 1;
      n++;
    }
    if (d < t->ndim) { shape[n] = t->shape[d]; stride[n] = t->stride[d]; n++; }
  }
  return tensor_wrap(t->storage, t->offset, n, shape, stride);
}

/* ---- copies ----------------------------------------------------------------------------------------------------- */
dpl_tensor *dpl_tensor_contiguous(dpl_tensor *t) {
  CHECK_TENSOR("dpl_tensor_contiguous", t);
  if (dpl_tensor_is_contiguous(t)) return dpl_tensor_ref(t);
  return dpl_tensor_clone(t);
}

dpl_tensor *dpl_tensor_clone(dpl_tensor *t) {
  CHECK_TENSOR("dpl_tensor_clone", t);
  dpl_tensor *c = dpl_tensor_alloc_like_shape(t->storage->dev, t->ndim, t->shape);
  if (!c) { dpl_error_prefix("dpl_tensor_clone"); return NULL; }
  if (dpl_tensor_copy_(c, t) != DPL_OK) { dpl_tensor_free(c); return NULL; }
  return c;
}

int dpl_tensor_copy_(dpl_tensor *dst, dpl_tensor *src) {
  if (!dst || !src) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_copy_: NULL argument");
  dpl_device *dd = dst->storage->dev, *sd = src->storage->dev;
  if (dd != sd) {
    /* across devices: through host memory */
    int64_t n = dpl_tensor_numel(src);
    float *tmp = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!tmp) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "dpl_tensor_copy_: out of host memory");
    int rc = dpl_tensor_to_host(src, tmp);
    dpl_tensor *staged = rc == DPL_OK ? dpl_tensor_from_host(dd, src->ndim, src->shape, tmp) : NULL;
    free(tmp);
    if (!staged) return dpl_last_status();
    rc = dpl_tensor_copy_(dst, staged);
    dpl_tensor_free(staged);
    return rc;
  }
  int nout;
  int64_t bshape[DPL_MAX_DIMS];
  if (dpl_broadcast_shapes("dpl_tensor_copy_", dst->ndim, dst->shape, src->ndim, src->shape, &nout, bshape))
    return dpl_last_status();
  if (!dpl_shape_equal(nout, bshape, dst->ndim, dst->shape)) {
    char b1[160], b2[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_copy_: source of shape %s does not broadcast to destination %s",
                    dpl_shape_str(b1, sizeof b1, src->ndim, src->shape),
                    dpl_shape_str(b2, sizeof b2, dst->ndim, dst->shape));
  }
  if (dpl_tensor_numel(dst) == 0) return DPL_OK;
  const dpl_tensor *ops[2] = {dst, src};
  dpl_iter it;
  dpl_iter_build(&it, 2, ops);
  dpl_storage_written(it.op[0].storage);
  return dd->backend->copy(dd, &it);
}

dpl_tensor *dpl_tensor_to_device(dpl_tensor *t, dpl_device *dev) {
  CHECK_TENSOR("dpl_tensor_to_device", t);
  if (!dev) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_to_device: no device"); return NULL; }
  if (t->storage->dev == dev) return dpl_tensor_ref(t);
  dpl_tensor *c = dpl_tensor_alloc_like_shape(dev, t->ndim, t->shape);
  if (!c) return NULL;
  if (dpl_tensor_copy_(c, t) != DPL_OK) { dpl_tensor_free(c); return NULL; }
  return c;
}

int dpl_tensor_fill_(dpl_tensor *t, float value) {
  if (!t) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_fill_: NULL tensor");
  if (dpl_tensor_numel(t) == 0) return DPL_OK;
  const dpl_tensor *ops[1] = {t};
  dpl_iter it;
  dpl_iter_build(&it, 1, ops);
  dpl_storage_written(t->storage);
  return t->storage->dev->backend->fill(t->storage->dev, &it, value);
}
