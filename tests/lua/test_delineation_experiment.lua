-- experiments/delineation.lua end to end on the 4 Massachusetts Roads tiles of $DPL_SHARED/data/MassachusettsRoads
-- (images/ + masks/: one set used for every split; skipped without DPL_SHARED), a random-weight SqueezeNet 1.1 loss
-- network, 64 x 64 crops (--size: the protocol at a size CI can afford), batch 2, 4 epochs:
--  * a --quick run writes the issue's JSON shape, its training loss decreases, --save writes the maps of every
--    iteration, the overlay, the input and its ground truth, one finished row is in the store with the score names
--    docs/analysis.md reads; the same command again is skipped;
--  * a run killed with SIGKILL right after its 3rd checkpoint (mid-epoch 2; DPL_FAULT_KILL_AFTER_CHECKPOINT, no timing
--    involved), then the same command: it resumes and ends with exactly the uninterrupted result;
--  * --eval faithful reuses the trained network (nothing is trained again) and reports the reference script's numbers;
--  * --checkpoint scores the trained U-Net file alone, with the same scores (--save-limit 1: the first image's PNGs);
--  * bad input (a mask of another size, a mask with a value other than 0/255, an image that does not decode, a missing
--    split): one line naming the file or folder, no stack trace.
local dpl = require "dpl"
local json = require "dpl.json"
local results = require "dpl.results"
local test = require "dpl.test"
local S = test.suite("delineation experiment", {configurations = {"default"}})   -- runs dplrun --device cpu

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dir = os.tmpname() .. "_delexp"
os.execute("mkdir -p '" .. dir .. "'")   -- --json files are written here
local dplrun = test.dplrun()
S.teardown = function() os.execute("rm -rf '" .. dir .. "'") end

-- the tiles come from ../shared/data: without it the cases are reported skipped (dpl.test: exit 77)
local function tiles() return test.shared_dir() .. "/data/MassachusettsRoads" end
local function need_data(t)
  for _, stem in ipairs {"10078735_15", "18478975_15", "22679080_15", "23429170_15"} do
    test.shared(t, "data/MassachusettsRoads/images/" .. stem .. ".png")
    test.shared(t, "data/MassachusettsRoads/masks/" .. stem .. ".png")
  end
end

local function run(argstr, env)
  local code, out = test.run_command(("%s DPL_NO_PROGRESS=1 '%s' --quiet %s/experiments/delineation.lua %s --device cpu")
    :format(env or "", dplrun, root, argstr))
  return code == 0, out, code
end

local function read_json(path)
  local text = test.read_file(path)
  return text and json.decode(text)
end

local function common()
  return ("--arch squeezenet1_1 --layer S --weights random:1 --quick --size 64 --batch 2 --epochs 4 --lr 0.01 "
    .. "--tolerance 2 --data %s "):format(tiles())
end

local full_json
S:add("--quick end to end: the JSON shape, a decreasing training loss, the PNGs, one row in the store", function(t)
  need_data(t)
  local ok, out = run(common() .. ("--db %s/a/r.sqlite --json %s/a.json --save %s/a_out"):format(dir, dir, dir))
  t:ok(ok, "the run failed:\n" .. out)
  local j = read_json(dir .. "/a.json")
  t:ok(j ~= nil, "no JSON written")
  full_json = j
  t:eq(j.arch, "squeezenet1_1")
  t:eq(j.layer, "S")
  t:eq(j.config.preset, "quick")
  t:eq(j.config.K, 3)
  t:eq(j.config.mu, 0.01)
  t:eq(j.config.lossnet_mode, "train")
  t:eq(j.epochs_run, 4)
  t:ok(j.best_epoch >= 1 and j.best_epoch <= 4, "best_epoch " .. tostring(j.best_epoch))
  t:eq(#j.val_bce, 4)
  t:eq(#j.train_loss, 4)
  t:ok(j.train_loss[4] < j.train_loss[1], ("training loss did not decrease: %s"):format(table.concat(j.train_loss, ", ")))
  local r = j.test
  t:eq(r.split, "test")
  t:eq(r.eval, "fixed")
  for _, m in ipairs {"completeness", "correctness", "quality", "relaxed_completeness", "relaxed_correctness",
                      "relaxed_quality"} do
    t:ok(type(r[m]) == "number" and r[m] >= 0 and r[m] <= 1, "test." .. m .. " = " .. tostring(r[m]))
    t:ok(type(r.per_iteration[3][m]) == "number", "per_iteration[3]." .. m)
    t:eq(r.per_iteration[3][m], r[m], "the fixed evaluation is the last iteration's mean: " .. m)
  end
  t:ok(r.relaxed_completeness >= r.completeness, "relaxed completeness below strict")
  t:eq(#r.per_iteration, 3)
  t:eq(#r.images, 4)
  t:eq(r.images[1].name, "10078735_15")
  for _, m in ipairs {"name", "completeness", "correctness", "quality"} do t:ok(r.images[2][m] ~= nil, "image " .. m) end
  for _, stem in ipairs {"10078735_15", "23429170_15"} do
    for _, f in ipairs {stem .. "_k1.png", stem .. "_k2.png", stem .. "_k3.png", stem .. "_overlay.png",
                        stem .. "_image.png", stem .. "_gt.png"} do
      t:ok(io.open(("%s/a_out/%s"):format(dir, f)) ~= nil, "--save did not write " .. f)
    end
  end
  t:shape(dpl.image.load(dir .. "/a_out/10078735_15_overlay.png", {device = "cpu"}), {3, 64, 64})
  t:shape(dpl.image.load(dir .. "/a_out/10078735_15_k3.png", {device = "cpu", mode = "keep"}), {1, 64, 64})
  t:shape(dpl.image.load(dir .. "/a_out/10078735_15_image.png", {device = "cpu"}), {3, 64, 64})
  t:shape(dpl.image.load(dir .. "/a_out/10078735_15_gt.png", {device = "cpu", mode = "keep"}), {1, 64, 64})
  local db = results.open(dir .. "/a/r.sqlite", {readonly = true})
  local runs = db:runs({experiment = "delineation"})
  db:close()
  t:eq(#runs, 1)
  for _, m in ipairs {"completeness", "correctness", "quality"} do t:eq(runs[1].scores["test." .. m], r[m]) end
  t:eq(runs[1].scores.best_epoch, j.best_epoch)
  -- the same command again: nothing is trained, the stored result is reported
  local ok2, out2 = run(common() .. ("--db %s/a/r.sqlite --json %s/a2.json"):format(dir, dir))
  t:ok(ok2 and out2:find("skipped", 1, true), "the finished run was not skipped:\n" .. out2)
  t:eq(json.encode(read_json(dir .. "/a2.json")), json.encode(j))
end)

S:add("killed (SIGKILL) after its 3rd checkpoint, mid-epoch, then the same command: exactly the uninterrupted result",
  function(t)
  need_data(t)
  t:ok(full_json ~= nil, "needs the first test's run")
  local args = common() .. ("--db %s/b/r.sqlite --json %s/b.json --checkpoint-minutes 0"):format(dir, dir)
  -- checkpoints: after batch 1 of epoch 1 (every batch with --checkpoint-minutes 0), after epoch 1, after batch 1 of
  -- epoch 2: the kill lands in the middle of epoch 2
  local ok, out, code = run(args, "DPL_FAULT_KILL_AFTER_CHECKPOINT=3")
  t:ok(not ok and code == 137, ("the run was not killed (exit %s):\n%s"):format(tostring(code), out))
  t:ok(read_json(dir .. "/b.json") == nil, "the killed run wrote its JSON")
  local ok2, out2 = run(args)
  t:ok(ok2, "the rerun failed:\n" .. out2)
  t:ok(out2:find("resuming", 1, true) and out2:find("epoch 2, batch 1", 1, true), "the rerun did not resume mid-epoch "
    .. "2:\n" .. out2)
  local j = read_json(dir .. "/b.json")
  t:eq(json.encode(j.test), json.encode(full_json.test), "test scores")
  t:eq(json.encode(j.val_bce), json.encode(full_json.val_bce), "validation BCE")
  t:eq(json.encode(j.train_loss), json.encode(full_json.train_loss), "training loss")
  t:eq(j.best_epoch, full_json.best_epoch)
end)

S:add("--eval faithful reuses the trained network and accumulates the scores over iterations", function(t)
  need_data(t)
  t:ok(full_json ~= nil, "needs the first test's run")
  local ok, out = run(common() .. ("--eval faithful --db %s/a/r.sqlite --json %s/f.json"):format(dir, dir))
  t:ok(ok, "the run failed:\n" .. out)
  t:ok(out:find("nothing to train", 1, true), "the network was trained again:\n" .. out)
  local j = read_json(dir .. "/f.json")
  t:eq(j.test.split, "valid")
  t:eq(j.test.eval, "faithful")
  t:eq(json.encode(j.val_bce), json.encode(full_json.val_bce))
  -- the tiles are every split here, so the per-iteration means are the fixed run's; iteration k counts K - k + 1 times
  local pi = full_json.test.per_iteration
  for _, m in ipairs {"completeness", "correctness", "quality"} do
    t:near(j.test[m], 3 * pi[1][m] + 2 * pi[2][m] + pi[3][m], 1e-12, "faithful " .. m)
  end
  t:ok(j.test.completeness > 1, "the reference's accumulation exceeds 1 here: " .. tostring(j.test.completeness))
end)

S:add("--checkpoint scores the trained U-Net alone, with the same scores", function(t)
  need_data(t)
  t:ok(full_json ~= nil, "needs the first test's run")
  local model = io.popen(("find %s/a -name 'model_squeezenet1_1_S.safetensors'"):format(dir)):read("*l")
  t:ok(model ~= nil, "the trained network file is missing")
  local ok, out = run(("--checkpoint %s --split test --size 64 --batch 2 --tolerance 2 --data %s --db %s/c/r.sqlite "
    .. "--json %s/c.json --save %s/c_out --save-limit 1"):format(model, tiles(), dir, dir, dir))
  t:ok(ok, "scoring failed:\n" .. out)
  local j = read_json(dir .. "/c.json")
  t:eq(j.arch, "squeezenet1_1")
  t:eq(j.layer, "S")
  t:eq(json.encode(j.test), json.encode(full_json.test), "test scores")
  -- --save-limit 1: the outputs of the first evaluated image only
  local saved = io.popen(("ls '%s/c_out' | sort"):format(dir)):read("*a")
  t:eq(saved, "10078735_15_gt.png\n10078735_15_image.png\n10078735_15_k1.png\n10078735_15_k2.png\n" ..
    "10078735_15_k3.png\n10078735_15_overlay.png\n", "--save-limit 1")
end)

-- a folder of small generated tiles: images/ + masks/ (the mirror layout) or train/{sat,map} without other splits
local function write_tiles(sub, masks)
  local d = ("%s/%s"):format(dir, sub)
  os.execute(("mkdir -p '%s/images' '%s/masks'"):format(d, d))
  for k, m in ipairs(masks) do
    dpl.image.save(dpl.rand({3, 80, 80}, {seed = k}), ("%s/images/t%d.png"):format(d, k))
    if m == "broken" then
      local f = io.open(("%s/masks/t%d.png"):format(d, k), "wb"); f:write("not a png"); f:close()
    else
      dpl.image.save(m, ("%s/masks/t%d.png"):format(d, k))
    end
  end
  return d
end

S:add("bad input: one line naming the file (mask size, mask values, undecodable file, missing split)", function(t)
  local good = dpl.rand({1, 80, 80}, {seed = 9}):gt(0.8)
  local function fails(sub, masks, want, extra)
    local d = write_tiles(sub, masks)
    local ok, out = run(("--no-perceptual --quick --size 64 --batch 2 --epochs 1 --data %s --db %s/%s.sqlite %s")
      :format(d, dir, sub, extra or ""))
    t:ok(not ok, sub .. ": the run succeeded")
    t:ok(out:find(want, 1, true) and not out:find("stack traceback", 1, true), ("%s: expected '%s' in:\n%s"):format(sub,
      want, out))
  end
  fails("size", {good, dpl.rand({1, 64, 80}, {seed = 3}):gt(0.5)}, "masks/t2.png is 80x64 but its image")
  fails("values", {good, dpl.full({1, 80, 80}, 0.5)}, "masks/t2.png holds the value 128")
  fails("broken", {good, "broken"}, "masks/t2.png")
  -- a folder with train/{sat,map} only: the valid split is missing
  local d = dir .. "/nosplit"
  os.execute(("mkdir -p '%s/train/sat' '%s/train/map'"):format(d, d))
  dpl.image.save(dpl.rand({3, 80, 80}, {seed = 1}), d .. "/train/sat/t1.png")
  dpl.image.save(good, d .. "/train/map/t1.png")
  local ok, out = run(("--no-perceptual --quick --size 64 --data %s --db %s/nosplit.sqlite"):format(d, dir))
  t:ok(not ok and out:find("the valid split", 1, true) and not out:find("stack traceback", 1, true), out)
end)

return S
