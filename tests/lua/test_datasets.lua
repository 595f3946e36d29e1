-- Dataset layer: the background loader (C thread pool), directory listings, numpy-compatible seeded shuffles and
-- subsets (MT19937, checked against numpy), BAPPS 2AFC/JND trees built here from the LPIPS example patches in
-- ../shared/data with judge/same .npy files written by numpy, batching with prefetch, and the errors for missing or
-- malformed datasets. Without ../shared the same cases run on the generated stand-ins of those files (same names and
-- layout; lua/dpl/test.lua "Stand-in data"): every check holds on any images.
local dpl = require "dpl"
local image = require "dpl.image"
local test = require "dpl.test"
local Loader = require "dpl.data.loader"
local files = require "dpl.data.files"
local mt = require "dpl.data.mt19937"
local dataset = require "dpl.data.dataset"
local bapps = require "dpl.data.bapps"
local S = test.suite("datasets", {standin = true, shared = {"data/BAPPS/imgs/ex_ref.png",
  "data/Set5/image_SRF_4/img_003_SRF_4_HR.png", "data/Set14/image_SRF_4/img_001_SRF_4_HR.png",
  "data/MassachusettsRoads/images/10078735_15.png", "data/MassachusettsRoads/masks/10078735_15.png"}})

local shared = test.shared_dir()
local imgs = shared .. "/data/BAPPS/imgs"
local work = os.tmpname() .. "_datasets"
os.execute(("mkdir -p '%s'"):format(work))

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end
local function py(code) return sh("/usr/bin/python3 -c '" .. code .. "' 2>&1") end

-- A BAPPS-format tree: 2afc/val/<subset>/{ref,p0,p1,judge} and jnd/val/<subset>/{p0,p1,same}; n triplets per subset
-- made from the three example patches (rotated so that the triplets differ), judge/same values k/5 written by numpy.
local function make_bapps(root, n)
  local src = {imgs .. "/ex_ref.png", imgs .. "/ex_p0.png", imgs .. "/ex_p1.png"}
  for _, sub in ipairs {"cnn", "traditional"} do
    local a = root .. "/2afc/val/" .. sub
    local j = root .. "/jnd/val/" .. sub
    os.execute(("mkdir -p %s/ref %s/p0 %s/p1 %s/judge %s/p0 %s/p1 %s/same"):format(a, a, a, a, j, j, j))
    for i = 0, n - 1 do
      local stem = ("%06d"):format(i)
      local r = i % 3
      os.execute(("cp '%s' %s/ref/%s.png && cp '%s' %s/p0/%s.png && cp '%s' %s/p1/%s.png && cp '%s' %s/p0/%s.png && cp '%s' %s/p1/%s.png 2>/dev/null")
        :format(src[r + 1], a, stem, src[(r + 1) % 3 + 1], a, stem, src[(r + 2) % 3 + 1], a, stem,
                src[r + 1], j, stem, src[(r + 1) % 3 + 1], j, stem))
    end
    py(("import numpy as np\nfor i in range(%d):\n np.save(\"%s/judge/%%06d.npy\" %% i, np.array([(i %% 6) / 5.0], dtype=np.float32))\n np.save(\"%s/same/%%06d.npy\" %% i, np.array([((i * 7) %% 4) / 3.0], dtype=np.float32))"):format(n, a, j))
  end
end

local bapps_root = work .. "/BAPPS"
make_bapps(bapps_root, 10)

S:add("directory listings are sorted and split into files and directories", function(t)
  local d = work .. "/listing"
  os.execute(("mkdir -p %s/sub && touch %s/b.png %s/a.png %s/B.txt"):format(d, d, d, d))
  local f, dirs = files.list(d)
  t:eq(table.concat(f, ","), "B.txt,a.png,b.png")
  t:eq(table.concat(dirs, ","), "sub")
  local none, err = files.list(d .. "/nope")
  t:eq(none, nil)
  t:ok(err:find("nope", 1, true) and err:find("cannot list", 1, true), err)
end)

S:add("MT19937 permutations and train_test_split subsets equal numpy's", function(t)
  local got = py("import numpy as np; p = np.random.RandomState(42).permutation(40504); print(p[0], p[1], p[-100], p[-1]); q = np.random.RandomState(7).permutation(1000); print(\" \".join(map(str, q[:20])))")
  local a, b, c, d = got:match("(%d+) (%d+) (%d+) (%d+)")
  t:ok(a, "numpy is needed: " .. got)
  local p = mt.permutation(40504, 42)
  t:eq(p[1], tonumber(a)); t:eq(p[2], tonumber(b)); t:eq(p[40504 - 99], tonumber(c)); t:eq(p[40504], tonumber(d))
  local q = mt.permutation(1000, 7)
  local first = {}
  for i = 1, 20 do first[i] = q[i] end
  t:eq(table.concat(first, " "), got:match("\n(.-)\n"))
  -- sklearn's train_test_split(train_size=100, random_state=42) keeps the last 100 entries of the permutation
  local sub = mt.train_split(40504, 100, 42)
  t:eq(#sub, 100); t:eq(sub[1], tonumber(c)); t:eq(sub[100], tonumber(d))
  t:raises(function() mt.new(-1) end, "seed must be an integer")
end)

S:add("the background loader decodes images and .npy files on its threads", function(t)
  test.shared(t, "data/BAPPS/imgs/ex_ref.png")
  local L = Loader.new(3)
  local paths = {}
  for i = 1, 30 do paths[i] = ({imgs .. "/ex_ref.png", imgs .. "/ex_p0.png", imgs .. "/ex_p1.png"})[(i - 1) % 3 + 1] end
  local job = L:submit(paths, "image", 3)
  local npy = L:submit({bapps_root .. "/2afc/val/cnn/judge/000004.npy"}, "npy")
  local got = job:take_all()
  t:eq(#got, 30)
  for i = 1, 3 do
    t:eq(got[i]:device(), "cpu")
    t:close(got[i], image.load(paths[i], {device = "cpu"}), {atol = 0, rtol = 0})
  end
  t:close(got[30], got[3], {atol = 0, rtol = 0})
  t:near(npy:take(1):reshape(-1):tolist()[1], 0.8, 1e-7)
  t:ok(job:done())
  t:raises(function() job:take(1) end, "already taken")
  t:raises(function() job:take(31) end, "out of range")
  -- a missing and a corrupt file: errors name the file; the good files of the job are still there
  local bad = work .. "/corrupt.png"
  local f = io.open(bad, "wb"); f:write("\137PNG\r\n\26\n garbage"); f:close()
  local j2 = L:submit({paths[1], work .. "/missing.png", bad}, "image", 3)
  t:raises(function() j2:wait() end, "missing.png")
  t:shape(j2:take(1), {3, 64, 64})
  t:raises(function() j2:take(3) end, "corrupt.png")
  t:raises(function() L:submit(paths, "tiff") end, "kind must be")
  L:close()
  t:raises(function() Loader.new(0) end, "nthreads must be 1..256")
end)

S:add("BAPPS 2AFC: files paired by stem, judge from .npy, RGB patches", function(t)
  test.shared(t, "data/BAPPS/imgs/ex_ref.png")
  local ds = bapps.twoafc("cnn", {root = bapps_root})
  t:eq(ds:len(), 10)
  local s = dataset.get(ds, 5)
  t:eq(s.name, "000004")
  t:shape(s.ref, {3, 64, 64})
  t:close(s.ref, image.load(imgs .. "/ex_p0.png", {device = "cpu"}), {atol = 0, rtol = 0})   -- 4 % 3 = 1
  t:close(s.p1, image.load(imgs .. "/ex_ref.png", {device = "cpu"}), {atol = 0, rtol = 0})
  t:near(s.judge, 0.8, 1e-7)
  local j = bapps.jnd("traditional", {root = bapps_root})
  local js = dataset.get(j, 3)
  t:near(js.same, ((2 * 7) % 4) / 3, 1e-7)
  t:eq(js.ref, nil)
end)

S:add("batches: NCHW on the device, seeded shuffle as numpy, prefetch, last partial batch", function(t)
  test.shared(t, "data/BAPPS/imgs/ex_ref.png")
  local ds = bapps.twoafc("traditional", {root = bapps_root, transform = bapps.imagenet_normalize})
  local seen, sizes = {}, {}
  for batch, k in dataset.batches(ds, {batch_size = 4, shuffle = true, seed = 3, prefetch = 2}) do
    sizes[k] = batch.ref:size(1)
    t:shape(batch.p0, {batch.ref:size(1), 3, 64, 64})
    t:eq(batch.judge:size(1), batch.ref:size(1))
    for i, idx in ipairs(batch.index) do seen[#seen + 1] = idx - 1; t:eq(batch.name[i], ("%06d"):format(idx - 1)) end
    if k == 1 then
      -- the normalisation transform ran: (x - mean) / std of the first sample's ref
      local raw = dataset.get(bapps.twoafc("traditional", {root = bapps_root}), batch.index[1]).ref
      local mean = dpl.tensor(dpl.transforms.IMAGENET_MEAN, {device = "cpu"}):view(3, 1, 1)
      local std = dpl.tensor(dpl.transforms.IMAGENET_STD, {device = "cpu"}):view(3, 1, 1)
      t:close(batch.ref:select(1, 1):cpu(), (raw - mean) / std, {atol = 1e-6, rtol = 1e-6})
      t:near(batch.judge:cpu():tolist()[1], ((batch.index[1] - 1) % 6) / 5, 1e-6)
    end
  end
  t:eq(table.concat(sizes, ","), "4,4,2")
  local want = py("import numpy as np; print(\" \".join(map(str, np.random.RandomState(3).permutation(10))))"):gsub("%s+$", "")
  t:eq(table.concat(seen, " "), want)
  local n = 0
  for _ in dataset.batches(ds, {batch_size = 4, drop_last = true}) do n = n + 1 end
  t:eq(n, 2)
end)

S:add("BAPPS: a missing tree, an unpaired stem and a malformed .npy give clear errors", function(t)
  test.shared(t, "data/BAPPS/imgs/ex_ref.png")
  local msg = t:raises(function() bapps.twoafc("deblur", {root = bapps_root}) end, "dplrun data/fetch.lua bapps")
  t:ok(msg:find(bapps_root .. "/2afc/val/deblur", 1, true), msg)
  local broken = work .. "/BAPPS_broken"
  make_bapps(broken, 3)
  os.remove(broken .. "/2afc/val/cnn/p1/000001.png")
  t:raises(function() bapps.twoafc("cnn", {root = broken}) end, "p1 has no file for stem '000001'")
  py(("import numpy as np; np.save(\"%s/jnd/val/cnn/same/000002.npy\", np.zeros(2))"):format(broken))
  local j = bapps.jnd("cnn", {root = broken})
  t:raises(function() dataset.get(j, 3) end, "holds 2 values, expected 1")
  os.execute(("rm -rf %s/jnd/val/traditional/same"):format(broken))
  t:raises(function() bapps.jnd("traditional", {root = broken}) end, "same/")
end)

local folders = require "dpl.data.folders"
local mrd = require "dpl.data.mrd"

S:add("Set5 and Set14 (SelfExSR layout): HR/LR pairs in name order, gray converted to RGB", function(t)
  test.shared(t, "data/Set5/image_SRF_4/img_003_SRF_4_HR.png")
  test.shared(t, "data/Set14/image_SRF_4/img_001_SRF_4_HR.png")
  local s5 = folders.set5({root = shared .. "/data/Set5", scale = 4})
  t:eq(s5:len(), 5)
  local b = dataset.get(s5, 3)
  t:eq(b.name, "img_003_SRF_4_HR")
  t:close(b.hr, image.load(shared .. "/data/Set5/image_SRF_4/img_003_SRF_4_HR.png", {device = "cpu"}), {atol = 0, rtol = 0})
  t:eq(b.lr:size(2) * 4, b.hr:size(2))
  local s14 = folders.set14({root = shared .. "/data/Set14", scale = 4})
  t:eq(s14:len(), 14)
  t:eq(dataset.get(s14, 3).hr:size(1), 3, "bridge (mode L) as RGB")
  t:raises(function() folders.set5({root = shared .. "/data/Set5"}) end, "dplrun data/fetch.lua set5")
  t:raises(function() folders.bsd100({root = work .. "/nothing"}) end, "dplrun data/fetch.lua bsd100")
end)

S:add("MS-COCO subsets: sorted listing, last k of numpy's RandomState(42).permutation", function(t)
  local root = work .. "/coco"
  os.execute(("mkdir -p %s/val2014"):format(root))
  py(("from PIL import Image\nimport numpy as np\nfor i in np.random.RandomState(0).permutation(150):\n Image.new(\"RGB\", (8 + i %% 5, 6), (i, 2 * i %% 256, 7)).save(\"%s/val2014/COCO_val2014_%%012d.jpg\" %% (i * 37))"):format(root))
  local want = py(("import os, numpy as np\nnames = sorted(os.listdir(\"%s/val2014\"))\nidx = np.random.RandomState(42).permutation(len(names))[-100:]\nprint(\" \".join(names[i][:-4] for i in idx[:5]), names[idx[-1]][:-4])"):format(root)):gsub("%s+$", "")
  local ds = folders.coco("val", {root = root})
  t:eq(ds:len(), 100)
  local got = {}
  for i = 1, 5 do got[i] = ds.names[i]:sub(1, -5) end
  got[6] = ds.names[100]:sub(1, -5)
  t:eq(table.concat(got, " "), want)
  local x = dataset.get(ds, 1)
  t:eq(x.image:size(1), 3)
  t:raises(function() folders.coco("train", {root = root}) end, "dplrun data/fetch.lua coco")
  t:raises(function() folders.coco("val", {root = root, size = 1000}) end, "fewer than the 1000")
end)

S:add("Massachusetts Roads: the PNG mirror and the original TIFF tree", function(t)
  test.shared(t, "data/MassachusettsRoads/images/10078735_15.png")
  local ds = mrd.dataset("train", {root = shared .. "/data/MassachusettsRoads"})
  t:eq(ds:len(), 4)
  t:eq(ds.stems[1], "10078735_15")
  local s = dataset.get(ds, 1)
  local w, h = py(("from PIL import Image\nprint(*Image.open(\"%s/data/MassachusettsRoads/images/10078735_15.png\").size)")
    :format(shared)):match("(%d+) (%d+)")
  t:ok(w ~= nil, "Pillow reads the tile's size")
  t:shape(s.image, {3, tonumber(h), tonumber(w)})   -- 1500 x 1500 (the stand-ins are smaller)
  t:shape(s.mask, {1, tonumber(h), tonumber(w)})
  local m = s.mask
  t:near((m * (m - 1)):abs():sum():item(), 0, 0, "mask values are 0 or 1")
  t:ok(m:sum():item() > 1000, "some road pixels")
  -- the original layout: {train,valid,test}/{sat,map} with .tiff / .tif, written by Pillow from the real files
  local root = work .. "/mass_roads"
  os.execute(("mkdir -p %s/valid/sat %s/valid/map"):format(root, root))
  py(("from PIL import Image\nsrc = \"%s/data/MassachusettsRoads\"\nfor s in [\"10078735_15\", \"18478975_15\"]:\n Image.open(src + \"/images/\" + s + \".png\").crop((0, 0, 100, 80)).save(\"%s/valid/sat/\" + s + \".tiff\")\n Image.open(src + \"/masks/\" + s + \".png\").crop((0, 0, 100, 80)).save(\"%s/valid/map/\" + s + \".tif\")"):format(shared, root, root))
  local v = mrd.dataset("valid", {root = root})
  t:eq(v:len(), 2)
  local b
  for batch in dataset.batches(v, {batch_size = 2, device = "cpu"}) do b = batch end
  t:shape(b.image, {2, 3, 80, 100})
  t:shape(b.mask, {2, 1, 80, 100})
  t:close(b.image:select(1, 1), s.image:narrow(2, 1, 80):narrow(3, 1, 100), {atol = 0, rtol = 0})
  t:close(b.mask:select(1, 1), m:narrow(2, 1, 80):narrow(3, 1, 100), {atol = 0, rtol = 0})
  t:raises(function() mrd.dataset("test", {root = root}) end, "dplrun data/fetch.lua mrd")
  os.remove(root .. "/valid/map/18478975_15.tif")
  t:raises(function() mrd.dataset("valid", {root = root}) end, "no mask for image '18478975_15'")
end)

local sets = require "dpl.data.imagesets"

S:add("SVHN .mat (scipy savemat, compressed or not) and STL-10 binaries match torchvision's reading", function(t)
  local dir = work .. "/sets"
  local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
  local ok = os.execute(("/usr/bin/python3 '%s/tests/ref/imagesets_ref.py' '%s'"):format(root, dir))
  t:ok(ok == 0 or ok == true, "python3-scipy writes the fixtures")
  local want = dpl.load_npy(dir .. "/svhn_images.npy", {device = "cpu"})
  local labels = dpl.load_npy(dir .. "/svhn_labels.npy", {device = "cpu"})
  for _, name in ipairs {"svhn_c.mat", "svhn_u.mat"} do
    local ds = sets.svhn("train", {path = dir .. "/" .. name})
    t:eq(ds:len(), 37, name)
    local b = ds:get_batch({1, 2, 3, 37}, "cpu")
    t:shape(b.image, {4, 3, 32, 32})
    t:close(b.image:select(1, 4), want:select(1, 37), {atol = 0, rtol = 0}, name)
    t:close(b.image:select(1, 1), want:select(1, 1), {atol = 0, rtol = 0}, name)
    t:eq(b.label:tolist()[1], 0, "label 10 is the digit 0")
    local all = {}
    for i = 1, 37 do all[i] = ds:get(i).label end
    t:close(all, labels, {atol = 0, rtol = 0}, name)
  end
  -- batches through the common iterator, shuffled, on the default device, with a batch transform
  local ds = sets.svhn("test", {path = dir .. "/svhn_c.mat", batch_transform = function(b) b.seen = true return b end})
  local count = 0
  for b in dataset.batches(ds, {batch_size = 16, shuffle = true, seed = 1}) do
    count = count + b.image:size(1)
    t:ok(b.seen)
    t:close(b.image:select(1, 1):cpu(), want:select(1, b.index[1]), {atol = 0, rtol = 0})
  end
  t:eq(count, 37)
  -- STL-10: column-major planes
  t:raises(function() sets.stl10("train", {dir = work}) end, "dplrun data/fetch.lua stl10")
  os.execute(("cp %s/stl_X.bin %s/train_X.bin && cp %s/stl_y.bin %s/train_y.bin && cp %s/stl_X.bin %s/unlabeled_X.bin"):format(dir, dir, dir, dir, dir, dir))
  local stl = sets.stl10("train", {dir = dir})
  t:eq(stl:len(), 5)
  local sb = stl:get_batch({1, 2, 3, 4, 5}, "cpu")
  t:close(sb.image, dpl.load_npy(dir .. "/stl_images.npy", {device = "cpu"}), {atol = 0, rtol = 0})
  t:close(sb.label, dpl.load_npy(dir .. "/stl_labels.npy", {device = "cpu"}), {atol = 0, rtol = 0})
  local un = sets.stl10("unlabeled", {dir = dir})
  t:eq(un:get_batch({2}, "cpu").label, nil)
  t:raises(function() stl:get_batch({6}) end, "out of range")
end)

S:add("SVHN / STL-10: missing, truncated and malformed files give errors naming them", function(t)
  local dir = work .. "/sets"
  t:raises(function() sets.svhn("extra", {root = work .. "/none"}) end, "dplrun data/fetch.lua svhn")
  t:raises(function() sets.svhn("val") end, "split must be train, test or extra")
  t:raises(function() sets.svhn("train", {path = dir .. "/svhn_noy.mat"}) end, "found X only")
  t:raises(function() sets.svhn("train", {path = dir .. "/svhn_badx.mat"}) end, "X must be a numeric H x W x 3 x N")
  local src = io.open(dir .. "/svhn_c.mat", "rb")
  local bytes = src:read("*a")
  src:close()
  local cut = dir .. "/svhn_cut.mat"
  local f = io.open(cut, "wb"); f:write(bytes:sub(1, #bytes - 3000)); f:close()
  t:raises(function() sets.svhn("train", {path = cut}) end, "svhn_cut.mat")
  local bad = dir .. "/svhn_bad.mat"
  f = io.open(bad, "wb"); f:write(bytes:sub(1, 200) .. ("\0"):rep(64) .. bytes:sub(265)); f:close()
  t:raises(function() sets.svhn("train", {path = bad}) end, "svhn_bad.mat")
  local h5 = dir .. "/svhn_h5.mat"
  f = io.open(h5, "wb"); f:write("MATLAB 7.3 MAT-file" .. ("\0"):rep(200)); f:close()
  t:raises(function() sets.svhn("train", {path = h5}) end, "HDF5")
  f = io.open(dir .. "/short_X.bin", "wb"); f:write(("\1"):rep(1000)); f:close()
  os.execute(("cp %s/short_X.bin %s/test_X.bin && cp %s/stl_y.bin %s/test_y.bin"):format(dir, dir, dir, dir))
  t:raises(function() sets.stl10("test", {dir = dir}) end, "not a whole number of STL-10 images")
  os.execute(("cp %s/stl_X.bin %s/test_X.bin && head -c 3 %s/stl_y.bin > %s/test_y.bin"):format(dir, dir, dir, dir))
  t:raises(function() sets.stl10("test", {dir = dir}) end, "3 labels for the 5 images")
end)

S:add("os.exit while batches are still being decoded exits cleanly", function(t)
  test.shared(t, "data/MassachusettsRoads/images/10078735_15.png")
  local script = work .. "/exit_mid.lua"
  local f = io.open(script, "w")
  f:write(([[
local dataset = require "dpl.data.dataset"
local paths = {}
for i = 1, 40 do paths[i] = %q end
local ds = {len = function() return #paths end, files = function(_, i) return {{paths[i], kind = "image", channels = 3}} end,
  make = function(_, _, d) return {image = d[1]} end}
for b in dataset.batches(ds, {batch_size = 4, prefetch = 3, device = "cpu"}) do print("got " .. b.image:size(1)); os.exit(3) end
]]):format(shared .. "/data/MassachusettsRoads/images/10078735_15.png"))
  f:close()
  local i = -1
  while arg[i - 1] do i = i - 1 end
  local out = sh(("%s --quiet '%s' 2>&1; echo rc=$?"):format(arg[i], script))
  t:ok(out:find("got 4") and out:find("rc=3"), out)
end)

return S
