/* conv_cpu.c - 2-D convolution on the CPU, THNN's SpatialConvolutionMM way: per image and group, im2col unfolds the
 * input into a (C/groups * kh * kw) x (OH * OW) matrix and OpenBLAS does the product with the weights; the input
 * gradient is W^T @ grad_output folded back with col2im; the weight gradient is grad_output @ cols^T summed over the
 * batch. im2col/col2im run on OpenMP threads (outside sgemm, which has its own threads); the column matrix covers a
 * band of output rows at a time so that its size stays bounded for large images. A 1x1 kernel with stride 1 and no
 * padding needs no unfolding at all. */
#include "internal.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

enum { COL_BUDGET = 4 << 20 };         /* floats in one column buffer (16 MiB) */
enum { PAR_MIN = 32768 };              /* elements below which threads cost more than they give */

typedef struct geom {
  int64_t cg, og, kk, ksz;             /* channels and outputs per group, kh*kw, cg*kh*kw */
  int64_t hw, ohw;
  int64_t rows;                        /* output rows per band */
  int direct;                          /* 1x1, stride 1, no padding: the input is already the column matrix */
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
  g->direct = a->kh == 1 && a->kw == 1 && a->stride_h == 1 && a->stride_w == 1 && a->pad_h == 0 && a->pad_w == 0;
}

/* col (ksz x rows*ow) from x (cg x h x w) for output rows [oy0, oy0 + rows) */
static void im2col(const dpl_conv2d_args *a, const geom *g, const float *x, int64_t oy0, int64_t rows, float *col) {
  int64_t L = rows * a->ow;
  #pragma omp parallel for if (g->ksz * L >= PAR_MIN) schedule(static)
  for (int64_t r = 0; r < g->ksz; r++) {
    int64_t c = r / g->kk, ky = (r / a->kw) % a->kh, kx = r % a->kw;
    const float *src = x + c * g->hw;
    float *dst = col + r * L;
    for (int64_t oy = oy0; oy < oy0 + rows; oy++, dst += a->ow) {
      int64_t iy = oy * a->stride_h - a->pad_h + ky * a->dil_h;
      if (iy < 0 || iy >= a->h) { memset(dst, 0, sizeof(float) * (size_t)a->ow); continue; }
      const float *s = src + iy * a->w;
      int64_t ix = kx * a->dil_w - a->pad_w;
      if (a->stride_w == 1 && ix >= 0 && ix + a->ow <= a->w) {
        memcpy(dst, s + ix, sizeof(float) * (size_t)a->ow);
        continue;
      }
      for (int64_t ox = 0; ox < a->ow; ox++, ix += a->stride_w) dst[ox] = ix >= 0 && ix < a->w ? s[ix] : 0.0f;
    }
  }
}

/* gx (cg x h x w) += col2im(col) for output rows [oy0, oy0 + rows); threads split the channels, so no two write the
 * same element */
static void col2im_add(const dpl_conv2d_args *a, const geom *g, const float *col, int64_t oy0, int64_t rows, float *gx) {
  int64_t L = rows * a->ow;
  #pragma omp parallel for if (g->ksz * L >= PAR_MIN && g->cg > 1) schedule(static)
  for (int64_t c = 0; c < g->cg; c++) {
    float *dst = gx + c * g->hw;
    for (int64_t ky = 0; ky < a->kh; ky++)
      for (int64_t kx = 0; kx < a->kw; kx++) {
        const float *src = col + ((c * a->kh + ky) * a->kw + kx) * L;
        for (int64_t oy = oy0; oy < oy0 + rows; oy++, src += a->ow) {
          int64_t iy = oy * a->stride_h - a->pad_h + ky * a->dil_h;
          if (iy < 0 || iy >= a->h) continue;
          float *d = dst + iy * a->w;
          int64_t ix = kx * a->dil_w - a->pad_w;
          for (int64_t ox = 0; ox < a->ow; ox++, ix += a->stride_w)
            if (ix >= 0 && ix < a->w) d[ix] += src[ox];
        }
      }
  }
}

int dpl_cpu_conv2d_forward(dpl_device *dev, const dpl_conv2d_args *a) {
  DPL_UNUSED(dev);
  geom g;
  make_geom(a, &g);
  const float *X = a->input->storage->host + a->input->offset;
  const float *W = a->weight->storage->host + a->weight->offset;
  float *Y = a->output->storage->host + a->output->offset;
  float *col = g.direct ? NULL : malloc(sizeof(float) * (size_t)(g.ksz * g.rows * a->ow));
  if (!g.direct && !col) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory for the column buffer");
  for (int64_t n = 0; n < a->n; n++)
    for (int64_t gi = 0; gi < a->groups; gi++) {
      const float *x = X + (n * a->c + gi * g.cg) * g.hw;
      const float *w = W + gi * g.og * g.ksz;
      float *y = Y + (n * a->o + gi * g.og) * g.ohw;
      if (g.direct) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.og, (int)g.ohw, (int)g.ksz, 1.0f, w, (int)g.ksz,
                    x, (int)g.hw, 0.0f, y, (int)g.ohw);
        continue;
      }
      for (int64_t oy0 = 0; oy0 < a->oh; oy0 += g.rows) {
        int64_t rows = a->oh - oy0 < g.rows ? a->oh - oy0 : g.rows, L = rows * a->ow;
        im2col(a, &g, x, oy0, rows, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.og, (int)L, (int)g.ksz, 1.0f, w, (int)g.ksz,
                    col, (int)L, 0.0f, y + oy0 * a->ow, (int)g.ohw);
      }
    }
  free(col);
  if (a->bias) {
    const float *B = a->bias->storage->host + a->bias->offset;
    int64_t planes = a->n * a->o;
    #pragma omp parallel for if (planes * g.ohw >= PAR_MIN) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
      float b = B[pl % a->o], *y = Y + pl * g.ohw;
      for (int64_t i = 0; i < g.ohw; i++) y[i] += b;
    }
  }
  return DPL_OK;
}

int dpl_cpu_conv2d_backward_input(dpl_device *dev, const dpl_conv2d_args *a) {
  DPL_UNUSED(dev);
  geom g;
  make_geom(a, &g);
  const float *GY = a->output->storage->host + a->output->offset;
  const float *W = a->weight->storage->host + a->weight->offset;
  float *GX = a->input->storage->host + a->input->offset;
  if (g.direct) {
    for (int64_t n = 0; n < a->n; n++)
      for (int64_t gi = 0; gi < a->groups; gi++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.cg, (int)g.hw, (int)g.og, 1.0f, W + gi * g.og * g.ksz,
                    (int)g.ksz, GY + (n * a->o + gi * g.og) * g.ohw, (int)g.ohw, 0.0f, GX + (n * a->c + gi * g.cg) * g.hw,
                    (int)g.hw);
    return DPL_OK;
  }
  float *col = malloc(sizeof(float) * (size_t)(g.ksz * g.rows * a->ow));
  if (!col) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory for the column buffer");
  int64_t total = a->n * a->c * g.hw;
  #pragma omp parallel for if (total >= PAR_MIN) schedule(static)
  for (int64_t i = 0; i < total; i++) GX[i] = 0.0f;
  for (int64_t n = 0; n < a->n; n++)
    for (int64_t gi = 0; gi < a->groups; gi++) {
      const float *gy = GY + (n * a->o + gi * g.og) * g.ohw;
      const float *w = W + gi * g.og * g.ksz;
      float *gx = GX + (n * a->c + gi * g.cg) * g.hw;
      for (int64_t oy0 = 0; oy0 < a->oh; oy0 += g.rows) {
        int64_t rows = a->oh - oy0 < g.rows ? a->oh - oy0 : g.rows, L = rows * a->ow;
        /* col (ksz x L) = w^T (ksz x og) @ gy (og x L) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.ksz, (int)L, (int)g.og, 1.0f, w, (int)g.ksz,
                    gy + oy0 * a->ow, (int)g.ohw, 0.0f, col, (int)L);
        col2im_add(a, &g, col, oy0, rows, gx);
      }
    }
  free(col);
  return DPL_OK;
}

int dpl_cpu_conv2d_backward_weight(dpl_device *dev, const dpl_conv2d_args *a) {
  DPL_UNUSED(dev);
  geom g;
  make_geom(a, &g);
  const float *X = a->input->storage->host + a->input->offset;
  const float *GY = a->output->storage->host + a->output->offset;
  float *GW = a->weight->storage->host + a->weight->offset;
  float *col = g.direct ? NULL : malloc(sizeof(float) * (size_t)(g.ksz * g.rows * a->ow));
  if (!g.direct && !col) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory for the column buffer");
  memset(GW, 0, sizeof(float) * (size_t)(a->o * g.ksz));
  for (int64_t n = 0; n < a->n; n++)
    for (int64_t gi = 0; gi < a->groups; gi++) {
      const float *x = X + (n * a->c + gi * g.cg) * g.hw;
      const float *gy = GY + (n * a->o + gi * g.og) * g.ohw;
      float *gw = GW + gi * g.og * g.ksz;
      /* gw (og x ksz) += gy (og x L) @ col^T (L x ksz) */
      if (g.direct) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g.og, (int)g.ksz, (int)g.ohw, 1.0f, gy, (int)g.ohw,
                    x, (int)g.hw, 1.0f, gw, (int)g.ksz);
        continue;
      }
      for (int64_t oy0 = 0; oy0 < a->oh; oy0 += g.rows) {
        int64_t rows = a->oh - oy0 < g.rows ? a->oh - oy0 : g.rows, L = rows * a->ow;
        im2col(a, &g, x, oy0, rows, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g.og, (int)g.ksz, (int)L, 1.0f, gy + oy0 * a->ow,
                    (int)g.ohw, col, (int)L, 1.0f, gw, (int)g.ksz);
      }
    }
  free(col);
  return DPL_OK;
}
