-- nn modules: containers and their error messages, parameter names and state dicts, train/eval modes, freezing (a
-- frozen loss network never changes and never gets gradients, but passes gradients to its input), torch/nn-style
-- backward(input, gradOutput).
local dpl = require "dpl"
local nn = require "dpl.nn"
local optim = require "dpl.optim"
local test = require "dpl.test"
local S = test.suite("nn")

S:add("state_dict names follow PyTorch", function(t)
  local m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))
  local _, order = m:state_dict()
  t:eq(table.concat(order, " "), "0.weight 0.bias 1.weight 1.bias 1.running_mean 1.running_var " ..
    "1.num_batches_tracked 3.0.weight 3.0.bias")
  local named = {}
  for _, e in ipairs(m:named_parameters()) do named[#named + 1] = e[1] end
  t:eq(table.concat(named, " "), "0.weight 0.bias 1.weight 1.bias 3.0.weight 3.0.bias")
end)

S:add("load_state_dict is strict and names what is wrong", function(t)
  local m = nn.Sequential(nn.Linear(3, 2))
  local sd = {["0.weight"] = dpl.zeros(2, 3), ["0.bias"] = dpl.zeros(2)}
  m:load_state_dict(sd)
  t:eq(m:get(1).weight:abs():sum():item(), 0)
  t:raises(function() m:load_state_dict({["0.weight"] = dpl.zeros(2, 3)}) end, "missing: 0.bias")
  t:raises(function() m:load_state_dict({["0.weight"] = dpl.zeros(2, 3), ["0.bias"] = dpl.zeros(2), extra = dpl.zeros(1)}) end,
           "unexpected: extra")
  t:raises(function() m:load_state_dict({["0.weight"] = dpl.zeros(3, 3), ["0.bias"] = dpl.zeros(2)}) end,
           "0.weight has shape 3x3 in the checkpoint but 2x3 in the model")
  m:load_state_dict({["0.weight"] = dpl.ones(2, 3)}, false)   -- non-strict: loads what matches
  t:eq(m:get(1).weight:sum():item(), 6)
end)

S:add("errors inside a container name the failing child", function(t)
  local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 2), nn.Linear(5, 1)))
  local msg = t:raises(function() m(dpl.randn(2, 4)) end, "In child 3 (2: nn.Sequential) of nn.Sequential")
  t:ok(msg:find("In child 2 (1: nn.Linear) of nn.Sequential", 1, true), msg)
  t:ok(msg:find("nn.Linear(5 -> 1): input has 2 features", 1, true), msg)
end)

S:add("a frozen loss network: weights never change, never get gradients, but pass gradients to the input", function(t)
  for _, dev in ipairs(dpl.devices()) do
    dpl.manual_seed(3)
    local lossnet = nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.ReLU(), nn.Conv2d(4, 4, 3)):to(dev)
    lossnet:evaluate():freeze()
    local before = {}
    for name, p in pairs(lossnet:state_dict()) do before[name] = p:clone() end
    local gen = nn.Sequential(nn.Conv2d(3, 3, 3, {padding = 1})):to(dev)
    local opt = optim.Adam(gen:parameters(), {lr = 1e-2})
    local x = dpl.randn({2, 3, 8, 8}, {device = dev})
    local target = dpl.randn({2, 4, 6, 6}, {device = dev})
    local losses = {}
    for step = 1, 5 do
      opt:zero_grad()
      local loss = nn.functional.mse_loss(lossnet(gen(x)), target)
      loss:backward()
      opt:step()
      losses[step] = loss:item()
      for name, p in pairs(lossnet:state_dict()) do
        t:ok(p.grad == nil, dev .. ": frozen " .. name .. " got a gradient")
        t:ok(not p.requires_grad, dev .. ": frozen " .. name .. " requires grad")
      end
      t:ok(gen:get(1).weight.grad ~= nil, dev .. ": the generator gets gradients through the frozen network")
    end
    t:ok(losses[5] < losses[1], dev .. ": the generator learns through the frozen network")
    for name, p in pairs(lossnet:state_dict()) do
      t:close(p, before[name], {atol = 0, rtol = 0}, dev .. ": frozen " .. name .. " changed")
    end
    -- and optimizers refuse frozen parameters
    t:raises(function() optim.SGD(lossnet:parameters(), {lr = 1}) end, "does not require grad")
  end
end)

S:add("training and evaluation modes", function(t)
  local m = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(2))
  t:ok(m.train and m:get(1).train)
  m:evaluate()
  t:ok(not m:get(1).train and not m:get(2).train)
  local x = dpl.randn(2, 2, 3, 3)
  t:close(m:get(1)(x), x)   -- dropout is the identity in evaluation
  m:training()
  local y = m:get(1)(dpl.ones(1000))
  local kept = y:gt(0):sum():item()
  t:ok(kept > 400 and kept < 600, "about half kept: " .. kept)
  t:near(y:max():item(), 2, 1e-6)
end)

S:add("torch/nn-style backward(input, gradOutput) returns the input gradient", function(t)
  local lin = nn.Linear(3, 2)
  local x = dpl.randn(4, 3)
  lin:forward(x)
  local gy = dpl.randn(4, 2)
  local gx = lin:backward(x, gy)
  t:close(gx, gy:matmul(lin.weight:detach()), {atol = 1e-5})
  t:close(lin.weight.grad, gy:t():matmul(x), {atol = 1e-5})
  local params, grads = lin:parameters()
  t:eq(#params, 2)
  t:eq(#grads, 2)
  lin:zeroGrad()
  t:ok(lin.weight.grad == nil)
end)

S:add("loss functions match their formulas", function(t)
  local p = dpl.tensor({0.2, 0.9, 0.5})
  local y = dpl.tensor({0, 1, 1})
  local bce = -(math.log(0.8) + math.log(0.9) + math.log(0.5)) / 3
  t:near(nn.BCELoss()(p, y):item(), bce, 1e-5)
  local logits = dpl.tensor({-1.386294, 2.197225, 0})   -- log(p / (1 - p))
  t:near(nn.BCEWithLogitsLoss()(logits, y):item(), bce, 1e-5)
  t:near(nn.BCELoss()(dpl.tensor({0, 1}), dpl.tensor({1, 0})):item(), 100, 1e-6)   -- log clamped at -100
  local z = dpl.tensor({{1, 2, 3}, {1, 1, 1}})
  local ce = ((-math.log(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)))) + math.log(3)) / 2
  t:near(nn.CrossEntropyLoss()(z, dpl.tensor({2, 0})):item(), ce, 1e-5)
  t:near(nn.MSELoss({reduction = "sum"})(dpl.tensor({1, 2}), dpl.tensor({0, 0})):item(), 5, 1e-6)
  t:raises(function() nn.MSELoss()(dpl.zeros(2), dpl.zeros(3)) end, "mse_loss: input shape 2 and target shape 3 differ")
end)

S:add("nn.Concat joins its children's outputs; errors name the failing child", function(t)
  for _, dev in ipairs(dpl.devices()) do
    dpl.manual_seed(11)
    local m = nn.Sequential(nn.Concat(2, nn.Conv2d(3, 4, 1), nn.Sequential(nn.Conv2d(3, 2, 3, {padding = 1}), nn.ReLU()),
      nn.Identity())):to(dev)
    local _, order = m:state_dict()
    t:eq(table.concat(order, " "), "0.0.weight 0.0.bias 0.1.0.weight 0.1.0.bias")
    local x = dpl.randn({2, 3, 5, 4}, {device = dev}):requires_grad_()
    local y = m(x)
    t:shape(y, {2, 9, 5, 4})
    local c = m:get(1)
    t:close(y:narrow(2, 1, 4), c:get(1)(x), {atol = 0, rtol = 0}, dev .. ": first child")
    t:close(y:narrow(2, 5, 2), c:get(2)(x), {atol = 0, rtol = 0}, dev .. ": second child")
    t:close(y:narrow(2, 7, 3), x, {atol = 0, rtol = 0}, dev .. ": identity child")
    -- the input gradient is the sum of the children's
    local g = dpl.randn({2, 9, 5, 4}, {device = dev})
    y:backward(g)
    local w1 = c:get(1).weight:detach()
    local want = dpl.conv2d_backward_input(g:narrow(2, 1, 4):contiguous(), w1, x:size()) + g:narrow(2, 7, 3)
    local h = c:get(2):get(1)(x:detach())
    local g2 = g:narrow(2, 5, 2) * h:gt(0)
    want = want + dpl.conv2d_backward_input(g2:contiguous(), c:get(2):get(1).weight:detach(), x:size(), {padding = 1})
    t:close(x.grad, want, {atol = 1e-5, rtol = 1e-5}, dev .. ": input gradient")
  end
  local bad = nn.Sequential(nn.Concat(2, nn.Conv2d(3, 4, 1), nn.Conv2d(3, 2, 3)))
  t:raises(function() bad(dpl.randn(1, 3, 5, 5)) end,
           "the output of child 2 (1: nn.Conv2d) has shape 1x2x3x3, which cannot be joined along dim 2 with child 1's "
           .. "1x4x5x5")
  local failing = nn.Concat(2, nn.Identity(), nn.Sequential(nn.Linear(3, 2)))
  t:raises(function() failing(dpl.randn(1, 4)) end, "In child 2 (1: nn.Sequential) of nn.Concat")
  t:raises(function() nn.Concat(nn.Identity()) end, "the first argument must be the (1-based) dim")
end)

S:add("nn.Residual adds body and shortcut; errors name the failing child", function(t)
  for _, dev in ipairs(dpl.devices()) do
    dpl.manual_seed(12)
    local body = nn.Sequential(nn.Conv2d(4, 4, 3, {padding = 1, bias = false}), nn.BatchNorm2d(4), nn.ReLU(),
      nn.Conv2d(4, 4, 3, {padding = 1}))
    local m = nn.Sequential(nn.Residual(body), nn.ReLU()):to(dev)
    local _, order = m:state_dict()
    t:eq(order[1], "0.body.0.weight")
    t:eq(order[3], "0.body.1.bias")
    local x = dpl.randn({2, 4, 6, 5}, {device = dev}):requires_grad_()
    local y = m(x)
    t:close(y, (body(x:detach()) + x:detach()):relu(), {atol = 1e-6, rtol = 1e-6}, dev .. ": relu(body(x) + x)")
    y:sum():backward()
    t:shape(x.grad, {2, 4, 6, 5})
    t:shape(body:get(1).weight.grad, {4, 4, 3, 3})
    -- with a projection shortcut
    local r = nn.Residual(nn.Conv2d(4, 6, 3, {stride = 2, padding = 1}), nn.Conv2d(4, 6, 1, {stride = 2})):to(dev)
    local _, names = r:state_dict()
    t:eq(table.concat(names, " "), "body.weight body.bias shortcut.weight shortcut.bias")
    local yr = r(x:detach())
    t:close(yr, r:get(1)(x:detach()) + r:get(2)(x:detach()), {atol = 1e-6, rtol = 1e-6}, dev .. ": body + shortcut")
  end
  local bad = nn.Residual(nn.Conv2d(4, 6, 1))
  t:raises(function() bad(dpl.randn(1, 4, 3, 3)) end,
           "nn.Residual: child 1 (body: nn.Conv2d) gives 1x6x3x3 but the identity shortcut (the input) gives 1x4x3x3")
  local bad2 = nn.Sequential(nn.Residual(nn.Identity(), nn.Sequential(nn.Conv2d(5, 4, 1))))
  local msg = t:raises(function() bad2(dpl.randn(1, 4, 3, 3)) end, "In child 1 (0: nn.Residual) of nn.Sequential")
  t:ok(msg:find("In child 2 (shortcut: nn.Sequential) of nn.Residual", 1, true), msg)
  t:ok(msg:find("has 4 channels", 1, true), msg)
end)

return S
