-- Model definitions against torchvision 0.14 (lua/dpl/models/{googlenet,inception,efficientnet}.lua): GoogLeNet,
-- Inception v3, EfficientNet-B0 and EfficientNet-B7.
--
-- References are made at test time by tests/ref/architectures_inception_ref.py with Debian's python3-torch /
-- python3-torchvision: a seeded random state_dict (BatchNorm weight, bias, running_mean and running_var included)
-- saved as one .npy per key, a 2 x 3 x 64 x 64 input, the reference truncation's output (children of the list
-- attribute run in order) at the 4 extraction indices E, S, M, L of docs/benchmarks/lossnets.md, and the whole
-- model's eval-mode logits. For every arch:
--  * the model built with upto = L has exactly torchvision's state_dict keys for children 0..L, in order (nothing
--    past L is built), and the whole model has torchvision's keys less the aux classifiers;
--  * running extract_list in order, on the CPU and on Vulkan, gives every extraction output within
--    max |error| <= 1e-4 * max |reference|, with the shapes of docs/benchmarks/lossnets.md;
--  * the whole model's classification forward (CPU, eval) matches torchvision's logits (inception_v3 at 96 x 96:
--    its Mixed_7a cannot run at 64).
-- Skipped when the references cannot be made (no python3-torch).
local dpl = require "dpl"
local test = require "dpl.test"
-- default only: long; the device paths it uses are covered by the op suites in every configuration
local suite = test.suite("architectures: Inception, EfficientNet", {configurations = {"default"}})

local vulkan = dpl.vulkan_available()
local TOL = 1e-4

local S = suite

-- ---- the architectures and the reference's shapes at 64 x 64 (docs/benchmarks/lossnets.md) -----------------------
local ARCHS = {
  {name = "googlenet", module = "dpl.models.googlenet", list = "model", layers = {0, 5, 8, 15},
   shapes = {{64, 32, 32}, {256, 8, 8}, {512, 4, 4}, {1024, 2, 2}}},
  {name = "inception_v3", module = "dpl.models.inception", list = "model", layers = {2, 7, 9, 14},
   shapes = {{64, 29, 29}, {256, 5, 5}, {288, 5, 5}, {768, 2, 2}}},
  {name = "efficientnet_b0", module = "dpl.models.efficientnet", list = "features", layers = {0, 1, 4, 7},
   shapes = {{32, 32, 32}, {16, 32, 32}, {80, 4, 4}, {320, 2, 2}}},
  {name = "efficientnet_b7", module = "dpl.models.efficientnet", list = "features", layers = {0, 1, 4, 7},
   shapes = {{64, 32, 32}, {32, 32, 32}, {160, 4, 4}, {640, 2, 2}}},
}
local LAYER_NAMES = {"E", "S", "M", "L"}

-- ---- references -----------------------------------------------------------------------------------------------------
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
-- DPL_ARCHITECTURES_INCEPTION_REFDIR=DIR reuses references made earlier by `architectures_inception_ref.py DIR`
-- (and keeps them)
local refdir = os.getenv("DPL_ARCHITECTURES_INCEPTION_REFDIR")
local own_refs = not (refdir and io.open(refdir .. "/done"))
local t_ref = os.time()
if own_refs then
  refdir = os.tmpname() .. "_architectures_inception"
  os.execute(("/usr/bin/python3 %s/tests/ref/architectures_inception_ref.py %s >%s.log 2>&1"):format(root, refdir, refdir))
end
t_ref = os.time() - t_ref
local have_refs = io.open(refdir .. "/done") ~= nil

suite.teardown = function()
  if own_refs then os.execute(("rm -rf '%s' '%s.log'"):format(refdir, refdir)) end
end

local function need_refs(t)
  if not have_refs then t:skip("no torchvision references (python3-torch missing? see " .. refdir .. ".log)") end
end

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local function read_keys(arch)
  local keys = {}
  for line in io.lines(refdir .. "/" .. arch .. "/keys.txt") do
    if line ~= "" then keys[#keys + 1] = line end
  end
  return keys
end

-- torchvision's keys that belong to children 0..upto of the reference's list
local function expected_keys(a, info, upto)
  local prefixes = {}
  for i = 0, upto do
    prefixes[#prefixes + 1] = a.list == "features" and ("features." .. i .. ".") or (info.children[i + 1] .. ".")
  end
  local out = {}
  for _, k in ipairs(read_keys(a.name)) do
    for _, p in ipairs(prefixes) do
      if k:sub(1, #p) == p then out[#out + 1] = k; break end
    end
  end
  return out
end

-- loads every key of `model` from the reference .npy files (asserting each is there) on `device`
local function load_weights(t, arch, model, device)
  local _, order = model:state_dict()
  local sd, missing = {}, {}
  for _, name in ipairs(order) do
    local path = refdir .. "/" .. arch .. "/" .. name .. ".npy"
    if file_exists(path) then sd[name] = dpl.load_npy(path, {device = device}) else missing[#missing + 1] = name end
  end
  t:ok(#missing == 0, ("%s: %d keys of the model have no torchvision tensor: %s"):format(arch, #missing,
    table.concat(missing, ", ", 1, math.min(#missing, 10))))
  model:load_state_dict(sd)
  return model
end

-- max |a - ref| <= TOL * max |ref|, with both numbers in the message; returns the relative error
local function check_close(t, got, ref, what)
  t:ok(got:size() == ref:size(), ("%s: shape %s, torchvision %s"):format(what, tostring(got:size()),
    tostring(ref:size())))
  local err = (got:to("cpu") - ref:to("cpu")):abs():max():item()
  local refmax = ref:abs():max():item()
  local rel = err / refmax
  t:ok(err == err and err <= TOL * refmax, ("%s: max |error| %.3g > %.0e x max |reference| %.4g (relative %.3g)"):format(
    what, err, TOL, refmax, rel))
  return rel
end

local results = {}   -- results[arch][device][layer] = relative error, for the summary on stderr
local timings = {}

local function ref(arch, name, device) return dpl.load_npy(refdir .. "/" .. arch .. "/" .. name .. ".npy", {device = device}) end

local function build(a, opts)
  return require(a.module)[a.name](opts)
end

-- CPU models shared by the tests of one arch (building EfficientNet-B7 with its random initialisation takes seconds):
-- "trunc" (upto = L) and "full"; released by the arch's last test
local cache = {}
local function cached(a, kind)
  local key = a.name .. "/" .. kind
  if not cache[key] then cache[key] = build(a, kind == "trunc" and {upto = a.layers[4], device = "cpu"} or {device = "cpu"}) end
  return cache[key]
end
local function release(a)
  cache[a.name .. "/trunc"], cache[a.name .. "/full"] = nil, nil
end

-- runs extract_list in order on `device` and checks the requested layers (1..4 of E S M L)
local function check_extraction(t, a, device, which)
  local L = a.layers[4]
  local t0 = os.clock()
  local model = device == "cpu" and cached(a, "trunc") or build(a, {upto = L, device = device})
  load_weights(t, a.name, model, device)
  model:evaluate()
  local t_build = os.clock() - t0
  t:eq(#model.extract_list, L + 1, a.name .. ": extract_list length")
  local last = 0
  for _, k in ipairs(which) do last = math.max(last, a.layers[k] + 1) end
  local want = {}
  for _, k in ipairs(which) do want[a.layers[k]] = k end
  results[a.name] = results[a.name] or {}
  results[a.name][device] = results[a.name][device] or {}
  local w0 = os.time()
  t0 = os.clock()
  dpl.no_grad(function()
    local h = ref(a.name, "input", device)
    for i = 1, last do
      h = model.extract_list[i]:updateOutput(h)
      local k = want[i - 1]
      if k then
        local s = a.shapes[k]
        t:shape(h, {2, s[1], s[2], s[3]}, ("%s %s (child %d) on %s: the reference's shape"):format(a.name,
          LAYER_NAMES[k], i - 1, device))
        results[a.name][device][k] = check_close(t, h, ref(a.name, "out_" .. (i - 1), "cpu"),
          ("%s %s (child %d) on %s"):format(a.name, LAYER_NAMES[k], i - 1, device))
      end
    end
  end)
  timings[#timings + 1] = ("%s on %s: build+load %.1f s, forward to child %d %.1f s cpu / %d s wall"):format(
    a.name, device, t_build, last - 1, os.clock() - t0, os.time() - w0)
end

-- ---- tests ----------------------------------------------------------------------------------------------------------
for _, a in ipairs(ARCHS) do
  local fam = require(a.module)
  local info = fam.info[a.name]

  S:add(a.name .. ": truncated model has torchvision's keys of children 0..L, nothing past L", function(t)
    need_refs(t)
    local L = a.layers[4]
    for _, upto in ipairs {a.layers[1], a.layers[2], L} do
      local m = upto == L and cached(a, "trunc") or build(a, {upto = upto})
      local _, order = m:state_dict()
      local want = expected_keys(a, info, upto)
      local own, theirs = {}, {}
      for _, k in ipairs(order) do own[k] = true end
      for _, k in ipairs(want) do theirs[k] = true end
      local missing, extra = {}, {}
      for _, k in ipairs(want) do if not own[k] then missing[#missing + 1] = k end end
      for _, k in ipairs(order) do if not theirs[k] then extra[#extra + 1] = k end end
      t:ok(#missing == 0 and #extra == 0, ("%s upto %d: missing %s; extra %s"):format(a.name, upto,
        table.concat(missing, ", ", 1, math.min(#missing, 6)), table.concat(extra, ", ", 1, math.min(#extra, 6))))
      t:eq(table.concat(order, " "), table.concat(want, " "), a.name .. " upto " .. upto .. ": key order")
      t:eq(#m.extract_list, upto + 1, a.name .. " upto " .. upto .. ": extract_list length")
      local kids = a.list == "features" and m.features:children() or m:children()
      t:eq(#kids, upto + 1, a.name .. " upto " .. upto .. ": children built")
      for i, c in ipairs(m.extract_list) do t:ok(c == kids[i], "extract_list entry " .. i .. " is child " .. (i - 1)) end
    end
    t:raises(function() build(a, {upto = #info.children}) end, "upto")
  end)

  S:add(a.name .. ": whole model has torchvision's keys less the aux classifiers", function(t)
    need_refs(t)
    local m = cached(a, "full")
    local _, order = m:state_dict()
    local want = {}
    for _, k in ipairs(read_keys(a.name)) do
      if not (k:match("^aux1%.") or k:match("^aux2%.") or k:match("^AuxLogits%.")) then want[#want + 1] = k end
    end
    t:eq(#order, #want, a.name .. ": number of keys")
    t:eq(table.concat(order, " "), table.concat(want, " "), a.name .. ": keys in order")
  end)

  S:add(a.name .. ": E S M L outputs on the CPU match torchvision", function(t)
    need_refs(t)
    check_extraction(t, a, "cpu", {1, 2, 3, 4})
  end)

  S:add(a.name .. ": E S M L outputs on Vulkan match torchvision", function(t)
    need_refs(t)
    if not vulkan then t:skip("no Vulkan device") end
    check_extraction(t, a, "vulkan", {1, 2, 3, 4})
  end)

  S:add(a.name .. ": classification logits on the CPU match torchvision (eval)", function(t)
    need_refs(t)
    local m = cached(a, "full")
    release(a)
    load_weights(t, a.name, m, "cpu")
    m:evaluate()
    local t0 = os.clock()
    local x = ref(a.name, "logits_input", "cpu")
    local y = dpl.no_grad(function() return m:forward(x) end)
    results[a.name] = results[a.name] or {}
    results[a.name].logits = check_close(t, y, ref(a.name, "logits", "cpu"),
      ("%s logits at %dx%d"):format(a.name, x:size(3), x:size(4)))
    timings[#timings + 1] = ("%s logits on cpu at %d: %.1f s"):format(a.name, x:size(3), os.clock() - t0)
  end)
end

-- ---- StochasticDepth (EfficientNet): row mode in training, identity in evaluation --------------------------------------
S:add("StochasticDepth: rows dropped with probability p and scaled by 1/(1-p) in training; identity in eval", function(t)
  local E = require "dpl.models.efficientnet"
  local sd = E.StochasticDepth(0.25, "row")
  local x = dpl.ones(400, 3, 2, 2, {device = "cpu"})
  dpl.manual_seed(7)
  local y = sd:forward(x)
  local rows = y:reshape(400, 12)
  local per_row_min, per_row_max = rows:min(2), rows:max(2)
  t:close(per_row_min, per_row_max, {atol = 0, rtol = 0})            -- whole rows
  local kept, bad = 0, 0
  for _, v in ipairs(per_row_max:tolist()) do
    if math.abs(v - 1 / 0.75) < 1e-6 then kept = kept + 1 elseif v ~= 0 then bad = bad + 1 end
  end
  t:eq(bad, 0, "values other than 0 and 1/(1-p)")
  t:ok(kept > 260 and kept < 340, "kept rows " .. kept .. " of 400 (expected about 300)")
  sd:evaluate()
  t:close(sd:forward(x), x, {atol = 0, rtol = 0})
  t:close(E.StochasticDepth(0, "row"):forward(x), x, {atol = 0, rtol = 0})
  -- the probabilities torchvision gives the blocks: 0.2 * block index / total blocks
  local b0 = E.efficientnet_b0({upto = 7})
  local last = b0.features:children()[8]:children()[1]
  t:near(last.stochastic_depth.p, 0.2 * 15 / 16, 1e-12, "b0 features.7.0 stochastic depth p")
  t:near(b0.features:children()[2]:children()[1].stochastic_depth.p, 0, 1e-12, "b0 features.1.0 stochastic depth p")
  t:near(b0.features:children()[3]:children()[2].stochastic_depth.p, 0.2 * 2 / 16, 1e-12,
    "b0 features.2.1 stochastic depth p")
  local stages = E.config("efficientnet_b7")
  local counts = {}
  for i, s in ipairs(stages) do counts[i] = s.num_layers .. "x" .. s.out_channels end
  t:eq(table.concat(counts, " "), "4x32 7x48 7x80 10x160 10x224 13x384 4x640", "b7 stages")
end)

-- summary on stderr (stdout keeps the runner's one line per test)
local old_teardown = suite.teardown
suite.teardown = function()
  io.stderr:write(("models b: torchvision references made in %d s\n"):format(t_ref))
  for _, a in ipairs(ARCHS) do
    local r = results[a.name]
    if r then
      for _, dev in ipairs {"cpu", "vulkan"} do
        if r[dev] then
          local parts = {}
          for k = 1, 4 do parts[k] = LAYER_NAMES[k] .. " " .. (r[dev][k] and ("%.2e"):format(r[dev][k]) or "-") end
          io.stderr:write(("models b: %-16s %-6s max rel error %s\n"):format(a.name, dev, table.concat(parts, "  ")))
        end
      end
      if r.logits then io.stderr:write(("models b: %-16s logits max rel error %.2e\n"):format(a.name, r.logits)) end
    end
  end
  for _, line in ipairs(timings) do io.stderr:write("models b: ", line, "\n") end
  old_teardown()
end

return suite
