-- experiments/bapps.lua - Benchmark 1: deep perceptual similarity on BAPPS (spec/benchmarks.md section 1).
--   dplrun experiments/bapps.lua --arch alexnet --layer M                  one loss network
--   dplrun experiments/bapps.lua --arch all --layer all                    all 56, resuming; prints Table V
--   dplrun experiments/bapps.lua --arch squeezenet1_1 --lpips              LPIPS v0.1 itself (alex, vgg, squeeze)
--   ... --data DIR --weights FILE|DIR --device D --batch N --db FILE --subsets traditional,cnn --json out.json
-- For each loss network: the distance of spec 1.3 on the preprocessing of 1.2, the 2AFC score per val subset and
-- their unweighted mean, the JND mAP per subset and pooled over cnn + traditional (1.4). Every run goes to the results
-- store (lua/dpl/results.lua) in one transaction when it is complete; a run whose configuration already has a
-- finished row is skipped (resume), so an interrupted sweep continues where it stopped.
local argparse = require "argparse"
local dpl = require "dpl"
local lossnet = require "dpl.lossnet"
local perceptual = require "dpl.perceptual"
local results = require "dpl.results"
local report = require "dpl.report"
local progress = require "dpl.progress"
local json = require "dpl.json"
local bapps = require "dpl.bapps"

local default_data = bapps.default_dir()

local parser = argparse("dplrun experiments/bapps.lua",
  "Benchmark 1: 2AFC and JND scores of deep perceptual similarity on BAPPS for any of the 56 loss networks.")
parser:option("--data", "BAPPS folder (holding 2afc/val/<subset> and jnd/val/<subset>).", default_data)
parser:option("--arch", "Architecture, a comma list, or all: " .. table.concat(lossnet.ORDER, ", "), "alexnet")
parser:option("--layer", "Extraction layer E, S, M, L, a comma list, or all.", "all")
parser:flag("--lpips", "LPIPS v0.1 instead of the paper's distance (arch alexnet, vgg16 or squeezenet1_1; its " ..
  "own layers, [-1,1] scaling and learned linear weights).")
parser:option("--weights", "Checkpoint file (one architecture) or folder of checkpoints (torchvision file names or " ..
  "ARCH.pth), or random:SEED. Default: the torchvision file in weights/.")
parser:option("--device", "cpu, vulkan or vulkan:N (default: dplrun's choice).")
parser:option("--batch", "Triplets per batch.", "256"):convert(tonumber)
parser:option("--db", "Results database.", results.DEFAULT_PATH)
parser:option("--subsets", "Only these subsets (comma list of names; 2AFC and JND alike).")
parser:option("--limit", "At most this many triplets/pairs per subset (quick looks; recorded in the config).")
  :convert(tonumber)
parser:option("--json", "Also write the scores of this invocation's networks to this file.")
parser:flag("--detail", "Print the per-subset scores too.")
parser:flag("--force", "Recompute networks that already have a finished run.")
local args = parser:parse(arg)

local function fail(msg)
  io.stderr:write("bapps.lua: ", msg, "\n")
  os.exit(1)
end

-- ---- what to run --------------------------------------------------------------------------------------------------
local function list_of(s, all, what)
  if s == "all" then return all end
  local out = {}
  for w in s:gmatch("[^,%s]+") do out[#out + 1] = w end
  if #out == 0 then fail("empty --" .. what) end
  return out
end
local archs = list_of(args.arch, lossnet.ORDER, "arch")
for _, a in ipairs(archs) do
  if not lossnet.ARCHS[a] then fail(("unknown architecture '%s' (known: %s)"):format(a, table.concat(lossnet.ORDER, ", "))) end
end
local LPIPS_OF = {alexnet = "alex", vgg16 = "vgg", squeezenet1_1 = "squeeze"}
local networks = {}
if args.lpips then
  for _, a in ipairs(archs) do
    if not LPIPS_OF[a] then fail(("--lpips needs alexnet, vgg16 or squeezenet1_1, not %s"):format(a)) end
    networks[#networks + 1] = {arch = a, layer = "lpips"}
  end
else
  local layers = list_of(args.layer, lossnet.LAYER_NAMES, "layer")
  for _, l in ipairs(layers) do
    if not (l == "E" or l == "S" or l == "M" or l == "L") then fail(("unknown layer '%s' (E, S, M, L or all)"):format(l)) end
  end
  for _, a in ipairs(archs) do
    for _, l in ipairs(layers) do networks[#networks + 1] = {arch = a, layer = l} end
  end
end
if not args.batch or args.batch < 1 then fail("--batch must be a positive number") end

-- weights per architecture; every missing checkpoint is reported at once with the command that fetches them
local function weights_for(arch)
  local w = args.weights
  if w == nil then return require("dpl.weights_store").path_for(arch) end
  if w:match("^random:%d+$") then return w end
  local f = io.open(w .. "/.", "rb")
  if f then                                          -- a folder
    f:close()
    local candidates = {w .. "/" .. arch .. ".pth", w .. "/" .. arch .. ".safetensors"}
    local store = require "dpl.weights_store"
    local ok, m = pcall(store.manifest)
    if ok and m[arch] then   -- the torchvision name (or an older one: EfficientNet's were renamed)
      local found = store.locate(m[arch], w, {hub = false})
      if found then return found end
      table.insert(candidates, 1, w .. "/" .. m[arch].file)
    end
    for _, p in ipairs(candidates) do
      local g = io.open(p, "rb")
      if g then g:close(); return p end
    end
    error(("no %s checkpoint in %s (looked for %s)\nfetch it with: dplrun weights/fetch.lua --dir %s %s"):format(arch, w,
      table.concat(candidates, ", "), w, arch), 0)
  end
  if #archs > 1 then error("--weights FILE with several architectures; give a folder instead", 0) end
  local g = io.open(w, "rb")
  if not g then error("weights file not found: " .. w, 0) end
  g:close()
  return w
end
local weights, missing = {}, {}
for _, a in ipairs(archs) do
  local ok, p = pcall(weights_for, a)
  if ok then weights[a] = p else missing[#missing + 1] = {a, tostring(p)} end
end
if #missing > 0 then
  local names, lines = {}, {}
  for _, m in ipairs(missing) do names[#names + 1] = m[1]; lines[#lines + 1] = "  " .. m[2]:gsub("\n.*", "") end
  fail(("missing weights for %d architecture(s):\n%s\nfetch them with: dplrun weights/fetch.lua %s"):format(#missing,
    table.concat(lines, "\n"), table.concat(names, " ")))
end

-- ---- the data -----------------------------------------------------------------------------------------------------
local ok_data, data = pcall(bapps.open, args.data, {subsets = args.subsets and list_of(args.subsets, nil, "subsets"),
                                                    limit = args.limit})
if not ok_data then
  fail(("%s\n(--data %s: BAPPS is expected as 2afc/val/<subset>/{ref,p0,p1,judge} and jnd/val/<subset>/{p0,p1,same};" ..
    " fetch it with: dplrun data/fetch.lua bapps, or pass --data DIR)"):format(tostring(data), args.data))
end

if args.device then dpl.device(args.device) end
local device = dpl.device()
io.stderr:write(("bapps.lua: %d loss network(s) on %s; data %s (%s)\n"):format(#networks, dpl.device_banner(),
  args.data, data:describe()))

local db = results.open(args.db)
local code_version = results.code_version()

-- ---- one loss network ---------------------------------------------------------------------------------------------
local function evaluate(net)
  local clock0 = progress.now()
  local metric = perceptual.new(args.lpips and {lpips = LPIPS_OF[net.arch], weights = weights[net.arch], device = device}
    or {arch = net.arch, layer = net.layer, weights = weights[net.arch], device = device})
  local t_build = progress.now() - clock0
  local bar = progress.new({total = data:image_count(), label = ("%s %s"):format(net.arch, net.layer), unit = "img"})
  local scores, t_load, t_net = {}, 0, 0
  local function distances(kind, subset)
    return data:distances(kind, subset, args.batch, function(batch)
      -- batch: list of N x 3 x 64 x 64 tensors (ref, p0, p1 for 2AFC; p0, p1 for JND), already preprocessed
      local t0 = progress.now()
      local n = batch[1]:size(1)
      local f = metric:features(dpl.cat(batch, 1))
      local parts = {}
      for k = 1, #batch do
        parts[k] = {}
        for l, t in ipairs(f) do parts[k][l] = t:narrow(1, (k - 1) * n + 1, n) end
      end
      local d
      if kind == "2afc" then
        d = {metric:feature_distance(parts[1], parts[2]):tolist(), metric:feature_distance(parts[1], parts[3]):tolist()}
      else
        d = {metric:feature_distance(parts[1], parts[2]):tolist()}
      end
      t_net = t_net + progress.now() - t0
      bar:update(n * #batch)
      return d
    end, device)
  end
  local t_data0 = progress.now()
  for _, subset in ipairs(data.subsets_2afc) do
    local d0, d1, judge = distances("2afc", subset)
    scores["2afc." .. subset] = bapps.score_2afc(d0, d1, judge)
  end
  local parts = {}
  for _, subset in ipairs(data.subsets_jnd) do
    local d, same = distances("jnd", subset)
    scores["jnd." .. subset] = bapps.jnd_map(d, same)
    parts[#parts + 1] = {d, same}
  end
  t_load = progress.now() - t_data0 - t_net
  if #data.subsets_2afc > 0 then   -- REF's "avg": the unweighted mean of the subsets present
    local sum = 0
    for _, subset in ipairs(data.subsets_2afc) do sum = sum + scores["2afc." .. subset] end
    scores["2afc.mean"] = sum / #data.subsets_2afc
  end
  if #parts > 0 then scores["jnd.pooled"] = bapps.jnd_map_pooled(parts) end   -- REF's one mAP over cnn + traditional
  bar:finish()
  local elapsed = progress.now() - clock0 - t_build
  return scores, {build_s = t_build, network_s = t_net, data_s = t_load, total_s = progress.now() - clock0,
                  images = data:image_count(), images_per_s = data:image_count() / math.max(elapsed, 1e-9),
                  batch = args.batch}
end

-- ---- the sweep ----------------------------------------------------------------------------------------------------
local out_json, done_runs, failures, skipped = {}, {}, 0, 0
for i, net in ipairs(networks) do
  local w = weights[net.arch]
  local w_hash = w:match("^random:") and w or db:file_sha256(w)
  local config = {experiment = "bapps", arch = net.arch, layer = net.layer,
                  distance = args.lpips and "lpips-v0.1" or "normalized-sq-l2 (spec 1.3)",
                  preprocessing = args.lpips and "[-1,1] + LPIPS scaling" or "resize 64 bilinear, imagenet mean/std",
                  weights_sha256 = w_hash, data = data:identity(), limit = args.limit,
                  lpips_lin_sha256 = args.lpips and db:file_sha256(perceptual.lpips_weights_path(LPIPS_OF[net.arch])) or nil}
  local hash = results.config_hash(config)
  local prev = not args.force and db:finished("bapps", hash)
  if prev then
    skipped = skipped + 1
    io.stderr:write(("[%d/%d] %s %s: already in %s (run %d, %s), skipped\n"):format(i, #networks, net.arch, net.layer,
      args.db, prev.id, prev.ended or "?"))
    local row = db:runs({experiment = "bapps", arch = net.arch, layer = net.layer})
    for _, r in ipairs(row) do if r.id == prev.id then prev = r end end
    done_runs[#done_runs + 1] = prev
    out_json[#out_json + 1] = report.bapps_json(net.arch, net.layer, prev.scores)
  else
    io.stderr:write(("[%d/%d] %s %s\n"):format(i, #networks, net.arch, net.layer))
    local started = results.now()
    local ok, scores, timing = pcall(evaluate, net)
    local run = {experiment = "bapps", arch = net.arch, layer = net.layer, config = config, code_version = code_version,
                 device = dpl.device_banner(), weights = w, weights_sha256 = w_hash, started = started, ended = results.now()}
    if ok then
      run.scores, run.timing = scores, timing
      local id = db:record(run)
      io.stderr:write(("[%d/%d] %s %s: 2AFC %.4f  JND %s  (%.1f s, %.0f img/s)\n"):format(i, #networks, net.arch,
        net.layer, scores["2afc.mean"] or 0 / 0, scores["jnd.pooled"] and ("%.4f"):format(scores["jnd.pooled"]) or "-",
        timing.total_s, timing.images_per_s))
      local r = db:runs({experiment = "bapps", arch = net.arch, layer = net.layer})
      for _, x in ipairs(r) do if x.id == id then done_runs[#done_runs + 1] = x end end
      out_json[#out_json + 1] = report.bapps_json(net.arch, net.layer, scores)
    else
      failures = failures + 1
      run.status, run.error = "failed", tostring(scores)
      db:record(run)
      io.stderr:write(("[%d/%d] %s %s FAILED: %s\n"):format(i, #networks, net.arch, net.layer, tostring(scores)))
    end
    collectgarbage()
  end
end
db:close()

if args.json then
  local f = io.open(args.json, "w")
  if not f then fail("cannot write " .. args.json) end
  f:write(json.encode(#out_json == 1 and out_json[1] or json.array(out_json), {indent = " "}), "\n")
  f:close()
end

print(report.bapps_table(done_runs))
if args.detail then print(report.bapps_detail(done_runs)) end
io.stderr:write(("bapps.lua: %d computed, %d from %s, %d failed\n"):format(#networks - skipped - failures, skipped,
  args.db, failures))
os.exit(failures == 0 and 0 or 1)
