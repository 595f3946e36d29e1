-- dpl.checkpoint: model + optimizer state in one safetensors file, written atomically (a killed run never leaves a
-- torn checkpoint: the file is written under a temporary name and renamed).
--
--   checkpoint.save("run/ckpt.safetensors", {model = model, optimizer = opt, meta = {epoch = 3}})
--   local meta = checkpoint.load("run/ckpt.safetensors", {model = model, optimizer = opt})   -- meta.epoch == "3"
--
-- Tensors are stored as "model.<state_dict name>" and "optim.<param index>.<field>"; scalars (optimizer steps,
-- user metadata) go in the safetensors metadata as strings. what.tensors (name -> tensor) adds more tensors under
-- their own names (names must not start with "model." or "optim."); load returns them as meta.tensors (CPU).
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local C = dffi.C

local M = {}

-- Writes name -> tensor (in `order` if given) and string metadata.
function M.save_tensors(path, tensors, order, meta)
  if not order then
    order = {}
    for k in pairs(tensors) do order[#order + 1] = k end
    table.sort(order)
  end
  local n = #order
  local names = ffi.new("const char*[?]", math.max(n, 1))
  local handles = ffi.new("dpl_tensor*[?]", math.max(n, 1))
  local keep = {}
  for i, name in ipairs(order) do
    local t = tensors[name]
    if not T.is_tensor(t) then error("save_tensors: '" .. tostring(name) .. "' is not a tensor", 2) end
    keep[i] = name
    names[i - 1] = name
    handles[i - 1] = T.handle(t)
  end
  local mk, mv, nm = {}, {}, 0
  for k, v in pairs(meta or {}) do nm = nm + 1; mk[nm] = tostring(k); mv[nm] = tostring(v) end
  local ck = ffi.new("const char*[?]", math.max(nm, 1))
  local cv = ffi.new("const char*[?]", math.max(nm, 1))
  for i = 1, nm do ck[i - 1] = mk[i]; cv[i - 1] = mv[i] end
  dffi.check(C.dpl_safetensors_save(path, n, names, handles, nm, ck, cv), 2)
end

-- A trained network as the benchmarks write it: its state_dict (the PyTorch module's names) and metadata under
-- "<kind>.<key>" (e.g. superres.arch), which read_model gives back.
function M.save_model(net, path, kind, meta)
  local sd, order = net:state_dict()
  local m = {}
  for k, v in pairs(meta or {}) do m[kind .. "." .. k] = v end
  M.save_tensors(path, sd, order, m)
end

-- What a benchmark's load_model reads (--checkpoint PATH): every tensor of the file on the CPU and meta, holding each
-- of `keys` that the file's "<kind>.<key>" metadata has. A file that cannot be read is one line naming it.
function M.read_model(path, kind, keys)
  local ok, tensors, _, metafn = pcall(M.load_tensors, path, "cpu")
  if not ok then error(("--checkpoint %s: %s"):format(path, require("dpl.cli").message(tensors)), 0) end
  local meta = {}
  for _, k in ipairs(keys) do
    local v = metafn(kind .. "." .. k)
    if v ~= "" then meta[k] = v end
  end
  return tensors, meta
end

-- Reads every tensor of a file (safetensors or PyTorch checkpoint): returns name -> tensor, ordered names, and a
-- function meta(key) for safetensors metadata.
function M.load_tensors(path, device)
  local f = C.dpl_tensor_file_open(path)
  if f == nil then dffi.raise(2) end
  f = ffi.gc(f, C.dpl_tensor_file_close)
  local dev = T.resolve_device(device)
  local out, order = {}, {}
  for i = 0, C.dpl_tensor_file_count(f) - 1 do
    local name = ffi.string(C.dpl_tensor_file_name(f, i))
    out[name] = T.new(C.dpl_tensor_file_load, f, dev, i)
    order[#order + 1] = name
  end
  local function meta(key) return ffi.string(C.dpl_tensor_file_metadata(f, key)) end
  return out, order, meta
end

-- Reads only the named tensors (missing names are left out of the result): loading a truncated network from a full
-- checkpoint never reads the parts that were not built.
function M.load_named(path, names, device)
  local f = C.dpl_tensor_file_open(path)
  if f == nil then dffi.raise(2) end
  f = ffi.gc(f, C.dpl_tensor_file_close)
  local dev = T.resolve_device(device)
  local out = {}
  for _, name in ipairs(names) do
    local i = C.dpl_tensor_file_find(f, name)
    if i >= 0 then out[name] = T.new(C.dpl_tensor_file_load, f, dev, i) end
  end
  return out
end

-- ---- optimizer state ----------------------------------------------------------------------------------------------
local function optimizer_tensors(opt, out, meta)
  for i, st in pairs(opt.state) do
    if T.is_tensor(st) then
      out["optim." .. i .. ".momentum_buffer"] = st
    else
      for k, v in pairs(st) do
        if T.is_tensor(v) then out["optim." .. i .. "." .. k] = v
        else meta["optim." .. i .. "." .. k] = v end
      end
    end
  end
end

function M.save(path, what)
  local tensors, meta = {}, {}
  if what.model then
    local sd = what.model:state_dict()
    for name, t in pairs(sd) do tensors["model." .. name] = t end
  end
  if what.optimizer then optimizer_tensors(what.optimizer, tensors, meta) end
  for name, t in pairs(what.tensors or {}) do
    if name:match("^model%.") or name:match("^optim%.") then
      error(("checkpoint.save: extra tensor '%s' uses a reserved prefix (model., optim.)"):format(name), 2)
    end
    tensors[name] = t
  end
  for k, v in pairs(what.meta or {}) do meta[k] = v end
  M.save_tensors(path, tensors, nil, meta)
end

-- Restores into what.model / what.optimizer (on their devices); returns the metadata table (string values).
function M.load(path, what)
  local tensors, order, metafn = M.load_tensors(path, "cpu")
  if what.model then
    local sd = {}
    for name, t in pairs(tensors) do
      local k = name:match("^model%.(.*)$")
      if k then sd[k] = t end
    end
    what.model:load_state_dict(sd)
  end
  local meta = {}
  local f = C.dpl_tensor_file_open(path)
  if f ~= nil then
    f = ffi.gc(f, C.dpl_tensor_file_close)
  end
  if what.optimizer then
    local opt = what.optimizer
    local device = opt.params[1] and opt.params[1]:device() or "cpu"
    opt.state = {}
    for name, t in pairs(tensors) do
      local i, field = name:match("^optim%.(%d+)%.(.+)$")
      if i then
        i = tonumber(i)
        if field == "momentum_buffer" then opt.state[i] = t:to(device)
        else
          opt.state[i] = opt.state[i] or {}
          opt.state[i][field] = t:to(device)
        end
      end
    end
    for i, st in pairs(opt.state) do
      if type(st) == "table" and not T.is_tensor(st) then
        local step = metafn("optim." .. i .. ".step")
        if step ~= "" then st.step = tonumber(step) end
      end
    end
  end
  meta.tensors = {}
  for name, t in pairs(tensors) do
    if not name:match("^model%.") and not name:match("^optim%.") then meta.tensors[name] = t end
  end
  meta.get = metafn
  return setmetatable(meta, {__index = function(_, k) local v = metafn(k) return v ~= "" and v or nil end})
end

return M
