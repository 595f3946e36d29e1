-- PyTorch checkpoints (runtime/src/io/pth.c through lua/dpl/weights.lua): torch.save's zip format and the legacy
-- pre-1.6 format, both written at test time by tests/ref/make_pth.py with Debian's python3-torch (every dtype, views
-- sharing a storage, 0-d and empty tensors, pickle protocols 2 and 4, zip64 records, a Module's state_dict with
-- _metadata, Parameters, nested dicts, big-endian data), compared value by value with the .npy copies the script
-- writes; the three real legacy LPIPS files in $DPL_SHARED/data/LPIPS/weights/v0.1; and a corpus of bad files -
-- hostile globals, deep nesting, shared-dict bombs, huge memo indices and lengths, compressed or missing zip members,
-- files truncated every 7 bytes, bit flips, the fuzzing seeds - each of which must give a Lua error naming the file,
-- never a crash.
local dpl = require "dpl"
local test = require "dpl.test"
local weights = require "dpl.weights"
local S = test.suite("pth", {configurations = {"default"}})   -- default only: file reading on the host

local shared = os.getenv("DPL_SHARED") or "../shared"
local lpips = shared .. "/data/LPIPS/weights/v0.1"
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
local dir = os.tmpname() .. "_pth"
os.execute("mkdir -p '" .. dir .. "'")
local made = os.execute(("/usr/bin/python3 %s/tests/ref/make_pth.py '%s' '%s' >/dev/null 2>&1"):format(
  root, dir, lpips))
made = made == 0 or made == true

-- a real LPIPS file among a case's inputs when the reference data is there (the other inputs are checked anyway)
local function lpips_if_present(net)
  local f = io.open(lpips .. "/" .. net .. ".pth", "rb")
  if f then f:close() return lpips .. "/" .. net .. ".pth" end
  return nil
end

local function need_fixtures(t)
  t:ok(made, "tests/ref/make_pth.py failed: is python3-torch installed (.ci/install-deps.sh)?")
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

-- the manifest <tag>.txt: {name, dtype, shape, npy} per tensor, in state_dict order
local function manifest(tag)
  local out = {}
  for line in io.lines(dir .. "/" .. tag .. ".txt") do
    local name, dtype, shape, npy = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
    local s = {}
    for d in shape:gmatch("%d+") do s[#s + 1] = tonumber(d) end
    out[#out + 1] = {name = name, dtype = dtype, shape = s, npy = dir .. "/" .. npy}
  end
  return out
end

-- loads `file` and checks names, order, dtypes, shapes and every value against the manifest
local function check_file(t, file, tag, device)
  local expect = manifest(tag)
  local w, names = weights.load(file, {device = device})
  t:eq(#names, #expect, file .. ": tensor count")
  local info = weights.info(file)
  for i, e in ipairs(expect) do
    t:eq(names[i], e.name, file .. ": name " .. i)
    t:eq(info[i].name, e.name)
    t:eq(info[i].dtype, e.dtype, file .. ": dtype of " .. e.name)
    t:eq(table.concat(info[i].shape, ","), table.concat(e.shape, ","), file .. ": info shape of " .. e.name)
    local x = w[e.name]
    t:shape(x, e.shape, file .. ": " .. e.name)
    if x:numel() > 0 then
      t:close(x, dpl.load_npy(e.npy, {device = device}), {atol = 0, rtol = 0}, file .. ": " .. e.name)
    end
  end
  return w, names
end

S:add("reference generation with python3-torch", function(t) need_fixtures(t) end)

S:add("zip and legacy state_dicts: every dtype, shared-storage views, 0-d and empty tensors", function(t)
  need_fixtures(t)
  for _, dev in ipairs(dpl.devices()) do
    for _, f in ipairs {"sd_zip", "sd_legacy", "sd_zip_p4", "sd_legacy_p4", "sd_zip64"} do
      local w = check_file(t, dir .. "/" .. f .. ".pth", "sd", dev)
      t:eq(w.scalar:dim(), 0)
      t:eq(w.scalar:item(), 3.5)
      t:eq(w["bn.num_batches_tracked"]:item(), 7)
      t:eq(w.lr, nil, "plain numbers are skipped")
      t:eq(w.note, nil)
      t:eq(w.base_t:size(1), 5)
    end
  end
  t:eq(weights.format(dir .. "/sd_zip.pth"), "pth-zip")
  t:eq(weights.format(dir .. "/sd_legacy.pth"), "pth-legacy")
  t:eq(weights.format(dir .. "/sd_legacy_p4.pth"), "pth-legacy")
  t:eq(weights.format(dir .. "/sd_zip64.pth"), "pth-zip")
end)

S:add("a Module's state_dict (_metadata), Parameters, nested dicts, big-endian data", function(t)
  need_fixtures(t)
  for _, kind in ipairs {"zip", "legacy"} do
    check_file(t, dir .. "/module_" .. kind .. ".pth", "module")
    check_file(t, dir .. "/params_" .. kind .. ".pth", "params")
    local _, names = check_file(t, dir .. "/nested_" .. kind .. ".pth", "nested")
    t:eq(table.concat(names, " "), "model.fc.weight model.fc.bias opt.state.0 tail")
    check_file(t, dir .. "/big_" .. kind .. ".pth", "big")
  end
end)

S:add("the real legacy LPIPS files", function(t)
  test.shared(t, "data/LPIPS/weights/v0.1/squeeze.pth")
  need_fixtures(t)
  local channels = {alex = {64, 192, 384, 256, 256}, vgg = {64, 128, 256, 512, 512},
                    squeeze = {64, 128, 256, 384, 384, 512, 512}}
  for _, net in ipairs {"alex", "vgg", "squeeze"} do
    local file = lpips .. "/" .. net .. ".pth"
    t:eq(weights.format(file), "pth-legacy")
    local w, names = check_file(t, file, "lpips_" .. net)
    t:eq(#names, #channels[net])
    for i, c in ipairs(channels[net]) do
      local name = ("lin%d.model.1.weight"):format(i - 1)
      t:eq(names[i], name)
      t:shape(w[name], {1, c, 1, 1}, net .. " " .. name)
    end
  end
end)

S:add("hostile and malformed files are refused with an error naming the file", function(t)
  need_fixtures(t)
  local expect = {
    global_os_system = "the pickle asks for global 'os.system' (only state_dict contents are allowed)",
    global_os_system_legacy = "refusing to load: the pickle asks for global 'os.system'",
    global_os_system_zip = "refusing to load: the pickle asks for global 'os.system'",
    reduce_class_zip = "refusing to load: the pickle asks for global 'posix.system'",
    reduce_class_p4_legacy = "refusing to load: the pickle asks for global 'posix.system'",
    global_eval = "global 'builtins.eval'",
    global_load_from_bytes = "global 'torch.storage._load_from_bytes'",
    global_tensor = "global 'torch.tensor'",
    reduce_storage_type = "a storage type can only appear in a persistent id",
    rebuild_bad_args = "rebuild function called with unexpected arguments",
    odict_bad_args = "OrderedDict called with unsupported arguments",
    build_on_global = "BUILD",
    append_to_dict = "APPEND",
    setitem_on_list = "SETITEM",
    opcode_inst = "unsupported pickle opcode 0x69",
    opcode_int = "unsupported pickle opcode 0x49",
    opcode_unknown = "unsupported pickle opcode 0xff",
    many_marks = "too many MARKs",
    deep_stack = "stack too deep",
    deep_dicts = "nested more than 32 deep",
    cyclic_dict = "nested more than 32 deep",
    dict_bomb = "too many dict items",
    dict_bomb_long_keys = "names are too long in total",
    huge_memo_put = "memo index out of range",
    memo_get_undefined = "memo index not defined",
    huge_binunicode = "longer than 64 MiB",
    huge_binunicode8 = "longer than 64 MiB",
    huge_long4 = "longer than 64 MiB",
    negative_binstring = "negative string length",
    underflow = "stack underflow",
    no_stop = "truncated pickle",
    empty_pickle = "truncated pickle",
    deflated_data_pkl = "is compressed (method 8)",
    deflated_storage = "is compressed (method 8)",
    missing_storage = "is missing from the archive",
    no_data_pkl = "without <archive>/data.pkl",
    not_a_dict = "holds a list, not a dict of tensors",
    view_past_storage = "lies outside its data",
    too_many_dims = "9 dims",
    huge_stride = "invalid size or stride",
    zero_stride_bomb = "274877906944 elements over only 1 stored ones",
    legacy_truncated_data = "truncated",
    legacy_bad_magic = "magic number",
    legacy_not_torch = "magic number",
    legacy_wrong_count = "holds 3 elements, expected 2",
    legacy_unknown_key = "listed but never used",
  }
  local n = 0
  for name, msg in pairs(expect) do
    local file = dir .. "/bad_" .. name .. ".pth"
    local err = t:raises(function() weights.load(file) end, file, name)
    t:ok(err:find(msg, 1, true), ("%s: expected '%s' in: %s"):format(name, msg, err))
    t:raises(function() weights.info(file) end, file, name)
    n = n + 1
  end
  -- every bad_* file the script wrote is in the table
  local p = io.popen("ls '" .. dir .. "' | grep -c '^bad_'")
  t:eq(tonumber(p:read("*l")), n)
  p:close()
  t:raises(function() weights.load(dir .. "/no_such_file.pth") end, "no_such_file.pth")
end)

S:add("files truncated every 7 bytes", function(t)
  need_fixtures(t)
  local n = 0
  for _, file in ipairs {dir .. "/sd_zip.pth", dir .. "/sd_legacy.pth", dir .. "/module_legacy.pth",
                         dir .. "/sd_zip64.pth", dir .. "/sd_zip_p4.pth", lpips_if_present("alex")} do
    local bytes = read(file)
    local cut = dir .. "/truncated.pth"
    for len = 0, #bytes - 1, 7 do
      write(cut, bytes:sub(1, len))
      t:raises(function() weights.load(cut) end, cut, file .. " cut at " .. len)
      n = n + 1
    end
  end
  t:ok(n > 1000, "cases: " .. n)
end)

S:add("bit flips: an error naming the file or a successful load, never a crash", function(t)
  need_fixtures(t)
  local seed = 12345
  local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
  local errors, loads = 0, 0
  for _, file in ipairs {dir .. "/sd_zip.pth", dir .. "/sd_legacy.pth", lpips_if_present("vgg")} do
    local bytes = read(file)
    local flipped = dir .. "/flipped.pth"
    for _ = 1, 300 do
      local pos = rand(#bytes) + 1
      local b = bit.bxor(bytes:byte(pos), bit.lshift(1, rand(8)))
      write(flipped, bytes:sub(1, pos - 1) .. string.char(b) .. bytes:sub(pos + 1))
      local ok, err = pcall(weights.load, flipped)
      if ok then loads = loads + 1
      else
        errors = errors + 1
        t:ok(tostring(err):find(flipped, 1, true), "error without the file name: " .. tostring(err))
      end
    end
  end
  t:ok(errors > 100 and loads > 100, ("errors %d, loads %d"):format(errors, loads))
end)

S:add("the fuzzing seeds load or fail cleanly", function(t)
  local p = io.popen("ls '" .. root .. "/tests/fuzz/corpus/pth' 2>/dev/null")
  local n = 0
  for name in p:lines() do
    local file = root .. "/tests/fuzz/corpus/pth/" .. name
    local ok, err = pcall(weights.load, file)
    t:ok(ok or tostring(err):find(file, 1, true), tostring(err))
    n = n + 1
  end
  p:close()
  t:ok(n > 0, "no seeds in tests/fuzz/corpus/pth")
end)

return S
