/* spatial_cpu.c - the CPU kernel of the spatial ops (pooling, padding, resizing; see dpl_spatial_args in internal.h
 * and ops/spatial.c): a separable gather driven by per-axis tables. Threads split the planes (or, for a few large
 * planes, the destination rows), so every destination element is written by one thread. */
#include "cpu.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PAR_MIN = 32768 };   /* destination elements below which threads cost more than they give */

/* One axis's lists. [reg_lo, reg_hi) is the run of destinations whose lists are all reg_k long and the same list
 * shifted by reg_step per destination (the interior of a pooling window's sweep): list of destination x there is
 * reg_off[j] + (x - reg_lo) * reg_step, j < reg_k. Empty (reg_lo == reg_hi) when there is none. */
enum { REG_MAX_K = 16 };
/* A run of destinations [x0, x1) whose lists all have k entries (entry j of x is ptr[x0] + (x - x0) k + j): the sums
 * walk a run a tap at a time over all of its x, loops that vectorise. unit: every weight is 1; contig: k = 1 and the
 * sources are consecutive (a copy). */
typedef struct run { int64_t x0, x1, k; bool unit, contig; } run;
typedef struct axis {
  int64_t *ptr, *idx;
  float *w;
  int64_t reg_lo, reg_hi, reg_k, reg_step, reg_off[REG_MAX_K];
  run *runs;
  int64_t nruns;
} axis;

/* whether destinations x and x + 1 have lists of length k, the second the first shifted by step */
static bool shifted(const axis *a, int64_t x, int64_t k, int64_t step) {
  if (a->ptr[x + 1] - a->ptr[x] != k || a->ptr[x + 2] - a->ptr[x + 1] != k) return false;
  for (int64_t j = 0; j < k; j++)
    if (a->idx[a->ptr[x + 1] + j] != a->idx[a->ptr[x] + j] + step) return false;
  return true;
}

/* the regular run around the middle destination of n (see axis) */
static void find_regular(axis *a, int64_t n) {
  a->reg_lo = a->reg_hi = 0;
  if (n < 2) return;
  int64_t mid = n / 2 - 1, k = a->ptr[mid + 1] - a->ptr[mid];
  if (k < 1 || k > REG_MAX_K) return;
  int64_t step = a->idx[a->ptr[mid + 1]] - a->idx[a->ptr[mid]];
  if (!shifted(a, mid, k, step)) return;
  int64_t lo = mid, hi = mid + 2;
  while (lo > 0 && shifted(a, lo - 1, k, step)) lo--;
  while (hi < n && shifted(a, hi - 1, k, step)) hi++;
  a->reg_lo = lo;
  a->reg_hi = hi;
  a->reg_k = k;
  a->reg_step = step;
  for (int64_t j = 0; j < k; j++) a->reg_off[j] = a->idx[a->ptr[lo] + j];
}

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
  find_regular(a, n);
  /* the runs of equal list length (see run) */
  a->runs = malloc((size_t)(n ? n : 1) * sizeof *a->runs);
  if (!a->runs) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
  a->nruns = 0;
  for (int64_t x = 0; x < n;) {
    int64_t k = a->ptr[x + 1] - a->ptr[x], x1 = x + 1;
    while (x1 < n && a->ptr[x1 + 1] - a->ptr[x1] == k) x1++;
    run r = {x, x1, k, true, k == 1};
    for (int64_t e = a->ptr[x]; e < a->ptr[x1]; e++) {
      if (a->w[e] != 1.0f) r.unit = false;
      if (k == 1 && a->idx[e] != a->idx[a->ptr[x]] + (e - a->ptr[x])) r.contig = false;
    }
    a->runs[a->nruns++] = r;
    x = x1;
  }
  return DPL_OK;
}

static void free_axis(axis *a) { free(a->ptr); free(a->idx); free(a->w); free(a->runs); }

/* Row y of a SUM: d[x] = sum over the row's sources r (in list order) and x's sources c (in list order) of
 * wy * wx * src, accumulated from 0 in exactly that order for every x (as the one-x-at-a-time loop it replaces, so
 * results are unchanged to the bit), run by run and tap by tap; an empty list gives `value` with fill, else 0. */
static void sum_row(const dpl_spatial_args *a, const axis *ay, const axis *ax, const float *src, float *d, int64_t y) {
  const int64_t r0 = ay->ptr[y], r1 = ay->ptr[y + 1];
  const float empty = a->fill ? a->value : 0.0f;
  if (r0 == r1) {
    for (int64_t x = 0; x < a->dw; x++) d[x] = empty;
    return;
  }
  for (int64_t q = 0; q < ax->nruns; q++) {
    const run *rn = &ax->runs[q];
    const int64_t x0 = rn->x0, n = rn->x1 - rn->x0, k = rn->k, e0 = ax->ptr[x0];
    float *restrict dx = d + x0;
    if (k == 0) {
      for (int64_t i = 0; i < n; i++) dx[i] = empty;
      continue;
    }
    const int64_t *restrict idx = ax->idx + e0;
    const float *restrict w = ax->w + e0;
    for (int64_t r = r0; r < r1; r++) {
      const float wy = ay->w[r];
      const float *restrict row = src + ay->idx[r] * a->sw;
      for (int64_t j = 0; j < k; j++) {
        const bool first = r == r0 && j == 0;
        if (rn->contig && rn->unit && wy == 1.0f) {
          const float *restrict s0 = row + idx[0];
          if (first) for (int64_t i = 0; i < n; i++) dx[i] = 0.0f + s0[i];
          else for (int64_t i = 0; i < n; i++) dx[i] += s0[i];
        } else if (first) {
          for (int64_t i = 0; i < n; i++) dx[i] = 0.0f + wy * w[i * k + j] * row[idx[i * k + j]];
        } else {
          for (int64_t i = 0; i < n; i++) dx[i] += wy * w[i * k + j] * row[idx[i * k + j]];
        }
      }
    }
  }
}

/* max of destination (y, x)'s listed elements: the last NaN if any, else the first max; its position into idx */
static inline void max_one(const dpl_spatial_args *a, const axis *ay, const axis *ax, const float *src, float *dst,
                           float *idx, int64_t y, int64_t x) {
  int64_t r0 = ay->ptr[y], r1 = ay->ptr[y + 1], c0 = ax->ptr[x], c1 = ax->ptr[x + 1];
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
}

/* destination row y of a max: the regular run of x (see axis) a tap at a time over all of its x (a loop that
 * vectorises, visiting each x's elements in the same order as max_one), the rest one x at a time */
/* b[x] = max(b[x], row[off + x * step]) (a NaN wins; at[x] = its position pos0 + x * pstep) for x < n: a
 * compare-and-select loop that GCC vectorises (with -fno-trapping-math, see CMakeLists.txt) */
static void max_tap(const float *restrict row, float *restrict b, float *restrict at, int n, int64_t off, int64_t step,
                    float pos0, float pstep) {
  for (int x = 0; x < n; x++) {   /* int: its conversion to float vectorises, int64_t's does not */
    const float v = row[off + x * step], bx = b[x];
    const bool take = (v > bx) | (v != v);
    b[x] = take ? v : bx;
    at[x] = take ? pos0 + (float)x * pstep : at[x];
  }
}

static void max_row(const dpl_spatial_args *a, const axis *ay, const axis *ax, const float *src, float *dst,
                    float *idx, int64_t y) {
  const int64_t lo = ax->reg_lo, hi = ax->reg_hi, step = ax->reg_step;
  for (int64_t x = 0; x < lo; x++) max_one(a, ay, ax, src, dst, idx, y, x);
  for (int64_t x = hi; x < a->dw; x++) max_one(a, ay, ax, src, dst, idx, y, x);
  if (hi <= lo) return;
  float *b = dst + y * a->dw + lo, *at = idx + y * a->dw + lo;
  const int64_t n = hi - lo;
  for (int64_t x = 0; x < n; x++) { b[x] = -INFINITY; at[x] = -1.0f; }
  for (int64_t r = ay->ptr[y]; r < ay->ptr[y + 1]; r++) {
    const int64_t rowoff = ay->idx[r] * a->sw;
    const float *row = src + rowoff;
    for (int64_t j = 0; j < ax->reg_k; j++) {
      const int64_t off = ax->reg_off[j];
      /* positions are exact in float below 2^24, as in idx */
      max_tap(row, b, at, (int)n, off, step, (float)(rowoff + off), (float)step);
    }
  }
}

/* destination rows [y0, y1) of plane p */
static void run_rows(const dpl_spatial_args *a, const axis *ay, const axis *ax, int64_t p, int64_t y0, int64_t y1) {
  const int64_t splane = a->sh * a->sw, dplane = a->dh * a->dw;
  const float *src = a->src->storage->host + a->src->offset + p * splane;
  float *dst = a->dst->storage->host + a->dst->offset + p * dplane;
  float *idx = a->mode == DPL_SPATIAL_MAX ? a->idx->storage->host + a->idx->offset + p * dplane : NULL;
  if (a->mode == DPL_SPATIAL_MAX) {
    for (int64_t y = y0; y < y1; y++) max_row(a, ay, ax, src, dst, idx, y);
    return;
  }
  for (int64_t y = y0; y < y1; y++) sum_row(a, ay, ax, src, dst + y * a->dw, y);   /* DPL_SPATIAL_SUM */
}

/* The max-pool gradient as a scatter: each pooled gradient is added where its index points, pooled elements in
 * row-major order - the order in which the gather of run_rows (the Vulkan shader's way, free of atomics) visits them
 * from zero, so the sums are the same to the bit, in time proportional to the pooled size instead of the windows'. */
static void max_grad_scatter(const dpl_spatial_args *a) {
  const int64_t splane = a->sh * a->sw, dplane = a->dh * a->dw;
  const float *src = a->src->storage->host + a->src->offset;
  const float *idx = a->idx->storage->host + a->idx->offset;
  float *dst = a->dst->storage->host + a->dst->offset;
  #pragma omp parallel for if (a->planes > 1 && a->planes * (splane + dplane) >= PAR_MIN) schedule(static)
  for (int64_t p = 0; p < a->planes; p++) {
    float *d = dst + p * dplane;
    const float *g = src + p * splane, *at = idx + p * splane;
    memset(d, 0, sizeof(float) * (size_t)dplane);
    for (int64_t k = 0; k < splane; k++)
      if (at[k] >= 0.0f) d[(int64_t)at[k]] += g[k];
  }
}

int dpl_cpu_spatial2d(dpl_device *dev, const dpl_spatial_args *a) {
  DPL_UNUSED(dev);
  if (a->mode == DPL_SPATIAL_MAX_GRAD) {
    max_grad_scatter(a);
    return DPL_OK;
  }
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
