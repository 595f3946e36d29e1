/* spatial_cpu.c - the CPU kernel of the spatial ops (pooling, padding, resizing; see dpl_spatial_args in internal.h
 * and ops/spatial.c): a separable gather driven by per-axis tables. Threads split the planes (or, for a few large
 * planes, the destination rows), so every destination element is written by one thread. */
#include "internal.h"
#include <math.h>
#include <stdlib.h>

enum { PAR_MIN = 32768 };   /* destination elements below which threads cost more than they give */

typedef struct axis { int64_t *ptr, *idx; float *w; } axis;

/* the float table of one axis (n lists) as integers */
static int load_axis(const float *tab, int64_t ptr_off, int64_t ent_off, int64_t n, axis *a) {
  const float *p = tab + ptr_off;
  int64_t nnz = (int64_t)p[n];
  a->ptr = malloc((size_t)(n + 1) * sizeof *a->ptr);
  a->idx = malloc((size_t)(nnz ? nnz : 1) * sizeof *a->idx);
  a->w = malloc((size_t)(nnz ? nnz : 1) * sizeof *a->w);
  if (!a->ptr || !a->idx || !a->w) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
  for (int64_t i = 0; i <= n; i++) a->ptr[i] = (int64_t)p[i];
  for (int64_t e = 0; e < nnz; e++) {
    a->idx[e] = (int64_t)tab[ent_off + 2 * e];
    a->w[e] = tab[ent_off + 2 * e + 1];
  }
  return DPL_OK;
}

static void free_axis(axis *a) { free(a->ptr); free(a->idx); free(a->w); }

/* destination rows [y0, y1) of plane p */
static void run_rows(const dpl_spatial_args *a, const axis *ay, const axis *ax, int64_t p, int64_t y0, int64_t y1) {
  const int64_t splane = a->sh * a->sw, dplane = a->dh * a->dw;
  const float *src = a->src->storage->host + a->src->offset + p * splane;
  float *dst = a->dst->storage->host + a->dst->offset + p * dplane;
  float *idx = a->idx ? a->idx->storage->host + a->idx->offset + p * (a->mode == DPL_SPATIAL_MAX ? dplane : splane) : NULL;
  for (int64_t y = y0; y < y1; y++) {
    int64_t r0 = ay->ptr[y], r1 = ay->ptr[y + 1];
    for (int64_t x = 0; x < a->dw; x++) {
      int64_t c0 = ax->ptr[x], c1 = ax->ptr[x + 1];
      if (a->mode == DPL_SPATIAL_SUM) {
        float acc = 0.0f;
        for (int64_t r = r0; r < r1; r++) {
          const float *row = src + ay->idx[r] * a->sw;
          float wy = ay->w[r];
          for (int64_t c = c0; c < c1; c++) acc += wy * ax->w[c] * row[ax->idx[c]];
        }
        if (a->fill && (r0 == r1 || c0 == c1)) acc = a->value;
        dst[y * a->dw + x] = acc;
      } else if (a->mode == DPL_SPATIAL_MAX) {
        float best = -INFINITY;
        int64_t at = -1;
        for (int64_t r = r0; r < r1; r++) {
          const float *row = src + ay->idx[r] * a->sw;
          for (int64_t c = c0; c < c1; c++) {
            float v = row[ax->idx[c]];
            if (v > best || isnan(v)) { best = v; at = ay->idx[r] * a->sw + ax->idx[c]; }
          }
        }
        dst[y * a->dw + x] = best;
        idx[y * a->dw + x] = (float)at;
      } else {
        float self = (float)(y * a->dw + x), acc = 0.0f;
        for (int64_t r = r0; r < r1; r++) {
          int64_t rowoff = ay->idx[r] * a->sw;
          for (int64_t c = c0; c < c1; c++) {
            int64_t s = rowoff + ax->idx[c];
            if (idx[s] == self) acc += src[s];
          }
        }
        dst[y * a->dw + x] = acc;
      }
    }
  }
}

int dpl_cpu_spatial2d(dpl_device *dev, const dpl_spatial_args *a) {
  DPL_UNUSED(dev);
  const float *tab = a->table->storage->host + a->table->offset;
  axis ay = {0}, ax = {0};
  int rc = load_axis(tab, a->ptr_y, a->ent_y, a->dh, &ay);
  if (!rc) rc = load_axis(tab, a->ptr_x, a->ent_x, a->dw, &ax);
  if (!rc) {
    int64_t total = a->planes * a->dh * a->dw;
    if (a->planes >= 8 || total < PAR_MIN) {
      #pragma omp parallel for if (total >= PAR_MIN) schedule(static)
      for (int64_t p = 0; p < a->planes; p++) run_rows(a, &ay, &ax, p, 0, a->dh);
    } else {
      /* few large planes: split each plane's rows */
      int64_t n = a->planes * a->dh;
      #pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; i++) run_rows(a, &ay, &ax, i / a->dh, i % a->dh, i % a->dh + 1);
    }
  }
  free_axis(&ay);
  free_axis(&ax);
  return rc;
}
