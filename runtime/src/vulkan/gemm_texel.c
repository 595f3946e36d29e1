/* gemm_texel.c - the matrix product for CPU Vulkan drivers (lavapipe/llvmpipe), see shared/spec/lavapipe.md.
 *
 * shaders/matmul_texel.comp reads both operands as vec4s along k through rgba32f storage texel buffers: A as m rows of
 * k4 = ceil(k / 4) vec4s, B transposed (n rows of k4 vec4s), zero-padded in k. An operand already in that layout (unit
 * stride along k, k, row/batch strides and offset multiples of 4 elements) is bound in place; any other is first
 * repacked into a temporary tensor by shaders/matmul_pack.comp (the cost is O(mk + kn) against the product's O(mnk)).
 * C is written through an r32f texel buffer with its own strides, so it never needs a copy.
 * Work whose bindings would exceed maxStorageBufferRange / maxTexelBufferElements, or whose grid would exceed
 * maxComputeWorkGroupCount, is split over batches, then rows, then columns. */
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
  int32_t dst_off, dst_bs;
} pack_params;

/* The kernel's tile (the TM, TN, LN defaults of shaders/matmul_texel.comp): TM x TN outputs per invocation, LN
 * invocations along n. */
enum { TEX_TM = 16, TEX_TN = 16, TEX_LN = 8, TEX_WG_ROWS = (8 / TEX_LN) * TEX_TM, TEX_WG_COLS = TEX_LN * TEX_TN };

enum { PACK_LOCAL = 64, MAX_GROUPS = 65535 };

/* Products smaller than this (m * n * k) go to the portable kernel unless DPL_VK_MATMUL=texel. */
static const double TEXEL_MIN_WORK = 48.0 * 48.0 * 48.0;

int vk_gemm_use_texel(dpl_device *dev, const dpl_gemm_args *g) {
  const char *e = getenv("DPL_VK_MATMUL");
  if (e && !strcmp(e, "portable")) return 0;
  if (e && !strcmp(e, "texel")) return 1;
  if (vkdev(dev)->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU) return 0;
  return (double)g->m * (double)g->n * (double)g->k >= TEXEL_MIN_WORK;
}

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

/* A strided source matrix (batch x rows x cols, cols along the vectorized dim) and where its packed form goes. */
typedef struct pack_job {
  dpl_storage *src;
  int64_t src_off, src_bs, src_rs, src_cs, rows, cols, cols4;
  dpl_storage *dst;
  int64_t dst_off;                   /* element offset of the packed batch 0 */
} pack_job;

static int pack_part(dpl_device *dev, const pack_job *j, int64_t b0, int64_t nb, int64_t r0, int64_t nr) {
  vk_device *v = vkdev(dev);
  int64_t src_lo = j->src_off + b0 * j->src_bs + r0 * j->src_rs;
  int64_t src_hi = src_lo + (nb - 1) * j->src_bs + (nr - 1) * j->src_rs + (j->cols - 1) * j->src_cs;
  int64_t dst_lo = j->dst_off + (b0 * j->rows + r0) * j->cols4 * 4;
  int64_t dst_vec4 = ((nb - 1) * j->rows + nr) * j->cols4;
  uint64_t groups = (uint64_t)cdiv(nr * j->cols4, PACK_LOCAL);
  int fit = src_hi - src_lo + 1 <= texel_limit(v, 1) && dst_vec4 <= texel_limit(v, 4) && nb <= MAX_GROUPS &&
            groups <= (uint64_t)MAX_GROUPS * MAX_GROUPS;
  if (!fit) {
    if (nb > 1) {
      int64_t h = nb / 2;
      int rc = pack_part(dev, j, b0, h, r0, nr);
      return rc ? rc : pack_part(dev, j, b0 + h, nb - h, r0, nr);
    }
    if (nr > 1) {
      int64_t h = nr / 2;
      int rc = pack_part(dev, j, b0, nb, r0, h);
      return rc ? rc : pack_part(dev, j, b0, nb, r0 + h, nr - h);
    }
    return dpl_fail(DPL_ERR_UNSUPPORTED, "matmul: a row of %lld elements exceeds one binding", (long long)j->cols);
  }
  vk_binding b[2];
  uint32_t dst_elem, src_elem;
  int rc = vk_bind(dev, j->dst, dst_lo, dst_lo + dst_vec4 * 4 - 1, 1, &b[0], &dst_elem);
  if (!rc) rc = vk_bind(dev, j->src, src_lo, src_hi, 0, &b[1], &src_elem);
  if (rc) return rc;
  b[0].texel = 4;
  b[1].texel = 1;
  pack_params pc = {(int32_t)nr, (int32_t)j->cols, (int32_t)j->cols4, (int32_t)src_elem,
                    (int32_t)(nr > 1 ? j->src_rs : 0), (int32_t)j->src_cs, (int32_t)(nb > 1 ? j->src_bs : 0),
                    (int32_t)(dst_elem / 4), (int32_t)(nb > 1 ? j->rows * j->cols4 : 0)};
  uint32_t gx = groups > MAX_GROUPS ? MAX_GROUPS : (uint32_t)groups;
  uint32_t gy = (uint32_t)cdiv((int64_t)groups, gx);
  return vk_dispatch(dev, DPL_SHADER_MATMUL_PACK, NULL, 0, b, 2, &pc, sizeof pc, gx, gy, (uint32_t)nb);
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
  return pack_part(dev, &j, 0, nb, 0, lines);
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
  /* split points stay multiples of the workgroup tile */
  if (nr > wg_rows && (gy > MAX_GROUPS || !a_fits || (!c_fits && (nc <= wg_cols || nr >= nc)))) {
    int64_t h = imax64(wg_rows, nr / 2 / wg_rows * wg_rows);
    int rc = gemm_part(dev, j, b0, nb, r0, h, c0, nc);
    return rc ? rc : gemm_part(dev, j, b0, nb, r0 + h, nr - h, c0, nc);
  }
  if (nc > wg_cols && (gx > MAX_GROUPS || !b_fits || !c_fits)) {
    int64_t h = imax64(wg_cols, nc / 2 / wg_cols * wg_cols);
    int rc = gemm_part(dev, j, b0, nb, r0, nr, c0, h);
    return rc ? rc : gemm_part(dev, j, b0, nb, r0, nr, c0 + h, nc - h);
  }
  if (!c_fits || !a_fits || !b_fits || gx > MAX_GROUPS || gy > MAX_GROUPS)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "matmul: a block of %lldx%lld (k %lld) exceeds one binding", (long long)nr,
                    (long long)nc, (long long)g->k);
  vk_binding b[3];
  uint32_t c_elem, a_elem, b_elem;
  int rc = vk_bind(dev, g->c->storage, c_lo, c_hi, 1, &b[0], &c_elem);
  if (!rc) rc = vk_bind(dev, j->a.storage, a_lo, a_hi, 0, &b[1], &a_elem);
  if (!rc) rc = vk_bind(dev, j->b.storage, b_lo, b_hi, 0, &b[2], &b_elem);
  if (rc) return rc;
  b[0].texel = 1;
  b[1].texel = 4;
  b[2].texel = 4;
  texel_params pc = {(int32_t)nr, (int32_t)nc, (int32_t)(j->a.vlen / 4),
                     (int32_t)(a_elem / 4), (int32_t)(j->a.ls / 4), (int32_t)(nb > 1 ? j->a.bs / 4 : 0),
                     (int32_t)(b_elem / 4), (int32_t)(j->b.ls / 4), (int32_t)(nb > 1 ? j->b.bs / 4 : 0),
                     (int32_t)c_elem, (int32_t)(nr > 1 ? g->c_rs : 0), (int32_t)(nc > 1 ? g->c_cs : 0),
                     (int32_t)(nb > 1 ? g->c_bs : 0), g->alpha, g->beta};
  /* grid x walks the row blocks (see the shader) */
  return vk_dispatch(dev, DPL_SHADER_MATMUL_TEXEL, NULL, 0, b, 3, &pc, sizeof pc, (uint32_t)gy, (uint32_t)gx,
                     (uint32_t)nb);
}

int vk_gemm_texel(dpl_device *dev, const dpl_gemm_args *g) {
  gemm_job j = {g, {0}, {0}};
  /* A and B^T: m and n lines along k */
  int rc = prepare_operand(dev, g->a, g->batch, g->a_bs, g->m, g->a_rs, g->k, g->a_cs, &j.a);
  if (!rc) rc = prepare_operand(dev, g->b, g->batch, g->b_bs, g->n, g->b_cs, g->k, g->b_rs, &j.b);
  if (!rc) rc = gemm_part(dev, &j, 0, g->batch, 0, g->m, 0, g->n);
  /* the temporaries' memory is released once the command buffer that reads them has finished */
  dpl_tensor_free(j.a.temp);
  dpl_tensor_free(j.b.temp);
  return rc;
}
