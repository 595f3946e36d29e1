-- safetensors files and checkpoints of model + optimizer: a training run resumed from a checkpoint continues exactly
-- as the uninterrupted run; files are written atomically; malformed files give clear errors.
local dpl = require "dpl"
local nn = require "dpl.nn"
local optim = require "dpl.optim"
local test = require "dpl.test"
local S = test.suite("checkpoint")

local dir = os.tmpname() .. "_ckpt"
os.execute("mkdir -p '" .. dir .. "'")

S:add("safetensors round trip with metadata, and a file Python's reader accepts", function(t)
  for _, dev in ipairs(dpl.devices()) do
    local a = dpl.randn({3, 4}, {seed = 1, device = dev})
    local b = dpl.arange(5, {device = dev})
    local c = dpl.zeros({0, 2}, {device = dev})
    local p = dir .. "/x.safetensors"
    dpl.save_tensors(p, {a = a, ["b.weight"] = b, c = c}, nil, {note = 'quote " and \\ backslash', epoch = 3})
    local got, order, meta = dpl.load_tensors(p, dev)
    t:eq(table.concat(order, ","), "a,b.weight,c")
    t:close(got.a, a, {atol = 0, rtol = 0})
    t:close(got["b.weight"], b, {atol = 0, rtol = 0})
    t:shape(got.c, {0, 2})
    t:eq(meta("note"), 'quote " and \\ backslash')
    t:eq(meta("epoch"), "3")
  end
  -- the reference format check: parse the header with Python's json module and the data with numpy
  local p = dir .. "/x.safetensors"
  local script = dir .. "/check.py"
  local f = io.open(script, "w")
  f:write([[
import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
a = h['a']; lo, hi = a['data_offsets']
x = np.frombuffer(raw[8 + n + lo: 8 + n + hi], dtype='<f4').reshape(a['shape'])
print(a['dtype'], x.shape, h['__metadata__']['epoch'], (8 + n) % 8)
]])
  f:close()
  local pipe = io.popen("/usr/bin/python3 " .. script .. " " .. p)
  local out = pipe:read("*a")
  pipe:close()
  t:eq(out, "F32 (3, 4) 3 0\n")
end)

local function train(model, opt, steps, first)
  local losses = {}
  for i = first, first + steps - 1 do
    local x = dpl.randn({8, 5}, {seed = 100 + i})
    local y = dpl.randn({8, 2}, {seed = 200 + i})
    opt:zero_grad()
    local loss = nn.MSELoss()(model(x), y)
    loss:backward()
    opt:step()
    losses[#losses + 1] = loss:item()
  end
  return losses
end

S:add("resuming from a checkpoint reproduces the uninterrupted run (Adam and SGD with momentum)", function(t)
  for _, make_opt in ipairs {
    function(p) return optim.Adam(p, {lr = 1e-2}) end,
    function(p) return optim.SGD(p, {lr = 1e-2, momentum = 0.9}) end,
  } do
    dpl.manual_seed(5)
    local m1 = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    local o1 = make_opt(m1:parameters())
    local full = train(m1, o1, 10, 1)

    dpl.manual_seed(5)
    local m2 = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    local o2 = make_opt(m2:parameters())
    train(m2, o2, 6, 1)
    local p = dir .. "/run.safetensors"
    dpl.checkpoint.save(p, {model = m2, optimizer = o2, meta = {step = 6}})
    -- a fresh model and optimizer, restored
    local m3 = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    local o3 = make_opt(m3:parameters())
    local meta = dpl.checkpoint.load(p, {model = m3, optimizer = o3})
    t:eq(meta.step, "6")
    local rest = train(m3, o3, 4, 7)
    for i = 1, 4 do t:near(rest[i], full[6 + i], 1e-6, "step " .. (6 + i)) end
  end
end)

S:add("bad files give clear errors", function(t)
  local function write(name, bytes)
    local f = io.open(dir .. "/" .. name, "wb")
    f:write(bytes)
    f:close()
    return dir .. "/" .. name
  end
  local function header(json, data)
    local n = #json
    local len = ""
    for i = 0, 7 do len = len .. string.char(math.floor(n / 2 ^ (8 * i)) % 256) end
    return len .. json .. (data or "")
  end
  t:raises(function() dpl.load_tensors(dir .. "/none.safetensors") end, "cannot open")
  t:raises(function() dpl.load_tensors(write("short", "abc")) end, "too short")
  t:raises(function() dpl.load_tensors(write("len", "\255\255\255\255\255\255\255\255{}")) end, "not a recognised")
  t:raises(function() dpl.load_tensors(write("json", header('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]', "12345678"))) end,
           "malformed")
  t:raises(function() dpl.load_tensors(write("trunc", header('{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', "12345678"))) end,
           "outside the file")
  t:raises(function() dpl.load_tensors(write("mismatch", header('{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', "12345678"))) end,
           "disagree")
  t:raises(function() dpl.load_tensors(write("dtype", header('{"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}', "12345678"))) end,
           "unsupported dtype")
  t:raises(function() dpl.load_tensors(write("field", header('{"a": {"dtype": "F32", "evil": 1, "shape": [2], "data_offsets": [0, 8]}}', "12345678"))) end,
           "unexpected field")
  t:raises(function() dpl.load_tensors(write("neg", header('{"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}', "12345678"))) end,
           "integer")
end)

S.teardown = function() os.execute("rm -rf '" .. dir .. "'") end
return S
