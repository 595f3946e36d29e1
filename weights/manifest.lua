-- The torchvision ImageNet checkpoints of the 14 architectures (IMAGENET1K_V1, i.e. pretrained=True in torchvision
-- 0.11; spec/benchmarks.md section 0.2). The 8 hex digits before ".pth" are the start of the file's SHA-256, which
-- weights/fetch.lua verifies, as torchvision does.
local base = "https://download.pytorch.org/models/"

local files = {
  alexnet = {"alexnet-owt-7be5be79.pth", 56.52},
  vgg11 = {"vgg11-8a719046.pth", 69.02},
  vgg16 = {"vgg16-397923af.pth", 71.59},
  vgg16_bn = {"vgg16_bn-6c64b313.pth", 73.36},
  vgg19 = {"vgg19-dcbb9e9d.pth", 72.38},
  resnet18 = {"resnet18-f37072fd.pth", 69.76},
  resnet50 = {"resnet50-0676ba61.pth", 76.13},
  resnext50_32x4d = {"resnext50_32x4d-7cdf4587.pth", 77.62},
  googlenet = {"googlenet-1378be20.pth", 69.78},
  inception_v3 = {"inception_v3_google-0cc3c7bd.pth", 77.29},
  efficientnet_b0 = {"efficientnet_b0_rwightman-3dd342df.pth", 77.69},
  efficientnet_b7 = {"efficientnet_b7_lukemelas-dcc49843.pth", 84.12},
  densenet121 = {"densenet121-a639ec97.pth", 74.43},
  squeezenet1_1 = {"squeezenet1_1-b8a52dc0.pth", 58.18},
}

local manifest = {order = {"alexnet", "vgg11", "vgg16", "vgg16_bn", "vgg19", "resnet18", "resnet50", "resnext50_32x4d",
                           "googlenet", "inception_v3", "efficientnet_b0", "efficientnet_b7", "densenet121",
                           "squeezenet1_1"}}
for arch, e in pairs(files) do
  manifest[arch] = {arch = arch, file = e[1], url = base .. e[1], top1 = e[2], sha256_prefix = e[1]:match("%-(%x+)%.pth$")}
end
return manifest
