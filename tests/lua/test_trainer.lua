-- The shared training loop (lua/dpl/train/trainer.lua): epochs, validation and the best epoch, checkpoints and exact
-- resume, NaN stop, refusing a checkpoint of another configuration or model. A tiny conv net with batch norm and
-- dropout (so the random stream's position matters) learns a fixed random regression on 24 in-memory samples.
local dpl = require "dpl"
local nn = require "dpl.nn"
local optim = require "dpl.optim"
local trainer = require "dpl.train.trainer"
local test = require "dpl.test"
local S = test.suite("trainer")

local dir = os.tmpname() .. "_trainer"
os.execute("mkdir -p '" .. dir .. "'")
S.teardown = function() os.execute("rm -rf '" .. dir .. "'") end
local vulkan = dpl.vulkan_available()
S.after_each = function()
  collectgarbage()
  if vulkan then dpl.synchronize("vulkan") end
end

local N = 24
local function data(device)
  local x = dpl.rand({N, 3, 6, 6}, {seed = 100, device = device})
  local y = dpl.rand({N, 2, 6, 6}, {seed = 101, device = device})
  local ds = {}
  function ds:len() return N end
  function ds:get_batch(idx, dev)
    local xs, ys = {}, {}
    for k, i in ipairs(idx) do xs[k] = x:narrow(1, i, 1); ys[k] = y:narrow(1, i, 1) end
    return {x = dpl.cat(xs, 1):to(dev or device), y = dpl.cat(ys, 1):to(dev or device)}
  end
  return ds, x, y
end

-- model, optimizer and options of one run; `extra` overrides options
local function setup(device, ckpt, extra)
  dpl.manual_seed(7)
  local net = nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                            nn.Conv2d(4, 2, 1)):to(device)
  local opt = optim.Adam(net:parameters(), {lr = 1e-2})
  local ds, vx, vy = data(device)
  local o = {model = net, optimizer = opt, data = ds, batch_size = 5, seed = 3, device = device, epochs = 4,
             checkpoint = ckpt, config_hash = "h1", quiet = true,
             step = function(b) return nn.functional.mse_loss(net(b.x), b.y) end,
             validate = function() return -nn.functional.mse_loss(net(vx), vy):item() end,
             metric = "neg_mse", direction = "max"}
  for k, v in pairs(extra or {}) do o[k] = v end
  return o, net
end

local function weights(net)
  local sd, order = net:state_dict()
  local out = {}
  for _, n in ipairs(order) do out[n] = sd[n]:tolist() end
  return out
end

local function same_weights(t, a, b, msg)
  for n, v in pairs(a) do
    local w = b[n]
    t:ok(w ~= nil, msg .. ": missing " .. n)
    for i = 1, #v do
      if v[i] ~= w[i] then t:ok(false, ("%s: %s[%d] differs: %.9g vs %.9g"):format(msg, n, i, v[i], w[i])) return end
    end
  end
end

local function same_list(t, a, b, msg)
  t:eq(#a, #b, msg .. " length")
  for i = 1, #a do t:eq(a[i], b[i], ("%s[%d]"):format(msg, i)) end
end

local function devices() return vulkan and {"cpu", "vulkan"} or {"cpu"} end

S:add("epochs, validation, best epoch kept and restored; direction min", function(t)
  local o, net = setup("cpu", nil)
  local r = trainer.fit(o)
  t:eq(r.epochs_run, 4)
  t:eq(#r.train_loss, 4)
  t:eq(#r.val, 4)
  local best = 1
  for e = 2, 4 do if r.val[e] > r.val[best] then best = e end end
  t:eq(r.best_epoch, best)
  t:eq(r.best_metric, r.val[best])
  t:ok(r.train_loss[4] < r.train_loss[1], ("the training loss did not decrease: %s"):format(table.concat(r.train_loss, " ")))
  -- the model holds the best epoch's weights: its validation metric is the best one
  net:evaluate()
  local _, vx, vy = data("cpu")
  local v = dpl.no_grad(function() return -nn.functional.mse_loss(net(vx), vy):item() end)
  t:eq(v, r.best_metric)
  -- min: the epoch with the smallest value
  local o2 = setup("cpu", nil, {direction = "min"})
  local r2 = trainer.fit(o2)
  local worst = 1
  for e = 2, 4 do if r2.val[e] < r2.val[worst] then worst = e end end
  t:eq(r2.best_epoch, worst)
end)

for _, dev in ipairs(devices()) do
  S:add("a stop mid-epoch, then the same command: exactly the uninterrupted result (" .. dev .. ")", function(t)
    local o, net = setup(dev, dir .. "/full_" .. dev .. ".ckpt")
    local full = trainer.fit(o)
    local wf = weights(net)
    -- stop requested at global step 7 (epoch 2, batch 2 of 5)
    local path = dir .. "/stop_" .. dev .. ".ckpt"
    local steps = 0
    local o1 = setup(dev, path, {step = nil})
    local net1 = o1.model
    o1.step = function(b) steps = steps + 1; return nn.functional.mse_loss(net1(b.x), b.y) end
    o1.stop_requested = function() if steps == 7 then return "SIGTERM" end end
    local r1 = trainer.fit(o1)
    t:ok(r1.stopped, "the run did not stop")
    t:eq(r1.epochs_run, 1)
    local o2, net2 = setup(dev, path)
    local r2 = trainer.fit(o2)
    t:ok(r2.resumed, "not resumed")
    same_list(t, r2.train_loss, full.train_loss, "train loss")
    same_list(t, r2.val, full.val, "val")
    t:eq(r2.best_epoch, full.best_epoch)
    same_weights(t, weights(net2), wf, "final weights")
    -- a finished run's checkpoint: nothing to train, the same result
    local o3, net3 = setup(dev, path)
    local r3 = trainer.fit(o3)
    same_list(t, r3.val, full.val, "val after a finished checkpoint")
    same_weights(t, weights(net3), wf, "weights from a finished checkpoint")
  end)
end

S:add("with dpl.signal: signals deferred while training; a pending one is saved, then interrupts the caller", function(t)
  -- a stand-in for lua/dpl/signal.lua (dplrun's SIGINT/SIGTERM handling): defer(on) -> previous, pending(), and a
  -- pending signal interrupting as soon as deferring stops
  local fake = {deferred = false, sig = nil, calls = {}}
  function fake.defer(on)
    local prev = fake.deferred
    fake.deferred = on
    fake.calls[#fake.calls + 1] = tostring(on)
    if not on and fake.sig then error("interrupted by " .. fake.sig, 0) end
    return prev
  end
  function fake.pending() return fake.sig end
  local saved = package.loaded["dpl.signal"]
  package.loaded["dpl.signal"] = fake
  local ok, err = pcall(function()
    local o, net = setup("cpu", nil)
    trainer.fit(o)
    local wf = weights(net)
    t:eq(table.concat(fake.calls, ","), "true,false", "defer around fit")
    local path = dir .. "/signal.ckpt"
    local steps = 0
    local o1 = setup("cpu", path)
    local net1 = o1.model
    o1.step = function(b)
      steps = steps + 1
      if steps == 8 then fake.sig = "SIGTERM" end
      return nn.functional.mse_loss(net1(b.x), b.y)
    end
    local ok1, e1 = pcall(trainer.fit, o1)
    t:ok(not ok1 and tostring(e1):find("interrupted by SIGTERM", 1, true), "not interrupted: " .. tostring(e1))
    t:eq(fake.deferred, false, "deferring left on")
    fake.sig = nil
    local meta = require("dpl.checkpoint").load(path, {})
    local info = require("dpl.json").decode(meta.trainer)
    t:eq(info.epoch * 5 + info.step, 8, "the checkpoint is not at the signal's batch")
    local o2, net2 = setup("cpu", path)
    local r2 = trainer.fit(o2)
    t:ok(r2.resumed, "not resumed")
    same_weights(t, weights(net2), wf, "final weights")
  end)
  package.loaded["dpl.signal"] = saved
  if not ok then error(err, 0) end
end)

S:add("a crash after timed checkpoints (every batch) resumes exactly; NaN names epoch and batch", function(t)
  local o, net = setup("cpu", nil)
  trainer.fit(o)
  local wf = weights(net)
  local path = dir .. "/crash.ckpt"
  local steps = 0
  local o1 = setup("cpu", path, {checkpoint_every_s = 0})
  local net1 = o1.model
  o1.step = function(b)
    steps = steps + 1
    if steps == 13 then error("simulated crash") end
    return nn.functional.mse_loss(net1(b.x), b.y)
  end
  local ok, err = pcall(trainer.fit, o1)
  t:ok(not ok and tostring(err):find("simulated crash", 1, true), "no crash: " .. tostring(err))
  local o2, net2 = setup("cpu", path, {checkpoint_every_s = 0})
  local r2 = trainer.fit(o2)
  t:ok(r2.resumed, "not resumed")
  same_weights(t, weights(net2), wf, "weights after the crash and resume")
  -- NaN at the 8th step (epoch 2, batch 3): an error naming both; the checkpoint stays at the last good batch
  local npath = dir .. "/nan.ckpt"
  local o3 = setup("cpu", npath, {checkpoint_every_s = 0})
  local net3, n3 = o3.model, 0
  o3.step = function(b)
    n3 = n3 + 1
    local l = nn.functional.mse_loss(net3(b.x), b.y)
    if n3 == 8 then return l * (0 / 0) end
    return l
  end
  local ok3, err3 = pcall(trainer.fit, o3)
  t:ok(not ok3, "NaN did not stop the run")
  t:ok(tostring(err3):find("epoch 2, batch 3 of 5", 1, true), "message: " .. tostring(err3))
  t:ok(tostring(err3):find("last good checkpoint is " .. npath .. " (epoch 2, batch 2)", 1, true),
    "message: " .. tostring(err3))
  local meta = require("dpl.checkpoint").load(npath, {})
  local info = require("dpl.json").decode(meta.trainer)
  t:eq(info.epoch, 1)
  t:eq(info.step, 2)
end)

S:add("a checkpoint of another configuration or another model is refused with a message", function(t)
  local path = dir .. "/other.ckpt"
  trainer.fit((setup("cpu", path, {epochs = 1})))
  local ok, err = pcall(trainer.fit, (setup("cpu", path, {config_hash = "h2"})))
  t:ok(not ok and tostring(err):find("another configuration", 1, true), tostring(err))
  local o = setup("cpu", path)
  o.model = nn.Sequential(nn.Conv2d(3, 2, 1))
  o.optimizer = optim.Adam(o.model:parameters())
  local ok2, err2 = pcall(trainer.fit, o)
  t:ok(not ok2 and tostring(err2):find("does not fit this model", 1, true), tostring(err2))
  local bad = dir .. "/not_a_ckpt"
  local f = io.open(bad, "w"); f:write("hello"); f:close()
  local ok3, err3 = pcall(trainer.fit, (setup("cpu", bad)))
  t:ok(not ok3 and tostring(err3):find(bad, 1, true), tostring(err3))
  local ok4, err4 = pcall(trainer.fit, {model = o.model})
  t:ok(not ok4 and tostring(err4):find("optimizer", 1, true), tostring(err4))
end)

return S
