/* pipelines.c - compute pipelines: created once per (shader, specialization constants, binding types) and kept for the
 * process; the driver's compiled code is persisted across runs in a VkPipelineCache file under the user's cache
 * directory, one file per device and driver version. Every pipeline has one descriptor set of nb bindings and a
 * 128-byte push-constant range (the minimum every device supports). */
#include "vk_internal.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void cache_path(vk_device *v, char *out, size_t n) {
  const char *xdg = dpl_env_string("XDG_CACHE_HOME"), *home = dpl_env_string("HOME"), *env = dpl_env_string("DPL_CACHE_DIR");
  char dir[400];
  if (env && *env) snprintf(dir, sizeof dir, "%s", env);
  else if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/dpl", xdg);
  else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/dpl", home);
  else { out[0] = 0; return; }
  /* create the directory (and its parent) if needed */
  char parent[400];
  snprintf(parent, sizeof parent, "%s", dir);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) { *slash = 0; mkdir(parent, 0755); }
  mkdir(dir, 0755);
  char uuid[2 * VK_UUID_SIZE + 1];
  for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", v->props.pipelineCacheUUID[i]);
  snprintf(out, n, "%s/pipelines-%04x-%04x-%08x-%s.bin", dir, v->props.vendorID, v->props.deviceID,
           v->props.driverVersion, uuid);
}

/* The file is accepted only if its header names this device and driver (a stale or foreign cache is ignored). */
static int header_matches(vk_device *v, const uint8_t *data, size_t n) {
  if (n < 16 + VK_UUID_SIZE) return 0;
  uint32_t len, version, vendor, device;
  memcpy(&len, data, 4);
  memcpy(&version, data + 4, 4);
  memcpy(&vendor, data + 8, 4);
  memcpy(&device, data + 12, 4);
  return len >= 16 + VK_UUID_SIZE && version == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && vendor == v->props.vendorID &&
         device == v->props.deviceID && memcmp(data + 16, v->props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

int vk_pipelines_init(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  void *data = NULL;
  size_t n = 0;
  if (!dpl_env_present("DPL_NO_PIPELINE_CACHE")) cache_path(v, v->pipeline_cache_path, sizeof v->pipeline_cache_path);
  if (v->pipeline_cache_path[0]) {
    FILE *f = fopen(v->pipeline_cache_path, "rb");
    if (f) {
      fseek(f, 0, SEEK_END);
      long size = ftell(f);
      fseek(f, 0, SEEK_SET);
      if (size > 0 && size < (64l << 20)) {
        data = malloc((size_t)size);
        if (data && fread(data, 1, (size_t)size, f) == (size_t)size && header_matches(v, data, (size_t)size))
          n = (size_t)size;
      }
      fclose(f);
    }
  }
  VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, .initialDataSize = n,
                                  .pInitialData = n ? data : NULL};
  int rc = vk_check(vkCreatePipelineCache(v->device, &ci, NULL, &v->pipeline_cache), "vkCreatePipelineCache");
  free(data);
  return rc;
}

static void save_cache(vk_device *v) {
  if (!v->pipeline_cache || !v->pipeline_cache_path[0] || v->npipelines == 0) return;
  size_t n = 0;
  if (vkGetPipelineCacheData(v->device, v->pipeline_cache, &n, NULL) != VK_SUCCESS || n == 0) return;
  void *data = malloc(n);
  if (!data) return;
  if (vkGetPipelineCacheData(v->device, v->pipeline_cache, &n, data) == VK_SUCCESS) {
    /* write a temporary file and rename it, so a killed run never leaves a torn cache */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", v->pipeline_cache_path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f) {
      int ok = fwrite(data, 1, n, f) == n;
      ok = (fclose(f) == 0) && ok;
      if (!ok || rename(tmp, v->pipeline_cache_path) != 0) remove(tmp);
    }
  }
  free(data);
}

void vk_pipelines_destroy(dpl_device *dev) {
  vk_device *v = vkdev(dev);
  save_cache(v);
  for (int i = 0; i < v->npipelines; i++) {
    vk_pipeline *p = &v->pipelines[i];
    vkDestroyPipeline(v->device, p->pipeline, NULL);
    vkDestroyPipelineLayout(v->device, p->layout, NULL);
    vkDestroyDescriptorSetLayout(v->device, p->set_layout, NULL);
  }
  free(v->pipelines);
  for (int i = 0; i < DPL_SHADER_COUNT; i++)
    if (v->modules[i]) vkDestroyShaderModule(v->device, v->modules[i], NULL);
  if (v->pipeline_cache) vkDestroyPipelineCache(v->device, v->pipeline_cache, NULL);
}

static uint64_t hash_key(int shader, const uint32_t *spec, int nspec, uint32_t types, int nb) {
  uint64_t h = 1469598103934665603ull;
  uint32_t words[VK_MAX_SPEC + 4] = {(uint32_t)shader, (uint32_t)nspec, types, (uint32_t)nb};
  for (int i = 0; i < nspec; i++) words[4 + i] = spec[i];
  for (int i = 0; i < 4 + nspec; i++) { h ^= words[i]; h *= 1099511628211ull; }
  return h;
}

vk_pipeline *vk_get_pipeline(dpl_device *dev, int shader, const uint32_t *spec, int nspec, const vk_binding *b, int nb) {
  vk_device *v = vkdev(dev);
  if (shader < 0 || shader >= DPL_SHADER_COUNT || nspec > VK_MAX_SPEC || nb > VK_MAX_BINDINGS) {
    dpl_fail(DPL_ERR_ARGUMENT, "bad pipeline request (shader %d, %d constants, %d bindings)", shader, nspec, nb);
    return NULL;
  }
  uint32_t types = 0;
  for (int i = 0; i < nb; i++) types |= (uint32_t)(b[i].texel ? 1 : 0) << (2 * i);
  uint64_t h = hash_key(shader, spec, nspec, types, nb);
  for (int i = 0; i < v->npipelines; i++) {
    vk_pipeline *p = &v->pipelines[i];
    if (p->key_hash == h && p->shader == shader && p->nspec == nspec && p->binding_types == types &&
        p->nbindings == nb && memcmp(p->spec, spec, sizeof(uint32_t) * (size_t)nspec) == 0)
      return p;
  }
  if (!v->modules[shader]) {
    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                    .codeSize = dpl_shader_table[shader].size, .pCode = dpl_shader_table[shader].code};
    if (vk_check(vkCreateShaderModule(v->device, &mci, NULL, &v->modules[shader]), "vkCreateShaderModule")) return NULL;
  }
  vk_pipeline p = {.key_hash = h, .shader = shader, .nspec = nspec, .binding_types = types, .nbindings = nb};
  memcpy(p.spec, spec, sizeof(uint32_t) * (size_t)nspec);
  VkDescriptorSetLayoutBinding lb[VK_MAX_BINDINGS];
  for (int i = 0; i < nb; i++)
    lb[i] = (VkDescriptorSetLayoutBinding){
        .binding = (uint32_t)i,
        .descriptorType = b[i].texel ? VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
  VkDescriptorSetLayoutCreateInfo sl = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
      .flags = v->has_push_descriptor ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
      .bindingCount = (uint32_t)nb, .pBindings = lb};
  if (vk_check(vkCreateDescriptorSetLayout(v->device, &sl, NULL, &p.set_layout), "vkCreateDescriptorSetLayout"))
    return NULL;
  VkPushConstantRange pcr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES};
  VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                   .pSetLayouts = &p.set_layout, .pushConstantRangeCount = 1,
                                   .pPushConstantRanges = &pcr};
  if (vk_check(vkCreatePipelineLayout(v->device, &pl, NULL, &p.layout), "vkCreatePipelineLayout")) {
    vkDestroyDescriptorSetLayout(v->device, p.set_layout, NULL);
    return NULL;
  }
  VkSpecializationMapEntry entries[VK_MAX_SPEC];
  for (int i = 0; i < nspec; i++) entries[i] = (VkSpecializationMapEntry){(uint32_t)i, (uint32_t)(4 * i), 4};
  VkSpecializationInfo si = {(uint32_t)nspec, entries, sizeof(uint32_t) * (size_t)nspec, p.spec};
  VkComputePipelineCreateInfo cpi = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = v->modules[shader], .pName = "main", .pSpecializationInfo = nspec ? &si : NULL},
      .layout = p.layout};
  if (vk_check(vkCreateComputePipelines(v->device, v->pipeline_cache, 1, &cpi, NULL, &p.pipeline),
               "vkCreateComputePipelines")) {
    vkDestroyPipelineLayout(v->device, p.layout, NULL);
    vkDestroyDescriptorSetLayout(v->device, p.set_layout, NULL);
    dpl_error_prefix(dpl_shader_table[shader].name);
    return NULL;
  }
  if (v->npipelines == v->cappipelines) {
    v->cappipelines = v->cappipelines ? 2 * v->cappipelines : 64;
    vk_pipeline *np = realloc(v->pipelines, sizeof *np * (size_t)v->cappipelines);
    if (!np) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of host memory"); return NULL; }
    v->pipelines = np;
  }
  v->pipelines[v->npipelines] = p;
  return &v->pipelines[v->npipelines++];
}
