/* vk_internal.h - state of the Vulkan backend, shared by its files:
 *   device_vulkan.c  instance, device choice, banner, the backend table
 *   memory.c         block allocators (activations, weights, staging) and deferred frees
 *   recorder.c       command buffers, hazard-tracked barriers, submission, host transfers
 *   pipelines.c      pipeline creation, in-process cache, VkPipelineCache file
 *   ops_vulkan.c     each op's dispatch */
#ifndef DPL_VK_INTERNAL_H
#define DPL_VK_INTERNAL_H

#include "internal.h"
#include "shaders.h"
#include <volk.h>

enum { VK_POOL_ACTIVATIONS = 0, VK_POOL_WEIGHTS = 1, VK_POOL_STAGING = 2, VK_POOL_COUNT = 3 };
enum { VK_RING = 3 };                 /* command buffers in flight */
enum { VK_MAX_BINDINGS = 8, VK_MAX_SPEC = 12, VK_PUSH_BYTES = 128 };

typedef struct vk_range { VkDeviceSize offset, size; } vk_range;

typedef struct vk_block {
  VkDeviceMemory memory;
  VkBuffer buffer;
  VkDeviceSize size;
  void *mapped;                        /* non-NULL when host-visible */
  int pool;
  int dedicated;                       /* one allocation only, freed with it */
  int live;                            /* allocations in it */
  vk_range *free;                      /* sorted, merged free ranges */
  int nfree, capfree;
} vk_block;

struct dpl_vk_allocation {
  vk_block *block;
  VkDeviceSize offset, size;
};

typedef struct vk_pending_free {
  struct dpl_vk_allocation *alloc;
  uint64_t serial;                     /* free once this serial has completed */
} vk_pending_free;

typedef struct vk_pipeline {
  uint64_t key_hash;
  int shader;
  uint32_t spec[VK_MAX_SPEC];
  int nspec;
  uint32_t binding_types;              /* 2 bits per binding: 0 storage buffer, 1 storage texel buffer */
  int nbindings;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout layout;
  VkPipeline pipeline;
} vk_pipeline;

/* One binding of a dispatch: a range of a tensor's storage, read and/or written. */
typedef struct vk_binding {
  dpl_storage *storage;
  VkDeviceSize offset, range;          /* bytes within the block's VkBuffer */
  int write;
  int texel;                           /* storage texel buffer (rgba32f if texel == 4, r32f if 1) */
} vk_binding;

typedef struct vk_hazard { VkBuffer buffer; VkDeviceSize lo, hi; } vk_hazard;

typedef struct vk_slot {
  VkCommandBuffer cmd;
  VkFence fence;
  VkDescriptorPool descriptor_pool;    /* only without VK_KHR_push_descriptor */
  uint64_t serial;                     /* serial submitted in this slot, 0 when idle */
  VkBufferView *views;                 /* texel buffer views created for this command buffer */
  int nviews, capviews;
} vk_slot;

typedef struct vk_device {
  VkPhysicalDevice physical;
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties memprops;
  uint32_t subgroup_size;
  int has_fp16;
  int has_push_descriptor;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  VkCommandPool command_pool;
  VkPipelineCache pipeline_cache;
  char pipeline_cache_path[512];

  /* memory */
  uint32_t memory_type;                /* for tensors */
  uint32_t staging_memory_type;
  int host_visible;                    /* tensor memory is mapped: no staging copies needed */
  VkDeviceSize block_size[VK_POOL_COUNT];
  VkDeviceSize max_binding;            /* maxStorageBufferRange, rounded down to the alignment */
  VkDeviceSize alignment;              /* for sub-allocations: covers storage and texel offset alignment */
  vk_block **blocks;
  int nblocks, capblocks;
  int64_t reserved_bytes;
  vk_pending_free *pending;
  int npending, cappending;

  /* recording */
  vk_slot slots[VK_RING];
  int current;                         /* slot being recorded, -1 when none */
  uint64_t recording_serial;           /* serial of the command buffer being (or next to be) recorded */
  uint64_t completed_serial;           /* every serial <= this has finished */
  int dispatches_in_cmd;
  int max_dispatches_per_submit;
  vk_hazard *written, *read;
  int nwritten, capwritten, nread, capread;

  /* pipelines */
  vk_pipeline *pipelines;
  int npipelines, cappipelines;
  VkShaderModule modules[DPL_SHADER_COUNT];
} vk_device;

static inline vk_device *vkdev(dpl_device *dev) { return (vk_device *)dev->impl; }

int vk_check(VkResult r, const char *what);

/* memory.c */
int vk_memory_init(dpl_device *dev);
void vk_memory_destroy(dpl_device *dev);
int vk_alloc(dpl_device *dev, int pool, VkDeviceSize size, struct dpl_vk_allocation **out);
void vk_free_now(dpl_device *dev, struct dpl_vk_allocation *a);
/* Frees when the GPU is done with it (after serial). */
void vk_free_after(dpl_device *dev, struct dpl_vk_allocation *a, uint64_t serial);
void vk_release_completed(dpl_device *dev);
int vk_storage_alloc(dpl_device *dev, dpl_storage *s);
void vk_storage_free(dpl_device *dev, dpl_storage *s);

/* recorder.c */
int vk_recorder_init(dpl_device *dev);
void vk_recorder_destroy(dpl_device *dev);
/* Submits the command buffer being recorded (if any); waits for all work when wait != 0. */
int vk_flush(dpl_device *dev, int wait);
/* Waits until serial has completed (submitting first if it is still being recorded). */
int vk_wait_serial(dpl_device *dev, uint64_t serial);
/* Records a dispatch. spec[0] is the workgroup size x (local_size_x_id = 0). */
int vk_dispatch(dpl_device *dev, int shader, const uint32_t *spec, int nspec, const vk_binding *b, int nb,
                const void *push, size_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz);
/* A binding for elements [lo, hi] of a storage; fails when the range exceeds the device's binding limit. */
int vk_bind(dpl_device *dev, dpl_storage *s, int64_t lo, int64_t hi, int write, vk_binding *b, uint32_t *elem_offset);
int vk_write(dpl_device *dev, dpl_storage *s, size_t off, const void *src, size_t bytes);
int vk_read(dpl_device *dev, dpl_storage *s, size_t off, void *dst, size_t bytes);
int vk_synchronize(dpl_device *dev);

/* pipelines.c */
int vk_pipelines_init(dpl_device *dev);
void vk_pipelines_destroy(dpl_device *dev);
vk_pipeline *vk_get_pipeline(dpl_device *dev, int shader, const uint32_t *spec, int nspec, const vk_binding *b, int nb);

/* ops_vulkan.c */
extern const dpl_backend dpl_vulkan_backend;

/* conv_vulkan.c */
int vk_op_conv2d_forward(dpl_device *dev, const dpl_conv2d_args *a);
int vk_op_conv2d_backward_input(dpl_device *dev, const dpl_conv2d_args *a);
int vk_op_conv2d_backward_weight(dpl_device *dev, const dpl_conv2d_args *a);

/* spatial_vulkan.c: pooling, padding and resizing (shaders/spatial2d.comp) */
int vk_op_spatial2d(dpl_device *dev, const dpl_spatial_args *a);

/* gemm_texel.c: the GEMM for CPU drivers (lavapipe). vk_gemm_use_texel picks it per device type and size;
 * DPL_VK_MATMUL=portable|texel overrides (read at each call, so tests can switch). */
int vk_gemm_use_texel(dpl_device *dev, const dpl_gemm_args *g);
int vk_gemm_texel(dpl_device *dev, const dpl_gemm_args *g);

#endif
