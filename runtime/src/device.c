/* device.c - choosing, opening and listing devices; the per-device counters. */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dpl_vulkan_default_gpu_index(void);   /* device_vulkan.c: first discrete/integrated GPU, or -1 */

enum { MAX_VULKAN_DEVICES = 16 };
static dpl_device *cpu_device;
static dpl_device *vulkan_devices[MAX_VULKAN_DEVICES];

static dpl_device *open_vulkan(int index) {
  int count = dpl_vulkan_device_count();
  if (count == 0) {
    dpl_fail(DPL_ERR_DEVICE, "no Vulkan device: %s", dpl_vulkan_unavailable_reason());
    return NULL;
  }
  if (index < 0 || index >= count || index >= MAX_VULKAN_DEVICES) {
    dpl_fail(DPL_ERR_ARGUMENT, "Vulkan device %d does not exist (%d found; see dplrun --devices)", index, count);
    return NULL;
  }
  if (!vulkan_devices[index]) vulkan_devices[index] = dpl_vulkan_device_create(index);
  return vulkan_devices[index];
}

dpl_device *dpl_device_open(const char *spec) {
  if (!spec || !*spec || strcmp(spec, "auto") == 0) {
    const char *env = dpl_env_string("DPL_DEVICE");
    if (env && strcmp(env, "auto") != 0) {
      dpl_device *d = dpl_device_open(env);
      /* dplrun --device passes its value through DPL_DEVICE and says so in DPL_DEVICE_ORIGIN: blame what the user typed */
      const char *origin = dpl_env_string("DPL_DEVICE_ORIGIN");
      if (!d) dpl_error_prefix(origin && *origin ? origin : "DPL_DEVICE");
      return d;
    }
    int gpu = dpl_vulkan_default_gpu_index();
    if (gpu >= 0) {
      dpl_device *d = open_vulkan(gpu);
      if (d) return d;
      fprintf(stderr, "dpl: Vulkan device %d failed to open (%s); using the CPU\n", gpu, dpl_last_error());
    }
    return dpl_device_open("cpu");
  }
  if (strcmp(spec, "cpu") == 0) {
    if (!cpu_device) cpu_device = dpl_cpu_device_create();
    return cpu_device;
  }
  if (strcmp(spec, "vulkan") == 0) {
    int gpu = dpl_vulkan_default_gpu_index();
    return open_vulkan(gpu >= 0 ? gpu : 0);
  }
  if (strncmp(spec, "vulkan:", 7) == 0) {
    char *end;
    long idx = strtol(spec + 7, &end, 10);
    if (end != spec + 7 && *end == 0) return open_vulkan((int)idx);
  }
  dpl_fail(DPL_ERR_ARGUMENT, "unknown device '%s' (expected cpu, vulkan or vulkan:N)", spec);
  return NULL;
}

const char *dpl_device_banner(dpl_device *dev) { return dev ? dev->banner : ""; }
const char *dpl_device_spec(dpl_device *dev) { return dev ? dev->spec : ""; }
int dpl_device_is_vulkan(dpl_device *dev) { return dev ? dev->is_vulkan : 0; }

int dpl_device_synchronize(dpl_device *dev) {
  if (!dev) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_device_synchronize: no device");
  return dev->backend->synchronize(dev);
}

int dpl_device_set_alloc_class(dpl_device *dev, int alloc_class) {
  int prev = dev->alloc_class;
  if (alloc_class == 0 || alloc_class == 1) dev->alloc_class = alloc_class;
  return prev;
}

void dpl_device_reset_peak(dpl_device *dev) {
  if (dev) __atomic_store_n(&dev->peak_bytes, __atomic_load_n(&dev->bytes, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

int64_t dpl_device_stat(dpl_device *dev, const char *name) {
  if (!dev || !name) return -1;
  if (!strcmp(name, "bytes")) return dev->bytes;
  if (!strcmp(name, "peak_bytes")) return dev->peak_bytes;
  if (!strcmp(name, "dispatches")) return dev->n_dispatches;
  if (!strcmp(name, "submits")) return dev->n_submits;
  if (!strcmp(name, "barriers")) return dev->n_barriers;
  if (!strcmp(name, "uploads")) return dev->n_uploads;
  if (!strcmp(name, "downloads")) return dev->n_downloads;
  if (dev->is_vulkan) return dpl_vulkan_stat(dev, name);
  if (!strcmp(name, "reserved_bytes")) return dev->bytes;
  if (!strcmp(name, "pipelines")) return 0;
  if (!strcmp(name, "dnnl_convs")) return dpl_cpu_dnnl_count(false);
  if (!strcmp(name, "dnnl_activations")) return dpl_cpu_dnnl_count(true);
  return -1;
}

void dpl_shutdown(void) {
  dpl_loader_stop_all();   /* loader threads create CPU tensors: stop them before the devices go */
  for (int i = 0; i < MAX_VULKAN_DEVICES; i++)
    if (vulkan_devices[i]) {
      vulkan_devices[i]->backend->destroy(vulkan_devices[i]);
      vulkan_devices[i] = NULL;
    }
  if (cpu_device) {
    cpu_device->backend->destroy(cpu_device);
    cpu_device = NULL;
  }
}
