/* spatial_vulkan.c - the spatial ops (pooling, padding, resizing) on Vulkan: shaders/spatial2d.comp runs the per-axis
 * tables built by ops/spatial.c, one invocation per run of up to SPATIAL_TX destination elements of a row (fewer for
 * narrow outputs), gathering (backward passes included, so no two invocations write the same element and nothing
 * races). Bindings are limited to maxStorageBufferRange (128 MiB on lavapipe): the planes (N * C) are split into
 * chunks whose source, destination and index ranges fit; a single plane larger than one binding is an error.
 * DPL_VK_SPATIAL_MAX_PLANES=n caps the planes per dispatch (for tests of the split). */
#include "vk_internal.h"
#include <stdlib.h>
#include <string.h>

enum { SPATIAL_LOCAL = 64, SPATIAL_TX = 8 };   /* invocations per workgroup, outputs per invocation */

/* mirrors Params in shaders/spatial2d.comp */
typedef struct spatial_params {
  uint32_t planes, sh, sw, dh, dw;
  uint32_t dst_off, src_off, idx_off, tab_off;
  uint32_t ptr_y, ptr_x, ent_y, ent_x;
  uint32_t fill;
  float value;
} spatial_params;

int vk_op_spatial2d(dpl_device *dev, const dpl_spatial_args *a) {
  vk_device *v = vkdev(dev);
  int64_t splane = a->sh * a->sw, dplane = a->dh * a->dw;
  int64_t iplane = a->mode == DPL_SPATIAL_MAX ? dplane : a->mode == DPL_SPATIAL_MAX_GRAD ? splane : 0;
  int64_t big = splane > dplane ? splane : dplane;
  int64_t max_elems = (int64_t)((v->max_binding - v->alignment) / 4);
  int64_t tab_n = dpl_tensor_numel(a->table);
  if (big > max_elems || tab_n > max_elems)
    return dpl_fail(DPL_ERR_UNSUPPORTED,
                    "one %s plane (%lld x %lld = %lld MiB) exceeds the device's maximum binding (%llu MiB)",
                    splane >= dplane ? "input" : "output", (long long)(splane >= dplane ? a->sh : a->dh),
                    (long long)(splane >= dplane ? a->sw : a->dw), (long long)(big >> 18),
                    (unsigned long long)(v->max_binding >> 20));
  /* planes per dispatch: the bindings fit, and the flat invocation index stays below 2^30 */
  int64_t per = max_elems / (big > 0 ? big : 1);
  if (dplane > 0 && per > (INT64_C(1) << 30) / dplane) per = (INT64_C(1) << 30) / dplane;
  if (per < 1)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "an output plane of %lld x %lld is too large for one dispatch",
                    (long long)a->dh, (long long)a->dw);
  long long cap = dpl_env_int("DPL_VK_SPATIAL_MAX_PLANES", 0);   /* testing: force the plane split */
  if (cap > 0 && per > cap) per = cap;
  /* outputs per invocation: up to SPATIAL_TX, fewer for narrow outputs (a power of two >= dw) */
  uint32_t tx = 1;
  while (tx < SPATIAL_TX && tx < a->dw) tx *= 2;
  uint32_t spec[3] = {SPATIAL_LOCAL, (uint32_t)a->mode, tx};
  for (int64_t p0 = 0; p0 < a->planes; p0 += per) {
    int64_t np = a->planes - p0 < per ? a->planes - p0 : per;
    spatial_params pc;
    memset(&pc, 0, sizeof pc);
    pc.planes = (uint32_t)np;
    pc.sh = (uint32_t)a->sh; pc.sw = (uint32_t)a->sw;
    pc.dh = (uint32_t)a->dh; pc.dw = (uint32_t)a->dw;
    pc.ptr_y = (uint32_t)a->ptr_y; pc.ptr_x = (uint32_t)a->ptr_x;
    pc.ent_y = (uint32_t)a->ent_y; pc.ent_x = (uint32_t)a->ent_x;
    pc.fill = (uint32_t)a->fill;
    pc.value = a->value;
    vk_binding b[4];
    int64_t d_lo = a->dst->offset + p0 * dplane, s_lo = a->src->offset + p0 * splane;
    int rc = vk_bind(dev, a->dst->storage, d_lo, d_lo + np * dplane - 1, 1, &b[0], &pc.dst_off);
    if (!rc) rc = vk_bind(dev, a->table->storage, a->table->offset, a->table->offset + tab_n - 1, 0, &b[2], &pc.tab_off);
    if (!rc) {
      if (splane > 0) rc = vk_bind(dev, a->src->storage, s_lo, s_lo + np * splane - 1, 0, &b[1], &pc.src_off);
      else b[1] = b[2];   /* an empty source (constant padding of an empty input): nothing is read */
    }
    if (!rc) {
      if (iplane > 0) {
        int64_t i_lo = a->idx->offset + p0 * iplane;
        rc = vk_bind(dev, a->idx->storage, i_lo, i_lo + np * iplane - 1, a->mode == DPL_SPATIAL_MAX, &b[3], &pc.idx_off);
      } else {
        b[3] = b[2];      /* unused */
      }
    }
    if (rc) return rc;
    uint64_t invocations = (uint64_t)(np * a->dh * ((a->dw + tx - 1) / tx));
    uint64_t groups = (invocations + SPATIAL_LOCAL - 1) / SPATIAL_LOCAL;
    uint32_t gx = groups > 65535 ? 65535 : (uint32_t)groups, gy = (uint32_t)((groups + gx - 1) / gx);
    rc = vk_dispatch(dev, DPL_SHADER_SPATIAL2D, spec, 3, b, 4, &pc, sizeof pc, gx, gy, 1);
    if (rc) return rc;
  }
  return DPL_OK;
}
