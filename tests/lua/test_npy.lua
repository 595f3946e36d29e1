-- .npy files: round trips, every dtype and byte order NumPy writes (made by Debian's python3-numpy at test time), the
-- real SqueezeNet weights in ../shared/data, and malformed files, which must give errors naming the file.
local dpl = require "dpl"
local test = require "dpl.test"
local S = test.suite("npy")

local shared = os.getenv("DPL_SHARED") or "../shared"
local dir = os.tmpname() .. "_npy"
os.execute("mkdir -p '" .. dir .. "'")

local function write(name, bytes)
  local f = io.open(dir .. "/" .. name, "wb")
  f:write(bytes)
  f:close()
  return dir .. "/" .. name
end

S:add("save and load round trip", function(t)
  for _, dev in ipairs(dpl.devices()) do
    local x = dpl.randn({3, 4, 5}, {seed = 1, device = dev})
    local p = dir .. "/rt.npy"
    x:save_npy(p)
    local y = dpl.load_npy(p, {device = dev})
    t:shape(y, {3, 4, 5})
    t:close(y, x, {atol = 0, rtol = 0})
    -- a non-contiguous view is written in logical order
    x:transpose(1, 3):save_npy(p)
    t:close(dpl.load_npy(p), x:transpose(1, 3), {atol = 0, rtol = 0})
    -- 0-d and 1-d
    dpl.tensor({7}):reshape({}):save_npy(p)
    t:eq(dpl.load_npy(p):dim(), 0)
    t:eq(dpl.load_npy(p):item(), 7)
  end
end)

S:add("dtypes, byte orders and Fortran order written by NumPy", function(t)
  local script = [[
import numpy as np, sys
d = sys.argv[1]
a = np.arange(24).reshape(2, 3, 4)
for dt in ['<f4', '>f4', '<f8', '<i1', '<i2', '>i4', '<i8', '<u1', '<u2', '|b1']:
    np.save(d + '/a_%s.npy' % dt.replace('<', 'le').replace('>', 'be').replace('|', 'na'), (a % 2 if dt == '|b1' else a).astype(dt))
np.save(d + '/fortran.npy', np.asfortranarray(a.astype('<f4')))
np.save(d + '/big.npy', np.ones((1 << 16,), dtype='<f4'))
]]
  local f = io.open(dir .. "/gen.py", "w")
  f:write(script)
  f:close()
  local ok = os.execute("/usr/bin/python3 " .. dir .. "/gen.py " .. dir)
  t:ok(ok == 0 or ok == true, "python3-numpy is needed to write the fixtures")
  local expect = {}
  for i = 0, 23 do expect[#expect + 1] = i end
  for _, name in ipairs {"lef4", "bef4", "lef8", "lei1", "lei2", "bei4", "lei8", "leu1", "leu2"} do
    local x = dpl.load_npy(dir .. "/a_" .. name .. ".npy")
    t:shape(x, {2, 3, 4}, name)
    t:close(x:reshape(-1), expect, {atol = 0, rtol = 0}, name)
  end
  local b = dpl.load_npy(dir .. "/a_nab1.npy")
  t:eq(b:sum():item(), 12)
  t:close(dpl.load_npy(dir .. "/fortran.npy"):reshape(-1), expect, {atol = 0, rtol = 0}, "fortran order")
  t:eq(dpl.load_npy(dir .. "/big.npy"):sum():item(), 65536)
end)

S:add("the real SqueezeNet 1.1 weights in shared/data", function(t)
  test.shared(t, "data/SqueezeNet1.1/squeezenet1.1_nchw/weights/squeezenet0_conv0_weight.npy")
  local w = dpl.load_npy(shared .. "/data/SqueezeNet1.1/squeezenet1.1_nchw/weights/squeezenet0_conv0_weight.npy")
  t:shape(w, {64, 3, 3, 3})
  local x = dpl.load_npy(shared .. "/data/SqueezeNet1.1/squeezenet1.1_nchw/test_data_set_0/input_0.npy")
  t:shape(x, {1, 3, 224, 224})
  t:ok(x:min():item() >= 0 and x:max():item() <= 255, "inputs are in 0..255")
end)

S:add("malformed files give clear errors", function(t)
  t:raises(function() dpl.load_npy(dir .. "/missing.npy") end, "missing.npy: cannot open")
  t:raises(function() dpl.load_npy(write("magic.npy", "NOTNUMPY and more bytes")) end, "not a .npy file")
  t:raises(function() dpl.load_npy(write("short.npy", "\147NUMPY\1")) end, "not a .npy file")
  local function header(dict, data)
    local len = #dict
    return "\147NUMPY\1\0" .. string.char(len % 256, math.floor(len / 256)) .. dict .. (data or "")
  end
  t:raises(function() dpl.load_npy(write("trunc.npy", header("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }\n", "abcd"))) end,
           "truncated")
  t:raises(function() dpl.load_npy(write("dtype.npy", header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", "12345678"))) end,
           "unsupported dtype")
  t:raises(function() dpl.load_npy(write("obj.npy", header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", "12345678"))) end,
           "unsupported dtype")
  t:raises(function() dpl.load_npy(write("shape.npy", header("{'descr': '<f4', 'fortran_order': False, 'shape': (4x,), }\n", "abcd"))) end,
           "malformed shape")
  t:raises(function() dpl.load_npy(write("huge.npy", header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }\n", "abcd"))) end,
           "huge.npy")
  t:raises(function() dpl.load_npy(write("nodescr.npy", header("{'fortran_order': False, 'shape': (1,), }\n", "abcd"))) end,
           "no 'descr'")
  t:raises(function() dpl.load_npy(write("hlen.npy", "\147NUMPY\1\0\255\255{")) end, "truncated .npy header")
end)

S.teardown = function() os.execute("rm -rf '" .. dir .. "'") end
return S
