-- Massachusetts Roads (Mnih 2013), docs/benchmarks/delineation.md. Three layouts are recognised under the root:
--   original:  <root>/{train,valid,test}/{sat,map}    sat/*.tiff (RGB), map/*.tif (road mask 0/255)
--   REF:       <root>/{train,val,test}/{input,output}
--   mirror:    <root>/{images,masks}/*.png             (e.g. $DPL_SHARED/data/MassachusettsRoads; no splits)
-- Files pair by stem. Samples {image = 3 x H x W in [0, 1], mask = 1 x H x W in {0, 1}, name}.
--
--   local mrd = require "dpl.data.mrd"
--   local ds = mrd.dataset("valid", {root = "data/mass_roads"})
local files = require "dpl.data.files"

local M = {}
local SPLIT_ALIASES = {valid = {"valid", "val"}, val = {"val", "valid"}, train = {"train"}, test = {"test"}}

local Set = {}
Set.__index = Set
function Set:len() return #self.stems end
function Set:files(i)
  local s = self.stems[i]
  return {{self.image_dir .. "/" .. self.images[s], kind = "image", channels = 3},
          {self.mask_dir .. "/" .. self.masks[s], kind = "image", channels = 1}}
end
function Set:make(i, decoded)
  return {image = decoded[1], mask = decoded[2], name = self.stems[i]}
end

local function layout(root, split)
  for _, sp in ipairs(SPLIT_ALIASES[split] or {split}) do
    if files.is_dir(root .. "/" .. sp .. "/sat") then return root .. "/" .. sp .. "/sat", root .. "/" .. sp .. "/map" end
    if files.is_dir(root .. "/" .. sp .. "/input") then return root .. "/" .. sp .. "/input", root .. "/" .. sp .. "/output" end
  end
  if files.is_dir(root .. "/images") and files.is_dir(root .. "/masks") then return root .. "/images", root .. "/masks", true end
end

-- split: "train", "valid" (or "val"), "test"; ignored for the mirror layout, which has no splits.
function M.dataset(split, opts)
  opts = opts or {}
  local root = opts.root or (files.data_root() .. "/mass_roads")
  local image_dir, mask_dir = layout(root, split or "train")
  if not image_dir then
    files.missing("Massachusetts Roads", "mrd", ("the %s split as %s/{sat,map} (or the images/ and masks/ mirror layout)")
      :format(split, split), root, 2)
  end
  local exts = {"tif", "tiff", "png"}
  local images, stems = files.by_stem(image_dir, exts)
  local masks = files.by_stem(mask_dir, exts)
  if not images or #stems == 0 then files.missing("Massachusetts Roads", "mrd", "aerial images", image_dir, 2) end
  if not masks then files.missing("Massachusetts Roads", "mrd", "road masks", mask_dir, 2) end
  for _, s in ipairs(stems) do
    if not masks[s] then
      error(("Massachusetts Roads: %s has no mask for image '%s' of %s"):format(mask_dir, s, image_dir), 2)
    end
  end
  return setmetatable({image_dir = image_dir, mask_dir = mask_dir, images = images, masks = masks, stems = stems,
    transform = opts.transform}, Set)
end

return M
