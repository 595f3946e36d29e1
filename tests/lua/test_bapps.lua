-- experiments/bapps.lua end to end, on a BAPPS-format fixture built from real images (without ../shared, from the
-- generated stand-in images in the same layout: lua/dpl/test.lua "Stand-in data"; the cases that need real files, LPIPS
-- weights and the real SqueezeNet, then report themselves skipped).
--  * tests/ref/bapps_fixture.py (numpy + Pillow) builds the fixture: 6 x 2AFC val subsets of 10 triplets and 2 x JND
--    subsets of 12 pairs, 64 x 64 patches from the LPIPS example patches and Set5/Set14 crops with known distortions
--    (blur, noise, JPEG, x4 down/up-sampling, colour shift, shifted crop), judge/same .npy written by the script.
--  * tests/ref/bapps_ref.py (python3-torch, torchvision) writes seeded random weights for alexnet, resnet18 and
--    squeezenet1_1 and computes the benchmark from docs/benchmarks/bapps.md: every 2AFC subset score, their mean, every
--    JND mAP and the pooled mAP. The experiment's --json output must match to 1e-6 (scores are means of judge values
--    over comparisons of distances, so they agree exactly unless a comparison flips; the reference reports the smallest
--    relative gap |d0 - d1| / max(d0, d1) of the fixture so a flip would be visible).
--  * Resume: a rerun computes nothing and finds every network in the results store. Subsets absent from the data
--    are left out (and the mean is over those present). Missing data names `dplrun data/fetch.lua bapps`.
--  * Kill test: a 4-network run in a child dplrun is killed with SIGKILL once two networks are recorded; the
--    store then holds exactly the finished ones (no half run); the rerun computes only the rest, and every network
--    is recorded exactly once.
--  * Two processes on one store (issue 18 item 12): started together on the same 8 networks, they share them through
--    the store's claims - 8 rows, each network computed once, both processes busy. SIGINT mid-sweep (item 13): exit
--    130, "rerun the same command to resume", the finished networks kept, the rerun computes the rest.
local dpl = require "dpl"
local test = require "dpl.test"
local json = require "dpl.json"
local results = require "dpl.results"
-- default only: long end-to-end runs of the experiment. The fixture's images may be any (the scores are compared with
-- a reference computed here on the same fixture): stand-ins do without ../shared.
local suite = test.suite("bapps", {configurations = {"default"}, standin = true,
  shared = {"data/BAPPS/imgs/ex_ref.png", "data/Set5/image_SRF_4/img_001_SRF_4_HR.png",
            "data/Set14/image_SRF_4/img_001_SRF_4_HR.png"}})

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local shared = test.shared_dir()
local dplrun = test.dplrun()

local tmp = os.tmpname() .. "_bapps"
os.execute(("rm -f '%s'; mkdir -p '%s'"):format(tmp, tmp))
suite.teardown = function() os.execute(("rm -rf '%s'"):format(tmp)) end
local fixture, refdir = tmp .. "/BAPPS", tmp .. "/ref"

local sh, slurp = test.run_command, test.read_file

local fixture_rc, fixture_log = sh(("/usr/bin/python3 %s/tests/ref/bapps_fixture.py %s %s/data"):format(root, fixture,
  shared))
-- alexnet E..L, resnet18 E and L, squeezenet1_1 M, and LPIPS v0.1 on the seeded squeezenet1_1 (--lpips) where its
-- linear weights are in ../shared (not among the stand-ins: the LPIPS case is skipped there)
local LPIPS_FILE = "data/LPIPS/weights/v0.1/squeeze.pth"
local have_lpips = test.read_file(shared .. "/" .. LPIPS_FILE) ~= nil
local NETS = {"alexnet:E,S,M,L", "resnet18:E,L", "squeezenet1_1:M", have_lpips and "squeezenet1_1:lpips" or nil}
local ref_rc, ref_log = sh(("LPIPS_WEIGHTS=%s/data/LPIPS/weights /usr/bin/python3 %s/tests/ref/bapps_ref.py %s %s %s"):format(
  shared, root, fixture, refdir, table.concat(NETS, " ")))

local function need_fixture(t)
  if fixture_rc ~= 0 then
    if fixture_log:find("No module named", 1, true) then t:skip("numpy/Pillow missing: " .. fixture_log:sub(-200)) end
    t:ok(false, "tests/ref/bapps_fixture.py failed: " .. fixture_log:sub(-800))
  end
end
local function need_ref(t)
  need_fixture(t)
  if ref_rc ~= 0 then
    if ref_log:find("No module named 'torch", 1, true) then t:skip("python3-torch is not installed") end
    t:ok(false, "tests/ref/bapps_ref.py failed: " .. ref_log:sub(-800))
  end
end

-- runs the experiment; returns rc and the combined output
local function bapps(a)
  return sh(("DPL_QUIET=1 DPL_NO_PROGRESS=1 %s %s/experiments/bapps.lua %s"):format(dplrun, root, a))
end

local function check_scores(t, got, ref, what)
  for _, kind in ipairs {"2afc", "jnd"} do
    local n = 0
    for k, v in pairs(ref[kind]) do
      n = n + 1
      t:ok(got[kind] and got[kind][k], ("%s: %s.%s missing"):format(what, kind, k))
      t:near(got[kind][k], v, 1e-6, ("%s %s.%s"):format(what, kind, k))
    end
    local m = 0
    for _ in pairs(got[kind]) do m = m + 1 end
    t:eq(m, n, ("%s: number of %s scores"):format(what, kind))
  end
end

suite:add("fixture and PyTorch reference; no 2AFC comparison of the fixture is a near tie", function(t)
  need_ref(t)
  for _, m in ipairs(json.decode(slurp(refdir .. "/margins.json"))) do
    t:ok(m.min_relative_gap > 1e-4, ("%s %s %s: |d0 - d1| / max = %g; float32 rounding could flip it (change the " ..
      "fixture's seed)"):format(m.arch, m.layer, m.subset, m.min_relative_gap))
  end
end)

-- the reference's entries by "arch layer"
local function ref_by_key()
  local out = {}
  for _, r in ipairs(json.decode(slurp(refdir .. "/ref.json"))) do out[r.arch .. " " .. r.layer] = r end
  return out
end

-- On the CPU every network of the reference; on Vulkan (lavapipe is slow) alexnet at E and L; LPIPS on both.
local RUNS = {cpu = {"alexnet:E,S,M,L", "resnet18:E,L", "squeezenet1_1:M"}, vulkan = {"alexnet:E,L"},
              lpips = {"squeezenet1_1:lpips"}}
for _, device in ipairs {"cpu", "vulkan"} do
  for _, kind in ipairs {"paper distance", "LPIPS"} do
    suite:add(("2AFC and JND mAP equal the PyTorch reference (%s) on %s"):format(kind, device), function(t)
      if device == "vulkan" and not dpl.vulkan_available() then t:skip("no Vulkan device") end
      if kind == "LPIPS" then test.shared(t, LPIPS_FILE) end
      need_ref(t)
      local ref = ref_by_key()
      local db = ("%s/%s.sqlite"):format(tmp, device)   -- LPIPS runs after the paper distance's, in the same store
      local out_json = ("%s/%s.json"):format(tmp, device)
      local got = {}
      for _, spec in ipairs(kind == "LPIPS" and RUNS.lpips or RUNS[device]) do
        local arch, layers = spec:match("^(.-):(.*)$")
        local which = layers == "lpips" and "--lpips" or "--layer " .. layers
        local rc, out = bapps(("--data %s --arch %s %s --weights %s --device %s --batch 7 --db %s --json %s.%s"):format(
          fixture, arch, which, refdir, device, db, out_json, arch .. layers))
        t:eq(rc, 0, out)
        local j = json.decode(slurp(out_json .. "." .. arch .. layers))
        if j.arch then j = {j} end       -- one network: one object
        local n = 0
        for l in layers:gmatch("[^,]+") do n = n + 1 end
        t:eq(#j, n, spec .. ": one --json entry per network")
        for _, e in ipairs(j) do got[#got + 1] = e end
        if arch == "alexnet" then
          t:ok(out:find("AlexNet%s+[%d.]+%s+[%d.-]+%s+[%d.-]+%s+[%d.]+") ~= nil, "Table V row printed: " .. out)
        end
      end
      for _, e in ipairs(got) do
        local r = ref[e.arch .. " " .. e.layer]
        t:ok(r ~= nil, "a reference for " .. e.arch .. " " .. e.layer)
        check_scores(t, e, r, ("%s %s on %s"):format(e.arch, e.layer, device))
      end
      -- every run is in the store, with timing and the weights' hash
      local store = results.open(db, {readonly = true})
      local runs, lpips_runs = {}, {}
      for _, r in ipairs(store:runs({experiment = "bapps"})) do
        local is_lpips = json.decode(r.config).distance:find("lpips", 1, true) ~= nil
        t:eq(is_lpips, r.layer == "lpips", "LPIPS runs are told apart: " .. r.arch .. " " .. r.layer)
        if is_lpips then lpips_runs[#lpips_runs + 1] = r else runs[#runs + 1] = r end
      end
      if kind == "LPIPS" then runs = lpips_runs end
      t:eq(#runs, #got, "finished runs in the store")
      local timing = json.decode(runs[1].timing)
      t:ok(timing.images_per_s > 0 and timing.images == 6 * 10 * 3 + 2 * 12 * 2, "timing: " .. runs[1].timing)
      t:eq(#runs[1].weights_sha256, 64)
      store:close()
    end)
  end
end

suite:add("--batch auto (the default): the batch from a probe's peak memory; the scores do not depend on it",
          function(t)
  need_ref(t)
  local B = require "dpl.benchmarks.bapps"
  local metric = require("dpl.perceptual").new({arch = "alexnet", layer = "L", weights = "random:1", device = "cpu"})
  local b, per = B.auto_batch(metric, "cpu", 2048)
  -- at least the triplet's three 3 x 64 x 64 images; AlexNet's features at L are small: the full 256 fits 2 GB
  t:ok(per >= 3 * 3 * 64 * 64 * 4 and per < 2 ^ 24, "bytes per triplet: " .. per)
  t:eq(b, 256)
  local small = B.auto_batch(metric, "cpu", 1)
  t:eq(small, math.max(1, math.floor(2 ^ 20 / per)), "1 MB: the triplets that fit")
  t:ok(small < 8, "1 MB holds fewer than 8 triplets")
  -- a run at that tiny budget (several batches per subset) gives the reference's scores, and records its batch
  local out_json = tmp .. "/auto.json"
  local rc, out = bapps(("--data %s --arch alexnet --layer L --weights %s --device cpu --memory 1 --db %s/auto.sqlite "
    .. "--json %s"):format(fixture, refdir, tmp, out_json))
  t:eq(rc, 0, out)
  local e = json.decode(slurp(out_json))
  check_scores(t, e, ref_by_key()["alexnet L"], "alexnet L, --batch auto --memory 1")
  local store = results.open(tmp .. "/auto.sqlite", {readonly = true})
  local timing = json.decode(store:runs({experiment = "bapps"})[1].timing)
  store:close()
  t:eq(timing.batch, small, "the stored timing records the batch used")
end)

suite:add("resume: a rerun finds every network in the store and computes nothing", function(t)
  need_ref(t)
  local db = tmp .. "/resume.sqlite"
  local args = ("--data %s --arch squeezenet1_1 --layer E,S --weights %s --db %s --json %s/r.json"):format(fixture,
    refdir, db, tmp)
  local rc, out = bapps(args)
  t:eq(rc, 0, out)
  local first = slurp(tmp .. "/r.json")
  rc, out = bapps(args)
  t:eq(rc, 0, out)
  t:ok(out:find("0 computed, 2 from", 1, true) ~= nil, out)
  t:eq(slurp(tmp .. "/r.json"), first, "the same --json from the store")
  t:ok(json.decode(first)[2].layer == "S", "an array for several networks")
  rc, out = bapps(args .. " --force")
  t:ok(out:find("2 computed, 0 from", 1, true) ~= nil, out)
  local store = results.open(db, {readonly = true})
  t:eq(#store:runs({experiment = "bapps"}), 4, "--force adds new runs")
  t:eq(#store:runs({experiment = "bapps", latest = true}), 2)
  store:close()
end)

suite:add("subsets absent from the data are left out; --subsets selects", function(t)
  need_ref(t)
  local part = tmp .. "/part"
  os.execute(("rm -rf '%s' && cp -r '%s' '%s' && rm -rf '%s/2afc/val/frameinterp' '%s/2afc/val/color' '%s/jnd/val/cnn'"):format(
    part, fixture, part, part, part, part))
  local rc, out = bapps(("--data %s --arch alexnet --layer M --weights %s --db %s/part.sqlite --json %s/part.json"):format(
    part, refdir, tmp, tmp))
  t:eq(rc, 0, out)
  local j = json.decode(slurp(tmp .. "/part.json"))
  local full = ref_by_key()["alexnet M"]
  t:eq(j["2afc"].frameinterp, nil)
  t:eq(j["2afc"].color, nil)
  t:eq(j.jnd.cnn, nil)
  t:near(j["2afc"].cnn, full["2afc"].cnn, 1e-6)
  local m = (full["2afc"].traditional + full["2afc"].cnn + full["2afc"].superres + full["2afc"].deblur) / 4
  t:near(j["2afc"].mean, m, 1e-6, "mean over the subsets present")
  t:near(j.jnd.traditional, full.jnd.traditional, 1e-6)
  t:near(j.jnd.pooled, full.jnd.traditional, 1e-6, "pooled over one subset = that subset")
  rc, out = bapps(("--data %s --arch alexnet --layer M --weights %s --db %s/part.sqlite --subsets cnn --json %s/s.json"):format(
    fixture, refdir, tmp, tmp))
  t:eq(rc, 0, out)
  j = json.decode(slurp(tmp .. "/s.json"))
  t:near(j["2afc"].mean, full["2afc"].cnn, 1e-6)
  t:near(j.jnd.pooled, full.jnd.cnn, 1e-6)
end)

suite:add("missing data, weights and bad options give clear messages", function(t)
  local rc, out = bapps(("--data %s/nowhere --arch alexnet --layer M --weights random:1 --db %s/x.sqlite"):format(tmp,
    tmp))
  t:ok(rc ~= 0, "fails")
  t:ok(out:find("dplrun data/fetch.lua bapps", 1, true) and out:find(tmp .. "/nowhere", 1, true), out)
  os.execute(("mkdir -p '%s/noweights'"):format(tmp))
  rc, out = bapps(("--data %s --arch alexnet,vgg16 --weights %s/noweights --db %s/x.sqlite"):format(fixture, tmp, tmp))
  t:ok(rc ~= 0 and out:find("dplrun weights/fetch.lua", 1, true) ~= nil, out)
  rc, out = bapps(("--data %s --arch alexnet,vgg16 --db %s/x.sqlite"):format(fixture, tmp))
  t:ok(rc ~= 0 and out:find("dplrun weights/fetch.lua", 1, true) ~= nil, "default weights: " .. out)
  rc, out = bapps("--arch nosuch")
  t:ok(rc ~= 0 and out:find("unknown architecture 'nosuch'", 1, true) ~= nil, out)
  rc, out = bapps("--arch resnet18 --lpips")
  t:ok(rc ~= 0 and out:find("--lpips needs", 1, true) ~= nil, out)
  rc, out = bapps("--help")
  t:ok(rc == 0 and out:find("--json", 1, true) ~= nil, out)
  -- user errors: one line naming the argument, exit status 2, before any network runs
  local cases = {
    {"--arch nosuch", "unknown architecture 'nosuch'"},
    {"--layer Q --weights random:1", "--layer Q: unknown layer"},
    {("--weights %s/none.pth"):format(tmp), "no such file or folder"},
    {"--weights random:1 --device vulkan:7", "--device vulkan:7:"},
    {("--weights random:1 --json %s/nodir/x.json"):format(tmp), "does not exist"},
    {("--weights random:1 --json %s"):format(tmp), "is a folder"},
    {"--weights random:1 --batch 0", "--batch 0: must be a positive integer"},
    {"--weights random:1 --batch many", "--batch many: must be a positive integer"},
    {"--weights random:1 --memory 0", "--memory 0: must be a positive integer"},
    {"--lpips --layer M --arch alexnet", "--layer has no effect with --lpips"},
    {"--name-map gluon_squeezenet1_1", "--name-map goes with --weights"},
    {("--data %s/nowhere --weights random:1"):format(tmp), "dplrun data/fetch.lua bapps"},
  }
  test.user_errors(t, function(a) return bapps(("--data %s --db %s/x.sqlite "):format(fixture, tmp) .. a) end, cases)
end)

suite:add("--name-map: the real SqueezeNet 1.1 .npy weights; layers by module name; --json provenance", function(t)
  need_fixture(t)
  local sqz = test.shared(t, "data/SqueezeNet1.1/squeezenet1.1_nchw/weights/squeezenet0_conv0_weight.npy"):gsub("/[^/]*$", "")
  local js = tmp .. "/nm.json"
  local rc, out = bapps(("--data %s --arch squeezenet1_1 --layer features.7,l --weights %s --name-map " ..
    "gluon_squeezenet1_1 --db %s/nm.sqlite --json %s --device cpu"):format(fixture, sqz, tmp, js))
  t:eq(rc, 0, out)
  local entries = json.decode(slurp(js))
  t:eq(#entries, 2)
  t:eq(entries[1].layer, "M", "features.7 is SqueezeNet's M layer, named so")
  t:eq(entries[2].layer, "L")
  local c = entries[1].config
  t:eq(c.name_map, "gluon_squeezenet1_1")
  t:eq(c.weights_file, require("dpl.download").absolute(sqz), "the weights folder, as an absolute path")
  t:eq(#c.weights_sha256, 64, "the .npy folder's SHA-256")
  t:ok(c.data and c.data.counts and c.distance and c.config_hash and c.dpl_version and c.code_version and
       c.date:match("^%d%d%d%d%-") and c.device:match("^cpu"), "provenance: " .. json.encode(c))
  t:eq(entries[1].untrained, nil)
  -- ImageNet weights rank the fixture's distortions well above chance
  t:ok(entries[2]["2afc"].mean > 0.55, "2AFC of the real SqueezeNet at L: " .. json.encode(entries[2]["2afc"]))
  -- scores carry no float32 noise from the judge labels (fractions of 5 raters)
  -- (10 triplets per subset, judges k/5: each subset's 2AFC score is a multiple of 0.01)
  for k, v in pairs(entries[1]["2afc"]) do
    if k ~= "mean" then
      t:ok(math.abs(v * 100 - math.floor(v * 100 + 0.5)) < 1e-9, "2afc." .. k .. " without float32 noise: " ..
        json.number_text(v))
    end
  end
  -- the same configuration resumes; untrained weights are labelled in the --json entries
  rc, out = bapps(("--data %s --arch squeezenet1_1 --layer M --weights random:2 --db %s/nm.sqlite --json %s " ..
    "--device cpu --limit 2"):format(fixture, tmp, js))
  t:eq(rc, 0, out)
  t:ok(out:find("UNTRAINED", 1, true) ~= nil, out)
  local e = json.decode(slurp(js))
  t:eq(e.untrained, true)
  t:eq(e.weights, "untrained random:2")
  t:eq(e.config.limit, 2)
end)

suite:add("kill -9 mid-sweep: finished networks recorded once, the interrupted one redone", function(t)
  need_ref(t)
  local db = tmp .. "/kill.sqlite"
  local args = ("--data %s --arch alexnet,squeezenet1_1 --layer E,S --weights %s --db %s --device cpu --batch 4"):format(
    fixture, refdir, db)
  -- the run kills itself (SIGKILL, no cleanup) right after its 2nd committed network (dpl.sys.fault): the same
  -- point on any machine, however fast
  local rc_kill, kill_status = sh(("DPL_FAULT_KILL_AFTER_RECORD=2 DPL_QUIET=1 DPL_NO_PROGRESS=1 %s %s/experiments/bapps.lua %s "
    .. ">%s/kill.log 2>&1; echo \"child=$?\""):format(dplrun, root, args, tmp))
  t:eq(rc_kill, 0)
  t:eq(tonumber(kill_status:match("child=(%d+)")), 137, "the child was not killed by SIGKILL (exit 128 + 9)")
  local s = results.open(db, {readonly = true})
  local before = s:runs({experiment = "bapps", status = "any"})
  s:close()
  t:eq(#before, 2, "the networks recorded before the kill; log: " .. (slurp(tmp .. "/kill.log") or ""))
  local seen = {}
  for _, r in ipairs(before) do
    t:eq(r.status, "finished")
    local nscores = 0
    for _ in pairs(r.scores) do nscores = nscores + 1 end
    t:eq(nscores, 6 + 1 + 2 + 1, "every score of a recorded run is there")
    seen[r.arch .. r.layer] = true
  end
  local rc, out = bapps(args)
  t:eq(rc, 0, out)
  t:ok(out:find(("%d computed, %d from"):format(4 - #before, #before), 1, true) ~= nil, out)
  s = results.open(db, {readonly = true})
  local after = s:runs({experiment = "bapps", status = "any"})
  s:close()
  t:eq(#after, 4, "every network recorded once")
  local count = {}
  for _, r in ipairs(after) do
    local k = r.arch .. r.layer
    count[k] = (count[k] or 0) + 1
  end
  for k, c in pairs(count) do t:eq(c, 1, k .. " recorded once") end
  -- the reference agrees for the networks it has (alexnet E and S), recorded before and after the kill alike
  for _, r in pairs(ref_by_key()) do
    for _, run in ipairs(after) do
      if run.arch == r.arch and run.layer == r.layer then
        t:near(run.scores["2afc.mean"], r["2afc"].mean, 1e-6, r.arch .. " " .. r.layer .. " 2afc.mean")
        t:near(run.scores["jnd.pooled"], r.jnd.pooled, 1e-6, r.arch .. " " .. r.layer .. " jnd.pooled")
      end
    end
  end
end)

local function count_rows(db)
  local s = results.open(db, {readonly = true})
  local runs = s:runs({experiment = "bapps", status = "any"})
  local claims = s:claims()
  s:close()
  return runs, claims
end

suite:add("two processes on one store share the networks: 8 networks, 8 rows", function(t)
  need_ref(t)
  local db = tmp .. "/shared.sqlite"
  local args = ("--data %s --arch alexnet,squeezenet1_1 --layer all --weights %s --db %s --device cpu --batch 8"):format(
    fixture, refdir, db)
  local cmd = "DPL_QUIET=1 DPL_NO_PROGRESS=1 %s %s/experiments/bapps.lua %s >%s 2>&1"
  local rc, out = sh(("(" .. cmd .. ") & (" .. cmd .. ") & wait"):format(dplrun, root, args, tmp .. "/a.log", dplrun,
    root, args, tmp .. "/b.log"))
  t:eq(rc, 0, out)
  local la, lb = slurp(tmp .. "/a.log"), slurp(tmp .. "/b.log")
  local ca = tonumber(la:match("(%d+) computed")) or -1
  local cb = tonumber(lb:match("(%d+) computed")) or -1
  t:eq(ca + cb, 8, "each network computed once:\n" .. la .. "\n" .. lb)
  t:ok(ca > 0 and cb > 0, ("both processes computed networks (%d and %d)"):format(ca, cb))
  local runs, claims = count_rows(db)
  t:eq(#runs, 8, "8 finished rows for 8 networks")
  t:eq(#claims, 0, "no claim left behind")
  local seen = {}
  for _, r in ipairs(runs) do
    t:eq(r.status, "finished")
    t:eq(seen[r.arch .. r.layer], nil, r.arch .. " " .. r.layer .. " recorded once")
    seen[r.arch .. r.layer] = true
  end
end)

suite:add("SIGINT mid-sweep: exit 130, 'rerun to resume', the finished networks kept", function(t)
  need_ref(t)
  local db = tmp .. "/sigint.sqlite"
  local args = ("--data %s --arch alexnet,squeezenet1_1 --layer E,S --weights %s --db %s --device cpu --batch 4"):format(
    fixture, refdir, db)
  local log = tmp .. "/sigint.log"
  -- the child sends itself SIGINT once it has recorded one network (dpl.sys.fault), as Ctrl-C would
  local rc, status = sh(([[DPL_FAULT_INT_AFTER_RECORD=1 DPL_QUIET=1 DPL_NO_PROGRESS=1 %s %s/experiments/bapps.lua %s >%s 2>&1
    echo "child=$?"]]):format(dplrun, root, args, log))
  t:eq(rc, 0)
  local out = slurp(log)
  t:eq(tonumber(status:match("child=(%d+)")), 130, "exit status 130; log:\n" .. out)
  t:ok(out:find("interrupted by SIGINT; rerun the same command to resume", 1, true), out)
  local runs, claims = count_rows(db)
  t:eq(#runs, 1, "networks recorded before the interruption")
  t:eq(#claims, 0, "the interrupted network's claim was released")
  for _, r in ipairs(runs) do t:eq(r.status, "finished", "no failed row for the interrupted network") end
  local rc2, out2 = bapps(args)
  t:eq(rc2, 0, out2)
  t:ok(out2:find(("%d computed, %d from"):format(4 - #runs, #runs), 1, true), out2)
end)

return suite
