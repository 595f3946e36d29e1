-- experiments/superres.lua end to end on small real images (crops of $DPL_SHARED/data Set14 as training and
-- validation images, of Set5 as the test set, made by this suite; skipped without DPL_SHARED), a random-weight AlexNet
-- loss network, 64 x 64 HR crops (--hr-size: the protocol at a size CI can afford):
--  * a --quick run writes the issue's JSON shape, its training loss decreases, and one finished row is in the store;
--  * kill -9 during the second epoch (after the checkpoint of a batch), then the same command: the same test metrics,
--    validation PSNRs and training losses as an uninterrupted run, to the last bit;
--  * --checkpoint scores the trained network file alone, with the same test metrics, and --save writes the PNGs
--    (output, HR crop, LR input; --save-limit 1: of the first image only);
--  * missing data is one line naming what was expected and how to fetch it.
local dpl = require "dpl"
local json = require "dpl.json"
local results = require "dpl.results"
local test = require "dpl.test"
local S = test.suite("superres experiment", {configurations = {"default"}})   -- runs dplrun --device cpu

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local shared = os.getenv("DPL_SHARED")
local dir = os.tmpname() .. "_srexp"
-- the dplrun binary running this suite: the lowest negative index of `arg`
local i = -1
while arg[i - 1] do i = i - 1 end
local dplrun = arg[i]
if not dplrun:find("/") then dplrun = "./" .. dplrun end
if dplrun:sub(1, 1) ~= "/" then dplrun = os.getenv("PWD") .. "/" .. dplrun end
S.teardown = function() os.execute("rm -rf '" .. dir .. "'") end

-- the Set5/Set14 images come from ../shared/data: without it the cases are reported skipped (dpl.test)
local function need_data(t)
  test.shared(t, "data/Set14/image_SRF_4/img_001_SRF_4_HR.png")
  test.shared(t, "data/Set5/image_SRF_4/img_001_SRF_4_HR.png")
  shared = test.shared_dir()
end

-- crops of real images: 6 training and 2 validation crops from Set14, 2 test crops from Set5
local made
local function make_data()
  if made then return end
  made = true
  os.execute(("mkdir -p '%s/train' '%s/val' '%s/Tiny'"):format(dir, dir, dir))
  local function crop(set, i, top, left, side, out)
    local img = dpl.image.load(("%s/data/%s/image_SRF_4/img_%03d_SRF_4_HR.png"):format(shared, set, i), {device = "cpu"})
    dpl.image.save(img:narrow(2, top, side):narrow(3, left, side):contiguous(), out)
  end
  for k = 1, 6 do crop("Set14", k, 11, 21, 80, ("%s/train/c%d.png"):format(dir, k)) end
  for k = 7, 8 do crop("Set14", k, 31, 11, 80, ("%s/val/c%d.png"):format(dir, k)) end
  for k = 1, 2 do crop("Set5", k, 41, 41, 72, ("%s/Tiny/t%d.png"):format(dir, k)) end
end

local function run(argstr)
  -- the exit status is echoed: LuaJIT's popen close does not return it
  local cmd = ("DPL_NO_PROGRESS=1 '%s' --quiet %s/experiments/superres.lua %s --device cpu 2>&1; echo \"exit=$?\""):format(
    dplrun, root, argstr)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code == 0, out:gsub("exit=%d+%s*$", "")
end

local function read_json(path)
  local f = io.open(path)
  if not f then return nil end
  local v = json.decode(f:read("*a"))
  f:close()
  return v
end

local COMMON = "--arch alexnet --layer E --weights random:1 --quick --hr-size 64 --batch 2 --epochs 3 "
local function data_args() return ("--train %s/train --val %s/val --test %s/Tiny "):format(dir, dir, dir) end

local full_json
S:add("--quick end to end: the JSON shape, a decreasing training loss, one row in the store", function(t)
  need_data(t)
  make_data()
  local ok, out = run(COMMON .. data_args() .. ("--db %s/a/r.sqlite --json %s/a.json"):format(dir, dir))
  t:ok(ok, "the run failed:\n" .. out)
  local j = read_json(dir .. "/a.json")
  t:ok(j ~= nil, "no JSON written")
  full_json = j
  t:eq(j.arch, "alexnet")
  t:eq(j.layer, "E")
  t:eq(j.scale, 4)
  t:eq(j.config.preset, "quick")
  t:eq(j.epochs_run, 3)
  t:ok(j.best_epoch >= 1 and j.best_epoch <= 3, "best_epoch " .. tostring(j.best_epoch))
  t:eq(#j.val_psnr, 3)
  t:eq(#j.train_loss, 3)
  t:ok(j.train_loss[3] < j.train_loss[1], ("training loss did not decrease: %s"):format(table.concat(j.train_loss, ", ")))
  local set = j.test.Tiny
  t:ok(set ~= nil, "no test set Tiny in the JSON")
  for _, m in ipairs {"psnr", "ssim", "psnr_2", "tensor_ssim"} do t:ok(type(set[m]) == "number", "test.Tiny." .. m) end
  t:eq(#set.images, 2)
  t:eq(set.images[1].name, "t1")
  for _, m in ipairs {"name", "psnr", "ssim", "psnr_2", "tensor_ssim"} do t:ok(set.images[2][m] ~= nil, "image " .. m) end
  t:ok(type(j.test_full_image.Tiny.psnr) == "number", "the full-image protocol is missing")
  local db = results.open(dir .. "/a/r.sqlite", {readonly = true})
  local runs = db:runs({experiment = "superres"})
  db:close()
  t:eq(#runs, 1)
  t:eq(runs[1].scores["test.Tiny.psnr"], set.psnr)
  t:eq(runs[1].scores.best_epoch, j.best_epoch)
  -- the same command again: nothing is trained, the stored result is reported
  local ok2, out2 = run(COMMON .. data_args() .. ("--db %s/a/r.sqlite --json %s/a2.json"):format(dir, dir))
  t:ok(ok2 and out2:find("skipped", 1, true), "the finished run was not skipped:\n" .. out2)
  t:eq(json.encode(read_json(dir .. "/a2.json")), json.encode(j))
end)

S:add("kill -9 in the middle of an epoch, then the same command: exactly the uninterrupted result", function(t)
  need_data(t)
  t:ok(full_json ~= nil, "needs the first test's run")
  make_data()
  -- 6 training crops in batches of 2 = 3 batches per epoch; with --checkpoint-minutes 0 a checkpoint follows every
  -- batch, the epoch's last one included: the 4th is written after batch 1 of epoch 2, where the trainer's fault hook
  -- kills the process (SIGKILL, no cleanup) whatever the machine's speed
  local cmd = ("DPL_FAULT_KILL_AFTER_CHECKPOINT=4 DPL_NO_PROGRESS=1 '%s' --quiet %s/experiments/superres.lua %s%s--db "
    .. "%s/b/r.sqlite --json %s/b.json --checkpoint-minutes 0 --device cpu >%s/b.log 2>&1; echo \"exit=$?\""):format(
    dplrun, root, COMMON, data_args(), dir, dir, dir)
  local p = io.popen(cmd)
  local code = tonumber((p:read("*a") or ""):match("exit=(%d+)"))
  p:close()
  t:eq(code, 137, "the run was not killed by SIGKILL (exit 128 + 9)")
  local found = io.popen(("find %s/b -name train.ckpt 2>/dev/null"):format(dir)):read("*l")
  t:ok(found ~= nil, "the killed run left no checkpoint")
  local ok_meta, meta = pcall(require("dpl.checkpoint").load, found, {})
  local info = ok_meta and meta.trainer and json.decode(meta.trainer)
  local killed = info and info.epoch == 1 and info.step == 1
  t:ok(killed, "the last checkpoint is not the one after batch 1 of epoch 2: " .. json.encode(info or {}))
  os.execute("sleep 0.5")
  t:ok(read_json(dir .. "/b.json") == nil, "the killed run wrote its JSON")
  local ok, out = run(COMMON .. data_args() .. ("--db %s/b/r.sqlite --json %s/b.json --checkpoint-minutes 0"):format(dir, dir))
  t:ok(ok, "the rerun failed:\n" .. out)
  t:ok(out:find("resuming", 1, true), "the rerun did not resume:\n" .. out)
  local j = read_json(dir .. "/b.json")
  t:eq(json.encode(j.test), json.encode(full_json.test), "test metrics")
  t:eq(json.encode(j.val_psnr), json.encode(full_json.val_psnr), "validation PSNR")
  t:eq(json.encode(j.train_loss), json.encode(full_json.train_loss), "training loss")
  t:eq(j.best_epoch, full_json.best_epoch)
end)

S:add("--checkpoint scores a trained network alone (same metrics); --save writes the outputs", function(t)
  need_data(t)
  t:ok(full_json ~= nil, "needs the first test's run")
  local model = io.popen(("find %s/a -name 'model_x4_alexnet_E.safetensors'"):format(dir)):read("*l")
  t:ok(model ~= nil, "the trained network file is missing")
  local ok, out = run(("--checkpoint %s --test %s/Tiny --hr-size 64 --save %s/out --save-limit 1 --db %s/c/r.sqlite " ..
    "--json %s/c.json")
    :format(model, dir, dir, dir, dir))
  t:ok(ok, "scoring failed:\n" .. out)
  local j = read_json(dir .. "/c.json")
  t:eq(j.arch, "alexnet")
  t:eq(json.encode(j.test), json.encode(full_json.test), "test metrics")
  for _, f in ipairs {"t1.png", "t1_hr.png", "t1_lr.png"} do
    t:ok(io.open(("%s/out/Tiny/%s"):format(dir, f)) ~= nil, "--save did not write " .. f)
  end
  for _, f in ipairs {"t2.png", "t2_hr.png", "t2_lr.png"} do   -- --save-limit 1: the first image of each set only
    t:eq(io.open(("%s/out/Tiny/%s"):format(dir, f)), nil, "--save-limit 1 wrote " .. f)
  end
  local img = dpl.image.load(dir .. "/out/Tiny/t1.png", {device = "cpu"})
  t:shape(img, {3, 64, 64})
  t:shape(dpl.image.load(dir .. "/out/Tiny/t1_lr.png", {device = "cpu"}), {3, 16, 16})
end)

S:add("missing data: one line naming what was expected and the fetch command", function(t)
  local ok, out = run(COMMON .. ("--train %s/none --val %s/none --test %s/none --db %s/d/r.sqlite"):format(dir, dir, dir,
    dir))
  t:ok(not ok, "a run without data succeeded")
  t:ok(out:find(dir .. "/none", 1, true) and not out:find("stack traceback", 1, true), "message: " .. out)
  local ok2, out2 = run("--arch alexnet --layer E --weights random:1 --quick --db " .. dir .. "/d/r.sqlite")
  t:ok(not ok2 and (out2:find("dplrun data/fetch.lua", 1, true)), "no fetch command in: " .. out2)
end)

return S
