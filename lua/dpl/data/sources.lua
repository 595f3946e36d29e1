-- Where each dataset comes from (the official sources named in the paper, the reference code and spec
-- benchmarks.md), and how it is unpacked under the data root. Used by data/fetch.lua.
--
-- Each dataset is a list of items:
--   {url = ..., into = "dir under the root", extract = "tar" | "zip" | nil, strip = n (leading path components
--    dropped when extracting), sha256 = ... (only where the source publishes one), size = "human-readable size"}
--   {index = url of an HTML listing, pattern = Lua pattern of the file links to fetch, into = ...}  (MRD)
-- plus a `check` path (relative to the root) whose presence means the dataset is in place.
local M = {}

M.order = {"bapps", "coco", "mrd", "svhn", "stl10", "set5", "set14", "bsd100"}

local BAPPS = "https://people.eecs.berkeley.edu/~rich.zhang/projects/2018_perceptual/dataset/"
M.bapps = {
  about = "BAPPS validation sets (2AFC and JND) from the LPIPS authors' tarballs (REF now takes the same tree from Kaggle)",
  check = "BAPPS/2afc/val/cnn/judge",
  -- as LPIPS's scripts/download_dataset_valonly.sh: twoafc_val.tar.gz holds val/<subset>/..., jnd.tar.gz jnd/val/...
  {url = BAPPS .. "twoafc_val.tar.gz", into = "BAPPS/2afc", extract = "tar", size = "1.3 GB"},
  {url = BAPPS .. "jnd.tar.gz", into = "BAPPS", extract = "tar", size = "0.2 GB"},
}

M.coco = {
  about = "MS-COCO 2014 train and val images (the SR benchmark uses seeded 10,000 / 100 subsets of them)",
  check = "coco/val2014",
  {url = "http://images.cocodataset.org/zips/train2014.zip", into = "coco", extract = "zip", size = "13 GB"},
  {url = "http://images.cocodataset.org/zips/val2014.zip", into = "coco", extract = "zip", size = "6.2 GB"},
}

local MRD = "https://www.cs.toronto.edu/~vmnih/data/mass_roads/"
M.mrd = {
  about = "Massachusetts Roads (Mnih 2013): 1171 aerial images (.tiff) and road maps (.tif), file by file from the index pages",
  check = "mass_roads/valid/map",
}
for _, split in ipairs {"train", "valid", "test"} do
  M.mrd[#M.mrd + 1] = {index = MRD .. split .. "/sat/index.html", pattern = "%.tiff?$", into = "mass_roads/" .. split .. "/sat"}
  M.mrd[#M.mrd + 1] = {index = MRD .. split .. "/map/index.html", pattern = "%.tiff?$", into = "mass_roads/" .. split .. "/map"}
end

local SVHN = "http://ufldl.stanford.edu/housenumbers/"
M.svhn = {
  about = "SVHN format 2 (cropped 32x32 digits): train, test and extra .mat files",
  check = "svhn/test_32x32.mat",
  {url = SVHN .. "train_32x32.mat", into = "svhn", size = "182 MB"},
  {url = SVHN .. "test_32x32.mat", into = "svhn", size = "64 MB"},
  {url = SVHN .. "extra_32x32.mat", into = "svhn", size = "1.3 GB"},
}

M.stl10 = {
  about = "STL-10 binaries (train, test, unlabeled)",
  check = "stl10/stl10_binary/test_X.bin",
  {url = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", into = "stl10", extract = "tar", size = "2.6 GB"},
}

-- Set5 / Set14 as REF takes them: the SelfExSR repository's data folder, file by file (HR and LR at scales 2 and 4).
local SELFEXSR = "https://raw.githubusercontent.com/jbhuang0604/SelfExSR/master/data/"
local function selfexsr(name, count)
  local list = {about = name .. " (SelfExSR layout: image_SRF_{2,4}/img_NNN_SRF_s_{HR,LR}.png)", check = name .. "/image_SRF_2"}
  for _, s in ipairs {2, 4} do
    for i = 1, count do
      for _, kind in ipairs {"HR", "LR"} do
        local file = ("img_%03d_SRF_%d_%s.png"):format(i, s, kind)
        list[#list + 1] = {url = ("%s%s/image_SRF_%d/%s"):format(SELFEXSR, name, s, file), into = ("%s/image_SRF_%d"):format(name, s)}
      end
    end
  end
  return list
end
M.set5 = selfexsr("Set5", 5)
M.set14 = selfexsr("Set14", 14)

M.bsd100 = {
  about = "BSD100 = the 100 test images of BSDS300",
  check = "BSDS300/images/test",
  {url = "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz", into = ".", extract = "tar", size = "22 MB"},
}

return M
