/* conv_cpu.c - 2-D convolution on the CPU, THNN's SpatialConvolutionMM way: per image and group ("item"), im2col
 * unfolds the input into a (C/groups * kh * kw) x (OH * OW) column matrix and sgemm multiplies it with the weights;
 * the input gradient is W^T @ grad_output folded back with col2im; the weight gradient is grad_output @ cols^T summed
 * over the items. A 1x1 kernel with stride 1 and no padding needs no unfolding: the input is the column matrix.
 * Other paths come first where they apply, in the order of one candidate list per op (ALGOS at the end of this file):
 * oneDNN's direct kernels (dnnl_cpu.c; forward, input and weight gradient, when dpl is built with oneDNN), 3x3
 * stride-1 kernels by Winograd F(2x2, 3x3) (winograd_cpu.c: forward and input gradient), a direct depthwise loop, and
 * batches of small images as one channels-last GEMM (conv_fold_cpu.c).
 *
 * Threads (OpenMP; OpenBLAS runs single-threaded inside them, see gemm_cpu.c) work in one of two ways:
 *  - across items, when there are enough of them (a batch): each thread takes whole items with its own column
 *    buffer, im2col and sgemm back to back on data still in its cache, no barrier between them;
 *  - within an item (batch 1): im2col/col2im split over rows or channels, then one sgemm split over the threads.
 * The column matrix covers a band of output rows at a time so that its size stays bounded for large images. */
#include "cpu.h"
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { COL_BUDGET = 2 << 20 };         /* floats in one column buffer (8 MiB) */
enum { PAR_MIN = 32768 };              /* elements below which threads cost more than they give */

typedef struct geom {
  int64_t cg, og, kk, ksz;             /* channels and outputs per group, kh*kw, cg*kh*kw */
  int64_t hw, ohw;
  int64_t rows;                        /* output rows per band */
  int64_t items;                       /* n * groups */
  int direct;                          /* 1x1, stride 1, no padding: the input is already the column matrix */
  int threads;                         /* OpenMP threads available */
  int across;                          /* threads take whole items (else they share each item) */
} geom;

static void make_geom(const dpl_conv2d_args *a, geom *g) {
  g->cg = a->c / a->groups;
  g->og = a->o / a->groups;
  g->kk = a->kh * a->kw;
  g->ksz = g->cg * g->kk;
  g->hw = a->h * a->w;
  g->ohw = a->oh * a->ow;
  int64_t per_row = g->ksz * a->ow;
  g->rows = per_row > 0 ? COL_BUDGET / per_row : a->oh;
  if (g->rows < 1) g->rows = 1;
  if (g->rows > a->oh) g->rows = a->oh;
  g->items = a->n * a->groups;
  g->direct = a->kh == 1 && a->kw == 1 && a->stride_h == 1 && a->stride_w == 1 && a->pad_h == 0 && a->pad_w == 0;
  g->threads = dpl_cpu_threads();
  /* whole items per thread when they divide evenly or are many (the imbalance of one item is then small) */
  g->across = g->threads > 1 && g->items >= g->threads &&
              (g->items % g->threads == 0 || g->items >= 4 * g->threads);
}

static size_t col_floats(const dpl_conv2d_args *a, const geom *g) { return (size_t)(g->ksz * g->rows * a->ow); }

/* rows [r0, r1) of the column matrix (ksz x rows*ow) from x (cg x h x w), for output rows [oy0, oy0 + rows); row r
 * starts at col + r * ld */
/* Short rows (AlexNet and SqueezeNet on 64 x 64 patches: 3 to 15 outputs) cost more in memcpy / memset calls than in
 * copying, so the row loops below stay loops: GCC would otherwise turn them back into those calls. */
#if defined(__GNUC__) && !defined(__clang__)
#define DPL_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define DPL_NO_LIBCALLS
#endif

DPL_NO_LIBCALLS static void im2col_rows_ld(const dpl_conv2d_args *a, const geom *g, const float *x, int64_t oy0, int64_t rows,
                           int64_t r0, int64_t r1, float *col, int64_t ld) {
  const int64_t sw = a->stride_w, ow = a->ow;
  for (int64_t r = r0; r < r1; r++) {
    int64_t c = r / g->kk, ky = (r / a->kw) % a->kh, kx = r % a->kw;
    const float *src = x + c * g->hw;
    float *dst = col + r * ld;
    /* output columns [lo, hi) read inside the image (input column ox * sw + ix); the same for every output row */
    const int64_t ix = kx * a->dil_w - a->pad_w;
    int64_t lo = ix < 0 ? (-ix + sw - 1) / sw : 0;
    int64_t hi = ix < a->w ? (a->w - ix + sw - 1) / sw : 0;
    if (hi > ow) hi = ow;
    if (lo > hi) lo = hi;
    for (int64_t oy = oy0; oy < oy0 + rows; oy++, dst += ow) {
      int64_t iy = oy * a->stride_h - a->pad_h + ky * a->dil_h;
      if (iy < 0 || iy >= a->h) {
        for (int64_t ox = 0; ox < ow; ox++) dst[ox] = 0.0f;
        continue;
      }
      const float *s = src + iy * a->w;
      for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
      if (sw == 1)
        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = s[ox + ix];
      else
        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = s[ox * sw + ix];   /* a branch-free strided gather */
      for (int64_t ox = hi; ox < ow; ox++) dst[ox] = 0.0f;
    }
  }
}

static void im2col_rows(const dpl_conv2d_args *a, const geom *g, const float *x, int64_t oy0, int64_t rows,
                        int64_t r0, int64_t r1, float *col) {
  im2col_rows_ld(a, g, x, oy0, rows, r0, r1, col, rows * a->ow);
}

static void im2col_par(const dpl_conv2d_args *a, const geom *g, const float *x, int64_t oy0, int64_t rows,
                       float *col) {
  int64_t L = rows * a->ow;
  if (g->threads < 2 || g->ksz * L < PAR_MIN) { im2col_rows(a, g, x, oy0, rows, 0, g->ksz, col); return; }
  #pragma omp parallel num_threads(g->threads)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    im2col_rows(a, g, x, oy0, rows, g->ksz * t / T, g->ksz * (t + 1) / T, col);
  }
}

/* channels [c0, c1) of gx (cg x h x w) += col2im(col) for output rows [oy0, oy0 + rows) */
static void col2im_add_ld(const dpl_conv2d_args *a, const geom *g, const float *col, int64_t oy0, int64_t rows,
                          int64_t c0, int64_t c1, float *gx, int64_t ld) {
  int64_t L = ld;
  for (int64_t c = c0; c < c1; c++) {
    float *dst = gx + c * g->hw;
    for (int64_t ky = 0; ky < a->kh; ky++)
      for (int64_t kx = 0; kx < a->kw; kx++) {
        const float *src = col + ((c * a->kh + ky) * a->kw + kx) * L;
        for (int64_t oy = oy0; oy < oy0 + rows; oy++, src += a->ow) {
          int64_t iy = oy * a->stride_h - a->pad_h + ky * a->dil_h;
          if (iy < 0 || iy >= a->h) continue;
          float *d = dst + iy * a->w;
          int64_t ix = kx * a->dil_w - a->pad_w;
          if (a->stride_w == 1) {
            int64_t lo = ix < 0 ? -ix : 0, hi = a->w - ix < a->ow ? a->w - ix : a->ow;
            for (int64_t ox = lo; ox < hi; ox++) d[ix + ox] += src[ox];
            continue;
          }
          for (int64_t ox = 0; ox < a->ow; ox++, ix += a->stride_w)
            if (ix >= 0 && ix < a->w) d[ix] += src[ox];
        }
      }
  }
}

static void col2im_add(const dpl_conv2d_args *a, const geom *g, const float *col, int64_t oy0, int64_t rows,
                       int64_t c0, int64_t c1, float *gx) {
  col2im_add_ld(a, g, col, oy0, rows, c0, c1, gx, rows * a->ow);
}

static void col2im_par(const dpl_conv2d_args *a, const geom *g, const float *col, int64_t oy0, int64_t rows,
                       float *gx) {
  if (g->threads < 2 || g->cg < 2 || g->ksz * rows * a->ow < PAR_MIN) {
    col2im_add(a, g, col, oy0, rows, 0, g->cg, gx);
    return;
  }
  /* threads split the channels, so no two write the same element */
  #pragma omp parallel num_threads(g->threads)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    col2im_add(a, g, col, oy0, rows, g->cg * t / T, g->cg * (t + 1) / T, gx);
  }
}

static float *alloc_cols(const dpl_conv2d_args *a, const geom *g, int copies) {
  return dpl_host_alloc(sizeof(float) * col_floats(a, g) * (size_t)copies);
}
static void free_cols(const dpl_conv2d_args *a, const geom *g, int copies, float *cols) {
  dpl_host_free(cols, sizeof(float) * col_floats(a, g) * (size_t)copies);
}

/* ---- forward ---------------------------------------------------------------------------------------------------- */
/* y (og x ohw) = w (og x ksz) @ unfold(x), plus the bias; `par`: split each step over the threads */
static void forward_item(const dpl_conv2d_args *a, const geom *g, const float *x, const float *w, const float *bias,
                         float *y, float *col, bool par) {
  if (g->direct) {
    if (par) dpl_cpu_sgemm(false, false, g->og, g->ohw, g->ksz, 1.0f, w, g->ksz, x, g->hw, 0.0f, y, g->ohw);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->og, (int)g->ohw, (int)g->ksz, 1.0f, w,
                  (int)g->ksz, x, (int)g->hw, 0.0f, y, (int)g->ohw);
  } else {
    for (int64_t oy0 = 0; oy0 < a->oh; oy0 += g->rows) {
      int64_t rows = a->oh - oy0 < g->rows ? a->oh - oy0 : g->rows, L = rows * a->ow;
      if (par) {
        im2col_par(a, g, x, oy0, rows, col);
        dpl_cpu_sgemm(false, false, g->og, L, g->ksz, 1.0f, w, g->ksz, col, L, 0.0f, y + oy0 * a->ow, g->ohw);
      } else {
        im2col_rows(a, g, x, oy0, rows, 0, g->ksz, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->og, (int)L, (int)g->ksz, 1.0f, w, (int)g->ksz,
                    col, (int)L, 0.0f, y + oy0 * a->ow, (int)g->ohw);
      }
    }
  }
  if (!bias) return;
  #pragma omp parallel for if (par && g->og * g->ohw >= PAR_MIN) num_threads(g->threads) schedule(static)
  for (int64_t o = 0; o < g->og; o++) {
    float b = bias[o], *yo = y + o * g->ohw;
    for (int64_t i = 0; i < g->ohw; i++) yo[i] += b;
  }
}

/* Depthwise (one input and one output channel per group, EfficientNet's blocks): a direct loop beats unfolding for a
 * one-row sgemm per channel. Each output row gathers its taps one (ky, kx) at a time over the run of output columns
 * whose input column is inside the image: a plain loop (contiguous when the stride is 1) that vectorises. Every pixel
 * still sums its taps in (ky, kx) order from 0, then adds the bias, as a per-pixel loop would. */
static void depthwise_item(const dpl_conv2d_args *a, const float *x, const float *w, float bias, float *y) {
  const int64_t sw = a->stride_w;
  for (int64_t oy = 0; oy < a->oh; oy++) {
    float *yr = y + oy * a->ow;
    for (int64_t ox = 0; ox < a->ow; ox++) yr[ox] = 0.0f;
    for (int64_t ky = 0; ky < a->kh; ky++) {
      int64_t iy = oy * a->stride_h - a->pad_h + ky * a->dil_h;
      if (iy < 0 || iy >= a->h) continue;
      const float *xr = x + iy * a->w;
      for (int64_t kx = 0; kx < a->kw; kx++) {
        const float wk = w[ky * a->kw + kx];
        const int64_t off = kx * a->dil_w - a->pad_w;   /* input column of output column ox: ox * sw + off */
        int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int64_t hi = a->w - 1 - off < 0 ? 0 : (a->w - 1 - off) / sw + 1;
        if (hi > a->ow) hi = a->ow;
        if (sw == 1) for (int64_t ox = lo; ox < hi; ox++) yr[ox] += xr[ox + off] * wk;
        else for (int64_t ox = lo; ox < hi; ox++) yr[ox] += xr[ox * sw + off] * wk;
      }
    }
    for (int64_t ox = 0; ox < a->ow; ox++) yr[ox] += bias;
  }
}

/* ---- input gradient --------------------------------------------------------------------------------------------- */
/* gx (cg x hw) = fold(w^T (ksz x og) @ gy (og x ohw)) */
static void backward_input_item(const dpl_conv2d_args *a, const geom *g, const float *gy, const float *w, float *gx,
                                float *col, bool par) {
  if (g->direct) {
    if (par) dpl_cpu_sgemm(true, false, g->cg, g->hw, g->og, 1.0f, w, g->ksz, gy, g->ohw, 0.0f, gx, g->hw);
    else
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->cg, (int)g->hw, (int)g->og, 1.0f, w, (int)g->ksz,
                  gy, (int)g->ohw, 0.0f, gx, (int)g->hw);
    return;
  }
  if (par) {
    #pragma omp parallel for if (g->cg * g->hw >= PAR_MIN) num_threads(g->threads) schedule(static)
    for (int64_t c = 0; c < g->cg; c++) memset(gx + c * g->hw, 0, sizeof(float) * (size_t)g->hw);
  } else {
    memset(gx, 0, sizeof(float) * (size_t)(g->cg * g->hw));
  }
  for (int64_t oy0 = 0; oy0 < a->oh; oy0 += g->rows) {
    int64_t rows = a->oh - oy0 < g->rows ? a->oh - oy0 : g->rows, L = rows * a->ow;
    if (par) {
      dpl_cpu_sgemm(true, false, g->ksz, L, g->og, 1.0f, w, g->ksz, gy + oy0 * a->ow, g->ohw, 0.0f, col, L);
      col2im_par(a, g, col, oy0, rows, gx);
    } else {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->ksz, (int)L, (int)g->og, 1.0f, w, (int)g->ksz,
                  gy + oy0 * a->ow, (int)g->ohw, 0.0f, col, (int)L);
      col2im_add(a, g, col, oy0, rows, 0, g->cg, gx);
    }
  }
}

/* ---- weight gradient -------------------------------------------------------------------------------------------- */
/* gw (og x ksz) += gy (og x ohw) @ unfold(x)^T */
static void backward_weight_item(const dpl_conv2d_args *a, const geom *g, const float *x, const float *gy, float *gw,
                                 float *col, bool par) {
  if (g->direct) {
    if (par) dpl_cpu_sgemm(false, true, g->og, g->ksz, g->ohw, 1.0f, gy, g->ohw, x, g->hw, 1.0f, gw, g->ksz);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->og, (int)g->ksz, (int)g->ohw, 1.0f, gy,
                  (int)g->ohw, x, (int)g->hw, 1.0f, gw, (int)g->ksz);
    return;
  }
  for (int64_t oy0 = 0; oy0 < a->oh; oy0 += g->rows) {
    int64_t rows = a->oh - oy0 < g->rows ? a->oh - oy0 : g->rows, L = rows * a->ow;
    if (par) {
      im2col_par(a, g, x, oy0, rows, col);
      dpl_cpu_sgemm(false, true, g->og, g->ksz, L, 1.0f, gy + oy0 * a->ow, g->ohw, col, L, 1.0f, gw, g->ksz);
    } else {
      im2col_rows(a, g, x, oy0, rows, 0, g->ksz, col);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->og, (int)g->ksz, (int)L, 1.0f, gy + oy0 * a->ow,
                  (int)g->ohw, col, (int)L, 1.0f, gw, (int)g->ksz);
    }
  }
}

/* ---- the im2col paths: items (image x group) over the threads ------------------------------------------------- */
/* one item's work; t: the thread's index when threads take whole items (its own column buffer), else 0 */
typedef void (*item_fn)(const dpl_conv2d_args *a, const geom *g, int64_t n, int64_t gi, float *col, bool par, int t,
                        void *ctx);

/* Runs fn on every item: across the threads (whole items each, a column buffer per thread) or one item after another
 * with each step split over the threads (g->across, see the top of this file). */
static int run_items(const dpl_conv2d_args *a, const geom *g, item_fn fn, void *ctx) {
  int copies = g->across ? g->threads : 1;
  float *cols = g->direct ? NULL : alloc_cols(a, g, copies);
  if (!g->direct && !cols) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory for the column buffer");
  #pragma omp parallel for if (g->across) num_threads(g->threads) schedule(static)
  for (int64_t it = 0; it < g->items; it++) {
    int t = g->across ? omp_get_thread_num() : 0;
    float *col = cols ? cols + (size_t)t * col_floats(a, g) : NULL;
    fn(a, g, it / a->groups, it % a->groups, col, !g->across, t, ctx);
  }
  free_cols(a, g, copies, cols);
  return DPL_OK;
}

static void forward_one(const dpl_conv2d_args *a, const geom *g, int64_t n, int64_t gi, float *col, bool par, int t,
                        void *ctx) {
  DPL_UNUSED(t), DPL_UNUSED(ctx);
  const float *B = a->bias ? a->bias->storage->host + a->bias->offset : NULL;
  forward_item(a, g, a->input->storage->host + a->input->offset + (n * a->c + gi * g->cg) * g->hw,
               a->weight->storage->host + a->weight->offset + gi * g->og * g->ksz, B ? B + gi * g->og : NULL,
               a->output->storage->host + a->output->offset + (n * a->o + gi * g->og) * g->ohw, col, par);
}

static void backward_input_one(const dpl_conv2d_args *a, const geom *g, int64_t n, int64_t gi, float *col, bool par,
                               int t, void *ctx) {
  DPL_UNUSED(t), DPL_UNUSED(ctx);
  backward_input_item(a, g, a->output->storage->host + a->output->offset + (n * a->o + gi * g->og) * g->ohw,
                      a->weight->storage->host + a->weight->offset + gi * g->og * g->ksz,
                      a->input->storage->host + a->input->offset + (n * a->c + gi * g->cg) * g->hw, col, par);
}

/* ctx: the weight-gradient buffer of each thread (thread 0's is the output) */
static void backward_weight_one(const dpl_conv2d_args *a, const geom *g, int64_t n, int64_t gi, float *col, bool par,
                                int t, void *ctx) {
  float *gw = ((float **)ctx)[t];
  backward_weight_item(a, g, a->input->storage->host + a->input->offset + (n * a->c + gi * g->cg) * g->hw,
                       a->output->storage->host + a->output->offset + (n * a->o + gi * g->og) * g->ohw,
                       gw + gi * g->og * g->ksz, col, par);
}

static int im2col_forward(const dpl_conv2d_args *a) {
  geom g;
  make_geom(a, &g);
  return run_items(a, &g, forward_one, NULL);
}

static int im2col_backward_input(const dpl_conv2d_args *a) {
  geom g;
  make_geom(a, &g);
  return run_items(a, &g, backward_input_one, NULL);
}

/* Across items every thread sums its items' gradients into its own buffer (thread 0 into the output), then the
 * buffers are added in thread order. */
static int im2col_backward_weight(const dpl_conv2d_args *a) {
  geom g;
  make_geom(a, &g);
  float *GW = a->weight->storage->host + a->weight->offset;
  size_t wsize = (size_t)(a->o * g.ksz), part_bytes = g.across ? sizeof(float) * (size_t)(g.threads - 1) * wsize : 0;
  float *part = part_bytes ? dpl_host_alloc(part_bytes) : NULL;
  float **gw = malloc(sizeof(float *) * (size_t)g.threads);
  if ((part_bytes && !part) || !gw) {
    dpl_host_free(part, part_bytes);
    free(gw);
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory for the weight gradient's buffers");
  }
  gw[0] = GW;
  for (int t = 1; t < g.threads; t++) gw[t] = part ? part + (size_t)(t - 1) * wsize : GW;
  memset(GW, 0, sizeof(float) * wsize);
  if (part) memset(part, 0, part_bytes);
  int rc = run_items(a, &g, backward_weight_one, gw);
  if (rc == DPL_OK && part) {
    #pragma omp parallel for if (wsize >= PAR_MIN) num_threads(g.threads) schedule(static)
    for (int64_t i = 0; i < (int64_t)wsize; i++)
      for (int p = 0; p < g.threads - 1; p++) GW[i] += part[(size_t)p * wsize + (size_t)i];
  }
  dpl_host_free(part, part_bytes);
  free(gw);
  return rc;
}

/* ---- the other paths, as candidates ------------------------------------------------------------------------------ */
static int depthwise_forward(const dpl_conv2d_args *a) {
  geom g;
  make_geom(a, &g);
  const float *X = a->input->storage->host + a->input->offset;
  const float *W = a->weight->storage->host + a->weight->offset;
  const float *B = a->bias ? a->bias->storage->host + a->bias->offset : NULL;
  float *Y = a->output->storage->host + a->output->offset;
  #pragma omp parallel for if (g.items * g.ohw * g.kk >= PAR_MIN) num_threads(g.threads) schedule(static)
  for (int64_t it = 0; it < g.items; it++) {
    int64_t gi = it % a->groups;   /* = the channel */
    depthwise_item(a, X + it * g.hw, W + gi * g.kk, B ? B[gi] : 0.0f, Y + it * g.ohw);
  }
  return DPL_OK;
}

/* one input and one output channel per group, and not 1x1 */
static bool depthwise_applies(const dpl_conv2d_args *a) {
  bool direct = a->kh == 1 && a->kw == 1 && a->stride_h == 1 && a->stride_w == 1 && a->pad_h == 0 && a->pad_w == 0;
  return a->c == a->groups && a->o == a->groups && !direct;
}

/* Where both apply, Winograd F(2x2, 3x3) measured faster than oneDNN's direct kernels only on wide layers with large
 * maps: >= 512 channels in and out on maps of >= 400 pixels, or >= 128 on >= 3000 pixels (VGG at 224: 1.2-1.6x);
 * elsewhere (ResNet's, DenseNet's, Inception's 3 x 3 layers, any layer on 64 x 64 patches) the two were even or
 * oneDNN won by up to 1.25x. */
static bool winograd_beats_dnnl(const dpl_conv2d_args *a) {
  const int64_t narrow = a->c < a->o ? a->c : a->o, pixels = a->oh * a->ow;
  return (narrow >= 512 && pixels >= 400) || (narrow >= 128 && pixels >= 3000);
}

static bool winograd_forward_first(const dpl_conv2d_args *a) {
  return dpl_cpu_dnnl_enabled() && dpl_cpu_winograd_forward_applies(a) && winograd_beats_dnnl(a);
}
static bool winograd_backward_input_first(const dpl_conv2d_args *a) {
  return dpl_cpu_dnnl_enabled() && dpl_cpu_winograd_backward_input_applies(a) && winograd_beats_dnnl(a);
}
static bool dnnl_applies(const dpl_conv2d_args *a) { DPL_UNUSED(a); return dpl_cpu_dnnl_enabled(); }
/* oneDNN's input gradient is slow towards an input of few channels (the image of a network's first layer, or a
 * U-Net's map): measured at batch 8 on 2 threads, 90 vs 49 ms for ResNet's 7x7/2 conv1, 90 vs 38 ms for AlexNet's
 * 11x11/4, 87 vs 52 ms for VGG's 3x3 at 224, 16 vs 9 ms for 1 -> 8 channels 4x4/2 (the loss of a delineation step goes
 * back through them to the image); from 8 channels on it wins again (14 vs 18 ms for 8 -> 16 4x4/2). */
static bool dnnl_backward_input_applies(const dpl_conv2d_args *a) {
  return dpl_cpu_dnnl_enabled() && a->c / a->groups >= 8;
}
static bool fold_applies(const dpl_conv2d_args *a) { return dpl_cpu_conv_fold_images(a) > 0; }
static bool always(const dpl_conv2d_args *a) { DPL_UNUSED(a); return true; }
static int fold_forward(const dpl_conv2d_args *a) { return dpl_cpu_conv_fold_forward(a, dpl_cpu_conv_fold_images(a)); }
static int fold_backward_input(const dpl_conv2d_args *a) {
  return dpl_cpu_conv_fold_backward_input(a, dpl_cpu_conv_fold_images(a));
}
static int fold_backward_weight(const dpl_conv2d_args *a) {
  return dpl_cpu_conv_fold_backward_weight(a, dpl_cpu_conv_fold_images(a));
}

/* ---- the choice: one candidate list per op, in order of preference --------------------------------------------- */
/* The first candidate that applies to the shape (and the DPL_CPU_DNNL / _WINOGRAD / _CONV_FOLD switches) and does not
 * answer DPL_CPU_NOT_HANDLED (oneDNN, when it would only have a reference kernel) runs. The choice is made once per
 * shape and switch setting and remembered, as ncnn's create_pipeline picks a layer's kernel once. */
typedef struct conv_algo {
  const char *name;
  bool (*applies)(const dpl_conv2d_args *a);
  int (*run)(const dpl_conv2d_args *a);
} conv_algo;

enum { KIND_FORWARD, KIND_BACKWARD_INPUT, KIND_BACKWARD_WEIGHT, KINDS };
enum { MAX_ALGOS = 6 };

static const conv_algo ALGOS[KINDS][MAX_ALGOS] = {
  [KIND_FORWARD] = {
    {"winograd (where it beats oneDNN)", winograd_forward_first, dpl_cpu_winograd_forward},
    {"onednn", dnnl_applies, dpl_cpu_conv_dnnl_forward},   /* depthwise too: 1.1-1.4x faster than the loop below */
    {"depthwise", depthwise_applies, depthwise_forward},
    {"winograd", dpl_cpu_winograd_forward_applies, dpl_cpu_winograd_forward},
    {"fold", fold_applies, fold_forward},
    {"im2col", always, im2col_forward}},
  [KIND_BACKWARD_INPUT] = {   /* the input gradient is a convolution of the same size: the forward's rules */
    {"winograd (where it beats oneDNN)", winograd_backward_input_first, dpl_cpu_winograd_backward_input},
    {"onednn (towards 8 or more input channels)", dnnl_backward_input_applies, dpl_cpu_conv_dnnl_backward_input},
    {"winograd", dpl_cpu_winograd_backward_input_applies, dpl_cpu_winograd_backward_input},
    {"fold", fold_applies, fold_backward_input},
    {"im2col", always, im2col_backward_input}},
  [KIND_BACKWARD_WEIGHT] = {
    {"onednn", dnnl_applies, dpl_cpu_conv_dnnl_backward_weight},
    {"fold", fold_applies, fold_backward_weight},
    {"im2col", always, im2col_backward_weight}},
};

/* the remembered choices: shape, switches -> candidate index (a small table, overwritten in turn when full) */
enum { CHOICES = 128, KEY_FIELDS = 17 };
typedef struct choice { int64_t key[KEY_FIELDS]; int algo; bool used; } choice;
static choice choices[CHOICES];
static int next_slot;
static pthread_mutex_t choice_lock = PTHREAD_MUTEX_INITIALIZER;

static void make_key(const dpl_conv2d_args *a, int kind, int64_t *key) {
  int64_t k[KEY_FIELDS] = {kind, a->n, a->c, a->h, a->w, a->o, a->kh, a->kw, a->stride_h, a->stride_w, a->pad_h,
                           a->pad_w, a->dil_h, a->dil_w, a->groups, a->bias != NULL,
                           (int64_t)dpl_cpu_dnnl_enabled() | (int64_t)!dpl_env_is("DPL_CPU_WINOGRAD", "0") << 1 |
                           (int64_t)!dpl_env_is("DPL_CPU_CONV_FOLD", "0") << 2};
  memcpy(key, k, sizeof k);
}

static int remembered(const int64_t *key) {
  int found = -1;
  pthread_mutex_lock(&choice_lock);
  for (int i = 0; i < CHOICES && found < 0; i++)
    if (choices[i].used && !memcmp(choices[i].key, key, sizeof choices[i].key)) found = choices[i].algo;
  pthread_mutex_unlock(&choice_lock);
  return found;
}

static void remember(const int64_t *key, int algo) {
  pthread_mutex_lock(&choice_lock);
  choice *c = &choices[next_slot];
  next_slot = (next_slot + 1) % CHOICES;
  memcpy(c->key, key, sizeof c->key);
  c->algo = algo;
  c->used = true;
  pthread_mutex_unlock(&choice_lock);
}

static int run_conv(const dpl_conv2d_args *a, int kind) {
  const conv_algo *list = ALGOS[kind];
  int64_t key[KEY_FIELDS];
  make_key(a, kind, key);
  int known = remembered(key);
  if (known >= 0) {
    int rc = list[known].run(a);
    if (rc != DPL_CPU_NOT_HANDLED) return rc;
  }
  for (int i = 0; i < MAX_ALGOS && list[i].run; i++) {
    if (i == known || !list[i].applies(a)) continue;
    int rc = list[i].run(a);
    if (rc == DPL_CPU_NOT_HANDLED) continue;
    if (rc == DPL_OK) remember(key, i);
    return rc;
  }
  return dpl_fail(DPL_ERR_UNSUPPORTED, "cpu: no convolution path for this shape");   /* not reached: im2col */
}

int dpl_cpu_conv2d_forward(dpl_device *dev, const dpl_conv2d_args *a) {
  DPL_UNUSED(dev);
  return run_conv(a, KIND_FORWARD);
}

int dpl_cpu_conv2d_backward_input(dpl_device *dev, const dpl_conv2d_args *a) {
  DPL_UNUSED(dev);
  return run_conv(a, KIND_BACKWARD_INPUT);
}

int dpl_cpu_conv2d_backward_weight(dpl_device *dev, const dpl_conv2d_args *a) {
  DPL_UNUSED(dev);
  return run_conv(a, KIND_BACKWARD_WEIGHT);
}
