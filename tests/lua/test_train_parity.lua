-- Training parity with PyTorch: the same initial weights and batches give the same losses step by step (1e-4
-- relative), for Adam + cross-entropy and SGD (momentum, nesterov, weight decay) + MSE on an MLP, and BatchNorm2d's
-- training/evaluation outputs and running statistics. References are made at test time by tests/ref/train_parity.py
-- with Debian's python3-torch (installed by .ci/install-deps.sh); the test fails if it is missing.
local dpl = require "dpl"
local nn = require "dpl.nn"
local optim = require "dpl.optim"
local test = require "dpl.test"
local S = test.suite("training parity with PyTorch")

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local refdir = os.tmpname() .. "_parity"
local made = os.execute(("/usr/bin/python3 %s/tests/ref/train_parity.py %s --conv >/dev/null 2>&1"):format(root, refdir))
local function ref(name, device) return dpl.load_npy(refdir .. "/" .. name .. ".npy", {device = device}) end

local function devices()
  return dpl.devices()
end

local function mlp(device)
  local m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
  local sd = {}
  for _, n in ipairs {"0.weight", "0.bias", "2.weight", "2.bias"} do sd[n] = ref("mlp_init_" .. n, device) end
  m:to(device)
  m:load_state_dict(sd)
  return m
end

S:add("reference generation with python3-torch", function(t)
  t:ok(made == 0 or made == true, "tests/ref/train_parity.py failed: is python3-torch installed (.ci/install-deps.sh)?")
end)

S:add("MLP + Adam + cross-entropy: 20 losses and final weights match", function(t)
  for _, dev in ipairs(devices()) do
    local m = mlp(dev)
    local x, y = ref("mlp_x", dev), ref("mlp_cls", dev)
    local expected = ref("mlp_adam_losses"):tolist()
    local opt = optim.Adam(m:parameters(), {lr = 1e-2})
    for i = 1, 20 do
      opt:zero_grad()
      local loss = nn.functional.cross_entropy(m(x:select(1, i)), y:select(1, i))
      loss:backward()
      opt:step()
      t:near(loss:item(), expected[i], 1e-4, dev .. " step " .. i)
    end
    for _, n in ipairs {"0.weight", "0.bias", "2.weight", "2.bias"} do
      t:close(m:state_dict()[n], ref("mlp_adam_final_" .. n), {atol = 1e-5, rtol = 1e-4}, dev .. " " .. n)
    end
  end
end)

S:add("MLP + SGD (momentum, nesterov, weight decay) + MSE: 20 losses match", function(t)
  for _, dev in ipairs(devices()) do
    local m = mlp(dev)
    local x, y = ref("mlp_x", dev), ref("mlp_reg", dev)
    local expected = ref("mlp_sgd_losses"):tolist()
    local opt = optim.SGD(m:parameters(), {lr = 5e-2, momentum = 0.9, nesterov = true, weight_decay = 1e-3})
    for i = 1, 20 do
      opt:zero_grad()
      local loss = nn.MSELoss()(m(x:select(1, i)), y:select(1, i))
      loss:backward()
      opt:step()
      t:near(loss:item(), expected[i], 1e-4, dev .. " step " .. i)
    end
  end
end)

S:add("conv net with batch norm + Adam: 20 losses match PyTorch", function(t)
  local names = {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
                 "3.weight", "3.bias", "4.weight", "4.bias", "4.running_mean", "4.running_var", "4.num_batches_tracked",
                 "7.weight", "7.bias"}
  for _, dev in ipairs(devices()) do
    local net = nn.Sequential(nn.Conv2d(3, 8, 3, {padding = 1}), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Conv2d(8, 4, 3, {stride = 2, padding = 1}), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.Flatten(), nn.Linear(4 * 5 * 5, 3)):to(dev)
    local sd = {}
    for _, n in ipairs(names) do sd[n] = ref("cnn_init_" .. n, dev) end
    net:load_state_dict(sd)
    local x, y = ref("cnn_x", dev), ref("cnn_y", dev)
    local expected = ref("cnn_losses"):tolist()
    local opt = optim.Adam(net:parameters(), {lr = 1e-2})
    for i = 1, 20 do
      opt:zero_grad()
      local loss = nn.functional.cross_entropy(net(x:select(1, i)), y:select(1, i))
      loss:backward()
      opt:step()
      t:near(loss:item(), expected[i], 1e-4, dev .. " step " .. i)
    end
  end
end)

S:add("BatchNorm2d: training and evaluation outputs, running statistics", function(t)
  for _, dev in ipairs(devices()) do
    local bn = nn.BatchNorm2d(5):to(dev)
    bn:load_state_dict({weight = ref("bn_weight", dev), bias = ref("bn_bias", dev), running_mean = dpl.zeros(5),
                        running_var = dpl.ones(5), num_batches_tracked = dpl.zeros({})})
    for step = 0, 1 do
      t:close(bn(ref("bn_x" .. step, dev)), ref("bn_y" .. step), {atol = 1e-5, rtol = 1e-4}, dev .. " train " .. step)
    end
    t:close(bn.running_mean, ref("bn_running_mean"), {atol = 1e-6, rtol = 1e-5}, dev .. " running_mean")
    t:close(bn.running_var, ref("bn_running_var"), {atol = 1e-6, rtol = 1e-5}, dev .. " running_var")
    t:eq(bn.num_batches_tracked:item(), 2)
    bn:evaluate()
    t:close(bn(ref("bn_xe", dev)), ref("bn_ye"), {atol = 1e-5, rtol = 1e-4}, dev .. " eval")
  end
end)

S.teardown = function() os.execute("rm -rf '" .. refdir .. "'") end
return S
