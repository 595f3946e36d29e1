/* profile.c - per-kernel GPU time (DPL_VK_PROFILE=1): a timestamp is written at the start of each command buffer and
 * after each dispatch, and the time between consecutive timestamps is charged to the dispatch's shader (barriers
 * included; on GPUs that overlap dispatches between barriers the split is approximate, the total is not). Read with
 * dpl_device_profile (dpl.profile_report in Lua), which also resets the totals. Off by default: timestamps cost
 * little, but reading them back adds work at every wait. */
#include "vk_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vk_profile {
  VkQueryPool pools[VK_RING];
  uint32_t capacity;                   /* timestamps per command buffer */
  int *shaders[VK_RING];               /* the shader of each dispatch, per slot */
  uint32_t used[VK_RING];              /* timestamps written in each slot */
  double ns[DPL_SHADER_COUNT];
  int64_t count[DPL_SHADER_COUNT];
  double period;                       /* ns per timestamp tick */
};

int vk_profile_init(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  if (!dpl_env_flag("DPL_VK_PROFILE")) return DPL_OK;
  if (!v->props.limits.timestampComputeAndGraphics)
    return DPL_OK;   /* no timestamps on this device: profiling stays off */
  vk_profile *p = calloc(1, sizeof *p);
  if (!p) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
  p->capacity = (uint32_t)v->max_dispatches_per_submit + 2;
  p->period = v->props.limits.timestampPeriod;
  for (int i = 0; i < VK_RING; i++) {
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = p->capacity};
    p->shaders[i] = calloc(p->capacity, sizeof(int));
    int rc = p->shaders[i] ? vk_check(vkCreateQueryPool(v->device, &qi, NULL, &p->pools[i]), "vkCreateQueryPool")
                           : dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory");
    if (rc) { v->profile = p; vk_profile_destroy(dev); return rc; }
  }
  v->profile = p;
  return DPL_OK;
}

void vk_profile_destroy(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  vk_profile *p = v->profile;
  if (!p) return;
  for (int i = 0; i < VK_RING; i++) {
    if (p->pools[i]) vkDestroyQueryPool(v->device, p->pools[i], NULL);
    free(p->shaders[i]);
  }
  free(p);
  v->profile = NULL;
}

void vk_profile_begin(dpl_device *dev, int slot) {
  vk_device *v = vkdev(dev);
  vk_profile *p = v->profile;
  if (!p) return;
  VkCommandBuffer cmd = v->slots[slot].cmd;
  vkCmdResetQueryPool(cmd, p->pools[slot], 0, p->capacity);
  vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, p->pools[slot], 0);
  p->used[slot] = 1;
}

void vk_profile_dispatch(dpl_device *dev, int slot, int shader) {
  vk_device *v = vkdev(dev);
  vk_profile *p = v->profile;
  if (!p || p->used[slot] >= p->capacity) return;
  vkCmdWriteTimestamp(v->slots[slot].cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, p->pools[slot], p->used[slot]);
  p->shaders[slot][p->used[slot]] = shader;
  p->used[slot]++;
}

void vk_profile_collect(dpl_device *dev, int slot) {
  vk_device *v = vkdev(dev);
  vk_profile *p = v->profile;
  if (!p || p->used[slot] < 2) return;
  uint32_t n = p->used[slot];
  uint64_t *ts = malloc(sizeof(uint64_t) * n);
  if (ts && vkGetQueryPoolResults(v->device, p->pools[slot], 0, n, sizeof(uint64_t) * n, ts, sizeof(uint64_t),
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS)
    for (uint32_t i = 1; i < n; i++) {
      int s = p->shaders[slot][i];
      p->ns[s] += (double)(ts[i] - ts[i - 1]) * p->period;
      p->count[s]++;
    }
  free(ts);
  p->used[slot] = 0;
}

int dpl_device_profile(dpl_device *dev, char *out, size_t size) {
  if (!dev || !dev->is_vulkan || !vkdev(dev)->profile) return -1;
  vk_device *v = vkdev(dev);
  vk_flush(dev, 1);
  vk_profile *p = v->profile;
  double total = 0;
  for (int s = 0; s < DPL_SHADER_COUNT; s++) total += p->ns[s];
  size_t len = 0;
  len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%-36s %8s %10s %10s %6s\n", "kernel", "dispatches",
                          "total ms", "mean us", "share");
  for (;;) {   /* largest first */
    int best = -1;
    for (int s = 0; s < DPL_SHADER_COUNT; s++)
      if (p->count[s] && (best < 0 || p->ns[s] > p->ns[best])) best = s;
    if (best < 0) break;
    len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%-36s %8lld %10.2f %10.1f %5.1f%%\n",
                            dpl_shader_table[best].name, (long long)p->count[best], p->ns[best] * 1e-6,
                            p->ns[best] * 1e-3 / (double)p->count[best], total > 0 ? 100 * p->ns[best] / total : 0);
    p->count[best] = 0;
    p->ns[best] = 0;
  }
  len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%-36s %8s %10.2f\n", "total", "", total * 1e-6);
  return (int)len;
}
