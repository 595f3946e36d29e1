-- BAPPS (Zhang et al. 2018) validation sets, as the reference loader reads them (docs/benchmarks/bapps.md):
--   2AFC: <root>/2afc/val/<subset>/{ref,p0,p1}/*.png and judge/*.npy (fraction of raters who chose p1)
--   JND:  <root>/jnd/val/<subset>/{p0,p1}/*.png and same/*.npy (fraction who judged the pair identical)
-- Files are paired by stem across the folders; a stem missing from any folder is an error naming it. <root> may
-- also be REF's layout (<root>/val/<subset> for 2AFC, <root>/jnd/val/<subset>). Images are converted to RGB.
--
--   local bapps = require "dpl.data.bapps"
--   local ds = bapps.twoafc("cnn", {root = "data/BAPPS"})     -- samples {ref, p0, p1 (3x64x64), judge, name}
--   local jd = bapps.jnd("traditional")                       -- samples {p0, p1, same, name}
local files = require "dpl.data.files"

local M = {}
M.TWOAFC_SUBSETS = {"traditional", "cnn", "superres", "deblur", "color", "frameinterp"}
M.JND_SUBSETS = {"traditional", "cnn"}

local function root_of(opts)
  return (opts and opts.root) or (files.data_root() .. "/BAPPS")
end

-- pairs the files of `folders` (images) and `value_folder` (.npy) by stem
local function build(kind, dir, image_folders, value_folder, fetch_what)
  local maps, stems = {}, nil
  for _, f in ipairs(image_folders) do
    local map, s = files.by_stem(dir .. "/" .. f, {"png", "jpg", "jpeg", "bmp"})
    if not map or #s == 0 then files.missing("BAPPS", "bapps", fetch_what .. " (PNG patches in " .. f .. "/)", dir .. "/" .. f, 3) end
    maps[f] = map
    stems = stems or s
  end
  local vmap, vs = files.by_stem(dir .. "/" .. value_folder, {"npy"})
  if not vmap or #vs == 0 then files.missing("BAPPS", "bapps", fetch_what .. " (.npy values in " .. value_folder .. "/)", dir .. "/" .. value_folder, 3) end
  maps[value_folder] = vmap
  local all = {}
  for _, f in ipairs(image_folders) do all[#all + 1] = f end
  all[#all + 1] = value_folder
  -- every folder must hold the same stems
  for _, f in ipairs(all) do
    local count = 0
    for _ in pairs(maps[f]) do count = count + 1 end
    for _, s in ipairs(stems) do
      if not maps[f][s] then
        error(("BAPPS %s: %s/%s has no file for stem '%s' (found in %s/); the folders must pair up by stem")
          :format(kind, dir, f, s, image_folders[1]), 3)
      end
    end
    if count ~= #stems then
      error(("BAPPS %s: %s/%s has %d files but %s/ has %d; the folders must pair up by stem")
        :format(kind, dir, f, count, image_folders[1], #stems), 3)
    end
  end
  return maps, stems
end

local Set = {}
Set.__index = Set
function Set:len() return #self.stems end
function Set:files(i)
  local s, out = self.stems[i], {}
  for k, f in ipairs(self.image_folders) do out[k] = {self.dir .. "/" .. f .. "/" .. self.maps[f][s], kind = "image", channels = 3} end
  out[#out + 1] = {self.dir .. "/" .. self.value_folder .. "/" .. self.maps[self.value_folder][s], kind = "npy"}
  return out
end
function Set:make(i, decoded)
  local sample = {name = self.stems[i], subset = self.subset}
  for k, f in ipairs(self.image_folders) do sample[f] = decoded[k] end
  local v = decoded[#decoded]
  if v:numel() ~= 1 then
    error(("BAPPS: %s/%s/%s.npy holds %d values, expected 1"):format(self.dir, self.value_folder, self.stems[i], v:numel()), 2)
  end
  sample[self.value_folder] = v:reshape(-1):tolist()[1]
  return sample
end

local function make(kind, subset, dir, image_folders, value_folder, opts, what)
  local maps, stems = build(kind, dir, image_folders, value_folder, what)
  return setmetatable({kind = kind, subset = subset, dir = dir, maps = maps, stems = stems,
    image_folders = image_folders, value_folder = value_folder, transform = opts and opts.transform}, Set)
end

function M.twoafc(subset, opts)
  local root = root_of(opts)
  local split = (opts and opts.split) or "val"
  local dir = root .. "/2afc/" .. split .. "/" .. subset
  if not files.is_dir(dir) and files.is_dir(root .. "/" .. split .. "/" .. subset) then dir = root .. "/" .. split .. "/" .. subset end
  if not files.is_dir(dir) then
    files.missing("BAPPS", "bapps", ("the 2AFC %s subset '%s' (folders ref/, p0/, p1/, judge/)"):format(split, subset), dir, 2)
  end
  return make("2afc", subset, dir, {"ref", "p0", "p1"}, "judge", opts, "the 2AFC subset '" .. subset .. "'")
end

function M.jnd(subset, opts)
  local root = root_of(opts)
  local dir = root .. "/jnd/val/" .. subset
  if not files.is_dir(dir) then
    files.missing("BAPPS", "bapps", ("the JND subset '%s' (folders p0/, p1/, same/)"):format(subset), dir, 2)
  end
  return make("jnd", subset, dir, {"p0", "p1"}, "same", opts, "the JND subset '" .. subset .. "'")
end

-- REF's transform is PIL Resize((64, 64)) -> ToTensor -> Normalize; the val patches are already 64x64, so the resize
-- changes nothing and only the ImageNet normalisation is needed (docs/benchmarks/bapps.md), as a transform for the
-- datasets above: each image tensor (3 x H x W in [0, 1]) becomes (x - mean) / std per channel.
function M.imagenet_normalize(sample)
  local normalize = require("dpl.data.transforms").normalize
  for _, k in ipairs {"ref", "p0", "p1"} do
    if sample[k] then sample[k] = normalize(sample[k]) end
  end
  return sample
end

return M
