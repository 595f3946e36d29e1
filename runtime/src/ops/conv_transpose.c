/* conv_transpose.c - 2-D transposed convolution (F.conv_transpose2d semantics) and its gradients, built from the
 * convolution kernels of conv.c, which every backend already has:
 *   forward       y  = conv2d_backward_input(x, w)   (x plays the convolution's grad_output, y its input gradient)
 *   grad input    gx = conv2d(gy, w)
 *   grad weight   gw = conv2d_backward_weight(gy, x) (gy plays the convolution's input, x its grad_output)
 * The weight layout is PyTorch's, in_channels x out_channels/groups x kh x kw, which is exactly the layout of the
 * matching convolution's weight (its O = our in_channels, its C/groups = our out_channels/groups).
 * output_padding may reach the stride when the dilation is larger (PyTorch allows op < max(stride, dilation)); then
 * the matching convolution over the y-sized image has floor(op / stride) more output rows than x has: x is padded
 * with zero rows for it (they contribute nothing) and the input gradient drops them again. */
#include "internal.h"
#include <stdio.h>

static const dpl_conv_transpose2d_params default_params = {1, 1, 0, 0, 0, 0, 1, 1, 1};

typedef struct geometry {
  dpl_conv2d_params conv;            /* the matching convolution */
  int64_t out[4];                    /* y: N x out_channels x OH x OW */
  int64_t extra_h, extra_w;          /* rows and columns the convolution has beyond x's H and W */
} geometry;

static const char *params_str(char *buf, size_t n, const dpl_conv_transpose2d_params *p) {
  snprintf(buf, n, "stride=(%d, %d), padding=(%d, %d), output_padding=(%d, %d), dilation=(%d, %d), groups=%d",
           p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->output_pad_h, p->output_pad_w, p->dilation_h,
           p->dilation_w, p->groups);
  return buf;
}

/* Checks input shape `in` (N, C_in, H, W) against weight shape `w` (C_in, C_out/groups, kh, kw) and the parameters. */
static int make_geometry(const char *fn, const int64_t *in, const int64_t *w, const dpl_conv_transpose2d_params *p,
                         geometry *g) {
  char b1[160], b2[160], b3[240];
  if (p->stride_h <= 0 || p->stride_w <= 0 || p->dilation_h <= 0 || p->dilation_w <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: stride and dilation must be positive (%s)", fn, params_str(b3, sizeof b3, p));
  if (p->pad_h < 0 || p->pad_w < 0 || p->output_pad_h < 0 || p->output_pad_w < 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: padding and output_padding must be non-negative (%s)", fn,
                    params_str(b3, sizeof b3, p));
  if ((p->output_pad_h >= p->stride_h && p->output_pad_h >= p->dilation_h) ||
      (p->output_pad_w >= p->stride_w && p->output_pad_w >= p->dilation_w))
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: output_padding must be smaller than either stride or dilation (%s)", fn,
                    params_str(b3, sizeof b3, p));
  if (p->groups <= 0) return dpl_fail(DPL_ERR_ARGUMENT, "%s: groups must be positive, got %d", fn, p->groups);
  if (w[0] <= 0 || w[1] <= 0 || w[2] <= 0 || w[3] <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: weight %s has a zero-size dim", fn, dpl_shape_str(b2, sizeof b2, 4, w));
  if (in[1] <= 0 || in[2] <= 0 || in[3] <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: input %s has a zero-size channel or spatial dim", fn,
                    dpl_shape_str(b1, sizeof b1, 4, in));
  if (w[0] % p->groups != 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: groups=%d must divide the input channels (weight %s: in_channels x "
                    "out_channels/groups x kH x kW)", fn, p->groups, dpl_shape_str(b2, sizeof b2, 4, w));
  if (in[1] != w[0])
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: input %s has %lld channels but weight %s (in_channels x out_channels/groups "
                    "x kH x kW) expects %lld", fn, dpl_shape_str(b1, sizeof b1, 4, in), (long long)in[1],
                    dpl_shape_str(b2, sizeof b2, 4, w), (long long)w[0]);
  int64_t eff_h = (int64_t)p->dilation_h * (w[2] - 1) + 1, eff_w = (int64_t)p->dilation_w * (w[3] - 1) + 1;
  int64_t oh = (in[2] - 1) * p->stride_h - 2 * (int64_t)p->pad_h + eff_h + p->output_pad_h;
  int64_t ow = (in[3] - 1) * p->stride_w - 2 * (int64_t)p->pad_w + eff_w + p->output_pad_w;
  if (oh <= 0 || ow <= 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: the output size %lldx%lld is not positive (input %s, weight %s, %s): the "
                    "padding is too large", fn, (long long)oh, (long long)ow, dpl_shape_str(b1, sizeof b1, 4, in),
                    dpl_shape_str(b2, sizeof b2, 4, w), params_str(b3, sizeof b3, p));
  g->conv = (dpl_conv2d_params){p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dilation_h, p->dilation_w, p->groups,
                                DPL_ACT_NONE};
  g->out[0] = in[0]; g->out[1] = w[1] * p->groups; g->out[2] = oh; g->out[3] = ow;
  g->extra_h = (oh + 2 * (int64_t)p->pad_h - eff_h) / p->stride_h + 1 - in[2];
  g->extra_w = (ow + 2 * (int64_t)p->pad_w - eff_w) / p->stride_w + 1 - in[3];
  return DPL_OK;
}

static int check_4d(const char *fn, const char *what, const dpl_tensor *t) {
  return dpl_check_4d(fn, what, t, what[0] == 'w' ? "in_channels x out_channels/groups x kH x kW" : "N x C x H x W");
}

static int check_grad_output(const char *fn, const dpl_tensor *go, const geometry *g) {
  if (!dpl_shape_equal(4, g->out, go->ndim, go->shape)) {
    char b1[160], b2[160];
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: grad_output is %s but the transposed convolution's output is %s", fn,
                    dpl_shape_str(b1, sizeof b1, go->ndim, go->shape), dpl_shape_str(b2, sizeof b2, 4, g->out));
  }
  return DPL_OK;
}

/* x with the extra zero rows and columns the matching convolution's output has (a new handle to x when none) */
static dpl_tensor *pad_extra(dpl_tensor *x, const geometry *g) {
  if (g->extra_h == 0 && g->extra_w == 0) return dpl_tensor_ref(x);
  return dpl_pad2d_forward(x, 0, (int)g->extra_w, 0, (int)g->extra_h, DPL_PAD_CONSTANT, 0.0f);
}

dpl_tensor *dpl_conv_transpose2d_forward(dpl_tensor *input, dpl_tensor *weight, dpl_tensor *bias,
                                         const dpl_conv_transpose2d_params *params) {
  const char *fn = "conv_transpose2d";
  const dpl_conv_transpose2d_params *p = params ? params : &default_params;
  geometry g;
  if (check_4d(fn, "input", input) || check_4d(fn, "weight", weight)) return NULL;
  if (dpl_check_same_device(fn, input, "input", weight, "weight")) return NULL;
  if (make_geometry(fn, input->shape, weight->shape, p, &g)) return NULL;
  if (bias) {
    if (dpl_check_same_device(fn, input, "input", bias, "bias")) return NULL;
    if (bias->ndim != 1 || bias->shape[0] != g.out[1]) {
      char b1[160], b2[160];
      dpl_fail(DPL_ERR_ARGUMENT, "%s: bias must have shape [%lld] (out_channels) for weight %s and groups=%d, got %s",
               fn, (long long)g.out[1], dpl_shape_str(b1, sizeof b1, 4, weight->shape), p->groups,
               dpl_shape_str(b2, sizeof b2, bias->ndim, bias->shape));
      return NULL;
    }
  }
  dpl_device *dev = input->storage->dev;
  if (g.out[0] == 0) {
    dpl_tensor *e = dpl_tensor_empty(dev, 4, g.out);
    if (!e) dpl_error_prefix(fn);
    return e;
  }
  dpl_tensor *x = pad_extra(input, &g);
  dpl_tensor *y = x ? dpl_conv2d_backward_input(x, weight, 4, g.out, &g.conv) : NULL;
  dpl_tensor_free(x);
  if (y && bias) {
    int64_t bshape[4] = {1, g.out[1], 1, 1};
    dpl_tensor *bv = dpl_tensor_reshape(bias, 4, bshape);
    if (!bv || dpl_binary_into(DPL_ADD, y, y, bv)) { dpl_tensor_free(y); y = NULL; }
    dpl_tensor_free(bv);
  }
  if (!y) dpl_error_prefix(fn);
  return y;
}

dpl_tensor *dpl_conv_transpose2d_backward_input(dpl_tensor *grad_output, dpl_tensor *weight, int ndim,
                                                const int64_t *input_shape, const dpl_conv_transpose2d_params *params) {
  const char *fn = "conv_transpose2d_backward_input";
  const dpl_conv_transpose2d_params *p = params ? params : &default_params;
  geometry g;
  if (check_4d(fn, "grad_output", grad_output) || check_4d(fn, "weight", weight)) return NULL;
  if (dpl_check_shape_arg(fn, "input_shape", ndim, input_shape)) return NULL;
  if (dpl_check_same_device(fn, grad_output, "grad_output", weight, "weight")) return NULL;
  if (make_geometry(fn, input_shape, weight->shape, p, &g)) return NULL;
  if (check_grad_output(fn, grad_output, &g)) return NULL;
  dpl_device *dev = grad_output->storage->dev;
  if (input_shape[0] == 0) {
    dpl_tensor *e = dpl_tensor_empty(dev, 4, input_shape);
    if (!e) dpl_error_prefix(fn);
    return e;
  }
  dpl_tensor *gx = dpl_conv2d_forward(grad_output, weight, NULL, &g.conv);
  if (gx && (g.extra_h || g.extra_w)) {
    dpl_tensor *a = dpl_tensor_narrow(gx, 2, 0, input_shape[2]);
    dpl_tensor *b = a ? dpl_tensor_narrow(a, 3, 0, input_shape[3]) : NULL;
    dpl_tensor *c = b ? dpl_tensor_contiguous(b) : NULL;
    dpl_tensor_free(a); dpl_tensor_free(b); dpl_tensor_free(gx);
    gx = c;
  }
  if (!gx) dpl_error_prefix(fn);
  return gx;
}

dpl_tensor *dpl_conv_transpose2d_backward_weight(dpl_tensor *input, dpl_tensor *grad_output, int ndim,
                                                 const int64_t *weight_shape, const dpl_conv_transpose2d_params *params) {
  const char *fn = "conv_transpose2d_backward_weight";
  const dpl_conv_transpose2d_params *p = params ? params : &default_params;
  geometry g;
  if (check_4d(fn, "input", input) || check_4d(fn, "grad_output", grad_output)) return NULL;
  if (dpl_check_shape_arg(fn, "weight_shape", ndim, weight_shape)) return NULL;
  if (dpl_check_same_device(fn, input, "input", grad_output, "grad_output")) return NULL;
  if (make_geometry(fn, input->shape, weight_shape, p, &g)) return NULL;
  if (check_grad_output(fn, grad_output, &g)) return NULL;
  dpl_device *dev = input->storage->dev;
  if (g.out[0] == 0) {
    dpl_tensor *z = dpl_tensor_full(dev, 4, weight_shape, 0.0f);
    if (!z) dpl_error_prefix(fn);
    return z;
  }
  dpl_tensor *x = pad_extra(input, &g);
  dpl_tensor *gw = x ? dpl_conv2d_backward_weight(grad_output, x, 4, weight_shape, &g.conv) : NULL;
  dpl_tensor_free(x);
  if (!gw) dpl_error_prefix(fn);
  return gw;
}
