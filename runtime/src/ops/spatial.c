/* spatial.c - pooling, padding and resizing of N x C x H x W tensors with PyTorch semantics (F.max_pool2d,
 * F.avg_pool2d, F.adaptive_avg_pool2d, F.pad, F.interpolate with align_corners=False), forward and backward.
 *
 * Every one of these ops is separable: an output element (y, x) reads the input elements listed for row y times those
 * listed for column x (pooling windows, the source rows of a resize, the reflected index of a pad), each with a
 * weight (1/count for averages, the interpolation weights for bilinear). The index arithmetic (PyTorch's formulas,
 * float rounding included) is done here, once per call, into small per-axis tables (CSR lists of (source index,
 * weight) pairs); the backends only run the tables (dpl_spatial_args in internal.h). A backward uses the transposed
 * tables, so each input element gathers its gradient over the outputs that read it: no scatter, no atomics, and the
 * same summation order on every backend. Average pooling's divisor is a product of a row count and a column count
 * (also with count_include_pad and ceil_mode), hence its weights 1/count per axis. */
#include "internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- per-axis tables ------------------------------------------------------------------------------------------- */
typedef struct axis_tab {
  int64_t n;              /* number of lists (destination size along the axis) */
  int64_t *ptr;           /* n + 1 entry numbers */
  int64_t *idx;           /* source index of each entry */
  float *w;               /* weight of each entry */
  int64_t nnz, cap;
} axis_tab;

static int tab_init(axis_tab *t, int64_t n) {
  memset(t, 0, sizeof *t);
  t->n = n;
  t->ptr = calloc((size_t)n + 1, sizeof *t->ptr);
  if (!t->ptr) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
  return DPL_OK;
}

static void tab_free(axis_tab *t) {
  free(t->ptr); free(t->idx); free(t->w);
  memset(t, 0, sizeof *t);
}

static int tab_push(axis_tab *t, int64_t i, float w) {
  if (t->nnz == t->cap) {
    int64_t cap = t->cap ? t->cap * 2 : 64;
    int64_t *ni = realloc(t->idx, (size_t)cap * sizeof *ni);
    if (ni) t->idx = ni;
    float *nw = realloc(t->w, (size_t)cap * sizeof *nw);
    if (nw) t->w = nw;
    if (!ni || !nw) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
    t->cap = cap;
  }
  t->idx[t->nnz] = i;
  t->w[t->nnz] = w;
  t->nnz++;
  return DPL_OK;
}

/* closes list o (entries pushed since the previous close) */
static void tab_close(axis_tab *t, int64_t o) { t->ptr[o + 1] = t->nnz; }

/* The transpose of f (lists over f->n destinations of sources in [0, n_src)): lists over the sources of the
 * destinations that read them, in increasing destination order, with the same weights. */
static int tab_transpose(const axis_tab *f, int64_t n_src, axis_tab *t) {
  int rc = tab_init(t, n_src);
  if (rc) return rc;
  t->nnz = t->cap = f->nnz;
  t->idx = malloc((size_t)(f->nnz ? f->nnz : 1) * sizeof *t->idx);
  t->w = malloc((size_t)(f->nnz ? f->nnz : 1) * sizeof *t->w);
  int64_t *fill = calloc((size_t)n_src + 1, sizeof *fill);
  if (!t->idx || !t->w || !fill) { free(fill); tab_free(t); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); }
  for (int64_t e = 0; e < f->nnz; e++) t->ptr[f->idx[e] + 1]++;
  for (int64_t i = 0; i < n_src; i++) t->ptr[i + 1] += t->ptr[i];
  for (int64_t o = 0; o < f->n; o++)
    for (int64_t e = f->ptr[o]; e < f->ptr[o + 1]; e++) {
      int64_t s = f->idx[e];
      int64_t at = t->ptr[s] + fill[s]++;
      t->idx[at] = o;
      t->w[at] = f->w[e];
    }
  free(fill);
  return DPL_OK;
}

/* floor(a / b) for b > 0 */
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* PyTorch's pooling_output_shape */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, int ceil_mode) {
  int64_t out = floor_div(in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) out--;
  return out;
}

enum { POOL_MAX = 0, POOL_AVG = 1 };

/* pooling windows along one axis: max pooling lists the taps inside the input (weight 1); average pooling lists the
 * window clipped to the input with weight 1/divisor, the divisor counting the padding when count_include_pad (the
 * window itself being clipped at in + pad, as PyTorch does for ceil_mode's last window) */
static int pool_axis(axis_tab *t, int kind, int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                     int count_include_pad) {
  int rc = tab_init(t, out);
  for (int64_t o = 0; o < out && !rc; o++) {
    int64_t start = o * stride - pad;
    if (kind == POOL_MAX) {
      for (int64_t i = 0; i < k && !rc; i++) {
        int64_t p = start + i * dil;
        if (p >= 0 && p < in) rc = tab_push(t, p, 1.0f);
      }
    } else {
      int64_t end = start + k < in + pad ? start + k : in + pad;
      int64_t pool = end - start;
      int64_t s = start > 0 ? start : 0, e = end < in ? end : in;
      int64_t count = count_include_pad ? pool : e - s;
      for (int64_t p = s; p < e && !rc; p++) rc = tab_push(t, p, 1.0f / (float)count);
    }
    tab_close(t, o);
  }
  return rc;
}

/* adaptive average pooling: window [floor(o * in / out), ceil((o + 1) * in / out)) */
static int adaptive_axis(axis_tab *t, int64_t in, int64_t out) {
  int rc = tab_init(t, out);
  for (int64_t o = 0; o < out && !rc; o++) {
    int64_t s = o * in / out, e = ((o + 1) * in + out - 1) / out;
    for (int64_t p = s; p < e && !rc; p++) rc = tab_push(t, p, 1.0f / (float)(e - s));
    tab_close(t, o);
  }
  return rc;
}

/* padding: output o reads input o - before, reflected (without repeating the edge), clamped, or nothing (constant) */
static int pad_axis(axis_tab *t, int64_t in, int64_t before, int64_t after, int mode) {
  int64_t out = in + before + after;
  int rc = tab_init(t, out);
  for (int64_t o = 0; o < out && !rc; o++) {
    int64_t r = o - before;
    if (mode == DPL_PAD_REFLECT) {
      if (r < 0) r = -r;
      if (r >= in) r = 2 * (in - 1) - r;
    } else if (mode == DPL_PAD_REPLICATE) {
      r = r < 0 ? 0 : r >= in ? in - 1 : r;
    }
    if (r >= 0 && r < in) rc = tab_push(t, r, 1.0f);
    tab_close(t, o);
  }
  return rc;
}

/* resizing (upsample_nearest2d / upsample_bilinear2d with align_corners=False, in float as PyTorch's CPU kernels):
 * the ratio is 1 / scale when a scale factor was given, else in / out */
static int upsample_axis(axis_tab *t, int mode, int64_t in, int64_t out, double scale) {
  float ratio = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
  int rc = tab_init(t, out);
  for (int64_t o = 0; o < out && !rc; o++) {
    if (mode == DPL_UPSAMPLE_NEAREST) {
      int64_t s;
      if (out == in) s = o;
      else if (out == 2 * in) s = o >> 1;
      else {
        s = (int64_t)floorf((float)o * ratio);
        if (s > in - 1) s = in - 1;
      }
      rc = tab_push(t, s, 1.0f);
    } else if (out == in) {
      rc = tab_push(t, o, 1.0f);
      if (!rc) rc = tab_push(t, o, 0.0f);
    } else {
      volatile float prod = ratio * ((float)o + 0.5f);    /* no contraction into an fma: round as PyTorch does */
      float real = prod - 0.5f;
      if (real < 0) real = 0;
      int64_t i0 = (int64_t)real;
      int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
      float l1 = real - (float)i0, l0 = 1.0f - l1;
      rc = tab_push(t, i0, l0);
      if (!rc) rc = tab_push(t, i1, l1);
    }
    tab_close(t, o);
  }
  return rc;
}

/* The two axes' tables as one float tensor on dev: ptr_y, ptr_x, then the (index, weight) entries of y and x. Entry
 * numbers and indices are stored as floats, exact below 2^24. */
static dpl_tensor *upload_tables(dpl_device *dev, const axis_tab *ty, const axis_tab *tx, dpl_spatial_args *a) {
  int64_t lim = INT64_C(1) << 24;
  if (ty->nnz >= lim || tx->nnz >= lim || ty->n >= lim || tx->n >= lim) {
    dpl_fail(DPL_ERR_UNSUPPORTED, "the spatial index tables are too large (%lld + %lld entries; limit 2^24)",
             (long long)ty->nnz, (long long)tx->nnz);
    return NULL;
  }
  a->ptr_y = 0;
  a->ptr_x = ty->n + 1;
  a->ent_y = a->ptr_x + tx->n + 1;
  a->ent_x = a->ent_y + 2 * ty->nnz;
  int64_t total = a->ent_x + 2 * tx->nnz;
  float *buf = malloc((size_t)total * sizeof *buf);
  if (!buf) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); return NULL; }
  for (int64_t i = 0; i <= ty->n; i++) buf[a->ptr_y + i] = (float)ty->ptr[i];
  for (int64_t i = 0; i <= tx->n; i++) buf[a->ptr_x + i] = (float)tx->ptr[i];
  for (int64_t e = 0; e < ty->nnz; e++) { buf[a->ent_y + 2 * e] = (float)ty->idx[e]; buf[a->ent_y + 2 * e + 1] = ty->w[e]; }
  for (int64_t e = 0; e < tx->nnz; e++) { buf[a->ent_x + 2 * e] = (float)tx->idx[e]; buf[a->ent_x + 2 * e + 1] = tx->w[e]; }
  dpl_tensor *t = dpl_tensor_from_host(dev, 1, &total, buf);
  free(buf);
  return t;
}

/* Runs the tables over src (n x c x sh x sw) into a new n x c x ty->n x tx->n tensor. Mode DPL_SPATIAL_MAX also
 * writes *idx_out (same shape); DPL_SPATIAL_MAX_GRAD reads idx_in (src's shape). */
static dpl_tensor *apply(const char *fn, int mode, dpl_tensor *src, const axis_tab *ty, const axis_tab *tx,
                         dpl_tensor *idx_in, dpl_tensor **idx_out, int fill, float value) {
  dpl_device *dev = src->storage->dev;
  int64_t n = src->shape[0], c = src->shape[1];
  int64_t shape[4] = {n, c, ty->n, tx->n};
  dpl_tensor *dst = dpl_tensor_alloc_like_shape(dev, 4, shape);
  dpl_tensor *idx = mode == DPL_SPATIAL_MAX ? dpl_tensor_alloc_like_shape(dev, 4, shape) : NULL;
  dpl_tensor *x = NULL, *ix = NULL, *tab = NULL;
  int rc = !dst || (mode == DPL_SPATIAL_MAX && !idx) ? dpl_last_status() : DPL_OK;
  if (!rc && dpl_tensor_numel(dst) > 0) {
    dpl_spatial_args a;
    memset(&a, 0, sizeof a);
    a.mode = mode;
    a.fill = fill;
    a.value = value;
    a.planes = n * c;
    a.sh = src->shape[2]; a.sw = src->shape[3];
    a.dh = ty->n; a.dw = tx->n;
    x = dpl_tensor_contiguous(src);
    if (idx_in) ix = dpl_tensor_contiguous(idx_in);
    tab = x && (!idx_in || ix) ? upload_tables(dev, ty, tx, &a) : NULL;
    if (!tab) rc = dpl_last_status() ? dpl_last_status() : DPL_ERR_DEVICE;
    else {
      a.dst = dst; a.src = x; a.idx = mode == DPL_SPATIAL_MAX ? idx : ix; a.table = tab;
      dpl_storage_written(dst->storage);
      rc = dev->backend->spatial2d(dev, &a);
    }
  }
  dpl_tensor_free(x); dpl_tensor_free(ix); dpl_tensor_free(tab);
  if (rc) {
    dpl_error_prefix(fn);
    dpl_tensor_free(dst); dpl_tensor_free(idx);
    return NULL;
  }
  if (idx_out) *idx_out = idx;
  else dpl_tensor_free(idx);
  return dst;
}

/* ---- argument checks -------------------------------------------------------------------------------------------- */
static int check_4d(const char *fn, const char *what, const dpl_tensor *t) {
  return dpl_check_4d(fn, what, t, "N x C x H x W");
}

static int check_input_shape(const char *fn, int ndim, const int64_t *shape) {
  if (ndim != 4 || !shape) return dpl_fail(DPL_ERR_ARGUMENT, "%s: input_shape must have 4 sizes (N, C, H, W), got %d", fn, ndim);
  for (int i = 0; i < 4; i++)
    if (shape[i] < 0) {
      char b[160];
      return dpl_fail(DPL_ERR_ARGUMENT, "%s: input_shape %s has a negative size", fn, dpl_shape_str(b, sizeof b, 4, shape));
    }
  return DPL_OK;
}

static int check_grad_shape(const char *fn, const char *what, const dpl_tensor *g, const int64_t *want) {
  if (!dpl_shape_equal(4, want, g->ndim, g->shape)) {
    char b1[160], b2[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s is %s but the forward output is %s", fn, what,
                    dpl_shape_str(b1, sizeof b1, g->ndim, g->shape), dpl_shape_str(b2, sizeof b2, 4, want));
  }
  return DPL_OK;
}

/* a zero-filled gradient of the input's shape, for empty grad_outputs */
static dpl_tensor *zeros4(const char *fn, dpl_device *dev, const int64_t *shape) {
  dpl_tensor *t = dpl_tensor_full(dev, 4, shape, 0.0f);
  if (!t) dpl_error_prefix(fn);
  return t;
}

/* ---- pooling ---------------------------------------------------------------------------------------------------- */
typedef struct pool_geom { int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow; int ceil, cip; } pool_geom;

static const char *pool_str(char *buf, size_t n, const pool_geom *g, int is_max) {
  int k = snprintf(buf, n, "kernel=(%lld, %lld), stride=(%lld, %lld), padding=(%lld, %lld)", (long long)g->kh,
                   (long long)g->kw, (long long)g->sh, (long long)g->sw, (long long)g->ph, (long long)g->pw);
  if (k > 0 && (size_t)k < n && is_max)
    k += snprintf(buf + k, n - (size_t)k, ", dilation=(%lld, %lld)", (long long)g->dh, (long long)g->dw);
  if (k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, ", ceil_mode=%d", g->ceil);
  return buf;
}

static int pool_geometry(const char *fn, int is_max, const int64_t *in, const dpl_pool2d_params *p, pool_geom *g) {
  char b1[160], b2[240];
  if (!p) return dpl_fail(DPL_ERR_ARGUMENT, "%s: params is NULL (the kernel size is required)", fn);
  memset(g, 0, sizeof *g);
  g->kh = p->kernel_h; g->kw = p->kernel_w;
  g->sh = p->stride_h ? p->stride_h : p->kernel_h;
  g->sw = p->stride_w ? p->stride_w : p->kernel_w;
  g->ph = p->pad_h; g->pw = p->pad_w;
  g->dh = is_max && p->dilation_h ? p->dilation_h : 1;
  g->dw = is_max && p->dilation_w ? p->dilation_w : 1;
  g->ceil = p->ceil_mode != 0;
  g->cip = p->count_include_pad != 0;
  if (g->kh <= 0 || g->kw <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: kernel size must be positive, got %lldx%lld", fn, (long long)g->kh, (long long)g->kw);
  if (g->sh <= 0 || g->sw <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: stride must be positive, got (%lld, %lld)", fn, (long long)g->sh, (long long)g->sw);
  if (g->dh <= 0 || g->dw <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: dilation must be positive, got (%lld, %lld)", fn, (long long)g->dh, (long long)g->dw);
  if (g->ph < 0 || g->pw < 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: padding must be non-negative, got (%lld, %lld)", fn, (long long)g->ph, (long long)g->pw);
  if (g->ph > g->kh / 2 || g->pw > g->kw / 2)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: padding (%lld, %lld) must be at most half the kernel size %lldx%lld", fn,
                    (long long)g->ph, (long long)g->pw, (long long)g->kh, (long long)g->kw);
  g->oh = pool_out_size(in[2], g->kh, g->ph, g->sh, g->dh, g->ceil);
  g->ow = pool_out_size(in[3], g->kw, g->pw, g->sw, g->dw, g->ceil);
  if (g->oh < 1 || g->ow < 1) {
    int64_t eh = g->dh * (g->kh - 1) + 1, ew = g->dw * (g->kw - 1) + 1;
    int64_t hh = in[2] + 2 * g->ph, ww = in[3] + 2 * g->pw;
    if (eh > hh || ew > ww)
      return dpl_fail(DPL_ERR_ARGUMENT, "%s: kernel %lldx%lld%s is larger than the padded input %lldx%lld (input %s, %s)",
                      fn, (long long)g->kh, (long long)g->kw, g->dh > 1 || g->dw > 1 ? " (dilated)" : "", (long long)hh,
                      (long long)ww, dpl_shape_str(b1, sizeof b1, 4, in), pool_str(b2, sizeof b2, g, is_max));
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: output size %lldx%lld is too small (input %s, %s)", fn, (long long)g->oh,
                    (long long)g->ow, dpl_shape_str(b1, sizeof b1, 4, in), pool_str(b2, sizeof b2, g, is_max));
  }
  return DPL_OK;
}

static int pool_tables(const pool_geom *g, int kind, int64_t h, int64_t w, axis_tab *ty, axis_tab *tx) {
  int rc = pool_axis(ty, kind, h, g->oh, g->kh, g->sh, g->ph, g->dh, g->cip);
  if (!rc) rc = pool_axis(tx, kind, w, g->ow, g->kw, g->sw, g->pw, g->dw, g->cip);
  return rc;
}

/* transposed tables of t (forward lists over destinations of sources in [0, h) x [0, w)) */
static int transpose2(axis_tab *ty, axis_tab *tx, int64_t h, int64_t w) {
  axis_tab a, b;
  int rc = tab_transpose(ty, h, &a);
  if (rc) return rc;
  rc = tab_transpose(tx, w, &b);
  if (rc) { tab_free(&a); return rc; }
  tab_free(ty); tab_free(tx);
  *ty = a; *tx = b;
  return DPL_OK;
}

dpl_tensor *dpl_max_pool2d_forward(dpl_tensor *input, const dpl_pool2d_params *params, dpl_tensor **indices) {
  const char *fn = "max_pool2d";
  pool_geom g;
  if (indices) *indices = NULL;
  if (check_4d(fn, "input", input) || pool_geometry(fn, 1, input->shape, params, &g)) return NULL;
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *out = NULL;
  if (pool_tables(&g, POOL_MAX, input->shape[2], input->shape[3], &ty, &tx)) dpl_error_prefix(fn);
  else out = apply(fn, DPL_SPATIAL_MAX, input, &ty, &tx, NULL, indices, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return out;
}

dpl_tensor *dpl_max_pool2d_backward(dpl_tensor *grad_output, dpl_tensor *indices, int ndim, const int64_t *input_shape,
                                    const dpl_pool2d_params *params) {
  const char *fn = "max_pool2d_backward";
  pool_geom g;
  if (check_4d(fn, "grad_output", grad_output) || check_4d(fn, "indices", indices)) return NULL;
  if (check_input_shape(fn, ndim, input_shape) || pool_geometry(fn, 1, input_shape, params, &g)) return NULL;
  if (dpl_check_same_device(fn, grad_output, "grad_output", indices, "indices")) return NULL;
  int64_t want[4] = {input_shape[0], input_shape[1], g.oh, g.ow};
  if (check_grad_shape(fn, "grad_output", grad_output, want) || check_grad_shape(fn, "indices", indices, want)) return NULL;
  if (dpl_shape_numel(4, want) == 0) return zeros4(fn, grad_output->storage->dev, input_shape);
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *gi = NULL;
  if (pool_tables(&g, POOL_MAX, input_shape[2], input_shape[3], &ty, &tx) ||
      transpose2(&ty, &tx, input_shape[2], input_shape[3]))
    dpl_error_prefix(fn);
  else gi = apply(fn, DPL_SPATIAL_MAX_GRAD, grad_output, &ty, &tx, indices, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return gi;
}

dpl_tensor *dpl_avg_pool2d_forward(dpl_tensor *input, const dpl_pool2d_params *params) {
  const char *fn = "avg_pool2d";
  pool_geom g;
  if (check_4d(fn, "input", input) || pool_geometry(fn, 0, input->shape, params, &g)) return NULL;
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *out = NULL;
  if (pool_tables(&g, POOL_AVG, input->shape[2], input->shape[3], &ty, &tx)) dpl_error_prefix(fn);
  else out = apply(fn, DPL_SPATIAL_SUM, input, &ty, &tx, NULL, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return out;
}

dpl_tensor *dpl_avg_pool2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape,
                                    const dpl_pool2d_params *params) {
  const char *fn = "avg_pool2d_backward";
  pool_geom g;
  if (check_4d(fn, "grad_output", grad_output)) return NULL;
  if (check_input_shape(fn, ndim, input_shape) || pool_geometry(fn, 0, input_shape, params, &g)) return NULL;
  int64_t want[4] = {input_shape[0], input_shape[1], g.oh, g.ow};
  if (check_grad_shape(fn, "grad_output", grad_output, want)) return NULL;
  if (dpl_shape_numel(4, want) == 0) return zeros4(fn, grad_output->storage->dev, input_shape);
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *gi = NULL;
  if (pool_tables(&g, POOL_AVG, input_shape[2], input_shape[3], &ty, &tx) ||
      transpose2(&ty, &tx, input_shape[2], input_shape[3]))
    dpl_error_prefix(fn);
  else gi = apply(fn, DPL_SPATIAL_SUM, grad_output, &ty, &tx, NULL, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return gi;
}

/* ---- adaptive average pooling ---------------------------------------------------------------------------------- */
static int adaptive_check(const char *fn, const int64_t *in, int64_t oh, int64_t ow) {
  char b[160];
  if (oh <= 0 || ow <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: output size must be positive, got %lldx%lld (input %s)", fn, (long long)oh,
                    (long long)ow, dpl_shape_str(b, sizeof b, 4, in));
  if (in[2] <= 0 || in[3] <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: input %s has an empty spatial dim", fn, dpl_shape_str(b, sizeof b, 4, in));
  return DPL_OK;
}

dpl_tensor *dpl_adaptive_avg_pool2d_forward(dpl_tensor *input, int64_t out_h, int64_t out_w) {
  const char *fn = "adaptive_avg_pool2d";
  if (check_4d(fn, "input", input) || adaptive_check(fn, input->shape, out_h, out_w)) return NULL;
  /* global pooling (squeeze-and-excitation, classifier heads): the mean over each plane, a contiguous reduction
   * summed in double, instead of the general gather (4x faster on the CPU); the same value to float rounding */
  if (out_h == 1 && out_w == 1 && dpl_tensor_numel(input) > 0) {
    const int planes[2] = {2, 3};
    dpl_tensor *y = dpl_reduce(DPL_MEAN, input, 2, planes, 1, 0);
    if (!y) dpl_error_prefix(fn);
    return y;
  }
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *out = NULL;
  if (adaptive_axis(&ty, input->shape[2], out_h) || adaptive_axis(&tx, input->shape[3], out_w)) dpl_error_prefix(fn);
  else out = apply(fn, DPL_SPATIAL_SUM, input, &ty, &tx, NULL, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return out;
}

dpl_tensor *dpl_adaptive_avg_pool2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape) {
  const char *fn = "adaptive_avg_pool2d_backward";
  if (check_4d(fn, "grad_output", grad_output) || check_input_shape(fn, ndim, input_shape)) return NULL;
  int64_t oh = grad_output->shape[2], ow = grad_output->shape[3];
  if (adaptive_check(fn, input_shape, oh, ow)) return NULL;
  int64_t want[4] = {input_shape[0], input_shape[1], oh, ow};
  if (check_grad_shape(fn, "grad_output", grad_output, want)) return NULL;
  if (dpl_shape_numel(4, want) == 0) return zeros4(fn, grad_output->storage->dev, input_shape);
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *gi = NULL;
  if (adaptive_axis(&ty, input_shape[2], oh) || adaptive_axis(&tx, input_shape[3], ow) ||
      transpose2(&ty, &tx, input_shape[2], input_shape[3]))
    dpl_error_prefix(fn);
  else gi = apply(fn, DPL_SPATIAL_SUM, grad_output, &ty, &tx, NULL, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return gi;
}

/* ---- padding ---------------------------------------------------------------------------------------------------- */
static int pad_check(const char *fn, const int64_t *in, int left, int right, int top, int bottom, int mode) {
  char b[160];
  static const char *names[] = {"constant", "reflect", "replicate"};
  if (mode < DPL_PAD_CONSTANT || mode > DPL_PAD_REPLICATE)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: unknown padding mode %d (0 constant, 1 reflect, 2 replicate)", fn, mode);
  if (mode != DPL_PAD_CONSTANT) {
    if (left < 0 || right < 0 || top < 0 || bottom < 0)
      return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s padding must be non-negative, got (left %d, right %d, top %d, bottom %d)",
                      fn, names[mode], left, right, top, bottom);
    if (in[2] <= 0 || in[3] <= 0)
      return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s padding needs a non-empty input, got %s", fn, names[mode],
                      dpl_shape_str(b, sizeof b, 4, in));
  }
  if (mode == DPL_PAD_REFLECT && (left >= in[3] || right >= in[3] || top >= in[2] || bottom >= in[2]))
    return dpl_fail(DPL_ERR_ARGUMENT,
                    "%s: reflect padding (left %d, right %d, top %d, bottom %d) must be smaller than the input's "
                    "height and width (input %s)", fn, left, right, top, bottom, dpl_shape_str(b, sizeof b, 4, in));
  int64_t oh = in[2] + top + bottom, ow = in[3] + left + right;
  if (oh <= 0 || ow <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT,
                    "%s: padding (left %d, right %d, top %d, bottom %d) gives an output of %lldx%lld for input %s", fn,
                    left, right, top, bottom, (long long)oh, (long long)ow, dpl_shape_str(b, sizeof b, 4, in));
  return DPL_OK;
}

dpl_tensor *dpl_pad2d_forward(dpl_tensor *input, int left, int right, int top, int bottom, int mode, float value) {
  const char *fn = "pad2d";
  if (check_4d(fn, "input", input) || pad_check(fn, input->shape, left, right, top, bottom, mode)) return NULL;
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *out = NULL;
  if (pad_axis(&ty, input->shape[2], top, bottom, mode) || pad_axis(&tx, input->shape[3], left, right, mode))
    dpl_error_prefix(fn);
  else out = apply(fn, DPL_SPATIAL_SUM, input, &ty, &tx, NULL, NULL, mode == DPL_PAD_CONSTANT, value);
  tab_free(&ty); tab_free(&tx);
  return out;
}

dpl_tensor *dpl_pad2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape, int left, int right, int top,
                               int bottom, int mode) {
  const char *fn = "pad2d_backward";
  if (check_4d(fn, "grad_output", grad_output) || check_input_shape(fn, ndim, input_shape)) return NULL;
  if (pad_check(fn, input_shape, left, right, top, bottom, mode)) return NULL;
  int64_t want[4] = {input_shape[0], input_shape[1], input_shape[2] + top + bottom, input_shape[3] + left + right};
  if (check_grad_shape(fn, "grad_output", grad_output, want)) return NULL;
  if (dpl_shape_numel(4, want) == 0 || dpl_shape_numel(4, input_shape) == 0)
    return zeros4(fn, grad_output->storage->dev, input_shape);
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *gi = NULL;
  if (pad_axis(&ty, input_shape[2], top, bottom, mode) || pad_axis(&tx, input_shape[3], left, right, mode) ||
      transpose2(&ty, &tx, input_shape[2], input_shape[3]))
    dpl_error_prefix(fn);
  else gi = apply(fn, DPL_SPATIAL_SUM, grad_output, &ty, &tx, NULL, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return gi;
}

/* ---- resizing --------------------------------------------------------------------------------------------------- */
static int upsample_check(const char *fn, const int64_t *in, int64_t oh, int64_t ow, int mode) {
  char b[160];
  if (mode != DPL_UPSAMPLE_NEAREST && mode != DPL_UPSAMPLE_BILINEAR)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: unknown mode %d (0 nearest, 1 bilinear)", fn, mode);
  if (oh <= 0 || ow <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: output size must be positive, got %lldx%lld (input %s)", fn, (long long)oh,
                    (long long)ow, dpl_shape_str(b, sizeof b, 4, in));
  if (in[2] <= 0 || in[3] <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: input %s has an empty spatial dim", fn, dpl_shape_str(b, sizeof b, 4, in));
  return DPL_OK;
}

dpl_tensor *dpl_upsample2d_forward(dpl_tensor *input, int64_t out_h, int64_t out_w, int mode, double scale_h,
                                   double scale_w) {
  const char *fn = mode == DPL_UPSAMPLE_BILINEAR ? "upsample_bilinear2d" : "upsample_nearest2d";
  if (check_4d(fn, "input", input) || upsample_check(fn, input->shape, out_h, out_w, mode)) return NULL;
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *out = NULL;
  if (upsample_axis(&ty, mode, input->shape[2], out_h, scale_h) || upsample_axis(&tx, mode, input->shape[3], out_w, scale_w))
    dpl_error_prefix(fn);
  else out = apply(fn, DPL_SPATIAL_SUM, input, &ty, &tx, NULL, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return out;
}

dpl_tensor *dpl_upsample2d_backward(dpl_tensor *grad_output, int ndim, const int64_t *input_shape, int mode,
                                    double scale_h, double scale_w) {
  const char *fn = mode == DPL_UPSAMPLE_BILINEAR ? "upsample_bilinear2d_backward" : "upsample_nearest2d_backward";
  if (check_4d(fn, "grad_output", grad_output) || check_input_shape(fn, ndim, input_shape)) return NULL;
  int64_t oh = grad_output->shape[2], ow = grad_output->shape[3];
  if (upsample_check(fn, input_shape, oh, ow, mode)) return NULL;
  int64_t want[4] = {input_shape[0], input_shape[1], oh, ow};
  if (check_grad_shape(fn, "grad_output", grad_output, want)) return NULL;
  if (dpl_shape_numel(4, want) == 0) return zeros4(fn, grad_output->storage->dev, input_shape);
  axis_tab ty = {0}, tx = {0};
  dpl_tensor *gi = NULL;
  if (upsample_axis(&ty, mode, input_shape[2], oh, scale_h) || upsample_axis(&tx, mode, input_shape[3], ow, scale_w) ||
      transpose2(&ty, &tx, input_shape[2], input_shape[3]))
    dpl_error_prefix(fn);
  else gi = apply(fn, DPL_SPATIAL_SUM, grad_output, &ty, &tx, NULL, NULL, 0, 0.0f);
  tab_free(&ty); tab_free(&tx);
  return gi;
}
