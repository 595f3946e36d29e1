-- Where each dataset comes from and how it is laid out under the data root (used by data/fetch.lua). Every file has
-- its locations in the order they are tried: the official one first, then copies known to serve the same bytes. The
-- state of every location, and where each size and checksum below comes from, is in docs/data-sources.md.
--
-- A dataset is a list of items plus `about`. An item is one of
--   {file = name, urls = {...}, into = "dir under the root", extract = "tar" | "zip" | nil, strip = n,
--    check = "path whose presence means the item is in place (for data placed by hand)",
--    bytes = exact size | approx_bytes = the publisher's rounded size, sha256 = full hex (where published or
--    measured on a byte-identical copy), sha256_reported = {hex, who} (a digest seen elsewhere, not the publisher's:
--    a mismatch is reported, not refused)}
--   {index = {url of an HTML listing, ...}, pattern = Lua pattern of the file links to fetch, into = ...}  (MRD)
-- Without a published checksum, the SHA-256 of the first download is recorded in SHA256SUMS beside the file and
-- later copies must match it (lua/dpl/download.lua).
local M = {}

M.order = {"bapps", "bapps_train", "coco", "mrd", "svhn", "stl10", "set5", "set14", "bsd100"}

-- BAPPS: the LPIPS authors rehosted the tarballs on S3 on 2023-10-27 (PerceptualSimilarity issue #125 and its
-- scripts/download_dataset*.sh); the Berkeley address they replaced answered "access is restricted" in 2023.
local BAPPS = {"https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/",
               "https://people.eecs.berkeley.edu/~rich.zhang/projects/2018_perceptual/dataset/"}
-- a BAPPS tarball extracted into `into`; `reported`: the SHA-256 a third-party build script (tasksource) pins for
-- the S3 file
local function bapps(file, into, check, approx_bytes, reported)
  return {file = file, urls = {BAPPS[1] .. file, BAPPS[2] .. file}, into = into, extract = "tar", check = check,
          approx_bytes = approx_bytes,
          sha256_reported = reported and {reported, "a third-party dataset build script (tasksource) that pins the S3 file"}}
end

-- as LPIPS's scripts/download_dataset_valonly.sh: twoafc_val.tar.gz holds val/<subset>/..., jnd.tar.gz jnd/val/...
M.bapps = {
  about = "BAPPS validation sets (2AFC and JND) from the LPIPS authors' tarballs",
  bapps("twoafc_val.tar.gz", "BAPPS/2afc", "BAPPS/2afc/val/cnn/judge", 1.1e9,
        "41486671b06de923e7ba277c4797d4d9d86d609863ba35ecdb576133f8b9d859"),
  bapps("jnd.tar.gz", "BAPPS", "BAPPS/jnd/val/cnn/same", 0.2e9),
}

M.bapps_train = {
  about = "BAPPS 2AFC training sets (for training LPIPS-style calibrations; Benchmark 1 needs only bapps)",
  bapps("twoafc_train.tar.gz", "BAPPS/2afc", "BAPPS/2afc/train/cnn/judge", 5.3e9,
        "b4f5c772c7cd88ac44bcb4ff0741745d434c05f0094f2bfb262ddcd0055bf393"),
}

-- COCO 2014: sizes and SHA-256 as TensorFlow Datasets records them (url_checksums/coco2014.txt); COCO publishes none
M.coco = {
  about = "MS-COCO 2014 train and val images (the SR benchmark uses seeded 10,000 / 100 subsets of them)",
  {file = "train2014.zip", urls = {"http://images.cocodataset.org/zips/train2014.zip"}, into = "coco", extract = "zip",
   check = "coco/train2014", bytes = 13510573713,
   sha256 = "ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775"},
  {file = "val2014.zip", urls = {"http://images.cocodataset.org/zips/val2014.zip"}, into = "coco", extract = "zip",
   check = "coco/val2014", bytes = 6645013297,
   sha256 = "fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0"},
}

local MRD = "https://www.cs.toronto.edu/~vmnih/data/mass_roads/"
M.mrd = {
  about = "Massachusetts Roads (Mnih 2013): 1171 aerial images (.tiff) and road maps (.tif), file by file from the index pages",
}
for _, split in ipairs {"train", "valid", "test"} do
  for _, kind in ipairs {"sat", "map"} do
    M.mrd[#M.mrd + 1] = {index = {MRD .. split .. "/" .. kind .. "/index.html"}, pattern = "%.tiff?$",
                         into = "mass_roads/" .. split .. "/" .. kind}
  end
end

-- SVHN: sizes and SHA-256 as TensorFlow Datasets records them (url_checksums/svhn_cropped.txt)
local SVHN = "http://ufldl.stanford.edu/housenumbers/"
M.svhn = {
  about = "SVHN format 2 (cropped 32x32 digits): train, test and extra .mat files",
  {file = "train_32x32.mat", urls = {SVHN .. "train_32x32.mat"}, into = "svhn", bytes = 182040794,
   sha256 = "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8"},
  {file = "test_32x32.mat", urls = {SVHN .. "test_32x32.mat"}, into = "svhn", bytes = 64275384,
   sha256 = "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b"},
  {file = "extra_32x32.mat", urls = {SVHN .. "extra_32x32.mat"}, into = "svhn", bytes = 1329278602,
   sha256 = "a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3"},
}

-- STL-10: size and SHA-256 as TensorFlow Datasets records them (url_checksums/stl10.txt); the author's pages moved
-- from web.stanford.edu to cs.stanford.edu, which serves the same folder
M.stl10 = {
  about = "STL-10 binaries (train, test, unlabeled)",
  {file = "stl10_binary.tar.gz", urls = {"http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                                         "https://cs.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"},
   into = "stl10", extract = "tar", check = "stl10/stl10_binary/test_X.bin", bytes = 2640397119,
   sha256 = "f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866"},
}

-- Set5 / Set14 as REF takes them: the SelfExSR repository's data folder, file by file (HR and LR at scales 2 and 4),
-- at the commit whose x4 files were checked byte for byte (their sizes and SHA-256 below), from GitHub and then from
-- jsDelivr's mirror of the same commit.
local SELFEXSR_COMMIT = "8f6dd8c1d20cb7e8792a7177b4f6fd677633f598"
local SELFEXSR = {"https://raw.githubusercontent.com/jbhuang0604/SelfExSR/" .. SELFEXSR_COMMIT .. "/data/",
                  "https://cdn.jsdelivr.net/gh/jbhuang0604/SelfExSR@" .. SELFEXSR_COMMIT .. "/data/"}
local SRF4 = {
  Set5 = {
    ["img_001_SRF_4_HR.png"] = {371264, "ac41483d2caa808a58d1361f0172023913da3ac4a9514a135c92836eef1fbe99"},
    ["img_001_SRF_4_LR.png"] = {31162, "55b1355cd7d7ac91180b3ddfc7c81b580e1d3e2a3dd5f77067ed228ab3af66cd"},
    ["img_002_SRF_4_HR.png"] = {120453, "7ed486a42ce3fca8d9ed2ff328419a92a50fc64e479765552ee544eb45f187a2"},
    ["img_002_SRF_4_LR.png"] = {11287, "ee4ddf5ad14578e61e4882f72d18c84a294f25982559c46b727afbeed385180d"},
    ["img_003_SRF_4_HR.png"] = {127529, "a58f6334af41127d8de5ea64e36ad174623a689c1bd5c4100aee20738b93a944"},
    ["img_003_SRF_4_LR.png"] = {10390, "4655f67e64a1249695825d8705f1e34ef627c57cef26054372971fe512f224c4"},
    ["img_004_SRF_4_HR.png"] = {113787, "30bd282537e4660651d5f668252353a66723c301ccba541a699af053269e9eb3"},
    ["img_004_SRF_4_LR.png"] = {9058, "a3cd8770e0f1fd3ae3a2acd2c82b2eb56f2672b1c111c724c9c3f74a7b122e38"},
    ["img_005_SRF_4_HR.png"] = {118848, "653e3aa5cbc70487e38e31260ba2d42588d575e267e23951ea66157adc3285e6"},
    ["img_005_SRF_4_LR.png"] = {10816, "4fedc415705fcd2d5106fb96bb191471680d48291f0602ef09ad1b12b4d370f4"},
  },
  Set14 = {
    ["img_001_SRF_4_HR.png"] = {531037, "457712bbc26ecc5cf27a05676bfa87ffc961072e1528bd91d5d682114d48da0d"},
    ["img_001_SRF_4_LR.png"] = {33902, "443210ded3c07cacf06b5e146bc67dc1133e90bee3ff610ec05d233dbd33789a"},
    ["img_002_SRF_4_HR.png"] = {821015, "40a708d97eaa92dc50c2f6f75f311be9e19ab929461326b09ab762932d55ff44"},
    ["img_002_SRF_4_LR.png"] = {51773, "8cbedfcdddc1f74e51e0a55d1e1ba69d4f8330f5fbe6f043cf9ed9a4cba3b4fd"},
    ["img_003_SRF_4_HR.png"] = {162038, "43c69e440a72615c1950247be2d328b61e3e26416e73279b74a93392c6e7c689"},
    ["img_003_SRF_4_LR.png"] = {12341, "c1c3d0d55244256b5f6e6b22dde2c3f22f4bc1147cefc753f49d8dda4d95c7e9"},
    ["img_004_SRF_4_HR.png"] = {154469, "4cfc2896b758d7003df528bd844791e2a65b97b21fa22609831b291e91d53986"},
    ["img_004_SRF_4_LR.png"] = {11222, "f769ea1974eca6df9d8dbddfc25c313d0fb58e574cbabdb6fb1194df254d134e"},
    ["img_005_SRF_4_HR.png"] = {190906, "5bf09299d1aa23249ae02e6537753f55185332c66f2fcbe93bcc0980de568c94"},
    ["img_005_SRF_4_LR.png"] = {14139, "234e8535710f5b3f3ab28ceb4e2f1f87b69a11eb527b864953383d07cc42aed4"},
    ["img_006_SRF_4_HR.png"] = {110826, "3e5dfb51996f2f40549c91250572c41534a7f2e1b6d7bd2c2f340ff217f7b8d6"},
    ["img_006_SRF_4_LR.png"] = {8834, "6034ae7e797fdeef6df3d6f205ba8a3a4d3bb9790e64987b8ba5cfdde55eb13f"},
    ["img_007_SRF_4_HR.png"] = {346976, "40860b285980c1496bc4d5895d31f6fdab3fe437978b241d4d00571e0222b5b4"},
    ["img_007_SRF_4_LR.png"] = {24870, "fe3207f4376bbdf32c276a9ed525b24cccc8bcd3e59f93e6a728f04b488cf6bf"},
    ["img_008_SRF_4_HR.png"] = {130720, "d5e2489c2f0255cb37c331da240b46e7bca03b4c1de26347e4d5c648a90f04bc"},
    ["img_008_SRF_4_LR.png"] = {12815, "b07e5b0eff060cbf3887d27fb1d12946f5115e00a531ed3f60772a769ffbb863"},
    ["img_009_SRF_4_HR.png"] = {374782, "3125a99a492f32b2463b2f13f70c59ebf471cba795985a3cf5758a14f8253f1e"},
    ["img_009_SRF_4_LR.png"] = {30762, "9bcb3b3fb82d7b280f6b95fff8f1f233532a103ea30addf00958e9a7a840148f"},
    ["img_010_SRF_4_HR.png"] = {318631, "d677c11654040dc29148d2b89ccb5d583e32a059ecd52e64d4c4d67ce81476ba"},
    ["img_010_SRF_4_LR.png"] = {23111, "0af6f38b24c42f368780f91f9507af4cc586117900926896b5073560f54510ae"},
    ["img_011_SRF_4_HR.png"] = {618686, "3bc8541d0ce9699f2770fe02702862959d62374d484d661aa4911c1c2a1a70ef"},
    ["img_011_SRF_4_LR.png"] = {48018, "17f997a05453b562429ab081debfd1e9bef4aa9d1bde834d9bb218536ec39d04"},
    ["img_012_SRF_4_HR.png"] = {507582, "c40805a5ba47d0da5f480858faa078eb8ba28c4e704ce9f6c3f32338a7fb5b63"},
    ["img_012_SRF_4_LR.png"] = {31610, "a7bc5c41d8982eab729266de71244f528b7befc94b65add6e72d1421b13e4cf8"},
    ["img_013_SRF_4_HR.png"] = {269141, "550a70ae67b871aabb9538ee832f2a2c59b5d39745670859556542ce62c8c042"},
    ["img_013_SRF_4_LR.png"] = {26776, "82cd44aefdd05d6b82b9e57c2544fd5b958e86c2fa6fe45d8fce0aedec639db0"},
    ["img_014_SRF_4_HR.png"] = {438007, "501f3e84fd699fc0fb47a425b19e7b5e0207107fe242d03627d4781cd8a26282"},
    ["img_014_SRF_4_LR.png"] = {33872, "77046fe97858add23277b2b4b591c9d0d770da577028dd927c4937319396d4f0"},
  },
}
local function selfexsr(name, count)
  local list = {about = name .. " (SelfExSR layout: image_SRF_{2,4}/img_NNN_SRF_s_{HR,LR}.png)"}
  for _, s in ipairs {2, 4} do
    for i = 1, count do
      for _, kind in ipairs {"HR", "LR"} do
        local file = ("img_%03d_SRF_%d_%s.png"):format(i, s, kind)
        local path = ("%s/image_SRF_%d/%s"):format(name, s, file)
        local known = SRF4[name][file]
        list[#list + 1] = {file = file, urls = {SELFEXSR[1] .. path, SELFEXSR[2] .. path},
                           into = ("%s/image_SRF_%d"):format(name, s), bytes = known and known[1],
                           sha256 = known and known[2]}
      end
    end
  end
  return list
end
M.set5 = selfexsr("Set5", 5)
M.set14 = selfexsr("Set14", 14)

local BSDS = "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/"
M.bsd100 = {
  about = "BSD100 = the 100 test images of BSDS300",
  {file = "BSDS300-images.tgz", urls = {BSDS .. "bsds/BSDS300-images.tgz", BSDS .. "grouping/segbench/BSDS300-images.tgz"},
   into = ".", extract = "tar", check = "BSDS300/images/test", approx_bytes = 22e6,
   sha256_reported = {"a5f7d0e49fe135c75518a3543ced24470156fd69305ae77845dff2a5138652b4",
                      "a third-party download script that pins the segbench address"}},
}

return M
