/* norm.c - batch normalization with the batch's statistics (dpl_batch_norm_forward / _backward): the checks, then the
 * backend's fused kernels (the CPU's: every pass over one channel while it is in cache, cpu/norm_cpu.c; Vulkan's:
 * shaders/batch_norm.comp) or, for a backend without them or a shape they do not take (DPL_NOT_FUSED), the same
 * arithmetic composed of reductions and muladd (a handful of passes over the tensor). */
#include "internal.h"
#include <stdio.h>

/* x: N x C [x ...]; weight and bias: C values or NULL, on x's device */
static int check_params(const char *fn, const dpl_tensor *x, const dpl_tensor *p, const char *what) {
  if (!p) return DPL_OK;
  if (dpl_check_same_device(fn, x, "input", p, what)) return dpl_last_status();
  if (dpl_tensor_numel(p) != x->shape[1]) {
    char b[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: %s has %lld values for an input of shape %s (%lld channels)", fn, what,
                    (long long)dpl_tensor_numel(p), dpl_shape_str(b, sizeof b, x->ndim, x->shape),
                    (long long)x->shape[1]);
  }
  return DPL_OK;
}

static int check_input(const char *fn, const dpl_tensor *x) {
  if (!x) return dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL input", fn);
  char b[160];
  if (x->ndim < 2)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: expected an input N x C [x H x W], got shape %s", fn,
                    dpl_shape_str(b, sizeof b, x->ndim, x->shape));
  if (dpl_tensor_numel(x) == 0 || dpl_tensor_numel(x) == x->shape[1])
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: expected more than 1 value per channel, got input of shape %s", fn,
                    dpl_shape_str(b, sizeof b, x->ndim, x->shape));
  return DPL_OK;
}

/* the arguments of the backend: x (and g) contiguous, seen as n x c x hw */
static void shape_args(const dpl_tensor *x, dpl_batch_norm_args *a) {
  a->n = x->shape[0];
  a->c = x->shape[1];
  a->hw = 1;
  for (int d = 2; d < x->ndim; d++) a->hw *= x->shape[d];
}

/* ---- the composition for backends without a fused kernel -------------------------------------------------------- */
/* Temporaries are kept in a small arena and freed together. Every helper returns NULL once a step failed (its error
 * stays the one reported), so a composition reads as straight-line arithmetic. */
enum { ARENA = 40 };
typedef struct arena { dpl_tensor *t[ARENA]; int n; bool failed; } arena;

static dpl_tensor *keep(arena *ar, dpl_tensor *t) {
  if (!t || ar->n == ARENA) {
    if (t) { dpl_tensor_free(t); dpl_fail(DPL_ERR_UNSUPPORTED, "batch norm: too many temporaries"); }
    ar->failed = true;
    return NULL;
  }
  return ar->t[ar->n++] = t;
}

static void arena_free(arena *ar) { for (int i = 0; i < ar->n; i++) dpl_tensor_free(ar->t[i]); }

/* The kept tensor t, released from the arena (the caller owns it). */
static dpl_tensor *release(arena *ar, dpl_tensor *t) {
  for (int i = 0; i < ar->n; i++) if (ar->t[i] == t) { ar->t[i] = ar->t[--ar->n]; return t; }
  return NULL;
}

static bool go(arena *ar, const dpl_tensor *a, const dpl_tensor *b) { return !ar->failed && a && b; }

static dpl_tensor *bin(arena *ar, int op, dpl_tensor *a, dpl_tensor *b) {
  return go(ar, a, b) ? keep(ar, dpl_binary(op, a, b)) : NULL;
}
static dpl_tensor *bin_s(arena *ar, int op, dpl_tensor *a, float s) {
  return go(ar, a, a) ? keep(ar, dpl_binary_scalar(op, a, s, 0)) : NULL;
}
static dpl_tensor *un(arena *ar, int op, dpl_tensor *a) {
  return go(ar, a, a) ? keep(ar, dpl_unary(op, a, 0, 0)) : NULL;
}
static dpl_tensor *fma3(arena *ar, dpl_tensor *x, dpl_tensor *a, dpl_tensor *b) {
  return go(ar, x, a) && b ? keep(ar, dpl_muladd(x, a, b)) : NULL;
}
static dpl_tensor *reshaped(arena *ar, dpl_tensor *t, int ndim, const int64_t *shape) {
  return go(ar, t, t) ? keep(ar, dpl_tensor_reshape(t, ndim, shape)) : NULL;
}
/* a C-value tensor seen as 1 x c x 1, and back */
static dpl_tensor *per_channel(arena *ar, dpl_tensor *p, int64_t c) {
  int64_t shape[3] = {1, c, 1};
  return reshaped(ar, p, 3, shape);
}
static dpl_tensor *as_c(arena *ar, dpl_tensor *t, int64_t c) { return reshaped(ar, t, 1, &c); }

/* per-channel sums of an n x c x hw tensor as 1 x c x 1: over hw (contiguous rows), then over n */
static dpl_tensor *channel_sum(arena *ar, dpl_tensor *t) {
  int d2 = 2, d0 = 0;
  dpl_tensor *rows = go(ar, t, t) ? keep(ar, dpl_reduce(DPL_SUM, t, 1, &d2, 1, 0)) : NULL;
  return go(ar, rows, rows) ? keep(ar, dpl_reduce(DPL_SUM, rows, 1, &d0, 1, 0)) : NULL;
}

static int composed_forward(dpl_tensor *x3, dpl_tensor *weight, dpl_tensor *bias, const dpl_batch_norm_args *a,
                            dpl_tensor **y, dpl_tensor **mean, dpl_tensor **var) {
  arena ar = {0};
  float cnt = (float)(a->n * a->hw);
  dpl_tensor *m = bin_s(&ar, DPL_DIV, channel_sum(&ar, x3), cnt);
  dpl_tensor *xc = bin(&ar, DPL_SUB, x3, m);
  dpl_tensor *v = bin_s(&ar, DPL_DIV, channel_sum(&ar, un(&ar, DPL_SQUARE, xc)), cnt);
  dpl_tensor *invstd = un(&ar, DPL_RSQRT, bin_s(&ar, DPL_ADD, v, a->eps));
  dpl_tensor *scale = weight ? bin(&ar, DPL_MUL, invstd, per_channel(&ar, weight, a->c)) : invstd;
  dpl_tensor *out = bias ? fma3(&ar, xc, scale, per_channel(&ar, bias, a->c)) : bin(&ar, DPL_MUL, xc, scale);
  dpl_tensor *mc = as_c(&ar, m, a->c), *vc = as_c(&ar, v, a->c);
  if (ar.failed) { arena_free(&ar); return dpl_last_status(); }
  *y = release(&ar, out);
  *mean = release(&ar, mc);
  *var = release(&ar, vc);
  arena_free(&ar);
  return DPL_OK;
}

static int composed_backward(dpl_tensor *g3, dpl_tensor *x3, dpl_tensor *weight, dpl_tensor *mean, dpl_tensor *var,
                             const dpl_batch_norm_args *a, dpl_tensor **gx, dpl_tensor **gw, dpl_tensor **gb) {
  arena ar = {0};
  float cnt = (float)(a->n * a->hw);
  dpl_tensor *invstd = un(&ar, DPL_RSQRT, bin_s(&ar, DPL_ADD, per_channel(&ar, var, a->c), a->eps));
  dpl_tensor *xc = bin(&ar, DPL_SUB, x3, per_channel(&ar, mean, a->c));
  dpl_tensor *sum_g = channel_sum(&ar, g3);
  dpl_tensor *sum_gxc = channel_sum(&ar, bin(&ar, DPL_MUL, g3, xc));
  dpl_tensor *w = as_c(&ar, bin(&ar, DPL_MUL, sum_gxc, invstd), a->c), *b = as_c(&ar, sum_g, a->c);
  dpl_tensor *in = NULL;
  if (gx) {
    /* gx = scale g + (k xc + c0) with scale = weight invstd, k = -scale invstd^2 sum_gxc / n, c0 = -scale sum_g / n */
    dpl_tensor *scale = weight ? bin(&ar, DPL_MUL, invstd, per_channel(&ar, weight, a->c)) : invstd;
    dpl_tensor *k = bin_s(&ar, DPL_MUL, bin(&ar, DPL_MUL, bin(&ar, DPL_MUL, scale, bin(&ar, DPL_MUL, invstd, invstd)),
                                            sum_gxc), -1.0f / cnt);
    dpl_tensor *c0 = bin_s(&ar, DPL_MUL, bin(&ar, DPL_MUL, scale, sum_g), -1.0f / cnt);
    in = fma3(&ar, g3, scale, fma3(&ar, xc, k, c0));
  }
  if (ar.failed) { arena_free(&ar); return dpl_last_status(); }
  if (gx) *gx = release(&ar, in);
  *gw = release(&ar, w);
  *gb = release(&ar, b);
  arena_free(&ar);
  return DPL_OK;
}

/* ---- the entry points --------------------------------------------------------------------------------------------- */
/* x contiguous and seen as n x c x hw (a new handle) */
static dpl_tensor *as_ncl(const dpl_tensor *x, const dpl_batch_norm_args *a) {
  dpl_tensor *xc = dpl_tensor_contiguous((dpl_tensor *)x);
  if (!xc) return NULL;
  int64_t shape[3] = {a->n, a->c, a->hw};
  dpl_tensor *v = dpl_tensor_view(xc, 3, shape);
  dpl_tensor_free(xc);
  return v;
}

static dpl_tensor *alloc_c(dpl_device *dev, int64_t c) { return dpl_tensor_empty(dev, 1, &c); }

dpl_tensor *dpl_batch_norm_forward(dpl_tensor *x, dpl_tensor *weight, dpl_tensor *bias, float eps, dpl_tensor **mean,
                                   dpl_tensor **var) {
  const char *fn = "batch_norm_forward";
  if (!mean || !var) { dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL mean or var pointer", fn); return NULL; }
  *mean = *var = NULL;
  if (check_input(fn, x) || check_params(fn, x, weight, "weight") || check_params(fn, x, bias, "bias")) return NULL;
  dpl_batch_norm_args a = {.eps = eps};
  shape_args(x, &a);
  dpl_device *dev = x->storage->dev;
  dpl_tensor *x3 = as_ncl(x, &a), *y = NULL, *y3 = NULL;
  dpl_tensor *w = weight ? dpl_tensor_contiguous(weight) : NULL, *b = bias ? dpl_tensor_contiguous(bias) : NULL;
  int rc = DPL_NOT_FUSED;
  if (!x3 || (weight && !w) || (bias && !b)) rc = dpl_last_status();
  else if (dev->backend->batch_norm_forward) {
    y3 = dpl_tensor_alloc_like_shape(dev, 3, x3->shape);
    *mean = alloc_c(dev, a.c);
    *var = alloc_c(dev, a.c);
    if (!y3 || !*mean || !*var) rc = dpl_last_status();
    else {
      a.x = x3; a.weight = w; a.bias = b; a.y = y3; a.mean = *mean; a.var = *var;
      dpl_storage_written(y3->storage);
      dpl_storage_written((*mean)->storage);
      dpl_storage_written((*var)->storage);
      rc = dev->backend->batch_norm_forward(dev, &a);
    }
    if (rc == DPL_NOT_FUSED) {
      dpl_tensor_free(y3); dpl_tensor_free(*mean); dpl_tensor_free(*var);
      y3 = *mean = *var = NULL;
    }
  }
  if (rc == DPL_NOT_FUSED) rc = composed_forward(x3, w, b, &a, &y3, mean, var);
  if (!rc) { y = dpl_tensor_view(y3, x->ndim, x->shape); if (!y) rc = dpl_last_status(); }
  dpl_tensor_free(x3); dpl_tensor_free(y3); dpl_tensor_free(w); dpl_tensor_free(b);
  if (rc) {
    dpl_error_prefix(fn);
    dpl_tensor_free(*mean); dpl_tensor_free(*var); dpl_tensor_free(y);
    *mean = *var = NULL;
    return NULL;
  }
  return y;
}

int dpl_batch_norm_backward(dpl_tensor *grad_output, dpl_tensor *x, dpl_tensor *weight, dpl_tensor *mean,
                            dpl_tensor *var, float eps, dpl_tensor **grad_input, dpl_tensor **grad_weight,
                            dpl_tensor **grad_bias) {
  const char *fn = "batch_norm_backward";
  if (grad_input) *grad_input = NULL;
  if (grad_weight) *grad_weight = NULL;
  if (grad_bias) *grad_bias = NULL;
  if (check_input(fn, x) || check_params(fn, x, weight, "weight") || check_params(fn, x, mean, "mean") ||
      check_params(fn, x, var, "var"))
    return dpl_last_status();
  if (!mean || !var) return dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL mean or var", fn);
  if (!grad_output) return dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL grad_output", fn);
  if (dpl_check_same_device(fn, x, "input", grad_output, "grad_output")) return dpl_last_status();
  if (!dpl_shape_equal(x->ndim, x->shape, grad_output->ndim, grad_output->shape)) {
    char b1[160], b2[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: grad_output has shape %s, the input %s", fn,
                    dpl_shape_str(b1, sizeof b1, grad_output->ndim, grad_output->shape),
                    dpl_shape_str(b2, sizeof b2, x->ndim, x->shape));
  }
  dpl_batch_norm_args a = {.eps = eps};
  shape_args(x, &a);
  dpl_device *dev = x->storage->dev;
  dpl_tensor *x3 = as_ncl(x, &a), *g3 = as_ncl(grad_output, &a), *gx3 = NULL, *gw = NULL, *gb = NULL;
  dpl_tensor *w = weight ? dpl_tensor_contiguous(weight) : NULL;
  dpl_tensor *m = dpl_tensor_contiguous(mean), *v = dpl_tensor_contiguous(var);
  int rc = DPL_NOT_FUSED;
  if (!x3 || !g3 || (weight && !w) || !m || !v) rc = dpl_last_status();
  else if (dev->backend->batch_norm_backward) {
    gw = alloc_c(dev, a.c);
    gb = alloc_c(dev, a.c);
    if (grad_input) gx3 = dpl_tensor_alloc_like_shape(dev, 3, x3->shape);
    if (!gw || !gb || (grad_input && !gx3)) rc = dpl_last_status();
    else {
      a.x = x3; a.g = g3; a.weight = w; a.mean = m; a.var = v; a.y = gx3; a.grad_weight = gw; a.grad_bias = gb;
      if (gx3) dpl_storage_written(gx3->storage);
      dpl_storage_written(gw->storage);
      dpl_storage_written(gb->storage);
      rc = dev->backend->batch_norm_backward(dev, &a);
    }
    if (rc == DPL_NOT_FUSED) {
      dpl_tensor_free(gw); dpl_tensor_free(gb); dpl_tensor_free(gx3);
      gw = gb = gx3 = NULL;
    }
  }
  if (rc == DPL_NOT_FUSED) rc = composed_backward(g3, x3, w, m, v, &a, grad_input ? &gx3 : NULL, &gw, &gb);
  if (!rc && grad_input) { *grad_input = dpl_tensor_view(gx3, x->ndim, x->shape); if (!*grad_input) rc = dpl_last_status(); }
  dpl_tensor_free(x3); dpl_tensor_free(g3); dpl_tensor_free(gx3); dpl_tensor_free(w); dpl_tensor_free(m);
  dpl_tensor_free(v);
  if (rc) {
    dpl_error_prefix(fn);
    dpl_tensor_free(gw); dpl_tensor_free(gb);
    if (grad_input) { dpl_tensor_free(*grad_input); *grad_input = NULL; }
    return rc;
  }
  if (grad_weight) *grad_weight = gw; else dpl_tensor_free(gw);
  if (grad_bias) *grad_bias = gb; else dpl_tensor_free(gb);
  return DPL_OK;
}
