/* device_vulkan.c - the Vulkan instance (loaded at run time through volk, so a machine without a loader still runs on
 * the CPU), device enumeration and choice, the one-line banner, and creation of a dpl_device for a physical device. */
#include "vk_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int instance_state;            /* 0 not tried, 1 ready, -1 unavailable */
static char unavailable_reason[256];
static VkInstance instance;
static VkDebugUtilsMessengerEXT messenger;
static VkPhysicalDevice physicals[16];
static int nphysicals;
static char banners[16][512];
static int64_t validation_messages;
static uint32_t instance_api;         /* the API version the instance was created for */

int vk_check(VkResult r, const char *what) {
  if (r == VK_SUCCESS) return DPL_OK;
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of %s memory (VkResult %d)", what,
                    r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? "device" : "host", (int)r);
  if (r == VK_ERROR_DEVICE_LOST) return dpl_fail(DPL_ERR_DEVICE, "%s: the Vulkan device was lost", what);
  return dpl_fail(DPL_ERR_DEVICE, "%s failed (VkResult %d)", what, (int)r);
}

int64_t dpl_validation_message_count(void) { return validation_messages; }

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                    VkDebugUtilsMessageTypeFlagsEXT type,
                                                    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
  DPL_UNUSED(type);
  DPL_UNUSED(user);
  if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
    validation_messages++;
    fprintf(stderr, "dpl: Vulkan validation: %s\n", data->pMessage);
  }
  return VK_FALSE;
}

static int has_layer(const char *name) {
  uint32_t n = 0;
  vkEnumerateInstanceLayerProperties(&n, NULL);
  VkLayerProperties *p = calloc(n ? n : 1, sizeof *p);
  vkEnumerateInstanceLayerProperties(&n, p);
  int found = 0;
  for (uint32_t i = 0; i < n; i++) if (!strcmp(p[i].layerName, name)) found = 1;
  free(p);
  return found;
}

static int has_instance_extension(const char *name) {
  uint32_t n = 0;
  vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
  VkExtensionProperties *p = calloc(n ? n : 1, sizeof *p);
  vkEnumerateInstanceExtensionProperties(NULL, &n, p);
  int found = 0;
  for (uint32_t i = 0; i < n; i++) if (!strcmp(p[i].extensionName, name)) found = 1;
  free(p);
  return found;
}

static const char *type_name(VkPhysicalDeviceType t) {
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
  case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
  default: return "other";
  }
}

static void describe(int i) {
  VkPhysicalDeviceProperties basic;
  vkGetPhysicalDeviceProperties(physicals[i], &basic);
  int v12 = basic.apiVersion >= VK_API_VERSION_1_2;   /* driver and fp16 queries are core in 1.2 */
  VkPhysicalDeviceDriverProperties driver = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupProperties subgroup = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                                 .pNext = v12 ? &driver : NULL};
  VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &subgroup};
  vkGetPhysicalDeviceProperties2(physicals[i], &p2);
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = v12 ? &f16 : NULL};
  vkGetPhysicalDeviceFeatures2(physicals[i], &f2);
  const VkPhysicalDeviceProperties *p = &p2.properties;
  snprintf(banners[i], sizeof banners[i],
           "vulkan:%d: %.200s | driver %.60s %.120s | Vulkan %u.%u.%u | %s | subgroup %u | fp16 %s | max storage buffer %llu MiB",
           i, p->deviceName, driver.driverName[0] ? driver.driverName : "?", driver.driverInfo,
           VK_API_VERSION_MAJOR(p->apiVersion), VK_API_VERSION_MINOR(p->apiVersion),
           VK_API_VERSION_PATCH(p->apiVersion), type_name(p->deviceType), subgroup.subgroupSize,
           f16.shaderFloat16 ? "yes" : "no", (unsigned long long)(p->limits.maxStorageBufferRange >> 20));
}

static int init_instance(void) {
  if (instance_state) return instance_state > 0;
  instance_state = -1;
  if (dpl_env_present("DPL_NO_VULKAN")) {
    snprintf(unavailable_reason, sizeof unavailable_reason, "disabled by DPL_NO_VULKAN");
    return 0;
  }
  if (volkInitialize() != VK_SUCCESS) {
    snprintf(unavailable_reason, sizeof unavailable_reason, "no Vulkan loader (libvulkan.so.1) found");
    return 0;
  }
  int validation = dpl_env_flag("DPL_VALIDATION");
  const char *layers[1];
  const char *exts[2];
  uint32_t nlayers = 0, nexts = 0;
  if (validation) {
    if (has_layer("VK_LAYER_KHRONOS_validation")) {
      layers[nlayers++] = "VK_LAYER_KHRONOS_validation";
      if (has_instance_extension(VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) exts[nexts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    } else {
      fprintf(stderr, "dpl: DPL_VALIDATION is set but VK_LAYER_KHRONOS_validation is not installed "
                      "(Debian: vulkan-validationlayers)\n");
      validation_messages++;   /* a test run that asked for validation must not pass silently without it */
    }
  }
  uint32_t loader_version = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion) vkEnumerateInstanceVersion(&loader_version);
  instance_api = loader_version >= VK_API_VERSION_1_2 ? VK_API_VERSION_1_2 : VK_API_VERSION_1_1;
  VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "dpl",
                           .pEngineName = "dpl", .apiVersion = instance_api};
  VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app,
                             .enabledLayerCount = nlayers, .ppEnabledLayerNames = layers,
                             .enabledExtensionCount = nexts, .ppEnabledExtensionNames = exts};
  VkResult r = vkCreateInstance(&ci, NULL, &instance);
  if (r != VK_SUCCESS) {
    snprintf(unavailable_reason, sizeof unavailable_reason,
             r == VK_ERROR_INCOMPATIBLE_DRIVER ? "no Vulkan driver (ICD) installed" : "vkCreateInstance failed (%d)",
             (int)r);
    return 0;
  }
  volkLoadInstanceOnly(instance);
  if (nexts) {
    VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation};
    vkCreateDebugUtilsMessengerEXT(instance, &mi, NULL, &messenger);
  }
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(instance, &n, NULL);
  VkPhysicalDevice all[16];
  if (n > 16) n = 16;
  vkEnumeratePhysicalDevices(instance, &n, all);
  for (uint32_t i = 0; i < n; i++) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(all[i], &p);
    if (p.apiVersion < VK_API_VERSION_1_1) continue;   /* our SPIR-V targets Vulkan 1.1 */
    physicals[nphysicals] = all[i];
    describe(nphysicals);
    nphysicals++;
  }
  if (nphysicals == 0) {
    snprintf(unavailable_reason, sizeof unavailable_reason, "the Vulkan loader found no device with Vulkan >= 1.1");
    return 0;
  }
  instance_state = 1;
  return 1;
}

int dpl_vulkan_device_count(void) { return init_instance() ? nphysicals : 0; }
const char *dpl_vulkan_unavailable_reason(void) { init_instance(); return instance_state > 0 ? "" : unavailable_reason; }
const char *dpl_vulkan_device_banner(int i) {
  if (!init_instance() || i < 0 || i >= nphysicals) return "";
  return banners[i];
}

int dpl_vulkan_default_gpu_index(void) {
  if (!init_instance()) return -1;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < nphysicals; i++) {
      VkPhysicalDeviceProperties p;
      vkGetPhysicalDeviceProperties(physicals[i], &p);
      if (p.deviceType == (pass == 0 ? VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU : VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU))
        return i;
    }
  return -1;
}

static int has_device_extension(VkPhysicalDevice pd, const char *name) {
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
  VkExtensionProperties *p = calloc(n ? n : 1, sizeof *p);
  vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p);
  int found = 0;
  for (uint32_t i = 0; i < n; i++) if (!strcmp(p[i].extensionName, name)) found = 1;
  free(p);
  return found;
}

void dpl_vulkan_device_destroy(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  if (v) {
    if (v->device) {
      vk_weight_cache_release(dev);
      vk_flush(dev, 1);
      vkDeviceWaitIdle(v->device);
      vk_recorder_destroy(dev);
      vk_profile_destroy(dev);
      vk_pipelines_destroy(dev);
      vk_memory_destroy(dev);
      vkDestroyDevice(v->device, NULL);
    }
    free(v);
  }
  free(dev);
}

dpl_device *dpl_vulkan_device_create(int index) {
  if (!init_instance() || index < 0 || index >= nphysicals) {
    dpl_fail(DPL_ERR_DEVICE, "Vulkan device %d is not available: %s", index, dpl_vulkan_unavailable_reason());
    return NULL;
  }
  dpl_device *dev = calloc(1, sizeof *dev);
  vk_device *v = calloc(1, sizeof *v);
  if (!dev || !v) { free(dev); free(v); dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); return NULL; }
  dev->impl = v;
  dev->backend = &dpl_vulkan_backend;
  dev->is_vulkan = 1;
  snprintf(dev->spec, sizeof dev->spec, "vulkan:%d", index);
  snprintf(dev->banner, sizeof dev->banner, "%s", banners[index]);
  v->physical = physicals[index];
  vkGetPhysicalDeviceProperties(v->physical, &v->props);
  vkGetPhysicalDeviceMemoryProperties(v->physical, &v->memprops);
  VkPhysicalDeviceSubgroupProperties subgroup = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &subgroup};
  vkGetPhysicalDeviceProperties2(v->physical, &p2);
  v->subgroup_size = subgroup.subgroupSize;
  v->cpu_like = v->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  v->shared_memory = v->props.limits.maxComputeSharedMemorySize;

  /* a queue family with compute; prefer compute-only (async compute) families as ncnn does */
  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(v->physical, &nq, NULL);
  VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof *qf);
  vkGetPhysicalDeviceQueueFamilyProperties(v->physical, &nq, qf);
  int family = -1;
  for (uint32_t i = 0; i < nq; i++)
    if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) { family = (int)i; break; }
  if (family < 0)
    for (uint32_t i = 0; i < nq; i++)
      if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) { family = (int)i; break; }
  free(qf);
  if (family < 0) {
    dpl_fail(DPL_ERR_DEVICE, "%s has no compute queue", v->props.deviceName);
    dpl_vulkan_device_destroy(dev);
    return NULL;
  }
  v->queue_family = (uint32_t)family;

  const char *exts[3];
  uint32_t nexts = 0;
  if (has_device_extension(v->physical, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) && !dpl_env_present("DPL_VK_NO_PUSH_DESCRIPTOR")) {
    exts[nexts++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    v->has_push_descriptor = 1;
  }
  /* 16-bit floats in shaders (the fp16 tiles of --precision fp16): core in Vulkan 1.2, an extension before */
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  int f16_core = v->props.apiVersion >= VK_API_VERSION_1_2 && instance_api >= VK_API_VERSION_1_2;
  int f16_ext = !f16_core && has_device_extension(v->physical, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
  if (f16_core || f16_ext) {
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
    vkGetPhysicalDeviceFeatures2(v->physical, &f2);
  }
  VkPhysicalDeviceShaderFloat16Int8Features enable16 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .shaderFloat16 = VK_TRUE};
  if (f16.shaderFloat16) {
    v->has_fp16 = 1;
    if (f16_ext) exts[nexts++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
  }
  float priority = 1.0f;
  VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = v->queue_family,
                                 .queueCount = 1, .pQueuePriorities = &priority};
  VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = v->has_fp16 ? &enable16 : NULL,
                            .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci, .enabledExtensionCount = nexts,
                            .ppEnabledExtensionNames = exts};
  if (vk_check(vkCreateDevice(v->physical, &dci, NULL, &v->device), "vkCreateDevice")) {
    v->device = VK_NULL_HANDLE;
    dpl_vulkan_device_destroy(dev);
    return NULL;
  }
  volkLoadDevice(v->device);   /* one device per process in practice; volk keeps the last one's entry points */
  vkGetDeviceQueue(v->device, v->queue_family, 0, &v->queue);
  if (vk_memory_init(dev) || vk_recorder_init(dev) || vk_pipelines_init(dev) || vk_profile_init(dev)) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", dpl_last_error());
    dpl_vulkan_device_destroy(dev);
    dpl_fail(DPL_ERR_DEVICE, "could not initialise %s: %s", banners[index], msg);
    return NULL;
  }
  return dev;
}

int64_t dpl_vulkan_stat(dpl_device *dev, const char *name) {
  vk_device *v = vkdev(dev);
  if (!strcmp(name, "reserved_bytes")) return v->reserved_bytes;
  if (!strcmp(name, "pipelines")) return v->npipelines;
  return vk_kernel_stat(dev, name);
}
