/* weight_cache.c - device tensors derived from weights (Winograd-transformed kernels), kept between calls.
 *
 * A frozen loss network runs the same weights pass after pass, and transforming VGG-16's 512 x 512 kernels costs
 * about as much as the layer's own product. An entry is keyed by the weights' storage (its id, never reused, and the
 * offset), a kind, a variant and a size, and is valid for the storage's version: every op that writes a storage bumps
 * its version first (dpl_storage_written), so weights changed in any way (an optimizer step, copy_, load_state_dict)
 * never meet stale derived data. An entry whose weights keep changing (training) stops being cached, so training
 * does not hold a second copy of every weight. The budget is DPL_VK_KERNEL_CACHE_MB (default 512; 0 turns the cache
 * off), least recently used dropped first. (The CPU backend's cpu/kernel_cache.c does the same for host data.) */
#include "vk_internal.h"
#include <stdlib.h>

enum { VOLATILE_AFTER = 2 };

struct vk_wentry {
  uint64_t storage_id, version;    /* storage_id 0: a free slot */
  int64_t offset, floats;
  int kind;
  uint64_t variant;
  bool is_volatile;
  int changes;
  dpl_tensor *data;                /* NULL for a volatile marker */
  uint64_t used;
};

static int64_t capacity_bytes(void) { return (int64_t)dpl_env_megabytes("DPL_VK_KERNEL_CACHE_MB", 512); }

static void entry_drop(vk_device *v, vk_wentry *e) {
  if (e->data) {
    v->wcache_bytes -= e->floats * 4;
    dpl_tensor_free(e->data);   /* its memory returns once the GPU work that reads it has finished */
  }
  e->data = NULL;
}

/* a slot for a new entry of `bytes` (least recently used entries dropped to make room), or NULL */
static vk_wentry *claim(vk_device *v, int64_t bytes, int64_t cap) {
  if (bytes > cap) return NULL;
  while (v->wcache_bytes + bytes > cap) {
    vk_wentry *lru = NULL;
    for (int i = 0; i < VK_WCACHE_SLOTS; i++)
      if (v->wcache[i].data && (!lru || v->wcache[i].used < lru->used)) lru = &v->wcache[i];
    if (!lru) break;
    entry_drop(v, lru);
    lru->storage_id = 0;
  }
  vk_wentry *slot = NULL;
  for (int i = 0; i < VK_WCACHE_SLOTS && !slot; i++)
    if (!v->wcache[i].storage_id) slot = &v->wcache[i];
  if (!slot)   /* every slot taken: the least recently used goes */
    for (int i = 0; i < VK_WCACHE_SLOTS; i++)
      if (!slot || v->wcache[i].used < slot->used) slot = &v->wcache[i];
  entry_drop(v, slot);
  return slot;
}

void vk_weight_cache_release(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  if (!v->wcache) return;
  for (int i = 0; i < VK_WCACHE_SLOTS; i++) entry_drop(v, &v->wcache[i]);
  free(v->wcache);
  v->wcache = NULL;
}

static dpl_tensor *alloc_derived(dpl_device *dev, int64_t floats, int pool) {
  int cls = dpl_device_set_alloc_class(dev, pool);
  dpl_tensor *t = dpl_tensor_alloc_like_shape(dev, 1, &floats);
  dpl_device_set_alloc_class(dev, cls);
  return t;
}

dpl_tensor *vk_derived_weight(dpl_device *dev, const dpl_tensor *w, int kind, uint64_t variant, int64_t floats,
                              vk_derive_fn derive, void *ctx, bool *owned) {
  vk_device *v = vkdev(dev);
  const uint64_t id = w->storage->id, version = __atomic_load_n(&w->storage->version, __ATOMIC_RELAXED);
  int64_t cap = capacity_bytes();
  *owned = false;
  if (cap > 0 && !v->wcache) v->wcache = calloc(VK_WCACHE_SLOTS, sizeof *v->wcache);
  if (cap > 0 && v->wcache) {
    vk_wentry *e = NULL;
    for (int i = 0; i < VK_WCACHE_SLOTS && !e; i++) {
      vk_wentry *c = &v->wcache[i];
      if (c->storage_id == id && c->offset == w->offset && c->kind == kind && c->variant == variant &&
          c->floats == floats)
        e = c;
    }
    if (e && !e->is_volatile && e->data && e->version == version) {
      e->used = ++v->wcache_tick;
      return e->data;
    }
    if (e && !e->is_volatile && ++e->changes >= VOLATILE_AFTER) {   /* trained weights: stop caching them */
      entry_drop(v, e);
      e->is_volatile = true;
    }
    if (!e && (e = claim(v, floats * 4, cap)) != NULL)
      *e = (vk_wentry){.storage_id = id, .offset = w->offset, .kind = kind, .variant = variant, .floats = floats};
    if (e && !e->is_volatile) {
      if (!e->data) {
        e->data = alloc_derived(dev, floats, 1);   /* cached: the long-lived weight pool */
        if (!e->data) { e->storage_id = 0; return NULL; }
        v->wcache_bytes += floats * 4;
      }
      int rc = derive(dev, w, e->data, ctx);
      if (rc) { entry_drop(v, e); e->storage_id = 0; return NULL; }
      e->version = version;
      e->used = ++v->wcache_tick;
      return e->data;
    }
    if (e) e->used = ++v->wcache_tick;
  }
  dpl_tensor *t = alloc_derived(dev, floats, 0);   /* used once: with the activations */
  if (!t) return NULL;
  if (derive(dev, w, t, ctx)) { dpl_tensor_free(t); return NULL; }
  *owned = true;
  return t;
}
