-- experiments/autoencoder.lua end to end on a tiny data root in the real SVHN (.mat v5) and STL-10 (binary) formats,
-- written by tests/ref/autoencoder_fixture.py (synthetic textures tinted by class: an easy labelling), with a
-- random-weight AlexNet loss network and small batches:
--  * a --quick run writes the issue's JSON shape, the autoencoder's training loss decreases, the selected MLP's test
--    accuracy is well above chance, one finished row (dataset, test.accuracy) is in the store; the same command skips
--    it; --select val_loss reuses the trained autoencoder and MLPs (nothing retrained) and records its own row;
--  * kill -9 after the second MLP (DPL_FAULT_KILL_AFTER_MLP), then the same command: the finished MLPs are read back,
--    not retrained, and the result equals the uninterrupted run's to the last bit;
--  * kill -9 inside an autoencoder epoch (the trainer's DPL_FAULT_KILL_AFTER_CHECKPOINT), then the same command: the
--    uninterrupted result to the last bit;
--  * --checkpoint scores the saved autoencoder alone (the same accuracies); --dataset svhn,stl10 --pixel records one
--    pixel-MSE baseline row per dataset (STL-10 at 96 x 96) and --save writes the PNG and the codes;
--  * a missing split, a truncated .mat and an out-of-range label are one line naming the file (exit status 2), with no
--    row and no JSON.
local json = require "dpl.json"
local results = require "dpl.results"
local test = require "dpl.test"
local S = test.suite("autoencoder experiment", {configurations = {"default"}})   -- runs dplrun --device cpu

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dir = os.tmpname() .. "_aeexp"
local dplrun = test.dplrun()
S.teardown = function() os.execute("rm -rf '" .. dir .. "'") end

local fixture = dofile(root .. "/tests/lua/autoencoder_fixture.lua")
local function need_data(t) fixture.need(t, root, dir .. "/data", "96 240 60") end

local COMMON = "--arch alexnet --layer E --weights random:1 --quick --ae-epochs 3 --mlp-epochs 40 --batch 32 --lr 3e-3 "

local function run(argstr, env)
  return test.run_command(("DPL_NO_PROGRESS=1 %s'%s' --quiet %s/experiments/autoencoder.lua --data %s/data %s%s --device cpu")
    :format(env and (env .. " ") or "", dplrun, root, dir, COMMON, argstr))
end

local function read_json(path)
  local text = test.read_file(path)
  return text and json.decode(text) or nil
end

local function stored(db_path)
  local db = results.open(db_path, {readonly = true})
  local runs = db:runs({experiment = "autoencoder"})
  db:close()
  return runs
end

local full
S:add("--quick end to end: JSON shape, decreasing loss, accuracy above chance, a store row; skip; --select", function(t)
  need_data(t)
  local rc, out = run(("--db %s/a/r.sqlite --json %s/a.json"):format(dir, dir))
  t:eq(rc, 0, "the run failed:\n" .. out)
  local j = read_json(dir .. "/a.json")
  t:ok(j ~= nil, "no JSON written")
  full = j
  t:eq(j.dataset, "svhn")
  t:eq(j.arch, "alexnet")
  t:eq(j.layer, "E")
  t:eq(j.config.preset, "quick")
  t:eq(j.config.side, 64)
  t:eq(j.config.data.mlp.images, 240)
  t:eq(j.config.data.mlp.val, 48)
  t:eq(j.ae.epochs_run, 3)
  t:eq(#j.ae.val_loss, 3)
  t:ok(j.ae.train_loss[3] < j.ae.train_loss[1], "the autoencoder's loss did not decrease: "
    .. table.concat(j.ae.train_loss, ", "))
  t:eq(#j.mlps, 7)
  local names = {}
  for i, m in ipairs(j.mlps) do
    names[i] = m.name
    for _, k in ipairs {"epochs_run", "val_loss", "val_accuracy", "test_loss", "test_accuracy"} do
      t:ok(type(m[k]) == "number", m.name .. " " .. k)
    end
    t:ok(m.epochs_run <= 40, "epochs_run")
  end
  t:eq(table.concat(names, " "), "linear 32 64 32-32 64-32 64-64 128-128")
  t:eq(#j.mlps[5].hidden, 2)
  t:eq(j.selected.by, "val_accuracy")
  t:ok(j.selected.test_accuracy >= 0.4, ("the selected MLP's test accuracy %.3f is not well above chance (0.1)")
    :format(j.selected.test_accuracy))
  t:ok(j.selected_by_val_loss.by == "val_loss" and type(j.selected_by_val_loss.test_accuracy) == "number",
    "selected_by_val_loss")
  local runs = stored(dir .. "/a/r.sqlite")
  t:eq(#runs, 1)
  t:eq(runs[1].scores["test.accuracy"], j.selected.test_accuracy)
  t:eq(json.decode(runs[1].config).dataset, "svhn")
  -- the same command: skipped, the same JSON
  local rc2, out2 = run(("--db %s/a/r.sqlite --json %s/a2.json"):format(dir, dir))
  t:ok(rc2 == 0 and out2:find("skipped", 1, true), "the finished run was not skipped:\n" .. out2)
  t:eq(json.encode(read_json(dir .. "/a2.json")), json.encode(j))
  -- --select val_loss: a row of its own, from the same trained networks
  local rc3, out3 = run(("--db %s/a/r.sqlite --json %s/a3.json --select val_loss"):format(dir, dir))
  t:eq(rc3, 0, out3)
  t:ok(out3:find("holds a finished run", 1, true), "the autoencoder was trained again:\n" .. out3)
  local _, again = out3:gsub("already trained", "")
  t:eq(again, 7, "MLPs read back instead of retrained")
  local j3 = read_json(dir .. "/a3.json")
  t:eq(j3.selected.by, "val_loss")
  t:eq(j3.selected.test_accuracy, j.selected_by_val_loss.test_accuracy)
  t:eq(#stored(dir .. "/a/r.sqlite"), 2)
end)

-- runs the command killed by the fault hook `env`, then again; returns the rerun's output and JSON
local function killed_then_resumed(t, sub, env, extra)
  local args = ("--db %s/%s/r.sqlite --json %s/%s.json%s"):format(dir, sub, dir, sub, extra or "")
  local rc, out = run(args, env)
  t:eq(rc, 137, "the run was not killed:\n" .. out)
  t:eq(#stored(("%s/%s/r.sqlite"):format(dir, sub)), 0, "a killed run left a row")
  local rc2, out2 = run(args)
  t:eq(rc2, 0, out2)
  local j = read_json(("%s/%s.json"):format(dir, sub))
  t:eq(json.encode(j.ae), json.encode(full.ae), "autoencoder history")
  t:eq(json.encode(j.mlps), json.encode(full.mlps), "MLP results")
  return out2, j
end

S:add("kill -9 after the second MLP, then the same command: finished MLPs kept, the uninterrupted result", function(t)
  need_data(t)
  t:ok(full ~= nil, "needs the first test's run")
  local out = killed_then_resumed(t, "b", "DPL_FAULT_KILL_AFTER_MLP=2")
  t:ok(out:find("MLP linear already trained", 1, true) and out:find("MLP 32 already trained", 1, true),
    "the finished MLPs were retrained:\n" .. out)
  t:ok(not out:find("MLP 64 already trained", 1, true), "MLP 64 had not finished")
end)

S:add("kill -9 inside an autoencoder epoch, then the same command: the uninterrupted result", function(t)
  need_data(t)
  t:ok(full ~= nil, "needs the first test's run")
  -- 77 training images in batches of 32: 3 batches per epoch; checkpoints after every batch (--checkpoint-minutes 0);
  -- the 4th checkpoint is the first batch of epoch 2
  local out = killed_then_resumed(t, "c", "DPL_FAULT_KILL_AFTER_CHECKPOINT=4", " --checkpoint-minutes 0")
  t:ok(out:find("resuming from [^\n]*: epoch 2, batch 1"), "not resumed from epoch 2, batch 1:\n" .. out)
end)

S:add("--checkpoint scores a saved autoencoder; --pixel on svhn,stl10; --save", function(t)
  need_data(t)
  t:ok(full ~= nil, "needs the first test's run")
  local model = io.popen(("find %s/a -name autoencoder.safetensors"):format(dir)):read("*l")
  t:ok(model ~= nil, "no autoencoder.safetensors was written")
  local rc, out = run(("--db %s/d/r.sqlite --json %s/d.json --checkpoint %s"):format(dir, dir, model))
  t:eq(rc, 0, out)
  local j = read_json(dir .. "/d.json")
  t:eq(j.arch, "alexnet")
  t:eq(j.layer, "E")
  t:eq(j.ae, nil)
  t:eq(json.encode(j.mlps), json.encode(full.mlps), "the same codes give the same MLPs")
  local rc2, out2 = run(("--db %s/e/r.sqlite --json %s/e.json --dataset svhn,stl10 --pixel --ae-epochs 1 --save %s/save")
    :format(dir, dir, dir))
  t:eq(rc2, 0, out2)
  local e = read_json(dir .. "/e.json")
  t:eq(#e, 2)
  t:eq(e[1].dataset, "svhn")
  t:eq(e[2].dataset, "stl10")
  t:eq(e[2].layer, "pixel")
  t:eq(e[2].config.side, 96)
  t:eq(e[2].config.loss, "pixel MSE")
  t:eq(e[2].config.data.mlp.images, 120)
  local runs = stored(dir .. "/e/r.sqlite")
  t:eq(#runs, 2)
  for _, r in ipairs(runs) do t:eq(r.layer, "pixel") end
  for _, f in ipairs {"svhn/reconstructions.png", "stl10/reconstructions.png", "stl10/codes_test.npy",
                      "svhn/labels_train.npy"} do
    t:ok(test.read_file(dir .. "/save/" .. f) ~= nil, "--save did not write " .. f)
  end
  local img = require("dpl").image.load(dir .. "/save/stl10/reconstructions.png", {device = "cpu"})
  t:shape(img, {3, 192, 8 * 96})
end)

S:add("bad data: a missing split, a truncated .mat, a label out of range: one line naming the file, nothing written",
  function(t)
  need_data(t)
  local function bad(setup, want)
    os.execute(("rm -rf '%s/bad' && cp -r '%s/data' '%s/bad'"):format(dir, dir, dir))
    os.execute(setup:gsub("BAD", dir .. "/bad"))
    local rc, out = test.run_command(("DPL_NO_PROGRESS=1 '%s' --quiet %s/experiments/autoencoder.lua --data %s/bad %s "
      .. "--db %s/bad/r.sqlite --json %s/bad/out.json --device cpu"):format(dplrun, root, dir, COMMON .. "--dataset svhn,stl10",
      dir, dir))
    t:eq(rc, 2, out)   -- a user error, found before the first cell (dpl.cli)
    t:ok(out:find(want, 1, true), ("expected '%s' in:\n%s"):format(want, out))
    t:ok(not out:find("stack traceback", 1, true), "a stack trace:\n" .. out)
    t:eq(test.read_file(dir .. "/bad/out.json"), nil, "a JSON was written")
    local f = io.open(dir .. "/bad/r.sqlite")
    if f then f:close(); t:eq(#stored(dir .. "/bad/r.sqlite"), 0, "a row was written") end
  end
  bad("rm BAD/svhn/test_32x32.mat", "test_32x32.mat")
  bad("rm BAD/svhn/test_32x32.mat", "dplrun data/fetch.lua svhn")
  bad("head -c 3000 BAD/svhn/extra_32x32.mat > BAD/x && mv BAD/x BAD/svhn/extra_32x32.mat", "extra_32x32.mat")
  bad("printf '\\013' | dd of=BAD/stl10/stl10_binary/train_y.bin bs=1 seek=5 conv=notrunc 2>/dev/null",
    "train_y.bin: label 5 is 11, expected 1..10")
end)

return S
