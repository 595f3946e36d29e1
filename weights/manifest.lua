-- The weights dpl downloads (dplrun weights/fetch.lua): the torchvision ImageNet checkpoints of the 14 architectures
-- (IMAGENET1K_V1, i.e. pretrained=True in torchvision 0.11) and the LPIPS linear layers. Every file has its locations
-- in the order they are tried (official first, byte-identical copies after), its size and a checksum; where each
-- value comes from, and the state of every location, is in docs/data-sources.md.
--
-- Checkpoint fields: file (the name torchvision gives it), urls, sha256_prefix (the 8 hex digits torchvision puts in
-- the name: the start of the file's SHA-256, which torch.hub checks too), sha256 (the full digest, where public
-- sources agree on it), bytes (exact size, where known) or mib (torchvision's `_file_size`, MiB to 3 decimals),
-- aliases (older names of the same bytes, looked for in the torch hub cache), top1 (ImageNet accuracy, torchvision).
-- A file with other content replaces this manifest through $DPL_WEIGHTS_MANIFEST.
local PYTORCH = "https://download.pytorch.org/models/"

local checkpoints = {
  alexnet = {file = "alexnet-owt-7be5be79.pth", top1 = 56.52, bytes = 244408911,
             sha256 = "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"},
  vgg11 = {file = "vgg11-8a719046.pth", top1 = 69.02, mib = 506.840},
  vgg16 = {file = "vgg16-397923af.pth", top1 = 71.59, mib = 527.796,
           sha256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"},
  vgg16_bn = {file = "vgg16_bn-6c64b313.pth", top1 = 73.36, mib = 527.866},
  vgg19 = {file = "vgg19-dcbb9e9d.pth", top1 = 72.38, bytes = 574673361,
           sha256 = "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44"},
  resnet18 = {file = "resnet18-f37072fd.pth", top1 = 69.76, bytes = 46830571},
  resnet50 = {file = "resnet50-0676ba61.pth", top1 = 76.13, mib = 97.781},
  resnext50_32x4d = {file = "resnext50_32x4d-7cdf4587.pth", top1 = 77.62, mib = 95.789},
  googlenet = {file = "googlenet-1378be20.pth", top1 = 69.78, mib = 49.731},
  inception_v3 = {file = "inception_v3_google-0cc3c7bd.pth", top1 = 77.29, mib = 103.903},
  -- torchvision <= 0.15 named these files with 8 hex digits that are not the start of their SHA-256; since 0.16
  -- (pytorch/vision#8036) the same bytes are also served under their true prefix, which is tried first
  efficientnet_b0 = {file = "efficientnet_b0_rwightman-7f5810bc.pth", top1 = 77.69, mib = 20.451,
                     sha256 = "7f5810bc96def8f7552d5b7e68d53c4786f81167d28291b21c0d90e1fca14934",
                     aliases = {"efficientnet_b0_rwightman-3dd342df.pth"}},
  efficientnet_b7 = {file = "efficientnet_b7_lukemelas-c5b4e57e.pth", top1 = 84.12, mib = 254.675,
                     sha256 = "c5b4e57e0da1a10bb4f8a5b410dd3b7b6e7461f9b757209be29409707c3d87dd",
                     aliases = {"efficientnet_b7_lukemelas-dcc49843.pth"}},
  densenet121 = {file = "densenet121-a639ec97.pth", top1 = 74.43, mib = 30.845},
  squeezenet1_1 = {file = "squeezenet1_1-b8a52dc0.pth", top1 = 58.18, mib = 4.729},
}

local manifest = {order = {"alexnet", "vgg11", "vgg16", "vgg16_bn", "vgg19", "resnet18", "resnet50", "resnext50_32x4d",
                           "googlenet", "inception_v3", "efficientnet_b0", "efficientnet_b7", "densenet121",
                           "squeezenet1_1"}}
for arch, e in pairs(checkpoints) do
  e.arch = arch
  e.urls = {PYTORCH .. e.file}
  for _, alias in ipairs(e.aliases or {}) do e.urls[#e.urls + 1] = PYTORCH .. alias end
  e.url = e.urls[1]
  e.sha256_prefix = e.file:match("%-(%x+)%.pth$")
  manifest[arch] = e
end

-- LPIPS's linear calibration layers (richzhang/PerceptualSimilarity, lpips/weights/v0.x/NET.pth, BSD-2-Clause),
-- stored as lpips/v0.x/NET.pth under the weights folder. Sizes and SHA-256 are those of the files at commit 082bb24
-- (the same bytes on master); that commit is also fetched directly and through jsDelivr's GitHub mirror.
local LPIPS_COMMIT = "082bb24f84c091ea94de2867d34c4544f68e0963"
local lpips = {
  {"0.1", "alex", 6009, "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"},
  {"0.1", "vgg", 7289, "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"},
  {"0.1", "squeeze", 10811, "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76"},
  {"0.0", "alex", 5455, "18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5"},
  {"0.0", "vgg", 6735, "b9e4236260c3dd988fc79d2a48d645d885afcbb21f9fd595e6744cf7419b582c"},
  {"0.0", "squeeze", 10057, "c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf"},
}
manifest.lpips = {}
for _, l in ipairs(lpips) do
  local path = ("lpips/weights/v%s/%s.pth"):format(l[1], l[2])
  manifest.lpips[#manifest.lpips + 1] = {
    name = ("lpips v%s %s"):format(l[1], l[2]), version = l[1], net = l[2],
    file = ("lpips/v%s/%s.pth"):format(l[1], l[2]), bytes = l[3], sha256 = l[4],
    urls = {"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/" .. path,
            ("https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/%s/%s"):format(LPIPS_COMMIT, path),
            ("https://cdn.jsdelivr.net/gh/richzhang/PerceptualSimilarity@%s/%s"):format(LPIPS_COMMIT, path)},
  }
end

return manifest
