/* gemm_texel.c - the matrix product for CPU Vulkan drivers (lavapipe/llvmpipe), see docs/vulkan.md.
 *
 * shaders/matmul_texel.comp reads both operands as vec4s along k through rgba32f storage texel buffers: A as m rows of
 * k4 = ceil(k / 4) vec4s, B transposed (n rows of k4 vec4s), zero-padded in k. An operand already in that layout (unit
 * stride along k, k, row/batch strides and offset multiples of 4 elements) is bound in place; any other is first
 * repacked into a temporary tensor by shaders/matmul_pack.comp (the cost is O(mk + kn) against the product's O(mnk)).
 * A pack costs about 20 cycles per element on lavapipe (every store is a per-lane loop there): ~6% of a 2048^3 product
 * with a row-major B, but most of a product with few rows. C is written through an r32f texel buffer with its own
 * strides, so it never needs a copy. The product may run transposed (C^T = B^T A^T: the kernel treats A and B alike)
 * when that wastes less of the 16 x 128 workgroup tile.
 * Work whose bindings would exceed maxStorageBufferRange / maxTexelBufferElements, or whose grid would exceed
 * maxComputeWorkGroupCount, is split over batches, then rows or columns (packing too: rows or column blocks).
 *
 * Chosen for CPU drivers by kernels.c (products of at least 40^3); DPL_VK_MATMUL=texel forces it. */
#include "vk_internal.h"
#include <stdlib.h>
#include <string.h>

/* mirrors the push constants of shaders/matmul_texel.comp */
typedef struct texel_params {
  int32_t m, n, k4;
  int32_t a_off, a_rs, a_bs;
  int32_t b_off, b_rs, b_bs;
  int32_t c_off, c_rs, c_cs, c_bs;
  float alpha, beta;
} texel_params;

/* mirrors the push constants of shaders/matmul_pack.comp */
typedef struct pack_params {
  int32_t rows, cols, cols4;
  int32_t src_off, src_rs, src_cs, src_bs;
  int32_t dst_off, dst_rs, dst_bs;
} pack_params;

/* The kernel's tile (the TM, TN, LN defaults of shaders/matmul_texel.comp): TM x TN outputs per invocation, LN
 * invocations along n. */
enum { TEX_TM = 16, TEX_TN = 16, TEX_LN = 8, TEX_WG_ROWS = (8 / TEX_LN) * TEX_TM, TEX_WG_COLS = TEX_LN * TEX_TN };

enum { MAX_GROUPS = 65535 };

/* The largest binding, in elements of `texel` floats, that vk_bind accepts and a texel buffer view can cover. */
static int64_t texel_limit(vk_device *v, int texel) {
  int64_t by_range = (int64_t)((v->max_binding - v->alignment) / (VkDeviceSize)(4 * texel));
  int64_t by_view = (int64_t)v->props.limits.maxTexelBufferElements;
  return by_range < by_view ? by_range : by_view;
}

static int64_t imax64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- operands --------------------------------------------------------------------------------------------------- */
/* An operand as the kernel reads it: `lines` lines (rows of A, columns of B) of vlen floats along k (vlen a multiple
 * of 4, zero-padded), line l of batch z at off + z * bs + l * ls. */
typedef struct packed_operand {
  dpl_storage *storage;
  int64_t off, ls, bs, lines, vlen;
  dpl_tensor *temp;                  /* the packed copy, when one was made */
} packed_operand;

/* A strided source matrix (batch x rows x cols, cols along the vectorized dim) and where its packed form goes: rows of
 * cols4 vec4s. */
typedef struct pack_job {
  dpl_storage *src;
  int64_t src_off, src_bs, src_rs, src_cs, rows, cols, cols4;
  dpl_storage *dst;
  int64_t dst_off;                   /* element offset of the packed batch 0 */
} pack_job;

/* Packs batches [b0, b0 + nb), rows [r0, r0 + nr) and vec4 columns [q0, q0 + nq), split until the bindings fit. */
static int pack_part(dpl_device *dev, const pack_job *j, int64_t b0, int64_t nb, int64_t r0, int64_t nr, int64_t q0,
                     int64_t nq) {
  vk_device *v = vkdev(dev);
  int64_t cols = j->cols - 4 * q0 < 4 * nq ? j->cols - 4 * q0 : 4 * nq;   /* source columns in this part */
  int64_t src_lo = j->src_off + b0 * j->src_bs + r0 * j->src_rs + 4 * q0 * j->src_cs;
  int64_t src_hi = src_lo + (nb - 1) * j->src_bs + (nr - 1) * j->src_rs + (cols - 1) * j->src_cs;
  int64_t dst_lo = j->dst_off + ((b0 * j->rows + r0) * j->cols4 + q0) * 4;
  int64_t dst_vec4 = ((nb - 1) * j->rows + nr - 1) * j->cols4 + nq;
  int64_t gx = cdiv(nq, 4), gy = cdiv(nr, 16);     /* workgroups of 16 rows x 4 vec4s */
  int src_fits = src_hi - src_lo + 1 <= texel_limit(v, 1), dst_fits = dst_vec4 <= texel_limit(v, 4);
  if (!src_fits || !dst_fits || nb > MAX_GROUPS || gx > MAX_GROUPS || gy > MAX_GROUPS) {
    /* halve the batches, else the dim that spans more of the source (rows when only the destination is too big) */
    int by_rows = nr > 1 && (nq == 1 || gy > MAX_GROUPS ||
                             (gx <= MAX_GROUPS && (src_fits || (nr - 1) * j->src_rs >= (cols - 1) * j->src_cs)));
    if (nb > 1) {
      int64_t h = nb / 2;
      int rc = pack_part(dev, j, b0, h, r0, nr, q0, nq);
      return rc ? rc : pack_part(dev, j, b0 + h, nb - h, r0, nr, q0, nq);
    }
    if (by_rows) {
      int64_t h = nr / 2;
      int rc = pack_part(dev, j, b0, nb, r0, h, q0, nq);
      return rc ? rc : pack_part(dev, j, b0, nb, r0 + h, nr - h, q0, nq);
    }
    if (nq > 1) {
      int64_t h = nq / 2;
      int rc = pack_part(dev, j, b0, nb, r0, nr, q0, h);
      return rc ? rc : pack_part(dev, j, b0, nb, r0, nr, q0 + h, nq - h);
    }
    return dpl_fail(DPL_ERR_UNSUPPORTED, "matmul: 4 elements of an operand span more than one binding");
  }
  vk_binding b[2];
  uint32_t dst_elem, src_elem;
  int rc = vk_bind(dev, j->dst, dst_lo, dst_lo + dst_vec4 * 4 - 1, 1, &b[0], &dst_elem);
  if (!rc) rc = vk_bind(dev, j->src, src_lo, src_hi, 0, &b[1], &src_elem);
  if (rc) return rc;
  b[0].texel = 4;
  b[1].texel = 1;
  pack_params pc = {(int32_t)nr, (int32_t)cols, (int32_t)nq, (int32_t)src_elem, (int32_t)(nr > 1 ? j->src_rs : 0),
                    (int32_t)(cols > 1 ? j->src_cs : 0), (int32_t)(nb > 1 ? j->src_bs : 0), (int32_t)(dst_elem / 4),
                    (int32_t)(nr > 1 ? j->cols4 : 0), (int32_t)(nb > 1 ? j->rows * j->cols4 : 0)};
  return vk_dispatch(dev, DPL_SHADER_MATMUL_PACK, NULL, 0, b, 2, &pc, sizeof pc, (uint32_t)gx, (uint32_t)gy,
                     (uint32_t)nb);
}

/* Fills `out` with the operand as the kernel reads it: in place when its layout allows, else a packed copy.
 * The matrix has `lines` lines (stride ls) of `len` elements (stride es) along the vectorized dim; bs is its batch
 * stride (0: broadcast over the batch). */
static int prepare_operand(dpl_device *dev, const dpl_tensor *t, int64_t batch, int64_t bs, int64_t lines, int64_t ls,
                           int64_t len, int64_t es, packed_operand *out) {
  int64_t nb = bs == 0 ? 1 : batch, off = t->offset;
  int64_t len4 = cdiv(len, 4);
  memset(out, 0, sizeof *out);
  out->lines = lines;
  out->vlen = 4 * len4;
  if (lines == 1) ls = 0;
  if (nb == 1) bs = 0;
  /* the storage's own offset is a multiple of the allocator's alignment (>= 16 bytes), so element offsets decide */
  if (len % 4 == 0 && es == 1 && off % 4 == 0 && ls % 4 == 0 && bs % 4 == 0 && ls >= 0 && bs >= 0) {
    out->storage = t->storage;
    out->off = off;
    out->ls = ls;
    out->bs = bs;
    return DPL_OK;
  }
  int64_t numel = nb * lines * out->vlen;
  int cls = dpl_device_set_alloc_class(dev, 0);
  out->temp = dpl_tensor_alloc_like_shape(dev, 1, &numel);
  dpl_device_set_alloc_class(dev, cls);
  if (!out->temp) return dpl_last_status();
  out->storage = out->temp->storage;
  out->off = out->temp->offset;
  out->ls = out->vlen;
  out->bs = nb > 1 ? lines * out->vlen : 0;
  pack_job j = {t->storage, off, bs, ls, es, lines, len, len4, out->storage, out->off};
  return pack_part(dev, &j, 0, nb, 0, lines, 0, len4);
}

/* ---- the product ------------------------------------------------------------------------------------------------ */
typedef struct gemm_job {
  const dpl_gemm_args *g;
  packed_operand a, b;
} gemm_job;

static int gemm_part(dpl_device *dev, const gemm_job *j, int64_t b0, int64_t nb, int64_t r0, int64_t nr, int64_t c0,
                     int64_t nc) {
  vk_device *v = vkdev(dev);
  const dpl_gemm_args *g = j->g;
  const int64_t wg_rows = TEX_WG_ROWS, wg_cols = TEX_WG_COLS;
  int64_t c_lo = g->c->offset + b0 * g->c_bs + r0 * g->c_rs + c0 * g->c_cs;
  int64_t c_hi = c_lo + (nb - 1) * g->c_bs + (nr - 1) * g->c_rs + (nc - 1) * g->c_cs;
  int64_t a_lo = j->a.off + b0 * j->a.bs + r0 * j->a.ls;
  int64_t a_hi = a_lo + (nb - 1) * j->a.bs + (nr - 1) * j->a.ls + j->a.vlen - 1;
  int64_t b_lo = j->b.off + b0 * j->b.bs + c0 * j->b.ls;
  int64_t b_hi = b_lo + (nb - 1) * j->b.bs + (nc - 1) * j->b.ls + j->b.vlen - 1;
  int64_t gx = cdiv(nc, wg_cols), gy = cdiv(nr, wg_rows);
  int c_fits = c_hi - c_lo + 1 <= texel_limit(v, 1);
  int a_fits = cdiv(a_hi - a_lo + 1, 4) <= texel_limit(v, 4);
  int b_fits = cdiv(b_hi - b_lo + 1, 4) <= texel_limit(v, 4);
  if (nb > 1 && (nb > MAX_GROUPS || !c_fits || !a_fits || !b_fits)) {
    int64_t h = nb / 2;
    int rc = gemm_part(dev, j, b0, h, r0, nr, c0, nc);
    return rc ? rc : gemm_part(dev, j, b0 + h, nb - h, r0, nr, c0, nc);
  }
  /* rows for A or the grid's row count, columns for B or its column count; for C the dim that spans more of it.
   * Split points stay multiples of the workgroup tile. */
  int can_rows = nr > wg_rows, can_cols = nc > wg_cols;
  int want_rows = gy > MAX_GROUPS || !a_fits, want_cols = gx > MAX_GROUPS || !b_fits;
  if (!c_fits && !want_rows && !want_cols) {
    if ((nr - 1) * g->c_rs >= (nc - 1) * g->c_cs ? can_rows : !can_cols) want_rows = 1;
    else want_cols = 1;
  }
  if (want_rows && can_rows) {
    int64_t h = imax64(wg_rows, nr / 2 / wg_rows * wg_rows);
    int rc = gemm_part(dev, j, b0, nb, r0, h, c0, nc);
    return rc ? rc : gemm_part(dev, j, b0, nb, r0 + h, nr - h, c0, nc);
  }
  if (want_cols && can_cols) {
    int64_t h = imax64(wg_cols, nc / 2 / wg_cols * wg_cols);
    int rc = gemm_part(dev, j, b0, nb, r0, nr, c0, h);
    return rc ? rc : gemm_part(dev, j, b0, nb, r0, nr, c0 + h, nc - h);
  }
  if (want_rows || want_cols)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "matmul: a block of %lldx%lld (k %lld) exceeds one binding", (long long)nr,
                    (long long)nc, (long long)g->k);
  vk_binding b[3];
  uint32_t c_elem, a_elem, b_elem;
  int rc = vk_bind(dev, g->c->storage, c_lo, c_hi, 1, &b[0], &c_elem);
  if (!rc) rc = vk_bind(dev, j->a.storage, a_lo, a_hi, 0, &b[1], &a_elem);
  if (!rc) rc = vk_bind(dev, j->b.storage, b_lo, b_hi, 0, &b[2], &b_elem);
  if (rc) return rc;
  /* C a vec4 (4 columns) at a time: contiguous columns, and the block's start, rows and batches on vec4 bounds */
  int c4 = nc % 4 == 0 && (nc == 1 || g->c_cs == 1) && (nr == 1 || g->c_rs % 4 == 0) &&
           (nb == 1 || g->c_bs % 4 == 0) && c_elem % 4 == 0;
  b[0].texel = c4 ? 4 : 1;
  b[1].texel = 4;
  b[2].texel = 4;
  int cq = c4 ? 4 : 1;   /* C's offsets and strides in its texels */
  texel_params pc = {(int32_t)nr, (int32_t)nc, (int32_t)(j->a.vlen / 4),
                     (int32_t)(a_elem / 4), (int32_t)(j->a.ls / 4), (int32_t)(nb > 1 ? j->a.bs / 4 : 0),
                     (int32_t)(b_elem / 4), (int32_t)(j->b.ls / 4), (int32_t)(nb > 1 ? j->b.bs / 4 : 0),
                     (int32_t)c_elem / cq, (int32_t)(nr > 1 ? g->c_rs / cq : 0), (int32_t)(nc > 1 ? g->c_cs : 0),
                     (int32_t)(nb > 1 ? g->c_bs / cq : 0), g->alpha, g->beta};
  /* grid x walks the row blocks (see the shader) */
  return vk_dispatch(dev, c4 ? DPL_SHADER_MATMUL_TEXEL_C4 : DPL_SHADER_MATMUL_TEXEL, NULL, 0, b, 3, &pc, sizeof pc,
                     (uint32_t)gy, (uint32_t)gx, (uint32_t)nb);
}

/* Outputs computed, counting the padding of partial workgroup tiles. */
static double padded_work(int64_t m, int64_t n) {
  return (double)(cdiv(m, TEX_WG_ROWS) * TEX_WG_ROWS) * (double)(cdiv(n, TEX_WG_COLS) * TEX_WG_COLS);
}

bool vk_gemm_texel_turns(int64_t m, int64_t n) { return padded_work(n, m) < padded_work(m, n); }

/* Whether C can be written a vec4 at a time in this orientation (see gemm_part). */
static int c_vec4(int64_t n, int64_t c_rs, int64_t c_cs, int64_t c_bs, int64_t batch, int64_t m, int64_t c_off) {
  return n % 4 == 0 && (n == 1 || c_cs == 1) && (m == 1 || c_rs % 4 == 0) && (batch == 1 || c_bs % 4 == 0) &&
         c_off % 4 == 0;
}

int vk_gemm_texel(dpl_device *dev, const dpl_gemm_args *g0) {
  /* The kernel treats A and B alike (both as lines along k), so C^T = B^T A^T costs the same: take the orientation
   * that wastes less of the 16 x 128 workgroup tile (a product with few columns and many rows, say). */
  dpl_gemm_args swapped = *g0;
  /* vec4 stores of C save more than a little tile waste (up to 1.5x) costs: small-k products are store-bound */
  double straight = padded_work(g0->m, g0->n), turned = padded_work(g0->n, g0->m);
  int v_straight = c_vec4(g0->n, g0->c_rs, g0->c_cs, g0->c_bs, g0->batch, g0->m, g0->c->offset);
  int v_turned = c_vec4(g0->m, g0->c_cs, g0->c_rs, g0->c_bs, g0->batch, g0->n, g0->c->offset);
  if (v_straight && !v_turned) turned *= 1.5;
  if (v_turned && !v_straight) straight *= 1.5;
  if (turned < straight) {
    swapped.m = g0->n; swapped.n = g0->m;
    swapped.a = g0->b; swapped.a_bs = g0->b_bs; swapped.a_rs = g0->b_cs; swapped.a_cs = g0->b_rs;
    swapped.b = g0->a; swapped.b_bs = g0->a_bs; swapped.b_rs = g0->a_cs; swapped.b_cs = g0->a_rs;
    swapped.c_rs = g0->c_cs; swapped.c_cs = g0->c_rs;
  }
  const dpl_gemm_args *g = &swapped;
  gemm_job j = {g, {0}, {0}};
  /* A and B^T: m and n lines along k, in place when they are so already, else packed. (Reading a row-major B in
   * place with r32f gathers instead of packing it was tried: 4% faster at 1024, 6% slower at 2048. Reading it with a
   * kernel vectorized along n would avoid the pack for products with few rows: not done.) */
  int rc = prepare_operand(dev, g->a, g->batch, g->a_bs, g->m, g->a_rs, g->k, g->a_cs, &j.a);
  if (!rc) rc = prepare_operand(dev, g->b, g->batch, g->b_bs, g->n, g->b_cs, g->k, g->b_rs, &j.b);
  if (!rc) rc = gemm_part(dev, &j, 0, g->batch, 0, g->m, 0, g->n);
  /* the temporaries' memory is released once the command buffer that reads them has finished */
  dpl_tensor_free(j.a.temp);
  dpl_tensor_free(j.b.temp);
  return rc;
}
