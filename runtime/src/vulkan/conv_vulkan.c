/* conv_vulkan.c - 2-D convolution on Vulkan: the entry points, which run the family kernels.c chooses (direct,
 * portable, winograd in conv_winograd.c), and the direct kernels: shaders/conv2d.comp
 * (forward, bias and activation fused), conv2d_backward_input.comp and conv2d_backward_weight.comp, with a
 * per-invocation register tile. Reads go through r32f storage texel buffers (the *_texel variants; imageLoad is what
 * llvmpipe does fast) in the direct family, or when a binding exceeds maxTexelBufferElements, through plain SSBOs
 * (the portable family). DPL_VK_CONV_MAX_IMAGES=n caps the images per dispatch (for tests of the batch split).
 * Bindings are limited to maxStorageBufferRange (128 MiB on lavapipe): the batch is split into chunks of images whose
 * input and output fit; the weight gradient is accumulated over the chunks. A single image (or the weight) larger than
 * one binding is an error. */
#include "vk_internal.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>


enum { CONV_BIAS = 1, CONV_ACCUMULATE = 2 };   /* flags; bits 8..15: the activation */
enum { KIND_FORWARD = VK_CONV_FORWARD, KIND_BACKWARD_INPUT = VK_CONV_BACKWARD_INPUT,
       KIND_BACKWARD_WEIGHT = VK_CONV_BACKWARD_WEIGHT };

static const int shader_ids[3][2] = {
  {DPL_SHADER_CONV2D, DPL_SHADER_CONV2D_TEXEL},
  {DPL_SHADER_CONV2D_BACKWARD_INPUT, DPL_SHADER_CONV2D_BACKWARD_INPUT_TEXEL},
  {DPL_SHADER_CONV2D_BACKWARD_WEIGHT, DPL_SHADER_CONV2D_BACKWARD_WEIGHT_TEXEL},
};
static const char *kind_names[3] = {"conv2d", "conv2d_backward_input", "conv2d_backward_weight"};
/* register tile (rows x cols) per invocation: output channels x pixels, input channels x pixels, output channels x
 * taps (picked on lavapipe with one 8-lane subgroup per workgroup, noisy: ~70, ~100 and ~80 ms for VGG-16 conv3_1) */
static const uint32_t tiles[3][2] = {{16, 8}, {8, 16}, {8, 16}};

static void fill_params(vk_conv_params *pc, const dpl_conv2d_args *a) {
  memset(pc, 0, sizeof *pc);
  pc->c = (uint32_t)a->c; pc->h = (uint32_t)a->h; pc->w = (uint32_t)a->w;
  pc->o = (uint32_t)a->o; pc->oh = (uint32_t)a->oh; pc->ow = (uint32_t)a->ow; pc->groups = (uint32_t)a->groups;
  pc->kh = (uint32_t)a->kh; pc->kw = (uint32_t)a->kw;
  pc->sh = (uint32_t)a->stride_h; pc->sw = (uint32_t)a->stride_w;
  pc->ph = (uint32_t)a->pad_h; pc->pw = (uint32_t)a->pad_w;
  pc->dh = (uint32_t)a->dil_h; pc->dw = (uint32_t)a->dil_w;
}

static int run_direct(dpl_device *dev, int kind, const dpl_conv2d_args *a, int texel) {
  vk_device *v = vkdev(dev);
  const char *fn = kind_names[kind];
  int64_t in_img = a->c * a->h * a->w, out_img = a->o * a->oh * a->ow;
  int64_t wsize = a->o * (a->c / a->groups) * a->kh * a->kw;
  int64_t max_elems = (int64_t)((v->max_binding - v->alignment) / 4);
  int64_t big = in_img > out_img ? in_img : out_img;
  if (wsize > max_elems)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: the weight (%.1f MiB) exceeds the device's maximum binding (%llu MiB)", fn,
                    (double)wsize * 4 / 1048576, (unsigned long long)(v->max_binding >> 20));
  if (big > max_elems)
    return dpl_fail(DPL_ERR_UNSUPPORTED,
                    "%s: one image's %s (%lld x %lld x %lld = %.1f MiB) exceeds the device's maximum binding (%llu MiB)",
                    fn, in_img >= out_img ? "input" : "output", (long long)(in_img >= out_img ? a->c : a->o),
                    (long long)(in_img >= out_img ? a->h : a->oh), (long long)(in_img >= out_img ? a->w : a->ow),
                    (double)big * 4 / 1048576, (unsigned long long)(v->max_binding >> 20));
  int64_t per = max_elems / (big > 0 ? big : 1);
  if (per < 1) per = 1;
  /* the shaders index in 32 bits and flatten (images x pixels) into one invocation index */
  int64_t pix_img = kind == KIND_BACKWARD_INPUT ? a->h * a->w : a->oh * a->ow;
  if (kind != KIND_BACKWARD_WEIGHT && pix_img > 0 && per > (INT64_C(1) << 28) / pix_img) per = (INT64_C(1) << 28) / pix_img;
  if (per < 1) per = 1;

  long long cap = dpl_env_int("DPL_VK_CONV_MAX_IMAGES", 0);   /* testing: force the batch split */
  if (cap > 0 && per > cap) per = cap;
  /* CPU drivers cut an invocation's loops after about 65535 iterations in all (llvmpipe's loop limiter, silently):
   * the weight gradient, which loops over every output pixel, goes in dispatches of at most VK_LOOP_LIMIT pixels
   * (whole images, or blocks of rows of one image); the other two loop over channels and taps */
  int64_t rows = a->oh;
  if (v->cpu_like) {
    int64_t loop = kind == KIND_FORWARD ? (a->c / a->groups) * a->kh * a->kw
                 : kind == KIND_BACKWARD_INPUT ? (a->o / a->groups) * a->kh * a->kw : a->oh * a->ow;
    if (kind == KIND_BACKWARD_WEIGHT) {
      if (a->ow > VK_LOOP_LIMIT)
        return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: an output row of %lld pixels exceeds this driver's loop limit", fn,
                        (long long)a->ow);
      if (loop > VK_LOOP_LIMIT) {
        per = 1;
        rows = VK_LOOP_LIMIT / a->ow;
      } else if (per > VK_LOOP_LIMIT / loop) {
        per = VK_LOOP_LIMIT / loop;
      }
    } else if (loop > VK_LOOP_LIMIT) {
      return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: a reduction over %lld channels x taps exceeds this driver's loop limit",
                      fn, (long long)loop);
    }
  }
  uint64_t max_texels = v->props.limits.maxTexelBufferElements - v->alignment / 4;   /* slack: aligned start */
  if ((uint64_t)wsize > max_texels || (uint64_t)big > max_texels) texel = 0;
  else if ((uint64_t)(per * big) > max_texels) per = (int64_t)(max_texels / (uint64_t)big);

  uint32_t local = v->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU && v->subgroup_size >= 4 ? v->subgroup_size : 64;
  uint32_t spec[3] = {local, tiles[kind][0], tiles[kind][1]};
  const char *tile_env = dpl_env_string(kind == KIND_FORWARD ? "DPL_VK_CONV_TILE" : kind == KIND_BACKWARD_INPUT ?
                                        "DPL_VK_CONV_TILE_BI" : "DPL_VK_CONV_TILE_BW");   /* tuning: ROWSxCOLS */
  unsigned tr, tc;
  if (tile_env && sscanf(tile_env, "%ux%u", &tr, &tc) == 2 && tr >= 1 && tr <= 64 && tc >= 1 && tc <= 64) {
    spec[1] = tr;
    spec[2] = tc;
  }
  int64_t t0 = spec[1], t1 = spec[2];
  int shader = shader_ids[kind][texel];
  int64_t cg = a->c / a->groups, og = a->o / a->groups, ksz = cg * a->kh * a->kw;

  for (int64_t n0 = 0; n0 < a->n; n0 += per)
  for (int64_t r0 = 0; r0 < a->oh; r0 += rows) {
    int64_t nb = a->n - n0 < per ? a->n - n0 : per;
    vk_conv_params pc;
    fill_params(&pc, a);
    pc.n = (uint32_t)nb;
    pc.row0 = (uint32_t)r0;
    pc.row1 = (uint32_t)(a->oh - r0 < rows ? a->oh : r0 + rows);
    vk_binding b[4];
    int nbind = 3, rc;
    const dpl_tensor *in = a->input, *w = a->weight, *out = a->output;
    int64_t in_lo = in->offset + n0 * in_img, out_lo = out->offset + n0 * out_img;
    uint64_t invocations;
    if (kind == KIND_FORWARD) {
      rc = vk_bind(dev, out->storage, out_lo, out_lo + nb * out_img - 1, 1, &b[0], &pc.out_off);
      if (!rc) rc = vk_bind(dev, in->storage, in_lo, in_lo + nb * in_img - 1, 0, &b[1], &pc.a_off);
      if (!rc) rc = vk_bind(dev, w->storage, w->offset, w->offset + wsize - 1, 0, &b[2], &pc.b_off);
      if (!rc) {
        const dpl_tensor *bias = a->bias ? a->bias : w;   /* unused binding when there is no bias */
        rc = vk_bind(dev, bias->storage, bias->offset, bias->offset + (a->bias ? a->o : 1) - 1, 0, &b[3], &pc.bias_off);
      }
      pc.flags = (a->bias ? CONV_BIAS : 0) | (uint32_t)a->act << 8;
      nbind = 4;
      invocations = (uint64_t)(a->groups * ((og + t0 - 1) / t0) *
                               ((nb * a->oh * a->ow + t1 - 1) / t1));
    } else if (kind == KIND_BACKWARD_INPUT) {
      /* input = grad_input (written), output = grad_output */
      rc = vk_bind(dev, in->storage, in_lo, in_lo + nb * in_img - 1, 1, &b[0], &pc.out_off);
      if (!rc) rc = vk_bind(dev, out->storage, out_lo, out_lo + nb * out_img - 1, 0, &b[1], &pc.a_off);
      if (!rc) rc = vk_bind(dev, w->storage, w->offset, w->offset + wsize - 1, 0, &b[2], &pc.b_off);
      invocations = (uint64_t)(a->groups * ((cg + t0 - 1) / t0) *
                               ((nb * a->h * a->w + t1 - 1) / t1));
    } else {
      /* weight = grad_weight (written, accumulated after the first chunk), output = grad_output */
      rc = vk_bind(dev, w->storage, w->offset, w->offset + wsize - 1, 1, &b[0], &pc.out_off);
      if (!rc) rc = vk_bind(dev, in->storage, in_lo, in_lo + nb * in_img - 1, 0, &b[1], &pc.a_off);
      if (!rc) rc = vk_bind(dev, out->storage, out_lo, out_lo + nb * out_img - 1, 0, &b[2], &pc.b_off);
      pc.flags = n0 > 0 || r0 > 0 ? CONV_ACCUMULATE : 0;
      invocations = (uint64_t)(a->groups * ((og + t0 - 1) / t0) *
                               ((ksz + t1 - 1) / t1));
    }
    if (rc) return rc;
    b[1].texel = texel;
    b[2].texel = texel;
    if (invocations > UINT32_MAX - 65536u * 64u)
      return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: too many invocations for one dispatch", fn);
    uint64_t groups = (invocations + local - 1) / local;
    uint32_t gx = groups > 65535 ? 65535 : (uint32_t)groups, gy = (uint32_t)((groups + gx - 1) / gx);
    rc = vk_dispatch(dev, shader, spec, 3, b, nbind, &pc, sizeof pc, gx, gy, 1);
    if (rc) return rc;
  }
  return DPL_OK;
}

static int run(dpl_device *dev, int kind, const dpl_conv2d_args *a) {
  switch (vk_choose_conv(dev, a, kind)) {
  case VK_CONV_WINOGRAD:
    return kind == KIND_FORWARD ? vk_conv_winograd_forward(dev, a) : vk_conv_winograd_backward_input(dev, a);
  case VK_CONV_TILED: return vk_conv_tiled(dev, a, kind);
  case VK_CONV_PORTABLE: return run_direct(dev, kind, a, 0);
  default: return run_direct(dev, kind, a, 1);
  }
}

int vk_op_conv2d_forward(dpl_device *dev, const dpl_conv2d_args *a) { return run(dev, KIND_FORWARD, a); }
int vk_op_conv2d_backward_input(dpl_device *dev, const dpl_conv2d_args *a) { return run(dev, KIND_BACKWARD_INPUT, a); }
int vk_op_conv2d_backward_weight(dpl_device *dev, const dpl_conv2d_args *a) { return run(dev, KIND_BACKWARD_WEIGHT, a); }
