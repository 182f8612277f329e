// What a Vulkan driver reports for Dawn's subgroup-matrix conditions (PhysicalDeviceVk.cpp):
// VK_KHR_cooperative_matrix with cooperativeMatrix and compute-stage support, the Vulkan memory
// model at device scope, subgroup size control with computeFullSubgroups, and the matrix
// configurations. No Vulkan headers needed: the few structures are declared here.
//   gcc -O1 -o /tmp/vkcm tools/gpu-bench/vulkan-cooperative-matrix.c -ldl && /tmp/vkcm
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef int32_t VkResult;
typedef uint32_t VkBool32;
typedef void *Handle;
typedef struct { int32_t sType; const void *pNext; const char *appName; uint32_t appVersion;
  const char *engineName; uint32_t engineVersion; uint32_t apiVersion; } AppInfo;
typedef struct { int32_t sType; const void *pNext; uint32_t flags; const AppInfo *app;
  uint32_t layerCount; const char *const *layers; uint32_t extCount; const char *const *exts; } InstanceInfo;
typedef struct { char name[256]; uint32_t specVersion; } ExtensionProperties;
typedef struct { int32_t sType; void *pNext; } Chain;
typedef struct { int32_t sType; void *pNext; VkBool32 cooperativeMatrix; VkBool32 robustBufferAccess; } CoopFeatures;
typedef struct { int32_t sType; void *pNext; uint32_t stages; } CoopProperties;
typedef struct { int32_t sType; void *pNext; VkBool32 model; VkBool32 deviceScope; VkBool32 chains; } MemoryModelFeatures;
typedef struct { int32_t sType; void *pNext; VkBool32 control; VkBool32 computeFull; } SizeControlFeatures;
typedef struct { int32_t sType; void *pNext; uint32_t minSize; uint32_t maxSize; uint32_t maxWorkgroupSubgroups; uint32_t stages; } SizeControlProperties;
typedef struct { int32_t sType; void *pNext; uint32_t M, N, K, A, B, C, Result; VkBool32 saturating; uint32_t scope; } MatrixConfig;
typedef struct { int32_t sType; void *pNext; uint8_t features[220 * 4]; } Features2;
typedef struct { int32_t sType; void *pNext; uint32_t apiVersion, driverVersion, vendorID, deviceID, deviceType;
  char deviceName[256]; uint8_t rest[4096]; } Properties2;

static const char *component(uint32_t t) {
  static const char *names[] = {"f16", "f32", "f64", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"};
  return t < 11 ? names[t] : "other";
}

int main(void) {
  void *lib = dlopen("libvulkan.so.1", RTLD_NOW);
  if (!lib) { printf("{\"error\":\"no libvulkan.so.1\"}\n"); return 1; }
  void *(*getInstanceProc)(Handle, const char *) = dlsym(lib, "vkGetInstanceProcAddr");
  VkResult (*createInstance)(const InstanceInfo *, const void *, Handle *) = getInstanceProc(NULL, "vkCreateInstance");
  AppInfo app = {0, NULL, "coopmat-check", 1, "none", 1, (1u << 22) | (3u << 12)};
  InstanceInfo create = {1, NULL, 0, &app, 0, NULL, 0, NULL};
  Handle instance;
  if (createInstance(&create, NULL, &instance) != 0) { printf("{\"error\":\"vkCreateInstance\"}\n"); return 1; }
  VkResult (*enumerate)(Handle, uint32_t *, Handle *) = getInstanceProc(instance, "vkEnumeratePhysicalDevices");
  VkResult (*extensions)(Handle, const char *, uint32_t *, ExtensionProperties *) = getInstanceProc(instance, "vkEnumerateDeviceExtensionProperties");
  void (*features2)(Handle, Features2 *) = getInstanceProc(instance, "vkGetPhysicalDeviceFeatures2");
  void (*properties2)(Handle, Properties2 *) = getInstanceProc(instance, "vkGetPhysicalDeviceProperties2");
  VkResult (*matrixConfigs)(Handle, uint32_t *, MatrixConfig *) = getInstanceProc(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  uint32_t count = 8; Handle devices[8];
  enumerate(instance, &count, devices);
  printf("[\n");
  for (uint32_t d = 0; d < count; d++) {
    static ExtensionProperties ext[1024]; uint32_t extCount = 1024;
    extensions(devices[d], NULL, &extCount, ext);
    int hasCoop = 0, hasModel = 0, hasSizeControl = 0;
    for (uint32_t e = 0; e < extCount; e++) {
      hasCoop |= !strcmp(ext[e].name, "VK_KHR_cooperative_matrix");
      hasModel |= !strcmp(ext[e].name, "VK_KHR_vulkan_memory_model");
      hasSizeControl |= !strcmp(ext[e].name, "VK_EXT_subgroup_size_control");
    }
    CoopFeatures coop = {1000506000, NULL, 0, 0};
    MemoryModelFeatures model = {1000211000, &coop, 0, 0, 0};
    SizeControlFeatures size = {1000225002, &model, 0, 0};
    Features2 features = {1000059000, &size};
    features2(devices[d], &features);
    CoopProperties coopProps = {1000506002, NULL, 0};
    SizeControlProperties sizeProps = {1000225000, &coopProps, 0, 0, 0, 0};
    Properties2 props = {1000059001, &sizeProps};
    properties2(devices[d], &props);
    printf("  {\"device\": \"%s\", \"apiVersion\": \"%u.%u.%u\",\n", props.deviceName, props.apiVersion >> 22,
           (props.apiVersion >> 12) & 0x3ff, props.apiVersion & 0xfff);
    printf("   \"VK_KHR_cooperative_matrix\": %d, \"cooperativeMatrix\": %u, \"cooperativeMatrixSupportedStages\": %u,\n",
           hasCoop, coop.cooperativeMatrix, coopProps.stages);
    printf("   \"VK_KHR_vulkan_memory_model\": %d, \"vulkanMemoryModel\": %u, \"vulkanMemoryModelDeviceScope\": %u,\n",
           hasModel, model.model, model.deviceScope);
    printf("   \"VK_EXT_subgroup_size_control\": %d, \"subgroupSizeControl\": %u, \"computeFullSubgroups\": %u, \"subgroupSizes\": [%u, %u],\n",
           hasSizeControl, size.control, size.computeFull, sizeProps.minSize, sizeProps.maxSize);
    printf("   \"configs\": [");
    if (hasCoop && matrixConfigs) {
      MatrixConfig configs[64]; uint32_t n = 64;
      for (uint32_t i = 0; i < n; i++) { memset(&configs[i], 0, sizeof configs[i]); configs[i].sType = 1000506001; }
      matrixConfigs(devices[d], &n, configs);
      for (uint32_t i = 0; i < n; i++) {
        MatrixConfig *c = &configs[i];
        printf("%s\n     {\"M\": %u, \"N\": %u, \"K\": %u, \"A\": \"%s\", \"B\": \"%s\", \"C\": \"%s\", \"Result\": \"%s\", \"saturating\": %u, \"scope\": %u}",
               i ? "," : "", c->M, c->N, c->K, component(c->A), component(c->B), component(c->C), component(c->Result), c->saturating, c->scope);
      }
    }
    printf("]}%s\n", d + 1 < count ? "," : "");
  }
  printf("]\n");
  return 0;
}
