/* conv_tiled.c - the GPU family: convolution forward, input gradient and weight gradient as implicit GEMMs in
 * shared-memory workgroup tiles (shaders/conv2d_tiled.comp over common/gemm_tile.glsl), and the tile shapes both it
 * and the tiled matrix product (gemm_tiled.c) choose from.
 *
 * Per group, the forward is O/g x (n*oh*ow) outputs summed over C/g*kh*kw; the input gradient C/g x (n*h*w) over
 * O/g*kh*kw; the weight gradient O/g x (C/g*kh*kw) over n*oh*ow pixels, a long sum with few outputs, so it is split
 * into slices of pixels whose partial sums go to a temporary and are then added up (a reduction), which keeps a GPU
 * busy. Bindings over maxStorageBufferRange (128 MiB on lavapipe) are avoided by chunks of images, as the direct
 * kernels do; the weight gradient accumulates over the chunks.
 *
 * Untested on GPU hardware so far (no GPU was available where this was written): correct on lavapipe, where
 * DPL_VK_CONV=tiled forces it in the tests, but its speed there says nothing (shared memory is slow on CPU drivers). */
#include "vk_internal.h"
#include <string.h>


enum { FLAG_BIAS = 1, FLAG_ACCUMULATE = 2 };

/* Tile shapes, largest first: block rows x columns x k-slice, and each thread's register block (threads =
 * (bm / tm) * (bn / tn)). */
static const vk_tile TILES[] = {
  {128, 128, 8, 8, 8},   /* large products on discrete GPUs: 256 threads, 64 accumulators each, 8.5 KiB shared */
  {64, 64, 16, 4, 4},    /* mid-size layers: 256 threads, 16 accumulators, 8.5 KiB */
  {32, 32, 16, 2, 2},    /* few rows or columns (small layers): 256 threads */
  {16, 16, 16, 2, 2},    /* tiny products (batches of small matrices): 64 threads */
};
enum { NTILES = sizeof TILES / sizeof TILES[0], TILE_PAD = 4 };
/* enough workgroups to fill a large GPU (and to hide memory latency) */
enum { TARGET_BLOCKS = 256 };

static uint32_t threads(const vk_tile *t) { return (t->bm / t->tm) * (t->bn / t->tn); }
static uint64_t shared_bytes(const vk_tile *t) { return 4ull * t->bk * (t->bm + t->bn + 2 * TILE_PAD); }

static bool tile_fits(vk_device *v, const vk_tile *t) {
  return shared_bytes(t) <= v->shared_memory && threads(t) <= v->props.limits.maxComputeWorkGroupInvocations &&
         threads(t) <= v->props.limits.maxComputeWorkGroupSize[0];
}

bool vk_tiled_supported(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  return tile_fits(v, &TILES[NTILES - 1]);
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The tile for an m x n product (times `batches` independent ones): the largest that still gives TARGET_BLOCKS
 * workgroups, else the one giving the most; a tile whose block would be more than 3/4 idle (m and n both under half
 * of it) is passed over for a smaller one. DPL_VK_TILE=0|1|2|3 forces one (tests, tuning). */
const vk_tile *vk_choose_tile(dpl_device *dev, int64_t m, int64_t n, int64_t batches) {
  vk_device *v = vkdev(dev);
  long long forced = dpl_env_int("DPL_VK_TILE", -1);
  if (forced >= 0 && forced < NTILES && tile_fits(v, &TILES[forced])) return &TILES[forced];
  const vk_tile *best = NULL;
  int64_t best_blocks = -1;
  for (int i = 0; i < NTILES; i++) {
    const vk_tile *t = &TILES[i];
    if (!tile_fits(v, t)) continue;
    if (i + 1 < NTILES && 2 * m < t->bm && 2 * n < t->bn) continue;
    int64_t blocks = cdiv(m, t->bm) * cdiv(n, t->bn) * batches;
    if (blocks >= TARGET_BLOCKS) return t;
    if (blocks > best_blocks) { best = t; best_blocks = blocks; }
  }
  return best;
}

void vk_tile_spec(const vk_tile *t, uint32_t *spec) {
  spec[0] = threads(t);
  spec[1] = t->bm; spec[2] = t->bn; spec[3] = t->bk; spec[4] = t->tm; spec[5] = t->tn; spec[6] = TILE_PAD;
}

static dpl_tensor *temp(dpl_device *dev, int64_t floats) {
  int cls = dpl_device_set_alloc_class(dev, 0);
  dpl_tensor *t = dpl_tensor_alloc_like_shape(dev, 1, &floats);
  dpl_device_set_alloc_class(dev, cls);
  return t;
}

int vk_conv_tiled(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  vk_device *v = vkdev(dev);
  static const char *names[3] = {"conv2d", "conv2d_backward_input", "conv2d_backward_weight"};
  const char *fn = names[kind];
  int64_t cg = a->c / a->groups, og = a->o / a->groups, kk = a->kh * a->kw;
  int64_t in_img = a->c * a->h * a->w, out_img = a->o * a->oh * a->ow, ohw = a->oh * a->ow, hw = a->h * a->w;
  int64_t wsize = a->o * cg * kk;
  int64_t max_elems = (int64_t)((v->max_binding - v->alignment) / 4);
  int64_t big = in_img > out_img ? in_img : out_img;
  if (wsize > max_elems || big > max_elems)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: the %s exceeds the device's maximum binding (%llu MiB)", fn,
                    wsize > max_elems ? "weight" : "data of one image", (unsigned long long)(v->max_binding >> 20));

  /* the product's shape for one image, and the tile */
  int64_t m = kind == VK_CONV_BACKWARD_INPUT ? cg : og;
  int64_t n_img = kind == VK_CONV_FORWARD ? ohw : kind == VK_CONV_BACKWARD_INPUT ? hw : cg * kk;
  const vk_tile *t = vk_choose_tile(dev, m, kind == VK_CONV_BACKWARD_WEIGHT ? n_img : n_img * a->n, a->groups);
  if (!t) return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: no workgroup tile fits this device", fn);

  /* images per dispatch: bindings fit, the column blocks fit the grid, and 32-bit indices stay exact */
  int64_t per = max_elems / big;
  if (kind != VK_CONV_BACKWARD_WEIGHT) {
    int64_t cols_limit = (int64_t)v->props.limits.maxComputeWorkGroupCount[0] * t->bn;
    if (per > cols_limit / n_img) per = cols_limit / n_img;
  }
  if (per > (INT64_C(1) << 30) / big) per = (INT64_C(1) << 30) / big;
  long long cap = dpl_env_int("DPL_VK_CONV_MAX_IMAGES", 0);   /* testing: force the split over images */
  if (cap > 0 && per > cap) per = cap;
  if (per < 1) return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: one image is too large for one dispatch", fn);

  /* the weight gradient: slices of pixels, and their partial sums in a temporary when there are several */
  int64_t splits = 1, kchunk = 0;
  dpl_tensor *partial = NULL;
  if (kind == VK_CONV_BACKWARD_WEIGHT) {
    int64_t blocks = cdiv(og, t->bm) * cdiv(n_img, t->bn) * a->groups;
    int64_t pixels = (a->n < per ? a->n : per) * ohw;
    splits = cdiv(TARGET_BLOCKS, blocks);
    int64_t by_work = pixels / (8 * t->bk);                       /* at least 8 k-slices of work each */
    int64_t by_memory = (INT64_C(32) << 20) / (wsize > 0 ? wsize : 1);   /* partial sums up to 128 MB */
    int64_t by_grid = (int64_t)v->props.limits.maxComputeWorkGroupCount[2] / a->groups;
    if (splits > by_work) splits = by_work;
    if (splits > by_memory) splits = by_memory;
    if (splits > by_grid) splits = by_grid;
    if (splits * wsize > max_elems) splits = max_elems / wsize;
    if (splits < 1) splits = 1;
    if (splits > 1 && !(partial = temp(dev, splits * wsize))) return dpl_last_status();
  }

  uint32_t spec[9];
  vk_tile_spec(t, spec);
  spec[7] = (uint32_t)kind;
  int rc = DPL_OK;
  for (int64_t n0 = 0; n0 < a->n && !rc; n0 += per) {
    int64_t nb = a->n - n0 < per ? a->n - n0 : per;
    vk_conv_params pc;
    memset(&pc, 0, sizeof pc);
    pc.n = (uint32_t)nb; pc.c = (uint32_t)a->c; pc.h = (uint32_t)a->h; pc.w = (uint32_t)a->w;
    pc.o = (uint32_t)a->o; pc.oh = (uint32_t)a->oh; pc.ow = (uint32_t)a->ow; pc.groups = (uint32_t)a->groups;
    pc.kh = (uint32_t)a->kh; pc.kw = (uint32_t)a->kw; pc.sh = (uint32_t)a->stride_h; pc.sw = (uint32_t)a->stride_w;
    pc.ph = (uint32_t)a->pad_h; pc.pw = (uint32_t)a->pad_w; pc.dh = (uint32_t)a->dil_h; pc.dw = (uint32_t)a->dil_w;
    pc.splits = 1;
    const dpl_tensor *in = a->input, *w = a->weight, *out = a->output;
    int64_t in_lo = in->offset + n0 * in_img, out_lo = out->offset + n0 * out_img;
    vk_binding b[4];
    int64_t ncols;
    if (kind == VK_CONV_FORWARD) {
      rc = vk_bind(dev, out->storage, out_lo, out_lo + nb * out_img - 1, 1, &b[0], &pc.out_off);
      if (!rc) rc = vk_bind(dev, in->storage, in_lo, in_lo + nb * in_img - 1, 0, &b[1], &pc.a_off);
      if (!rc) rc = vk_bind(dev, w->storage, w->offset, w->offset + wsize - 1, 0, &b[2], &pc.b_off);
      if (!rc) {
        const dpl_tensor *bias = a->bias ? a->bias : w;   /* an unused binding when there is no bias */
        rc = vk_bind(dev, bias->storage, bias->offset, bias->offset + (a->bias ? a->o : 1) - 1, 0, &b[3], &pc.bias_off);
      }
      pc.flags = (a->bias ? FLAG_BIAS : 0) | (uint32_t)a->act << 8;
      spec[8] = pc.b_off % 4 == 0 && (cg * kk) % 4 == 0;   /* weight rows as vec4s */
      ncols = nb * ohw;
    } else if (kind == VK_CONV_BACKWARD_INPUT) {
      rc = vk_bind(dev, in->storage, in_lo, in_lo + nb * in_img - 1, 1, &b[0], &pc.out_off);
      if (!rc) rc = vk_bind(dev, out->storage, out_lo, out_lo + nb * out_img - 1, 0, &b[1], &pc.a_off);
      if (!rc) rc = vk_bind(dev, w->storage, w->offset, w->offset + wsize - 1, 0, &b[2], &pc.b_off);
      spec[8] = 0;
      ncols = nb * hw;
    } else {
      const dpl_tensor *dst = partial ? partial : w;
      int64_t dst_n = partial ? splits * wsize : wsize;
      rc = vk_bind(dev, dst->storage, dst->offset, dst->offset + dst_n - 1, 1, &b[0], &pc.out_off);
      if (!rc) rc = vk_bind(dev, in->storage, in_lo, in_lo + nb * in_img - 1, 0, &b[1], &pc.a_off);
      if (!rc) rc = vk_bind(dev, out->storage, out_lo, out_lo + nb * out_img - 1, 0, &b[2], &pc.b_off);
      pc.flags = n0 > 0 ? FLAG_ACCUMULATE : 0;
      /* slices of a multiple of the k-slice, so that only the last one ends inside a tile */
      kchunk = cdiv(cdiv(nb * ohw, splits), t->bk) * t->bk;
      pc.splits = (uint32_t)splits;
      pc.kchunk = (uint32_t)kchunk;
      spec[8] = pc.b_off % 4 == 0 && ohw % 4 == 0;   /* grad_output rows as vec4s */
      ncols = n_img;
    }
    if (rc) break;
    if (kind != VK_CONV_FORWARD) b[3] = b[2];   /* the shader declares the bias binding in every mode: a stand-in */
    uint32_t gx = (uint32_t)cdiv(ncols, t->bn), gy = (uint32_t)cdiv(m, t->bm), gz = (uint32_t)(a->groups * splits);
    rc = vk_dispatch(dev, vk_half_tiles(dev) ? DPL_SHADER_CONV2D_TILED_HALF : DPL_SHADER_CONV2D_TILED, spec, 9, b, 4,
                     &pc, sizeof pc, gx, gy, gz);
  }
  if (!rc && partial) {   /* the weight gradient: the sum of the slices' partial sums */
    dpl_reduce_args ra = {DPL_SUM, 0, 1, splits, wsize};
    rc = dev->backend->reduce(dev, &ra, a->weight, partial);
  }
  dpl_tensor_free(partial);
  return rc;
}
