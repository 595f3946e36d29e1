/* gemm_tiled.c - the matrix product for GPUs: shaders/matmul_tiled.comp, shared-memory workgroup tiles with a
 * register block per thread (common/gemm_tile.glsl), the tile shape chosen per product by vk_choose_tile
 * (conv_tiled.c). Operands whose rows are contiguous and on vec4 bounds are read with vector loads. Work whose
 * bindings would exceed maxStorageBufferRange, or whose grid would exceed maxComputeWorkGroupCount, is split over
 * batches, then rows, then columns, and last along k (an operand stored across k, column-major A say: the later
 * slices add to C with beta 1).
 *
 * Untested on GPU hardware so far: correct on lavapipe (DPL_VK_MATMUL=tiled in the tests), speed unmeasured. */
#include "vk_internal.h"
#include <stdlib.h>
#include <string.h>

/* mirrors the push constants of shaders/matmul_tiled.comp */
typedef struct tiled_params {
  uint32_t m, n, k;
  uint32_t a_off; int32_t a_rs, a_cs, a_bs;
  uint32_t b_off; int32_t b_rs, b_cs, b_bs;
  uint32_t c_off; int32_t c_rs, c_cs, c_bs;
  float alpha, beta;
} tiled_params;

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

/* element span [lo, hi] of a batch x rows x cols block */
static int64_t span_hi(int64_t lo, int64_t nb, int64_t bs, int64_t rows, int64_t rs, int64_t cols, int64_t cs) {
  return lo + (nb - 1) * bs + (rows - 1) * rs + (cols - 1) * cs;
}

static int part(dpl_device *dev, const dpl_gemm_args *g, const vk_tile *t, int64_t b0, int64_t nb, int64_t r0,
                int64_t nr, int64_t c0, int64_t nc, int64_t k0, int64_t nk) {
  vk_device *v = vkdev(dev);
  int64_t limit = (int64_t)((v->max_binding - v->alignment) / 4);
  const uint32_t *maxg = v->props.limits.maxComputeWorkGroupCount;
  int64_t a_lo = g->a->offset + b0 * g->a_bs + r0 * g->a_rs + k0 * g->a_cs;
  int64_t b_lo = g->b->offset + b0 * g->b_bs + c0 * g->b_cs + k0 * g->b_rs;
  int64_t c_lo = g->c->offset + b0 * g->c_bs + r0 * g->c_rs + c0 * g->c_cs;
  int64_t a_hi = span_hi(a_lo, nb, g->a_bs, nr, g->a_rs, nk, g->a_cs);
  int64_t b_hi = span_hi(b_lo, nb, g->b_bs, nk, g->b_rs, nc, g->b_cs);
  int64_t c_hi = span_hi(c_lo, nb, g->c_bs, nr, g->c_rs, nc, g->c_cs);
  bool a_fits = a_hi - a_lo < limit, b_fits = b_hi - b_lo < limit, c_fits = c_hi - c_lo < limit;
  int64_t gx = cdiv(nc, t->bn), gy = cdiv(nr, t->bm);
  if (nb > 1 && (nb > maxg[2] || !a_fits || !b_fits || !c_fits)) {
    int64_t h = nb / 2;
    int rc = part(dev, g, t, b0, h, r0, nr, c0, nc, k0, nk);
    return rc ? rc : part(dev, g, t, b0 + h, nb - h, r0, nr, c0, nc, k0, nk);
  }
  /* an operand too large for a binding is split along the dim that spans most of it: k for an operand stored
   * across k (column-major A, row-major B^T), else its rows or columns */
  bool a_by_k = !a_fits && nk > 1 && llabs(g->a_cs) * (nk - 1) >= llabs(g->a_rs) * (nr - 1);
  bool b_by_k = !b_fits && nk > 1 && llabs(g->b_rs) * (nk - 1) >= llabs(g->b_cs) * (nc - 1);
  if (a_by_k || b_by_k) {   /* slices along k: the second adds to the first's result */
    int64_t h = nk / 2;
    int rc = part(dev, g, t, b0, nb, r0, nr, c0, nc, k0, h);
    if (rc) return rc;
    dpl_gemm_args rest = *g;
    rest.beta = 1.0f;
    return part(dev, &rest, t, b0, nb, r0, nr, c0, nc, k0 + h, nk - h);
  }
  bool want_rows = gy > maxg[1] || !a_fits || (!c_fits && nr > t->bm);
  bool want_cols = gx > maxg[0] || !b_fits || (!c_fits && nc > t->bn);
  if (want_rows && nr > t->bm) {
    int64_t h = imax(t->bm, nr / 2 / t->bm * t->bm);
    int rc = part(dev, g, t, b0, nb, r0, h, c0, nc, k0, nk);
    return rc ? rc : part(dev, g, t, b0, nb, r0 + h, nr - h, c0, nc, k0, nk);
  }
  if (want_cols && nc > t->bn) {
    int64_t h = imax(t->bn, nc / 2 / t->bn * t->bn);
    int rc = part(dev, g, t, b0, nb, r0, nr, c0, h, k0, nk);
    return rc ? rc : part(dev, g, t, b0, nb, r0, nr, c0 + h, nc - h, k0, nk);
  }
  if (!a_fits || !b_fits || !c_fits)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "matmul: a block of %lldx%lld (k %lld) exceeds one binding", (long long)nr,
                    (long long)nc, (long long)nk);
  tiled_params pc = {(uint32_t)nr, (uint32_t)nc, (uint32_t)nk,
                     0, (int32_t)g->a_rs, (int32_t)g->a_cs, (int32_t)(nb > 1 ? g->a_bs : 0),
                     0, (int32_t)g->b_rs, (int32_t)g->b_cs, (int32_t)(nb > 1 ? g->b_bs : 0),
                     0, (int32_t)g->c_rs, (int32_t)g->c_cs, (int32_t)(nb > 1 ? g->c_bs : 0), g->alpha, g->beta};
  vk_binding b[3];
  int rc = vk_bind(dev, g->c->storage, c_lo, c_hi, 1, &b[0], &pc.c_off);
  if (!rc) rc = vk_bind(dev, g->a->storage, a_lo, a_hi, 0, &b[1], &pc.a_off);
  if (!rc) rc = vk_bind(dev, g->b->storage, b_lo, b_hi, 0, &b[2], &pc.b_off);
  if (rc) return rc;
  uint32_t spec[9];
  vk_tile_spec(t, spec);
  /* vector loads: A's rows along k, B's rows along n, contiguous and on vec4 bounds */
  spec[7] = (nk == 1 || g->a_cs == 1) && pc.a_off % 4 == 0 && (nr == 1 || g->a_rs % 4 == 0) &&
            (nb == 1 || g->a_bs % 4 == 0);
  spec[8] = (nc == 1 || g->b_cs == 1) && pc.b_off % 4 == 0 && (nk == 1 || g->b_rs % 4 == 0) &&
            (nb == 1 || g->b_bs % 4 == 0);
  return vk_dispatch(dev, vk_half_tiles(dev) ? DPL_SHADER_MATMUL_TILED_HALF : DPL_SHADER_MATMUL_TILED, spec, 9, b, 3,
                     &pc, sizeof pc, (uint32_t)gx, (uint32_t)gy, (uint32_t)nb);
}

int vk_gemm_tiled(dpl_device *dev, const dpl_gemm_args *g) {
  const vk_tile *t = vk_choose_tile(dev, g->m, g->n, g->batch);
  if (!t) return dpl_fail(DPL_ERR_UNSUPPORTED, "matmul: no workgroup tile fits this device");
  return part(dev, g, t, 0, g->batch, 0, g->m, 0, g->n, 0, g->k);
}
