/* memory.c - block allocators for the Vulkan backend (ncnn's blob/weight/staging allocators in our own form).
 *
 * Each pool (activations, weights, staging) takes memory in large blocks, each one VkDeviceMemory with one VkBuffer
 * over it, and sub-allocates first-fit with merging of free neighbours. Blocks never exceed maxStorageBufferRange, so
 * any sub-allocation can be bound whole. A request larger than half a block gets a dedicated block of its own.
 * Memory that the GPU may still be using is released only after the command buffer that used it has finished. */
#include "vk_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static VkDeviceSize env_mib(const char *name, VkDeviceSize fallback) {
  long long v = dpl_env_int(name, 0);
  return v > 0 ? (VkDeviceSize)v << 20 : fallback;
}

static int find_memory_type(vk_device *v, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid) {
  for (uint32_t i = 0; i < v->memprops.memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = v->memprops.memoryTypes[i].propertyFlags;
    if ((f & want) == want && !(f & avoid)) return (int)i;
  }
  return -1;
}

int vk_memory_init(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  const VkPhysicalDeviceLimits *lim = &v->props.limits;
  int uma = v->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
            v->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  int force_staging = dpl_env_flag("DPL_VK_FORCE_STAGING");
  const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  int t = -1;
  /* Unified memory (lavapipe, integrated GPUs): device-local and host-visible, mapped, no staging copies. */
  if (uma) t = find_memory_type(v, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | hv, 0);
  if (t >= 0 && !force_staging) {
    v->host_visible = 1;
  } else {
    t = find_memory_type(v, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (t < 0) t = 0;
    v->host_visible = 0;
  }
  v->memory_type = (uint32_t)t;
  int st = find_memory_type(v, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
  if (st < 0) st = find_memory_type(v, hv, 0);
  if (st < 0) return dpl_fail(DPL_ERR_DEVICE, "no host-visible coherent memory type");
  v->staging_memory_type = (uint32_t)st;

  VkDeviceSize align = 256;
  if (lim->minStorageBufferOffsetAlignment > align) align = lim->minStorageBufferOffsetAlignment;
  if (lim->minTexelBufferOffsetAlignment > align) align = lim->minTexelBufferOffsetAlignment;
  v->alignment = align;
  VkDeviceSize max_alloc = 1ull << 30;
  VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
  vkGetPhysicalDeviceProperties2(v->physical, &p2);
  if (m3.maxMemoryAllocationSize) max_alloc = m3.maxMemoryAllocationSize;
  v->max_binding = lim->maxStorageBufferRange & ~(align - 1);
  VkDeviceSize cap = v->max_binding < max_alloc ? v->max_binding : max_alloc;
  VkDeviceSize defaults[VK_POOL_COUNT] = {
      env_mib("DPL_VK_BLOCK_MB", 64u << 20), env_mib("DPL_VK_WEIGHT_BLOCK_MB", 32u << 20),
      env_mib("DPL_VK_STAGING_BLOCK_MB", 16u << 20)};
  for (int p = 0; p < VK_POOL_COUNT; p++) v->block_size[p] = defaults[p] < cap ? defaults[p] : cap;
  return DPL_OK;
}

static int block_create(dpl_device *dev, int pool, VkDeviceSize size, int dedicated, vk_block **out) {
  vk_device *v = vkdev(dev);
  vk_block *b = calloc(1, sizeof *b);
  if (!b) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
  b->pool = pool;
  b->dedicated = dedicated;
  b->size = size;
  VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
                            .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT |
                                     VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                            .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
  int rc = vk_check(vkCreateBuffer(v->device, &bci, NULL, &b->buffer), "vkCreateBuffer");
  if (rc) { free(b); return rc; }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(v->device, b->buffer, &req);
  uint32_t type = pool == VK_POOL_STAGING ? v->staging_memory_type : v->memory_type;
  if (!(req.memoryTypeBits & (1u << type))) {
    vkDestroyBuffer(v->device, b->buffer, NULL);
    free(b);
    return dpl_fail(DPL_ERR_DEVICE, "buffer memory type %u not allowed for storage buffers", type);
  }
  VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                              .memoryTypeIndex = type};
  VkResult r = vkAllocateMemory(v->device, &mai, NULL, &b->memory);
  if (r != VK_SUCCESS) {
    vkDestroyBuffer(v->device, b->buffer, NULL);
    free(b);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
      return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of device memory allocating a %llu MiB block (%lld MiB reserved)",
                      (unsigned long long)(size >> 20), (long long)(v->reserved_bytes >> 20));
    return vk_check(r, "vkAllocateMemory");
  }
  vkBindBufferMemory(v->device, b->buffer, b->memory, 0);
  if (pool == VK_POOL_STAGING || v->host_visible) {
    rc = vk_check(vkMapMemory(v->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped), "vkMapMemory");
    if (rc) { vkDestroyBuffer(v->device, b->buffer, NULL); vkFreeMemory(v->device, b->memory, NULL); free(b); return rc; }
  }
  if (!dedicated) {
    b->capfree = 8;
    b->free = malloc(sizeof(vk_range) * (size_t)b->capfree);
    b->free[0] = (vk_range){0, size};
    b->nfree = 1;
  }
  if (v->nblocks == v->capblocks) {
    v->capblocks = v->capblocks ? 2 * v->capblocks : 16;
    v->blocks = realloc(v->blocks, sizeof *v->blocks * (size_t)v->capblocks);
  }
  v->blocks[v->nblocks++] = b;
  v->reserved_bytes += (int64_t)size;
  *out = b;
  return DPL_OK;
}

static void block_destroy(dpl_device *dev, vk_block *b) {
  vk_device *v = vkdev(dev);
  for (int i = 0; i < v->nblocks; i++)
    if (v->blocks[i] == b) { v->blocks[i] = v->blocks[--v->nblocks]; break; }
  v->reserved_bytes -= (int64_t)b->size;
  vkDestroyBuffer(v->device, b->buffer, NULL);
  vkFreeMemory(v->device, b->memory, NULL);
  free(b->free);
  free(b);
}

static int block_take(vk_block *b, VkDeviceSize size, VkDeviceSize *offset) {
  for (int i = 0; i < b->nfree; i++) {
    if (b->free[i].size < size) continue;
    *offset = b->free[i].offset;
    b->free[i].offset += size;
    b->free[i].size -= size;
    if (b->free[i].size == 0) {
      memmove(&b->free[i], &b->free[i + 1], sizeof(vk_range) * (size_t)(b->nfree - i - 1));
      b->nfree--;
    }
    b->live++;
    return 1;
  }
  return 0;
}

static void block_give(vk_block *b, VkDeviceSize offset, VkDeviceSize size) {
  int i = 0;
  while (i < b->nfree && b->free[i].offset < offset) i++;
  /* merge with the previous and/or next free range */
  int merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == offset;
  int merge_next = i < b->nfree && offset + size == b->free[i].offset;
  if (merge_prev && merge_next) {
    b->free[i - 1].size += size + b->free[i].size;
    memmove(&b->free[i], &b->free[i + 1], sizeof(vk_range) * (size_t)(b->nfree - i - 1));
    b->nfree--;
  } else if (merge_prev) {
    b->free[i - 1].size += size;
  } else if (merge_next) {
    b->free[i].offset = offset;
    b->free[i].size += size;
  } else {
    if (b->nfree == b->capfree) {
      b->capfree *= 2;
      b->free = realloc(b->free, sizeof(vk_range) * (size_t)b->capfree);
    }
    memmove(&b->free[i + 1], &b->free[i], sizeof(vk_range) * (size_t)(b->nfree - i));
    b->free[i] = (vk_range){offset, size};
    b->nfree++;
  }
  b->live--;
}

int vk_alloc(dpl_device *dev, int pool, VkDeviceSize size, struct dpl_vk_allocation **out) {
  vk_device *v = vkdev(dev);
  size = (size + v->alignment - 1) & ~(v->alignment - 1);
  struct dpl_vk_allocation *a = calloc(1, sizeof *a);
  if (!a) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
  a->size = size;
  int rc;
  if (size > v->block_size[pool] / 2) {
    vk_block *b;
    VkDeviceSize max_alloc = v->props.limits.maxStorageBufferRange;
    DPL_UNUSED(max_alloc);
    rc = block_create(dev, pool, size, 1, &b);
    if (rc) { free(a); return rc; }
    b->live = 1;
    a->block = b;
    a->offset = 0;
    *out = a;
    return DPL_OK;
  }
  for (int i = 0; i < v->nblocks; i++) {
    vk_block *b = v->blocks[i];
    if (b->pool != pool || b->dedicated) continue;
    if (block_take(b, size, &a->offset)) { a->block = b; *out = a; return DPL_OK; }
  }
  vk_block *b;
  rc = block_create(dev, pool, v->block_size[pool], 0, &b);
  if (rc) { free(a); return rc; }
  block_take(b, size, &a->offset);
  a->block = b;
  *out = a;
  return DPL_OK;
}

void vk_free_now(dpl_device *dev, struct dpl_vk_allocation *a) {
  vk_device *v = vkdev(dev);
  vk_block *b = a->block;
  if (b->dedicated) {
    block_destroy(dev, b);
  } else {
    block_give(b, a->offset, a->size);
    /* keep one empty block per pool as a spare; release further empty ones */
    if (b->live == 0) {
      for (int i = 0; i < v->nblocks; i++) {
        vk_block *o = v->blocks[i];
        if (o != b && o->pool == b->pool && !o->dedicated && o->live == 0) { block_destroy(dev, b); break; }
      }
    }
  }
  free(a);
}

void vk_free_after(dpl_device *dev, struct dpl_vk_allocation *a, uint64_t serial) {
  vk_device *v = vkdev(dev);
  if (serial <= v->completed_serial) { vk_free_now(dev, a); return; }
  if (v->npending == v->cappending) {
    v->cappending = v->cappending ? 2 * v->cappending : 64;
    v->pending = realloc(v->pending, sizeof *v->pending * (size_t)v->cappending);
  }
  v->pending[v->npending++] = (vk_pending_free){a, serial};
}

void vk_release_completed(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  int j = 0;
  for (int i = 0; i < v->npending; i++) {
    if (v->pending[i].serial <= v->completed_serial) vk_free_now(dev, v->pending[i].alloc);
    else v->pending[j++] = v->pending[i];
  }
  v->npending = j;
}

int vk_storage_alloc(dpl_device *dev, dpl_storage *s) {
  vk_device *v = vkdev(dev);
  VkDeviceSize max_alloc = 0;
  VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
  vkGetPhysicalDeviceProperties2(v->physical, &p2);
  max_alloc = m3.maxMemoryAllocationSize;
  if (max_alloc && s->bytes > max_alloc)
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "a tensor of %zu MiB exceeds this device's largest allocation (%llu MiB)",
                    s->bytes >> 20, (unsigned long long)(max_alloc >> 20));
  int pool = dev->alloc_class == 1 ? VK_POOL_WEIGHTS : VK_POOL_ACTIVATIONS;
  int rc = vk_alloc(dev, pool, s->bytes, &s->vk);
  if (rc) return rc;
  s->host = s->vk->block->mapped ? (float *)((char *)s->vk->block->mapped + s->vk->offset) : NULL;
  s->last_use_serial = s->last_write_serial = 0;
  return DPL_OK;
}

void vk_storage_free(dpl_device *dev, dpl_storage *s) {
  if (!s->vk) return;
  vk_free_after(dev, s->vk, s->last_use_serial);
  s->vk = NULL;
  s->host = NULL;
}

void vk_memory_destroy(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  for (int i = 0; i < v->npending; i++) vk_free_now(dev, v->pending[i].alloc);
  v->npending = 0;
  while (v->nblocks) block_destroy(dev, v->blocks[v->nblocks - 1]);
  free(v->blocks);
  free(v->pending);
}
