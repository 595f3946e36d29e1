-- bench/data_loader.lua - how much the background loader (runtime/src/io/loader.c) speeds up file decoding.
--
--   dplrun bench/data_loader.lua [--files N] [--threads 1,2,4] [--work-ms 40]
--
-- 1. Decode throughput: the same list of PNGs (the 1500x1500 Massachusetts Roads images in $DPL_SHARED, repeated)
--    decoded on the calling thread, then by the loader with each thread count.
-- 2. Overlap: iterating batches while "computing" for --work-ms per batch (a busy loop standing in for the device):
--    with prefetch the decoding of batch k+1 hides behind the work on batch k, so the total approaches
--    max(decode, work) per batch instead of their sum.
local argparse = require "argparse"
local bench = require "dpl.bench"
local image = require "dpl.image"
local Loader = require "dpl.data.loader"
local dataset = require "dpl.data.dataset"
local mrd = require "dpl.data.mrd"

local parser = argparse("dplrun bench/data_loader.lua", "Background image decoding: throughput and overlap.")
parser:option("--files", "Files decoded per measurement.", "16")
parser:option("--threads", "Loader thread counts to try.", "1,2,4")
parser:option("--work-ms", "Simulated work per batch (ms) for the overlap test.", "150")
local args = parser:parse(arg)

local shared = os.getenv("DPL_SHARED") or "../shared"
local root = shared .. "/data/MassachusettsRoads"
local ds = mrd.dataset("train", {root = root})
local paths = {}
for i = 1, tonumber(args.files) do paths[i] = ds.image_dir .. "/" .. ds.images[ds.stems[(i - 1) % ds:len() + 1]] end

local rows = {}
local t0 = bench.now()
for _, p in ipairs(paths) do image.load(p, {device = "cpu"}) end
local serial = bench.now() - t0
rows[#rows + 1] = {"calling thread", "-", bench.format_time(serial), ("%.1f"):format(#paths / serial)}
for _, n in ipairs(bench.number_list(args.threads)) do
  local L = Loader.new(n)
  t0 = bench.now()
  L:submit(paths, "image", 3):take_all()
  local dt = bench.now() - t0
  rows[#rows + 1] = {"loader", tostring(n), bench.format_time(dt), ("%.1f"):format(#paths / dt)}
  L:close()
  collectgarbage("collect")
end
print(("decoding %d PNGs of 1500x1500 (RGB)"):format(#paths))
bench.print_table({"where", "threads", "time", "images/s"}, rows)

local work = tonumber(args.work_ms) / 1000
local function busy(s) local e = bench.now() + s; while bench.now() < e do end end
-- the same files as a dataset of single images
local files_ds = {
  len = function() return #paths end,
  files = function(_, i) return {{paths[i], kind = "image", channels = 3}} end,
  make = function(_, _, decoded) return {image = decoded[1]} end,
}
local function run(prefetch)
  local start = bench.now()
  local n = 0
  for _ in dataset.batches(files_ds, {batch_size = 2, prefetch = prefetch, device = "cpu"}) do
    n = n + 1
    busy(work)
  end
  return bench.now() - start, n
end
local seq, nb = run(0)
local pre = run(1)
print(("\n%d batches of 2 images + %.0f ms of work each: without prefetch %s, with prefetch %s")
  :format(nb, work * 1000, bench.format_time(seq), bench.format_time(pre)))
