/* recorder.c - command recording for the Vulkan backend.
 *
 * Ops append dispatches to one command buffer; it is submitted only when the host needs data (a read, a write into
 * memory still in use, synchronize) or when it holds max_dispatches_per_submit dispatches, so that long graphs keep
 * the GPU busy without one submit per op. A ring of VK_RING command buffers lets recording continue while earlier
 * ones run. A memory barrier is recorded only when a dispatch touches a buffer range that an earlier dispatch since
 * the last barrier wrote (read-after-write, write-after-write) or read (write-after-read). */
#include "vk_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DESCRIPTOR_POOL_SETS = 2048 };

int vk_recorder_init(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                 .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                 .queueFamilyIndex = v->queue_family};
  int rc = vk_check(vkCreateCommandPool(v->device, &pci, NULL, &v->command_pool), "vkCreateCommandPool");
  if (rc) return rc;
  long long max_dispatches = dpl_env_int("DPL_VK_MAX_DISPATCHES", 512);
  v->max_dispatches_per_submit = max_dispatches > 0 && max_dispatches < (1 << 30) ? (int)max_dispatches : 512;
  if (!v->has_push_descriptor && v->max_dispatches_per_submit > DESCRIPTOR_POOL_SETS)
    v->max_dispatches_per_submit = DESCRIPTOR_POOL_SETS;
  for (int i = 0; i < VK_RING; i++) {
    vk_slot *s = &v->slots[i];
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = v->command_pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if ((rc = vk_check(vkAllocateCommandBuffers(v->device, &ai, &s->cmd), "vkAllocateCommandBuffers"))) return rc;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((rc = vk_check(vkCreateFence(v->device, &fci, NULL, &s->fence), "vkCreateFence"))) return rc;
    if (!v->has_push_descriptor) {
      VkDescriptorPoolSize sizes[2] = {{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, DESCRIPTOR_POOL_SETS * 4},
                                       {VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER, DESCRIPTOR_POOL_SETS * 4}};
      VkDescriptorPoolCreateInfo dpci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = DESCRIPTOR_POOL_SETS, .poolSizeCount = 2, .pPoolSizes = sizes};
      if ((rc = vk_check(vkCreateDescriptorPool(v->device, &dpci, NULL, &s->descriptor_pool), "vkCreateDescriptorPool")))
        return rc;
    }
  }
  v->current = -1;
  v->recording_serial = 1;
  v->completed_serial = 0;
  return DPL_OK;
}

static void slot_recycle(dpl_device *dev, vk_slot *s) {
  vk_device *v = vkdev(dev);
  /* the finished command buffer still references its views and descriptor sets: reset it before they go */
  vkResetCommandBuffer(s->cmd, 0);
  for (int i = 0; i < s->nviews; i++) vkDestroyBufferView(v->device, s->views[i], NULL);
  s->nviews = 0;
  if (s->descriptor_pool) vkResetDescriptorPool(v->device, s->descriptor_pool, 0);
}

/* Waits for the command buffer in slot i, then marks its serial complete and releases what waited for it. */
static int slot_wait(dpl_device *dev, int i) {
  vk_device *v = vkdev(dev);
  vk_slot *s = &v->slots[i];
  if (!s->serial) return DPL_OK;
  int rc = vk_check(vkWaitForFences(v->device, 1, &s->fence, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  if (rc) return rc;
  vkResetFences(v->device, 1, &s->fence);
  vk_profile_collect(dev, i);
  if (s->serial > v->completed_serial) v->completed_serial = s->serial;
  s->serial = 0;
  slot_recycle(dev, s);
  vk_release_completed(dev);
  return DPL_OK;
}

void vk_recorder_destroy(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  for (int i = 0; i < VK_RING; i++) {
    vk_slot *s = &v->slots[i];
    if (s->serial) slot_wait(dev, i);
    for (int k = 0; k < s->nviews; k++) vkDestroyBufferView(v->device, s->views[k], NULL);
    free(s->views);
    if (s->fence) vkDestroyFence(v->device, s->fence, NULL);
    if (s->descriptor_pool) vkDestroyDescriptorPool(v->device, s->descriptor_pool, NULL);
  }
  if (v->command_pool) vkDestroyCommandPool(v->device, v->command_pool, NULL);
  free(v->written);
  free(v->read);
}

static int begin_if_needed(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  if (v->current >= 0) return DPL_OK;
  /* the slot after the last one used, oldest in the ring */
  int i = (int)(v->recording_serial % VK_RING);
  int rc = slot_wait(dev, i);
  if (rc) return rc;
  vk_slot *s = &v->slots[i];
  vkResetCommandBuffer(s->cmd, 0);
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                 .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  if ((rc = vk_check(vkBeginCommandBuffer(s->cmd, &bi), "vkBeginCommandBuffer"))) return rc;
  v->current = i;
  vk_profile_begin(dev, i);
  v->dispatches_in_cmd = 0;
  v->nwritten = v->nread = 0;
  /* Separate submissions are not ordered by themselves, and the hazard lists start empty here: while earlier command
   * buffers may still run (submitted at the dispatch limit without a wait), one barrier at the top orders this one
   * after everything submitted before it. */
  if (v->completed_serial + 1 < v->recording_serial) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(s->cmd, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
    dev->n_barriers++;
  }
  return DPL_OK;
}

int vk_flush(dpl_device *dev, int wait) {
  vk_device *v = vkdev(dev);
  if (v->current >= 0) {
    vk_slot *s = &v->slots[v->current];
    /* make shader and transfer writes visible to the host once the fence signals */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    int rc = vk_check(vkEndCommandBuffer(s->cmd), "vkEndCommandBuffer");
    if (rc) return rc;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &s->cmd};
    rc = vk_check(vkQueueSubmit(v->queue, 1, &si, s->fence), "vkQueueSubmit");
    if (rc) return rc;
    s->serial = v->recording_serial++;
    v->current = -1;
    dev->n_submits++;
  }
  if (wait)
    for (int k = 0; k < VK_RING; k++) {
      int i = (int)((v->recording_serial + (uint64_t)k) % VK_RING);   /* oldest first */
      int rc = slot_wait(dev, i);
      if (rc) return rc;
    }
  return DPL_OK;
}

int vk_wait_serial(dpl_device *dev, uint64_t serial) {
  vk_device *v = vkdev(dev);
  if (serial <= v->completed_serial) return DPL_OK;
  return vk_flush(dev, 1);
}

int vk_synchronize(dpl_device *dev) { return vk_flush(dev, 1); }

/* ---- hazards ---------------------------------------------------------------------------------------------------- */
static int overlaps(const vk_hazard *list, int n, VkBuffer buf, VkDeviceSize lo, VkDeviceSize hi) {
  for (int i = 0; i < n; i++)
    if (list[i].buffer == buf && list[i].lo < hi && lo < list[i].hi) return 1;
  return 0;
}

static void remember(vk_hazard **list, int *n, int *cap, VkBuffer buf, VkDeviceSize lo, VkDeviceSize hi) {
  for (int i = 0; i < *n; i++)   /* extend an entry of the same buffer that touches this range */
    if ((*list)[i].buffer == buf && (*list)[i].lo <= hi && lo <= (*list)[i].hi) {
      if (lo < (*list)[i].lo) (*list)[i].lo = lo;
      if (hi > (*list)[i].hi) (*list)[i].hi = hi;
      return;
    }
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 32;
    *list = realloc(*list, sizeof **list * (size_t)*cap);
  }
  (*list)[(*n)++] = (vk_hazard){buf, lo, hi};
}

/* Records a barrier if any of these accesses conflicts with one since the last barrier, then notes them. */
static void track_accesses(dpl_device *dev, VkCommandBuffer cmd, const vk_binding *b, int nb) {
  vk_device *v = vkdev(dev);
  int hazard = 0;
  for (int i = 0; i < nb && !hazard; i++) {
    VkBuffer buf = b[i].storage->vk->block->buffer;
    VkDeviceSize lo = b[i].offset, hi = b[i].offset + b[i].range;
    if (overlaps(v->written, v->nwritten, buf, lo, hi)) hazard = 1;
    if (b[i].write && overlaps(v->read, v->nread, buf, lo, hi)) hazard = 1;
  }
  if (hazard) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cmd, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
    dev->n_barriers++;
    v->nwritten = v->nread = 0;
  }
  for (int i = 0; i < nb; i++) {
    VkBuffer buf = b[i].storage->vk->block->buffer;
    VkDeviceSize lo = b[i].offset, hi = b[i].offset + b[i].range;
    if (b[i].write) remember(&v->written, &v->nwritten, &v->capwritten, buf, lo, hi);
    else remember(&v->read, &v->nread, &v->capread, buf, lo, hi);
    b[i].storage->last_use_serial = v->recording_serial;
    if (b[i].write) b[i].storage->last_write_serial = v->recording_serial;
  }
}

int vk_bind(dpl_device *dev, dpl_storage *s, int64_t lo, int64_t hi, int write, vk_binding *b, uint32_t *elem_offset) {
  vk_device *v = vkdev(dev);
  VkDeviceSize base = s->vk->offset;
  VkDeviceSize first = base + (VkDeviceSize)lo * 4, end = base + (VkDeviceSize)(hi + 1) * 4;
  VkDeviceSize align = v->props.limits.minStorageBufferOffsetAlignment;
  if (v->props.limits.minTexelBufferOffsetAlignment > align) align = v->props.limits.minTexelBufferOffsetAlignment;
  if (align < 4) align = 4;
  VkDeviceSize start = first / align * align;
  if (end - start > v->max_binding)
    return dpl_fail(DPL_ERR_UNSUPPORTED, "a binding of %llu MiB exceeds the device's maxStorageBufferRange (%llu MiB)",
                    (unsigned long long)((end - start) >> 20), (unsigned long long)(v->max_binding >> 20));
  b->storage = s;
  b->offset = start;
  b->range = end - start;
  b->write = write;
  b->texel = 0;
  *elem_offset = (uint32_t)((first - start) / 4);
  return DPL_OK;
}

int vk_dispatch(dpl_device *dev, int shader, const uint32_t *spec, int nspec, const vk_binding *b, int nb,
                const void *push, size_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
  vk_device *v = vkdev(dev);
  if (gx == 0 || gy == 0 || gz == 0) return DPL_OK;
  const VkPhysicalDeviceLimits *lim = &v->props.limits;
  if (gx > lim->maxComputeWorkGroupCount[0] || gy > lim->maxComputeWorkGroupCount[1] ||
      gz > lim->maxComputeWorkGroupCount[2])
    return dpl_fail(DPL_ERR_UNSUPPORTED, "dispatch of %ux%ux%u workgroups exceeds the device limit", gx, gy, gz);
  vk_pipeline *p = vk_get_pipeline(dev, shader, spec, nspec, b, nb);
  if (!p) return dpl_last_status();
  int rc = begin_if_needed(dev);
  if (rc) return rc;
  vk_slot *s = &v->slots[v->current];
  track_accesses(dev, s->cmd, b, nb);
  vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);

  VkDescriptorBufferInfo infos[VK_MAX_BINDINGS];
  VkBufferView views[VK_MAX_BINDINGS];
  VkWriteDescriptorSet writes[VK_MAX_BINDINGS];
  for (int i = 0; i < nb; i++) {
    writes[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstBinding = (uint32_t)i,
                                       .descriptorCount = 1};
    if (b[i].texel) {
      VkBufferViewCreateInfo vci = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                    .buffer = b[i].storage->vk->block->buffer,
                                    .format = b[i].texel == 4 ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT,
                                    .offset = b[i].offset, .range = b[i].range};
      if ((rc = vk_check(vkCreateBufferView(v->device, &vci, NULL, &views[i]), "vkCreateBufferView"))) return rc;
      if (s->nviews == s->capviews) {
        s->capviews = s->capviews ? 2 * s->capviews : 64;
        s->views = realloc(s->views, sizeof *s->views * (size_t)s->capviews);
      }
      s->views[s->nviews++] = views[i];
      writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER;
      writes[i].pTexelBufferView = &views[i];
    } else {
      infos[i] = (VkDescriptorBufferInfo){b[i].storage->vk->block->buffer, b[i].offset, b[i].range};
      writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      writes[i].pBufferInfo = &infos[i];
    }
  }
  if (v->has_push_descriptor) {
    vkCmdPushDescriptorSetKHR(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, (uint32_t)nb, writes);
  } else {
    VkDescriptorSet set;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = s->descriptor_pool, .descriptorSetCount = 1,
                                      .pSetLayouts = &p->set_layout};
    if ((rc = vk_check(vkAllocateDescriptorSets(v->device, &ai, &set), "vkAllocateDescriptorSets"))) return rc;
    for (int i = 0; i < nb; i++) writes[i].dstSet = set;
    vkUpdateDescriptorSets(v->device, (uint32_t)nb, writes, 0, NULL);
    vkCmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
  }
  uint8_t pc[VK_PUSH_BYTES] = {0};
  if (push_bytes > VK_PUSH_BYTES) return dpl_fail(DPL_ERR_ARGUMENT, "push constants of %zu bytes", push_bytes);
  if (push) memcpy(pc, push, push_bytes);
  vkCmdPushConstants(s->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES, pc);
  vkCmdDispatch(s->cmd, gx, gy, gz);
  vk_profile_dispatch(dev, v->current, shader);
  dev->n_dispatches++;
  if (++v->dispatches_in_cmd >= v->max_dispatches_per_submit) return vk_flush(dev, 0);
  return DPL_OK;
}

/* ---- host transfers --------------------------------------------------------------------------------------------- */
static int record_copy(dpl_device *dev, struct dpl_vk_allocation *src, VkDeviceSize src_off,
                       struct dpl_vk_allocation *dst, VkDeviceSize dst_off, VkDeviceSize bytes, dpl_storage *tracked,
                       int tracked_is_dst) {
  vk_device *v = vkdev(dev);
  int rc = begin_if_needed(dev);
  if (rc) return rc;
  vk_slot *s = &v->slots[v->current];
  vk_binding b = {.storage = tracked, .offset = (tracked_is_dst ? dst->offset + dst_off : src->offset + src_off),
                  .range = bytes, .write = tracked_is_dst};
  track_accesses(dev, s->cmd, &b, 1);
  VkBufferCopy region = {src->offset + src_off, dst->offset + dst_off, bytes};
  vkCmdCopyBuffer(s->cmd, src->block->buffer, dst->block->buffer, 1, &region);
  return DPL_OK;
}

int vk_write(dpl_device *dev, dpl_storage *s, size_t off, const void *src, size_t bytes) {
  vk_device *v = vkdev(dev);
  dev->n_uploads++;
  if (s->host) {
    /* mapped memory: wait only if the GPU may still use this storage */
    int rc = vk_wait_serial(dev, s->last_use_serial);
    if (rc) return rc;
    memcpy((char *)s->host + off, src, bytes);
    return DPL_OK;
  }
  /* staged: copy into a staging buffer now, record the transfer in order with the other work */
  struct dpl_vk_allocation *st;
  for (size_t done = 0; done < bytes;) {
    size_t chunk = bytes - done;
    if (chunk > v->block_size[VK_POOL_STAGING]) chunk = v->block_size[VK_POOL_STAGING];
    int rc = vk_alloc(dev, VK_POOL_STAGING, chunk, &st);
    if (rc) return rc;
    memcpy((char *)st->block->mapped + st->offset, (const char *)src + done, chunk);
    rc = record_copy(dev, st, 0, s->vk, off + done, chunk, s, 1);
    vk_free_after(dev, st, v->recording_serial);
    if (rc) return rc;
    done += chunk;
  }
  return DPL_OK;
}

int vk_read(dpl_device *dev, dpl_storage *s, size_t off, void *dst, size_t bytes) {
  vk_device *v = vkdev(dev);
  dev->n_downloads++;
  if (s->host) {
    int rc = vk_wait_serial(dev, s->last_write_serial);
    if (rc) return rc;
    memcpy(dst, (const char *)s->host + off, bytes);
    return DPL_OK;
  }
  for (size_t done = 0; done < bytes;) {
    size_t chunk = bytes - done;
    if (chunk > v->block_size[VK_POOL_STAGING]) chunk = v->block_size[VK_POOL_STAGING];
    struct dpl_vk_allocation *st;
    int rc = vk_alloc(dev, VK_POOL_STAGING, chunk, &st);
    if (rc) return rc;
    rc = record_copy(dev, s->vk, off + done, st, 0, chunk, s, 0);
    if (!rc) rc = vk_flush(dev, 1);
    if (!rc) memcpy((char *)dst + done, (char *)st->block->mapped + st->offset, chunk);
    vk_free_now(dev, st);
    if (rc) return rc;
    done += chunk;
  }
  return DPL_OK;
}
