/* kernels.c - which kernel family runs each convolution and matrix product (docs/vulkan.md, "How kernels are chosen").
 *
 * Two kinds of Vulkan device want opposite kernels. CPU drivers (lavapipe/llvmpipe) run shared memory, barriers and
 * SSBO loads as per-lane scalar loops and inline only imageLoad: they want no shared memory, one subgroup per
 * workgroup, big per-invocation register tiles and texel-buffer loads. GPUs want workgroup tiles staged in shared
 * memory, many threads each holding a small register block, and vectorised loads. So each op has families of
 * kernels, and a candidate table per op lists them in order of preference with the devices and shapes each suits:
 * the first candidate whose device class matches and whose condition holds is taken. The device class and limits are
 * read once when the device is created (device_vulkan.c); a choice depends only on the device, the op and its shape,
 * and is remembered per shape.
 *
 * DPL_VK_CONV=direct|portable|winograd|tiled and DPL_VK_MATMUL=portable|texel|tiled force a family for every op it
 * can run (a family that cannot run a shape, Winograd for a 5x5 kernel say, leaves that op to the table); both are
 * read at every op, so tests can switch them. DPL_VK_CONV_PORTABLE=1 (older spelling) means DPL_VK_CONV=portable. */
#include "vk_internal.h"
#include <string.h>

static const char *conv_names[VK_CONV_FAMILIES] = {"direct", "portable", "winograd", "tiled"};
static const char *gemm_names[VK_GEMM_FAMILIES] = {"portable", "texel", "tiled"};

const char *vk_conv_family_name(int family) {
  return family >= 0 && family < VK_CONV_FAMILIES ? conv_names[family] : "?";
}
const char *vk_gemm_family_name(int family) {
  return family >= 0 && family < VK_GEMM_FAMILIES ? gemm_names[family] : "?";
}

static int lookup(const char *value, const char *const *names, int n) {
  if (!value) return -1;
  for (int i = 0; i < n; i++) if (!strcmp(value, names[i])) return i;
  return -1;
}

/* ---- device classes ------------------------------------------------------------------------------------------- */
enum { CLASS_CPU = 1, CLASS_GPU = 2, CLASS_ANY = 3 };

static int device_class(const vk_device *v) { return v->cpu_like ? CLASS_CPU : CLASS_GPU; }

/* ---- convolution ------------------------------------------------------------------------------------------------ */
enum { KIND_FWD = 1 << VK_CONV_FORWARD, KIND_BI = 1 << VK_CONV_BACKWARD_INPUT, KIND_BW = 1 << VK_CONV_BACKWARD_WEIGHT,
       KIND_ALL = 7 };

static bool always(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  DPL_UNUSED(dev); DPL_UNUSED(a); DPL_UNUSED(kind);
  return true;
}

/* 3x3, stride 1, dilation 1, one group; the input gradient needs padding <= 2 (it becomes padding 2 - pad); worth
 * its three extra passes only with enough channels on both sides */
static bool winograd_applies(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  if (kind == VK_CONV_BACKWARD_WEIGHT || a->kh != 3 || a->kw != 3 || a->stride_h != 1 || a->stride_w != 1 ||
      a->dil_h != 1 || a->dil_w != 1 || a->groups != 1)
    return false;
  if (kind == VK_CONV_BACKWARD_INPUT && (a->pad_h > 2 || a->pad_w > 2)) return false;
  return vk_winograd_fits(dev, a, kind);
}
static bool winograd_worth_it(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  return a->c >= 16 && a->o >= 16 && winograd_applies(dev, a, kind);
}


static bool tiled_applies(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  DPL_UNUSED(a); DPL_UNUSED(kind);
  return vk_tiled_supported(dev);
}

typedef struct conv_candidate {
  int family;
  int devices;                         /* CLASS_* bits */
  int kinds;                           /* KIND_* bits */
  bool (*when)(dpl_device *dev, const dpl_conv2d_args *a, int kind);
} conv_candidate;

/* in order of preference */
static const conv_candidate conv_table[] = {
  /* CPU drivers: 3x3 stride-1 layers (VGG, ResNet's 3x3s, the super-resolution network) as Winograd products */
  {VK_CONV_WINOGRAD, CLASS_CPU, KIND_FWD | KIND_BI, winograd_worth_it},
  /* CPU drivers: everything else through the direct register-tile kernels (imageLoad on texel buffers) */
  {VK_CONV_DIRECT, CLASS_CPU, KIND_ALL, always},
  /* GPUs: implicit GEMM with shared-memory workgroup tiles, the tile chosen per shape (conv_tiled.c) */
  {VK_CONV_TILED, CLASS_GPU, KIND_ALL, tiled_applies},
  /* anything else: the direct kernels through plain storage buffers */
  {VK_CONV_PORTABLE, CLASS_ANY, KIND_ALL, always},
};

/* whether `family` can run this op at all (for a forced family) */
static bool conv_can_run(dpl_device *dev, int family, const dpl_conv2d_args *a, int kind) {
  switch (family) {
  case VK_CONV_WINOGRAD: return winograd_applies(dev, a, kind);
  case VK_CONV_TILED: return tiled_applies(dev, a, kind);
  default: return true;
  }
}

/* remembered choices: a small open-addressed table per device, keyed by the op and its geometry */
static uint64_t conv_key(const dpl_conv2d_args *a, int kind) {
  int64_t f[17] = {kind, a->n, a->c, a->h, a->w, a->o, a->kh, a->kw, a->oh, a->ow, a->stride_h, a->stride_w,
                   a->pad_h, a->pad_w, a->dil_h, a->dil_w, a->groups};
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 17; i++) { h ^= (uint64_t)f[i]; h *= 1099511628211ull; }
  return h | 1;   /* never 0: 0 marks an empty slot */
}

static int choose_conv(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  vk_device *v = vkdev(dev);
  const char *forced = dpl_env_string("DPL_VK_CONV");
  int f = lookup(forced, conv_names, VK_CONV_FAMILIES);
  if (f < 0 && dpl_env_is("DPL_VK_CONV_PORTABLE", "1")) f = VK_CONV_PORTABLE;
  if (f >= 0 && conv_can_run(dev, f, a, kind)) return f;
  uint64_t key = conv_key(a, kind);
  unsigned slot = (unsigned)(key % VK_CHOICE_SLOTS);
  for (unsigned probe = 0; probe < 8; probe++) {
    vk_choice *c = &v->conv_choices[(slot + probe) % VK_CHOICE_SLOTS];
    if (c->key == key) return c->family;
    if (c->key == 0) break;
  }
  int family = VK_CONV_PORTABLE;
  for (size_t i = 0; i < sizeof conv_table / sizeof conv_table[0]; i++) {
    const conv_candidate *c = &conv_table[i];
    if ((c->devices & device_class(v)) && (c->kinds & (1 << kind)) && c->when(dev, a, kind)) {
      family = c->family;
      break;
    }
  }
  for (unsigned probe = 0; probe < 8; probe++) {   /* remember it (a full neighbourhood: not remembered) */
    vk_choice *c = &v->conv_choices[(slot + probe) % VK_CHOICE_SLOTS];
    if (c->key == 0) { c->key = key; c->family = family; break; }
  }
  return family;
}

int vk_choose_conv(dpl_device *dev, const dpl_conv2d_args *a, int kind) {
  int family = choose_conv(dev, a, kind);
  vkdev(dev)->conv_runs[family]++;
  return family;
}

/* ---- matrix product --------------------------------------------------------------------------------------------- */
/* Products smaller than this (m * n * k) go to the portable kernel on CPU drivers: the texel kernel's packing and
 * 16 x 128 workgroup tile cost more than they save (measured crossover between 32^3 and 48^3). */
static const double TEXEL_MIN_WORK = 40.0 * 40.0 * 40.0;
/* On GPUs the shared-memory tiles pay off once a product fills a few workgroup tiles (a guess: unmeasured). */
static const double TILED_MIN_WORK = 32.0 * 32.0 * 32.0;

int vk_gemm_family_for(dpl_device *dev, int64_t m, int64_t n, int64_t k) {
  vk_device *v = vkdev(dev);
  int f = lookup(dpl_env_string("DPL_VK_MATMUL"), gemm_names, VK_GEMM_FAMILIES);
  if (f == VK_GEMM_TILED && !vk_tiled_supported(dev)) f = -1;
  if (f >= 0) return f;
  double work = (double)m * (double)n * (double)k;
  if (v->cpu_like) return work >= TEXEL_MIN_WORK ? VK_GEMM_TEXEL : VK_GEMM_PORTABLE;
  return work >= TILED_MIN_WORK && vk_tiled_supported(dev) ? VK_GEMM_TILED : VK_GEMM_PORTABLE;
}

int vk_choose_gemm(dpl_device *dev, const dpl_gemm_args *g) {
  int family = vk_gemm_family_for(dev, g->m, g->n, g->k);
  vkdev(dev)->gemm_runs[family]++;
  return family;
}

/* "conv_<family>" and "gemm_<family>": the ops each family has run */
int64_t vk_kernel_stat(dpl_device *dev, const char *name) {
  vk_device *v = vkdev(dev);
  if (!strncmp(name, "conv_", 5)) {
    int f = lookup(name + 5, conv_names, VK_CONV_FAMILIES);
    return f >= 0 ? v->conv_runs[f] : -1;
  }
  if (!strncmp(name, "gemm_", 5)) {
    int f = lookup(name + 5, gemm_names, VK_GEMM_FAMILIES);
    return f >= 0 ? v->gemm_runs[f] : -1;
  }
  return -1;
}

/* --precision fp16 (DPL_PRECISION=fp16) on a device with shaderFloat16: the tiled family stages its shared-memory
 * tiles in float16 (docs/vulkan.md, "Precision"); everything else stays float32 */
bool vk_half_tiles(dpl_device *dev) { return vkdev(dev)->has_fp16 && dpl_env_is("DPL_PRECISION", "fp16"); }
