/* conv_fold_cpu.c - convolutions of batches of small images on the CPU (AlexNet and SqueezeNet on 64 x 64 BAPPS
 * patches: 3 x 3 to 15 x 15 outputs), as one GEMM over several images in channels-last order.
 *
 * One image's im2col GEMM is too thin for OpenBLAS there (9 to 225 columns), and unfolding row by row spends its time
 * on rows of 3 to 15 floats. Here G images at a time are copied, zero-padded, into channels-last order
 * (G x Hp x Wp x C); then the row of output pixel p holds, for each kernel row ky, one contiguous run of kw * C floats
 * (kx, c) of that buffer ("im2row": a few long copies instead of many short ones), and
 *     out (pixels x O) = rows (pixels x K) @ Wr^T,   K = kh * kw * C in (ky, kx, c) order,
 * with Wr the weights permuted to O x kh x kw x C. The outputs are transposed back to N x O x OH x OW.
 * The gradients are the same GEMMs transposed: rows' gradient = out's gradient @ Wr, added back into a padded
 * channels-last buffer (row2im) and cropped; Wr's gradient = out's gradient^T @ rows, summed over the batch. */
#include "cpu.h"
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { FOLD_BUDGET = 2 << 20 };        /* floats in the row matrix of one fold (8 MiB) */
enum { FOLD_MAX_OHW = 1024 };          /* larger outputs fill a GEMM per image on their own */
enum { PAR_MIN = 32768 };              /* elements below which threads cost more than they give */

typedef struct fold {
  const dpl_conv2d_args *a;
  int64_t hp, wp;                      /* padded input size */
  int64_t ohw, k;                      /* output pixels per image; K = kh * kw * c */
  int64_t images;                      /* per fold */
  int threads;
} fold;

int64_t dpl_cpu_conv_fold_images(const dpl_conv2d_args *a) {
  if (dpl_env_is("DPL_CPU_CONV_FOLD", "0")) return 0;   /* folding off (A/B timing, tests) */
  int64_t ohw = a->oh * a->ow, k = a->kh * a->kw * a->c;
  if (a->groups != 1 || a->n < 2 || ohw >= FOLD_MAX_OHW || ohw * k == 0) return 0;
  /* 1x1, stride 1, no padding: the input already is the column matrix, one image's GEMM after another was faster
   * (SqueezeNet's Fire modules on 64 x 64 patches) than transposing to channels-last and back */
  if (a->kh == 1 && a->kw == 1 && a->stride_h == 1 && a->stride_w == 1 && a->pad_h == 0 && a->pad_w == 0) return 0;
  int64_t G = FOLD_BUDGET / (k * ohw);
  if (G > a->n) G = a->n;
  return G >= 2 ? G : 0;
}

static void make_fold(const dpl_conv2d_args *a, int64_t G, fold *f) {
  f->a = a;
  f->hp = a->h + 2 * a->pad_h;
  f->wp = a->w + 2 * a->pad_w;
  f->ohw = a->oh * a->ow;
  f->k = a->kh * a->kw * a->c;
  f->images = G;
  f->threads = dpl_cpu_threads();
}

/* xp (cnt x hp x wp x c, zero border) = images [n0, n0 + cnt) of x (N x C x H x W) */
static void to_padded_nhwc(const fold *f, const float *X, int64_t n0, int64_t cnt, float *xp) {
  const dpl_conv2d_args *a = f->a;
  const int64_t c = a->c, plane = f->hp * f->wp * c;
  #pragma omp parallel for if (cnt * plane >= PAR_MIN) num_threads(f->threads) schedule(static)
  for (int64_t j = 0; j < cnt; j++) {
    float *dst = xp + j * plane;
    const float *src = X + (n0 + j) * c * a->h * a->w;
    if (a->pad_h || a->pad_w) memset(dst, 0, sizeof(float) * (size_t)plane);
    for (int64_t y = 0; y < a->h; y++)
      for (int64_t x = 0; x < a->w; x++) {
        float *d = dst + ((y + a->pad_h) * f->wp + x + a->pad_w) * c;
        const float *s = src + y * a->w + x;
        for (int64_t ch = 0; ch < c; ch++) d[ch] = s[ch * a->h * a->w];
      }
  }
}

/* rows (cnt * ohw x K): output pixel (j, oy, ox) reads, for each (ky, kx), the c channels of xp at
 * (oy * sh + ky * dh, ox * sw + kx * dw); with no dilation across a row, (kx, c) is one contiguous run */
static void build_rows(const fold *f, const float *xp, int64_t cnt, float *rows) {
  const dpl_conv2d_args *a = f->a;
  const int64_t c = a->c, plane = f->hp * f->wp * c, P = cnt * f->ohw, run = a->kw * c;
  #pragma omp parallel for if (P * f->k >= PAR_MIN) num_threads(f->threads) schedule(static)
  for (int64_t p = 0; p < P; p++) {
    int64_t j = p / f->ohw, pix = p % f->ohw, oy = pix / a->ow, ox = pix % a->ow;
    float *dst = rows + p * f->k;
    for (int64_t ky = 0; ky < a->kh; ky++) {
      const float *src = xp + j * plane + ((oy * a->stride_h + ky * a->dil_h) * f->wp + ox * a->stride_w) * c;
      if (a->dil_w == 1) memcpy(dst + ky * run, src, sizeof(float) * (size_t)run);
      else
        for (int64_t kx = 0; kx < a->kw; kx++)
          memcpy(dst + ky * run + kx * c, src + kx * a->dil_w * c, sizeof(float) * (size_t)c);
    }
  }
}

/* gxp (cnt x hp x wp x c) += the rows' gradient drows (cnt * ohw x K), each pixel's runs added where build_rows
 * read them; threads take whole images, so no two add into the same place */
static void add_rows_back(const fold *f, const float *drows, int64_t cnt, float *gxp) {
  const dpl_conv2d_args *a = f->a;
  const int64_t c = a->c, plane = f->hp * f->wp * c;
  #pragma omp parallel for if (cnt * f->ohw * f->k >= PAR_MIN) num_threads(f->threads) schedule(static)
  for (int64_t j = 0; j < cnt; j++)
    for (int64_t pix = 0; pix < f->ohw; pix++) {
      int64_t oy = pix / a->ow, ox = pix % a->ow;
      const float *src = drows + (j * f->ohw + pix) * f->k;
      for (int64_t ky = 0; ky < a->kh; ky++)
        for (int64_t kx = 0; kx < a->kw; kx++) {
          float *d = gxp + j * plane +
                     ((oy * a->stride_h + ky * a->dil_h) * f->wp + ox * a->stride_w + kx * a->dil_w) * c;
          const float *s = src + (ky * a->kw + kx) * c;
          for (int64_t ch = 0; ch < c; ch++) d[ch] += s[ch];
        }
    }
}

/* images [n0, n0 + cnt) of GX (N x C x H x W) = the inside of gxp (cnt x hp x wp x c) */
static void from_padded_nhwc(const fold *f, const float *gxp, int64_t n0, int64_t cnt, float *GX) {
  const dpl_conv2d_args *a = f->a;
  const int64_t c = a->c, plane = f->hp * f->wp * c;
  #pragma omp parallel for collapse(2) if (cnt * c * a->h * a->w >= PAR_MIN) num_threads(f->threads) schedule(static)
  for (int64_t j = 0; j < cnt; j++)
    for (int64_t ch = 0; ch < c; ch++) {
      float *dst = GX + ((n0 + j) * c + ch) * a->h * a->w;
      const float *src = gxp + j * plane + ch;
      for (int64_t y = 0; y < a->h; y++)
        for (int64_t x = 0; x < a->w; x++) dst[y * a->w + x] = src[((y + a->pad_h) * f->wp + x + a->pad_w) * c];
    }
}

/* wr (O x kh x kw x C) from W (O x C x kh x kw), or back (to_wr false: W from wr) */
static void permute_weights(const fold *f, const float *src, float *dst, bool to_wr) {
  const dpl_conv2d_args *a = f->a;
  const int64_t kk = a->kh * a->kw;
  #pragma omp parallel for if (a->o * f->k >= PAR_MIN) num_threads(f->threads) schedule(static)
  for (int64_t o = 0; o < a->o; o++)
    for (int64_t ch = 0; ch < a->c; ch++)
      for (int64_t t = 0; t < kk; t++) {
        int64_t iw = (o * a->c + ch) * kk + t, ir = (o * kk + t) * a->c + ch;
        if (to_wr) dst[ir] = src[iw];
        else dst[iw] = src[ir];
      }
}

/* The two transposes between pixels x channels and channels x pixels go a block of TILE pixels at a time: the block
 * of the pixel-major side (TILE x O floats) stays in the L1/L2 cache while each channel's run is read or written. */
enum { TILE = 32 };

/* Y's images [n0, n0 + cnt) (N x O x OH x OW) = out (cnt * ohw x O) transposed, plus the bias */
static void scatter_out(const fold *f, const float *out, const float *B, int64_t n0, int64_t cnt, float *Y) {
  const dpl_conv2d_args *a = f->a;
  const int64_t O = a->o, blocks = (f->ohw + TILE - 1) / TILE;
  #pragma omp parallel for collapse(2) if (cnt * O * f->ohw >= PAR_MIN) num_threads(f->threads) schedule(static)
  for (int64_t j = 0; j < cnt; j++)
    for (int64_t bk = 0; bk < blocks; bk++) {
      const int64_t p0 = bk * TILE, p1 = p0 + TILE < f->ohw ? p0 + TILE : f->ohw;
      const float *src = out + j * f->ohw * O;
      for (int64_t o = 0; o < O; o++) {
        float *dst = Y + ((n0 + j) * O + o) * f->ohw, b = B ? B[o] : 0.0f;
        for (int64_t pix = p0; pix < p1; pix++) dst[pix] = src[pix * O + o] + b;
      }
    }
}

/* dout (cnt * ohw x O) = GY's images [n0, n0 + cnt) (N x O x OH x OW) transposed */
static void gather_grad_out(const fold *f, const float *GY, int64_t n0, int64_t cnt, float *dout) {
  const dpl_conv2d_args *a = f->a;
  const int64_t O = a->o, blocks = (f->ohw + TILE - 1) / TILE;
  #pragma omp parallel for collapse(2) if (cnt * O * f->ohw >= PAR_MIN) num_threads(f->threads) schedule(static)
  for (int64_t j = 0; j < cnt; j++)
    for (int64_t bk = 0; bk < blocks; bk++) {
      const int64_t p0 = bk * TILE, p1 = p0 + TILE < f->ohw ? p0 + TILE : f->ohw;
      float *dst = dout + j * f->ohw * O;
      for (int64_t o = 0; o < O; o++) {
        const float *src = GY + ((n0 + j) * O + o) * f->ohw;
        for (int64_t pix = p0; pix < p1; pix++) dst[pix * O + o] = src[pix];
      }
    }
}

/* ---- buffers: one allocation per call, carved up ---------------------------------------------------------------- */
typedef struct fold_bufs { float *base, *xp, *rows, *out, *wr; size_t floats; } fold_bufs;

static int fold_alloc(const fold *f, fold_bufs *b) {
  const dpl_conv2d_args *a = f->a;
  size_t xp = (size_t)(f->images * f->hp * f->wp * a->c), rows = (size_t)(f->images * f->ohw * f->k);
  size_t out = (size_t)(f->images * f->ohw * a->o), wr = (size_t)(a->o * f->k);
  b->floats = xp + rows + out + wr;
  b->base = dpl_host_alloc(sizeof(float) * b->floats);
  if (!b->base) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "conv2d: out of host memory for the batch-folded buffers");
  b->xp = b->base;
  b->rows = b->xp + xp;
  b->out = b->xp + xp + rows;
  b->wr = b->out + out;
  return DPL_OK;
}

/* the geometry and the buffers of folds of G images */
static int fold_begin(const dpl_conv2d_args *a, int64_t G, fold *f, fold_bufs *b) {
  make_fold(a, G, f);
  return fold_alloc(f, b);
}

static void fold_release(fold_bufs *b) { dpl_host_free(b->base, sizeof(float) * b->floats); }

/* the weights in channels-last order (cached per weight tensor, cpu/kernel_cache.c), then the passes over the folds */
typedef struct fold_call { fold *f; fold_bufs *b; bool backward_input; } fold_call;

static void derive_wr(const float *W, float *wr, void *ctx) {
  const fold_call *c = ctx;
  permute_weights(c->f, W, wr, true);
}

static int use_wr(const float *wr, void *ctx) {
  const fold_call *c = ctx;
  const fold *f = c->f;
  const fold_bufs *b = c->b;
  const dpl_conv2d_args *a = f->a;
  const int64_t G = f->images;
  for (int64_t n0 = 0; n0 < a->n; n0 += G) {
    int64_t cnt = a->n - n0 < G ? a->n - n0 : G, P = cnt * f->ohw;
    if (!c->backward_input) {
      const float *X = a->input->storage->host + a->input->offset;
      const float *B = a->bias ? a->bias->storage->host + a->bias->offset : NULL;
      to_padded_nhwc(f, X, n0, cnt, b->xp);
      build_rows(f, b->xp, cnt, b->rows);
      dpl_cpu_sgemm(false, true, P, a->o, f->k, 1.0f, b->rows, f->k, wr, f->k, 0.0f, b->out, a->o);
      scatter_out(f, b->out, B, n0, cnt, a->output->storage->host + a->output->offset);
    } else {
      gather_grad_out(f, a->output->storage->host + a->output->offset, n0, cnt, b->out);
      dpl_cpu_sgemm(false, false, P, f->k, a->o, 1.0f, b->out, a->o, wr, f->k, 0.0f, b->rows, f->k);
      memset(b->xp, 0, sizeof(float) * (size_t)(cnt * f->hp * f->wp * a->c));
      add_rows_back(f, b->rows, cnt, b->xp);
      from_padded_nhwc(f, b->xp, n0, cnt, a->input->storage->host + a->input->offset);
    }
  }
  return DPL_OK;
}

static int fold_pass(const dpl_conv2d_args *a, int64_t G, bool backward_input) {
  fold f;
  fold_bufs b = {0};
  int rc = fold_begin(a, G, &f, &b);
  if (rc) return rc;
  fold_call c = {&f, &b, backward_input};
  rc = dpl_cpu_with_derived(a->weight, DPL_DERIVED_FOLD, 0, (size_t)(a->o * f.k), derive_wr, use_wr, &c);
  fold_release(&b);
  return rc;
}

int dpl_cpu_conv_fold_forward(const dpl_conv2d_args *a, int64_t G) { return fold_pass(a, G, false); }

int dpl_cpu_conv_fold_backward_input(const dpl_conv2d_args *a, int64_t G) { return fold_pass(a, G, true); }

/* GW = sum over the batch (the caller zeroed it) */
int dpl_cpu_conv_fold_backward_weight(const dpl_conv2d_args *a, int64_t G) {
  fold f;
  fold_bufs b = {0};
  int rc = fold_begin(a, G, &f, &b);
  if (rc) return rc;
  const float *X = a->input->storage->host + a->input->offset;
  const float *GY = a->output->storage->host + a->output->offset;
  float *GW = a->weight->storage->host + a->weight->offset;
  memset(b.wr, 0, sizeof(float) * (size_t)(a->o * f.k));
  for (int64_t n0 = 0; n0 < a->n; n0 += G) {
    int64_t cnt = a->n - n0 < G ? a->n - n0 : G, P = cnt * f.ohw;
    to_padded_nhwc(&f, X, n0, cnt, b.xp);
    build_rows(&f, b.xp, cnt, b.rows);
    gather_grad_out(&f, GY, n0, cnt, b.out);
    dpl_cpu_sgemm(true, false, a->o, f.k, P, 1.0f, b.out, a->o, b.rows, f.k, 1.0f, b.wr, f.k);
  }
  permute_weights(&f, b.wr, GW, false);
  fold_release(&b);
  return DPL_OK;
}
