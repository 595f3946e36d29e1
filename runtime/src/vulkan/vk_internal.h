/* vk_internal.h - state of the Vulkan backend, shared by its files:
 *   device_vulkan.c  instance, device choice, banner, the backend table
 *   memory.c         block allocators (activations, weights, staging) and deferred frees
 *   recorder.c       command buffers, hazard-tracked barriers, submission, host transfers
 *   pipelines.c      pipeline creation, in-process cache, VkPipelineCache file
 *   ops_vulkan.c     each op's dispatch (elementwise, reductions, the matrix product's entry, random)
 *   kernels.c        which kernel family runs each convolution and matrix product (docs/vulkan.md)
 *   conv_vulkan.c    convolution entry points and the direct kernels; conv_winograd.c the Winograd family;
 *   conv_tiled.c     the GPU family (implicit GEMM in shared-memory tiles) and its tiles; gemm_tiled.c its GEMM
 *   gemm_texel.c     the matrix product for CPU drivers; weight_cache.c derived weights kept between calls
 *   spatial_vulkan.c pooling, padding, resizing; profile.c per-kernel timestamps (DPL_VK_PROFILE=1) */
#ifndef DPL_VK_INTERNAL_H
#define DPL_VK_INTERNAL_H

#include "internal.h"
#include "shaders.h"
#include <volk.h>

enum { VK_POOL_ACTIVATIONS = 0, VK_POOL_WEIGHTS = 1, VK_POOL_STAGING = 2, VK_POOL_COUNT = 3 };
enum { VK_RING = 3 };                 /* command buffers in flight */
enum { VK_MAX_BINDINGS = 8, VK_MAX_SPEC = 12, VK_PUSH_BYTES = 128 };
/* llvmpipe (lavapipe) stops an invocation's loops after about 65535 iterations in all, silently: kernels for CPU
 * drivers keep every invocation's loop iterations below this */
enum { VK_LOOP_LIMIT = 32768 };

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

/* kernel families (kernels.c chooses one per op and shape; docs/vulkan.md) */
enum { VK_CONV_FORWARD = 0, VK_CONV_BACKWARD_INPUT = 1, VK_CONV_BACKWARD_WEIGHT = 2 };
enum { VK_CONV_DIRECT = 0,             /* register tiles through r32f texel buffers (CPU drivers) */
       VK_CONV_PORTABLE = 1,           /* the same kernels through plain storage buffers */
       VK_CONV_WINOGRAD = 2,           /* F(4x4, 3x3) transforms around the texel GEMM (CPU drivers) */
       VK_CONV_TILED = 3,              /* implicit GEMM with shared-memory workgroup tiles (GPUs) */
       VK_CONV_FAMILIES = 4 };
enum { VK_GEMM_PORTABLE = 0, VK_GEMM_TEXEL = 1, VK_GEMM_TILED = 2, VK_GEMM_FAMILIES = 3 };
/* a workgroup tile of the GPU kernels: block rows x columns x k-slice, each thread's register block */
typedef struct vk_tile { uint32_t bm, bn, bk, tm, tn; } vk_tile;
/* the convolution kernels' push constants: mirrors ConvParams in shaders/common/conv2d.glsl */
typedef struct vk_conv_params {
  uint32_t n, c, h, w;
  uint32_t o, oh, ow, groups;
  uint32_t kh, kw, sh, sw;
  uint32_t ph, pw, dh, dw;
  uint32_t out_off, a_off, b_off, bias_off;
  uint32_t flags;
  uint32_t row0, row1;
  uint32_t splits, kchunk;
} vk_conv_params;
enum { VK_CHOICE_SLOTS = 256, VK_WCACHE_SLOTS = 256 };
typedef struct vk_wentry vk_wentry;
typedef struct vk_profile vk_profile;
typedef struct vk_choice { uint64_t key; int family; } vk_choice;

typedef struct vk_device {
  VkPhysicalDevice physical;
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties memprops;
  uint32_t subgroup_size;
  int cpu_like;                        /* a CPU driver (lavapipe, SwiftShader): kernels shaped for it */
  uint32_t shared_memory;              /* maxComputeSharedMemorySize, bytes */
  vk_choice conv_choices[VK_CHOICE_SLOTS];   /* kernels.c: the family chosen per convolution shape */
  int64_t conv_runs[VK_CONV_FAMILIES], gemm_runs[VK_GEMM_FAMILIES];   /* ops run by each family (stats) */
  vk_wentry *wcache;                   /* weight_cache.c: derived weights (VK_WCACHE_SLOTS entries) */
  int64_t wcache_bytes;
  uint64_t wcache_tick;
  vk_profile *profile;                 /* profile.c: per-kernel timestamps (DPL_VK_PROFILE=1), NULL when off */
  int has_fp16;                        /* shaderFloat16 enabled: float16_t in shaders (the tiled family's fp16 tiles) */
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

/* profile.c: timestamps around dispatches (DPL_VK_PROFILE=1) */
int vk_profile_init(dpl_device *dev);
void vk_profile_destroy(dpl_device *dev);
void vk_profile_begin(dpl_device *dev, int slot);                /* after vkBeginCommandBuffer */
void vk_profile_dispatch(dpl_device *dev, int slot, int shader); /* after each vkCmdDispatch */
void vk_profile_collect(dpl_device *dev, int slot);              /* once the slot's fence has signalled */

/* pipelines.c */
int vk_pipelines_init(dpl_device *dev);
void vk_pipelines_destroy(dpl_device *dev);
vk_pipeline *vk_get_pipeline(dpl_device *dev, int shader, const uint32_t *spec, int nspec, const vk_binding *b, int nb);

/* ops_vulkan.c */
extern const dpl_backend dpl_vulkan_backend;
/* a 1-D grid of `invocations` in workgroups of `local`, folded into x and y (x at most 65535) */
void vk_grid_1d(uint64_t invocations, uint32_t local, uint32_t *gx, uint32_t *gy);
/* C = alpha A B + beta C by the family kernels.c chooses */
int vk_gemm(dpl_device *dev, const dpl_gemm_args *g);

/* kernels.c: the kernel family for each op (DPL_VK_CONV, DPL_VK_MATMUL force one) */
int vk_choose_conv(dpl_device *dev, const dpl_conv2d_args *a, int kind);
int vk_choose_gemm(dpl_device *dev, const dpl_gemm_args *g);   /* counts the choice in the stats */
int vk_gemm_family_for(dpl_device *dev, int64_t m, int64_t n, int64_t k);
bool vk_half_tiles(dpl_device *dev);   /* the tiled family's fp16 variants (DPL_PRECISION=fp16 and shaderFloat16) */
const char *vk_conv_family_name(int family);
const char *vk_gemm_family_name(int family);
int64_t vk_kernel_stat(dpl_device *dev, const char *name);   /* "conv_winograd", "gemm_texel", ...: ops run */

/* conv_vulkan.c: the entry points, and the direct kernels (families direct and portable) */
int vk_op_conv2d_forward(dpl_device *dev, const dpl_conv2d_args *a);
int vk_op_conv2d_backward_input(dpl_device *dev, const dpl_conv2d_args *a);
int vk_op_conv2d_backward_weight(dpl_device *dev, const dpl_conv2d_args *a);

/* conv_tiled.c, gemm_tiled.c: the shared-memory implicit-GEMM convolutions and GEMM for GPUs */
bool vk_tiled_supported(dpl_device *dev);
const vk_tile *vk_choose_tile(dpl_device *dev, int64_t m, int64_t n, int64_t batches);
void vk_tile_spec(const vk_tile *t, uint32_t *spec);   /* spec[0..6]: threads, bm, bn, bk, tm, tn, padding */
int vk_conv_tiled(dpl_device *dev, const dpl_conv2d_args *a, int kind);
int vk_gemm_tiled(dpl_device *dev, const dpl_gemm_args *g);

/* weight_cache.c: a device tensor of `floats` floats derived from weight w by derive(dev, w, out, ctx) (which
 * records the dispatches that fill it), cached per weight storage, version, kind and variant (DPL_VK_KERNEL_CACHE_MB).
 * *owned: the caller must free the result (not cached); else it stays valid until the next call. */
typedef int (*vk_derive_fn)(dpl_device *dev, const dpl_tensor *w, const dpl_tensor *out, void *ctx);
dpl_tensor *vk_derived_weight(dpl_device *dev, const dpl_tensor *w, int kind, uint64_t variant, int64_t floats,
                              vk_derive_fn derive, void *ctx, bool *owned);
void vk_weight_cache_release(dpl_device *dev);
enum { VK_DERIVED_WINOGRAD = 1 };

/* conv_winograd.c: 3x3 stride-1 forward and input gradient by Winograd F(4x4, 3x3) */
int vk_winograd_fits(dpl_device *dev, const dpl_conv2d_args *a, int kind);
int vk_conv_winograd_forward(dpl_device *dev, const dpl_conv2d_args *a);
int vk_conv_winograd_backward_input(dpl_device *dev, const dpl_conv2d_args *a);

/* spatial_vulkan.c: pooling, padding and resizing (shaders/spatial2d.comp) */
int vk_op_spatial2d(dpl_device *dev, const dpl_spatial_args *a);

/* gemm_texel.c: the GEMM for CPU drivers (lavapipe); whether it computes an m x n product as its transpose (to
 * waste less of its 16 x 128 workgroup tile) */
int vk_gemm_texel(dpl_device *dev, const dpl_gemm_args *g);
bool vk_gemm_texel_turns(int64_t m, int64_t n);

#endif
