/* conv.c - 2-D convolution (F.conv2d semantics) and its gradients: argument checks, output shapes, contiguous
 * operands, then the backend's kernel. The bias gradient is a sum over N, H and W. */
#include "internal.h"
#include <stdio.h>

static const dpl_conv2d_params default_params = {1, 1, 0, 0, 1, 1, 1, DPL_ACT_NONE};

static const char *params_str(char *buf, size_t n, const dpl_conv2d_params *p) {
  snprintf(buf, n, "stride=(%d, %d), padding=(%d, %d), dilation=(%d, %d), groups=%d", p->stride_h, p->stride_w, p->pad_h,
           p->pad_w, p->dilation_h, p->dilation_w, p->groups);
  return buf;
}

/* Checks input shape `in` (N, C, H, W) against weight shape `w` (O, C/groups, kh, kw) and the parameters, and fills
 * the geometry of `a` (output size included). */
static int conv_geometry(const char *fn, const int64_t *in, const int64_t *w, const dpl_conv2d_params *p,
                         dpl_conv2d_args *a) {
  char b1[160], b2[160], b3[200];
  if (p->stride_h <= 0 || p->stride_w <= 0 || p->dilation_h <= 0 || p->dilation_w <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: stride and dilation must be positive (%s)", fn, params_str(b3, sizeof b3, p));
  if (p->pad_h < 0 || p->pad_w < 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: padding must be non-negative (%s)", fn, params_str(b3, sizeof b3, p));
  if (p->groups <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: groups must be positive, got %d", fn, p->groups);
  if (w[0] <= 0 || w[1] <= 0 || w[2] <= 0 || w[3] <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: weight %s has a zero-size dim", fn, dpl_shape_str(b2, sizeof b2, 4, w));
  if (in[1] % p->groups != 0 || w[0] % p->groups != 0)
    return dpl_fail(DPL_ERR_ARGUMENT,
                    "%s: groups=%d must divide both the input channels (%lld, input %s) and the output channels "
                    "(%lld, weight %s)", fn, p->groups, (long long)in[1], dpl_shape_str(b1, sizeof b1, 4, in),
                    (long long)w[0], dpl_shape_str(b2, sizeof b2, 4, w));
  if (in[1] != w[1] * p->groups)
    return dpl_fail(DPL_ERR_ARGUMENT,
                    "%s: input %s has %lld channels but weight %s with groups=%d expects %lld (= %lld x %d)", fn,
                    dpl_shape_str(b1, sizeof b1, 4, in), (long long)in[1], dpl_shape_str(b2, sizeof b2, 4, w),
                    p->groups, (long long)(w[1] * p->groups), (long long)w[1], p->groups);
  int64_t eff_h = (int64_t)p->dilation_h * (w[2] - 1) + 1, eff_w = (int64_t)p->dilation_w * (w[3] - 1) + 1;
  int64_t ph = in[2] + 2 * (int64_t)p->pad_h, pw = in[3] + 2 * (int64_t)p->pad_w;
  if (eff_h > ph || eff_w > pw)
    return dpl_fail(DPL_ERR_ARGUMENT,
                    "%s: kernel %lldx%lld (dilated %lldx%lld) is larger than the padded input %lldx%lld (input %s, "
                    "weight %s, %s)", fn, (long long)w[2], (long long)w[3], (long long)eff_h, (long long)eff_w,
                    (long long)ph, (long long)pw, dpl_shape_str(b1, sizeof b1, 4, in),
                    dpl_shape_str(b2, sizeof b2, 4, w), params_str(b3, sizeof b3, p));
  a->n = in[0]; a->c = in[1]; a->h = in[2]; a->w = in[3];
  a->o = w[0]; a->kh = w[2]; a->kw = w[3];
  a->oh = (ph - eff_h) / p->stride_h + 1;
  a->ow = (pw - eff_w) / p->stride_w + 1;
  a->stride_h = p->stride_h; a->stride_w = p->stride_w;
  a->pad_h = p->pad_h; a->pad_w = p->pad_w;
  a->dil_h = p->dilation_h; a->dil_w = p->dilation_w;
  a->groups = p->groups;
  return DPL_OK;
}

static int check_4d(const char *fn, const char *what, const dpl_tensor *t) {
  return dpl_check_4d(fn, what, t, what[0] == 'w' ? "O x C/groups x kH x kW" : "N x C x H x W");
}

static int check_grad_output(const char *fn, const dpl_tensor *go, const dpl_conv2d_args *a) {
  int64_t want[4] = {a->n, a->o, a->oh, a->ow};
  if (!dpl_shape_equal(4, want, go->ndim, go->shape)) {
    char b1[160], b2[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: grad_output is %s but the convolution's output is %s", fn,
                    dpl_shape_str(b1, sizeof b1, go->ndim, go->shape), dpl_shape_str(b2, sizeof b2, 4, want));
  }
  return DPL_OK;
}

dpl_tensor *dpl_conv2d_forward(dpl_tensor *input, dpl_tensor *weight, dpl_tensor *bias, const dpl_conv2d_params *params) {
  const char *fn = "conv2d";
  const dpl_conv2d_params *p = params ? params : &default_params;
  dpl_conv2d_args a = {0};
  if (check_4d(fn, "input", input) || check_4d(fn, "weight", weight)) return NULL;
  if (dpl_check_same_device(fn, input, "input", weight, "weight")) return NULL;
  if (conv_geometry(fn, input->shape, weight->shape, p, &a)) return NULL;
  if (p->activation != DPL_ACT_NONE && p->activation != DPL_ACT_RELU) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: unknown activation %d (0 none, 1 relu)", fn, p->activation);
    return NULL;
  }
  a.act = p->activation;
  if (bias) {
    if (dpl_check_same_device(fn, input, "input", bias, "bias")) return NULL;
    if (bias->ndim != 1 || bias->shape[0] != a.o) {
      char b1[160], b2[160];
      dpl_fail(DPL_ERR_ARGUMENT, "%s: bias must have shape [%lld] for weight %s, got %s", fn, (long long)a.o,
               dpl_shape_str(b1, sizeof b1, 4, weight->shape), dpl_shape_str(b2, sizeof b2, bias->ndim, bias->shape));
      return NULL;
    }
  }
  dpl_device *dev = input->storage->dev;
  int64_t oshape[4] = {a.n, a.o, a.oh, a.ow};
  dpl_tensor *out = dpl_tensor_alloc_like_shape(dev, 4, oshape);
  if (!out) { dpl_error_prefix(fn); return NULL; }
  if (a.n == 0) return out;
  dpl_tensor *x = dpl_tensor_contiguous(input), *w = dpl_tensor_contiguous(weight);
  dpl_tensor *b = bias ? dpl_tensor_contiguous(bias) : NULL;
  int rc = (!x || !w || (bias && !b)) ? dpl_last_status() : DPL_OK;
  if (!rc) {
    a.input = x; a.weight = w; a.bias = b; a.output = out;
    dpl_storage_written(a.output->storage);
    rc = dev->backend->conv2d_forward(dev, &a);
    if (!rc && a.act == DPL_ACT_RELU && !dev->backend->fused_conv_activation)
      rc = dpl_unary_into(DPL_RELU, out, out, 0, 0);
  }
  dpl_tensor_free(x); dpl_tensor_free(w); dpl_tensor_free(b);
  if (rc) { dpl_error_prefix(fn); dpl_tensor_free(out); return NULL; }
  return out;
}

dpl_tensor *dpl_conv2d_backward_input(dpl_tensor *grad_output, dpl_tensor *weight, int ndim, const int64_t *input_shape,
                                      const dpl_conv2d_params *params) {
  const char *fn = "conv2d_backward_input";
  const dpl_conv2d_params *p = params ? params : &default_params;
  dpl_conv2d_args a = {0};
  if (check_4d(fn, "grad_output", grad_output) || check_4d(fn, "weight", weight)) return NULL;
  if (dpl_check_shape_arg(fn, "input_shape", ndim, input_shape)) return NULL;
  if (dpl_check_same_device(fn, grad_output, "grad_output", weight, "weight")) return NULL;
  if (conv_geometry(fn, input_shape, weight->shape, p, &a)) return NULL;
  if (check_grad_output(fn, grad_output, &a)) return NULL;
  dpl_device *dev = grad_output->storage->dev;
  dpl_tensor *gi = dpl_tensor_alloc_like_shape(dev, 4, input_shape);
  if (!gi) { dpl_error_prefix(fn); return NULL; }
  if (dpl_tensor_numel(gi) == 0) return gi;
  dpl_tensor *go = dpl_tensor_contiguous(grad_output), *w = dpl_tensor_contiguous(weight);
  int rc = (!go || !w) ? dpl_last_status() : DPL_OK;
  if (!rc) {
    a.input = gi; a.weight = w; a.output = go;
    dpl_storage_written(a.input->storage);
    rc = dev->backend->conv2d_backward_input(dev, &a);
  }
  dpl_tensor_free(go); dpl_tensor_free(w);
  if (rc) { dpl_error_prefix(fn); dpl_tensor_free(gi); return NULL; }
  return gi;
}

dpl_tensor *dpl_conv2d_backward_weight(dpl_tensor *input, dpl_tensor *grad_output, int ndim, const int64_t *weight_shape,
                                       const dpl_conv2d_params *params) {
  const char *fn = "conv2d_backward_weight";
  const dpl_conv2d_params *p = params ? params : &default_params;
  dpl_conv2d_args a = {0};
  if (check_4d(fn, "input", input) || check_4d(fn, "grad_output", grad_output)) return NULL;
  if (dpl_check_shape_arg(fn, "weight_shape", ndim, weight_shape)) return NULL;
  if (dpl_check_same_device(fn, input, "input", grad_output, "grad_output")) return NULL;
  if (conv_geometry(fn, input->shape, weight_shape, p, &a)) return NULL;
  if (check_grad_output(fn, grad_output, &a)) return NULL;
  dpl_device *dev = input->storage->dev;
  dpl_tensor *gw = a.n == 0 ? dpl_tensor_full(dev, 4, weight_shape, 0.0f) : dpl_tensor_alloc_like_shape(dev, 4, weight_shape);
  if (!gw) { dpl_error_prefix(fn); return NULL; }
  if (a.n == 0) return gw;
  dpl_tensor *x = dpl_tensor_contiguous(input), *go = dpl_tensor_contiguous(grad_output);
  int rc = (!x || !go) ? dpl_last_status() : DPL_OK;
  if (!rc) {
    a.input = x; a.weight = gw; a.output = go;
    dpl_storage_written(a.weight->storage);
    rc = dev->backend->conv2d_backward_weight(dev, &a);
  }
  dpl_tensor_free(x); dpl_tensor_free(go);
  if (rc) { dpl_error_prefix(fn); dpl_tensor_free(gw); return NULL; }
  return gw;
}

dpl_tensor *dpl_conv2d_backward_bias(dpl_tensor *grad_output) {
  const char *fn = "conv2d_backward_bias";
  if (check_4d(fn, "grad_output", grad_output)) return NULL;
  int dims[3] = {0, 2, 3};
  dpl_tensor *gb = dpl_reduce(DPL_SUM, grad_output, 3, dims, 0, 0);
  if (!gb) dpl_error_prefix(fn);
  return gb;
}
