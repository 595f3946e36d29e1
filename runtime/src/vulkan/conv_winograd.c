/* conv_winograd.c - 3x3 stride-1 convolutions by Winograd F(4x4, 3x3) on Vulkan, for CPU-class drivers (lavapipe):
 * 16 outputs from a 6 x 6 input patch with 36 multiplies per channel pair instead of 144, and the multiplies done as
 * 36 batched matrix products by the texel GEMM (gemm_texel.c), which is what llvmpipe runs fastest (register tiles,
 * vec4 imageLoad). Three shaders around it:
 *   conv2d_winograd_weight.comp  U[xi] = G g G^T           (rows x k, vec4s along k)
 *   conv2d_winograd_input.comp   V[xi] = B^T d B per tile  (tiles x k, vec4s along k)
 *   the product                  M[xi] = U[xi] V[xi]^T     (rows x tiles, stored with whichever of the two the
 *                                                          product runs along contiguous and padded to 4, so that
 *                                                          it stores vec4s and the output transform loads them)
 *   conv2d_winograd_output.comp  y = A^T M A + bias, then the activation
 * The stride-1 input gradient is the same computation: a convolution of grad_output with the weight transposed and
 * flipped (the weight transform reads it so), padding 2 - pad.
 * Work is split over chunks of images whose transformed input and product fit one binding; vk_winograd_fits says
 * whether one image does (kernels.c leaves the op to the direct kernels when it does not).
 * Accuracy: the transforms add rounding of a few float32 ulps per term; docs/vulkan.md gives the tolerance the tests
 * hold it to. */
#include "vk_internal.h"
#include <string.h>

/* mirrors the push constants of the three shaders */
typedef struct weight_params { uint32_t rows, k, k4, w_off, flip; } weight_params;
typedef struct input_params {
  uint32_t tiles, c, h, w, c4;
  uint32_t th, tw, x_off;
  int32_t pad_h, pad_w;
  uint32_t lines, v_off;
} input_params;
typedef struct output_params {
  uint32_t tiles, o, oh, ow;
  uint32_t th, tw, m_off, y_off, bias_off;
  uint32_t xs, os, ts;
  uint32_t flags;
} output_params;

enum { WINO_LOCAL = 64, WINO_BIAS = 1 };

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* One Winograd convolution in forward form: x (n x k x h x w) with padding -> y (n x rows x oh x ow), the weight read
 * as rows x k x 3 x 3 (or flipped from k x rows x 3 x 3). */
typedef struct wino_job {
  const dpl_tensor *x, *w, *bias, *y;
  int64_t n, k, h, w_, rows, oh, ow, pad_h, pad_w;
  int flip, act;
} wino_job;

/* elements (floats) of the largest per-image temporary and binding, for the chunking */
static void per_image(const wino_job *j, int64_t *v_vec4, int64_t *m_vec4, int64_t *x_elems, int64_t *y_elems) {
  int64_t t1 = cdiv(j->oh, 4) * cdiv(j->ow, 4) + 3, k4 = cdiv(j->k, 4);   /* + 3: the padding to 4 tiles, at most */
  *v_vec4 = 36 * t1 * k4;
  *m_vec4 = 9 * (j->rows + 3) * t1;
  *x_elems = j->k * j->h * j->w_;
  *y_elems = j->rows * j->oh * j->ow;
}

/* The largest number of images per chunk (0: not even one fits). */
static int64_t images_per_chunk(vk_device *v, const wino_job *j) {
  int64_t vv, mv, xe, ye;
  per_image(j, &vv, &mv, &xe, &ye);
  int64_t bytes = (int64_t)(v->max_binding - v->alignment);
  int64_t texels = (int64_t)v->props.limits.maxTexelBufferElements - (int64_t)(v->alignment / 4);
  int64_t per = j->n;
  int64_t vec4_limit = bytes / 16 < texels ? bytes / 16 : texels, elem_limit = bytes / 4 < texels ? bytes / 4 : texels;
  int64_t lim[4] = {vec4_limit / (vv ? vv : 1), vec4_limit / (mv ? mv : 1), elem_limit / (xe ? xe : 1),
                    elem_limit / (ye ? ye : 1)};
  for (int i = 0; i < 4; i++) if (lim[i] < per) per = lim[i];
  /* the flat invocation index of the input and output transforms stays far below 2^32 */
  int64_t t1 = cdiv(j->oh, 4) * cdiv(j->ow, 4), big = (j->rows > cdiv(j->k, 4) ? j->rows : cdiv(j->k, 4)) * t1;
  if (big > 0 && per > (INT64_C(1) << 30) / big) per = (INT64_C(1) << 30) / big;
  return per;
}

int vk_winograd_fits(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  wino_job j = {0};
  if (kind == VK_CONV_FORWARD) {
    j.n = a->n; j.k = a->c; j.h = a->h; j.w_ = a->w; j.rows = a->o; j.oh = a->oh; j.ow = a->ow;
  } else {
    j.n = a->n; j.k = a->o; j.h = a->oh; j.w_ = a->ow; j.rows = a->c; j.oh = a->h; j.ow = a->w;
  }
  vk_device *v = vkdev(dev);
  int64_t k4 = cdiv(j.k, 4);
  int64_t u_vec4 = 36 * j.rows * k4;
  int64_t limit = (int64_t)((v->max_binding - v->alignment) / 16);
  if (u_vec4 > limit || u_vec4 > (int64_t)v->props.limits.maxTexelBufferElements) return 0;
  return images_per_chunk(v, &j) >= 1;
}

static dpl_tensor *temp(dpl_device *dev, int64_t floats) {
  int cls = dpl_device_set_alloc_class(dev, 0);
  dpl_tensor *t = dpl_tensor_alloc_like_shape(dev, 1, &floats);
  dpl_device_set_alloc_class(dev, cls);
  return t;
}

/* U from the weight: 36 x rows x k4 vec4s */
static int transform_weight(dpl_device *dev, const dpl_tensor *w, const dpl_tensor *u, void *ctx) {
  const wino_job *j = ctx;
  int64_t k4 = cdiv(j->k, 4), wsize = j->rows * j->k * 9;
  weight_params pc = {(uint32_t)j->rows, (uint32_t)j->k, (uint32_t)k4, 0, (uint32_t)j->flip};
  vk_binding b[2];
  uint32_t u_elem;
  int rc = vk_bind(dev, u->storage, u->offset, u->offset + 36 * j->rows * k4 * 4 - 1, 1, &b[0], &u_elem);
  if (!rc) rc = vk_bind(dev, w->storage, w->offset, w->offset + wsize - 1, 0, &b[1], &pc.w_off);
  if (rc) return rc;
  b[0].texel = 4;
  b[1].texel = 1;
  uint32_t gx, gy;
  vk_grid_1d((uint64_t)(j->rows * k4), WINO_LOCAL, &gx, &gy);
  return vk_dispatch(dev, DPL_SHADER_CONV2D_WINOGRAD_WEIGHT, NULL, 0, b, 2, &pc, sizeof pc, gx, gy, 1);
}

static int run_chunk(dpl_device *dev, const wino_job *j, const dpl_tensor *u, int64_t n0, int64_t nb) {
  int64_t th = cdiv(j->oh, 4), tw = cdiv(j->ow, 4), tiles = nb * th * tw, k4 = cdiv(j->k, 4);
  int64_t t4 = cdiv(tiles, 4) * 4;   /* V's lines and M's rows, padded (the padding is computed, never used) */
  int64_t x_img = j->k * j->h * j->w_, y_img = j->rows * j->oh * j->ow;
  /* M's layout: tiles contiguous (M[xi][row][t4]), unless the product runs transposed (few tiles, many rows: the
   * texel GEMM then walks the rows), then rows contiguous (M[xi][t4][rows4]) */
  int64_t r4 = cdiv(j->rows, 4) * 4;
  bool rows_inner = vk_gemm_family_for(dev, j->rows, t4, 4 * k4) == VK_GEMM_TEXEL &&
                    vk_gemm_texel_turns(j->rows, t4);
  int64_t xs = rows_inner ? t4 * r4 : j->rows * t4, os = rows_inner ? 1 : t4, ts = rows_inner ? r4 : 1;
  dpl_tensor *V = temp(dev, 36 * t4 * k4 * 4), *M = V ? temp(dev, 36 * xs) : NULL;
  int rc = V && M ? DPL_OK : dpl_last_status();
  vk_binding b[3];
  uint32_t gx, gy, elem;
  if (!rc) {   /* V = B^T d B */
    input_params pc = {(uint32_t)tiles, (uint32_t)j->k, (uint32_t)j->h, (uint32_t)j->w_, (uint32_t)k4,
                       (uint32_t)th, (uint32_t)tw, 0, (int32_t)j->pad_h, (int32_t)j->pad_w, (uint32_t)t4, 0};
    int64_t x_lo = j->x->offset + n0 * x_img;
    rc = vk_bind(dev, V->storage, V->offset, V->offset + 36 * t4 * k4 * 4 - 1, 1, &b[0], &elem);
    pc.v_off = elem / 4;   /* a fresh allocation: vec4-aligned */
    if (!rc) rc = vk_bind(dev, j->x->storage, x_lo, x_lo + nb * x_img - 1, 0, &b[1], &pc.x_off);
    if (!rc) {
      b[0].texel = 4;
      b[1].texel = 1;
      vk_grid_1d((uint64_t)(tiles * k4), WINO_LOCAL, &gx, &gy);
      rc = vk_dispatch(dev, DPL_SHADER_CONV2D_WINOGRAD_INPUT, NULL, 0, b, 2, &pc, sizeof pc, gx, gy, 1);
    }
  }
  if (!rc) {   /* M[xi] = U[xi] V[xi]^T: rows x t4 */
    dpl_gemm_args g = {.batch = 36, .m = j->rows, .n = t4, .k = 4 * k4,
                       .a = u, .b = V, .c = M,
                       .a_bs = j->rows * k4 * 4, .a_rs = k4 * 4, .a_cs = 1,
                       .b_bs = t4 * k4 * 4, .b_rs = 1, .b_cs = k4 * 4,
                       .c_bs = xs, .c_rs = os, .c_cs = ts, .alpha = 1.0f, .beta = 0.0f};
    rc = vk_gemm(dev, &g);
  }
  if (!rc) {   /* y = A^T M A + bias, activation */
    output_params pc = {(uint32_t)tiles, (uint32_t)j->rows, (uint32_t)j->oh, (uint32_t)j->ow, (uint32_t)th,
                        (uint32_t)tw, 0, 0, 0, (uint32_t)xs, (uint32_t)os, (uint32_t)ts,
                        (uint32_t)((j->bias ? WINO_BIAS : 0) | (j->act << 8))};
    int64_t y_lo = j->y->offset + n0 * y_img;
    const dpl_tensor *bias = j->bias ? j->bias : j->w;   /* an unused binding when there is no bias */
    rc = vk_bind(dev, j->y->storage, y_lo, y_lo + nb * y_img - 1, 1, &b[0], &pc.y_off);
    if (!rc) rc = vk_bind(dev, M->storage, M->offset, M->offset + 36 * xs - 1, 0, &b[1], &pc.m_off);
    if (!rc) rc = vk_bind(dev, bias->storage, bias->offset, bias->offset + (j->bias ? j->rows : 1) - 1, 0, &b[2],
                          &pc.bias_off);
    if (!rc) {
      /* rows of 4 outputs as one vec4 store: whole tile rows on vec4 bounds */
      bool vec4_rows = j->ow % 4 == 0 && pc.y_off % 4 == 0;
      b[0].texel = vec4_rows ? 4 : 1;
      b[1].texel = 4;
      b[2].texel = 1;
      uint32_t spec[2] = {WINO_LOCAL, rows_inner ? 0u : 1u};   /* QUAD_TILES: quads along M's contiguous axis */
      int64_t quads = rows_inner ? cdiv(j->rows, 4) * tiles : cdiv(tiles, 4) * j->rows;
      vk_grid_1d((uint64_t)quads, WINO_LOCAL, &gx, &gy);
      rc = vk_dispatch(dev, vec4_rows ? DPL_SHADER_CONV2D_WINOGRAD_OUTPUT_VEC4 : DPL_SHADER_CONV2D_WINOGRAD_OUTPUT,
                       spec, 2, b, 3, &pc, sizeof pc, gx, gy, 1);
    }
  }
  /* released once the command buffer that uses them has finished */
  dpl_tensor_free(V);
  dpl_tensor_free(M);
  return rc;
}

static int run(dpl_device *dev, const wino_job *j) {
  vk_device *v = vkdev(dev);
  int64_t per = images_per_chunk(v, j);
  if (per < 1) return dpl_fail(DPL_ERR_UNSUPPORTED, "winograd: one image is too large for a binding");
  int64_t cap = dpl_env_int("DPL_VK_CONV_MAX_IMAGES", 0);   /* testing: force the split over images */
  if (cap > 0 && per > cap) per = cap;
  /* the transformed weight, cached while the weight does not change (a frozen loss network) */
  bool owned;
  uint64_t variant = (uint64_t)j->flip | (uint64_t)j->rows << 1;
  dpl_tensor *u = vk_derived_weight(dev, j->w, VK_DERIVED_WINOGRAD, variant, 36 * j->rows * cdiv(j->k, 4) * 4,
                                    transform_weight, (void *)j, &owned);
  if (!u) return dpl_last_status();
  int rc = DPL_OK;
  for (int64_t n0 = 0; n0 < j->n && !rc; n0 += per) rc = run_chunk(dev, j, u, n0, j->n - n0 < per ? j->n - n0 : per);
  if (owned) dpl_tensor_free(u);
  return rc;
}

int vk_conv_winograd_forward(dpl_device *dev, const dpl_conv2d_args *a) {
  wino_job j = {a->input, a->weight, a->bias, a->output, a->n, a->c, a->h, a->w, a->o, a->oh, a->ow,
                a->pad_h, a->pad_w, 0, a->act};
  return run(dev, &j);
}

/* grad_input = conv(grad_output, w flipped and transposed, padding 2 - pad) */
int vk_conv_winograd_backward_input(dpl_device *dev, const dpl_conv2d_args *a) {
  wino_job j = {a->output, a->weight, NULL, a->input, a->n, a->o, a->oh, a->ow, a->c, a->h, a->w,
                2 - a->pad_h, 2 - a->pad_w, 1, 0};
  return run(dev, &j);
}
