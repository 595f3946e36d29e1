-- Datasets and batch iteration.
--
-- A dataset is a table with
--   ds:len()                -> number of samples
--   ds:files(i)             -> the files sample i (1-based) needs: a list of {path, kind = "image"|"npy", channels}
--                              (optional: datasets held in memory leave it out and implement ds:get(i) instead)
--   ds:make(i, decoded)     -> the sample (a table of tensors, numbers and strings) from the decoded files, in the
--                              order files() gave them
--   ds.transform            -> optional function(sample, i) -> sample, applied on the host after decoding
--   ds.on_error             -> optional function(i, message): a sample that fails to decode or transform is reported
--                              here and left out of its batch (without it, the failure raises)
-- and optionally ds:get_batch(indices) -> a collated batch (in-memory datasets do the whole batch in C).
--
-- dataset.batches(ds, opts) iterates over batches:
--   for batch, k in dataset.batches(ds, {batch_size = 256, shuffle = true, seed = 1, device = "vulkan"}) do ... end
-- The files of batch k+1 are decoded on the loader's threads while the caller works on batch k (opts.prefetch
-- batches ahead, default 1); opts.start = k begins the epoch at batch k (a resumed run skips the batches it did,
-- without decoding them). Shuffling draws numpy's RandomState(seed + epoch).permutation(n) (dpl.data.mt19937), so a
-- seed gives the same order in dpl and in numpy. Tensors are stacked along a new first dim (N x C x H x W for
-- images) on opts.device (default: the default device); numbers become a 1-D tensor; strings a list.
local ffi = require "ffi"
local dpl = require "dpl"
local T = require "dpl.tensor"
local mt = require "dpl.data.mt19937"
local Loader = require "dpl.data.loader"
local dffi = require "dpl.ffi"
local C = dpl.C

local M = {}

-- 1-based sample order for one epoch.
function M.order(n, opts)
  opts = opts or {}
  local out = {}
  if opts.shuffle then
    local p = mt.permutation(n, ((opts.seed or 0) + (opts.epoch or 0)) % 4294967296)
    for i = 1, n do out[i] = p[i] + 1 end
  else
    for i = 1, n do out[i] = i end
  end
  return out
end

-- Stacks a list of samples (tables with the same keys) into a batch.
function M.collate(samples, device)
  local batch = {}
  for key, first in pairs(samples[1]) do
    if T.is_tensor(first) then
      local shape = first:size()
      local per = first:numel()
      local buf = ffi.new("float[?]", math.max(per * #samples, 1))
      for i, s in ipairs(samples) do
        local t = s[key]
        if not T.is_tensor(t) or not (t:size() == shape) then
          error(("collate: sample %d's '%s' has shape %s, sample 1's %s (resize or crop to one size first)")
            :format(i, key, T.is_tensor(t) and tostring(t:size()) or type(t), tostring(shape)), 2)
        end
        dffi.check(C.dpl_tensor_to_host(T.handle(t), buf + (i - 1) * per))
      end
      local dims = {#samples}
      for d = 1, #shape do dims[d + 1] = shape[d] end
      batch[key] = dpl.from_pointer(buf, dims, {device = device})
    elseif type(first) == "number" or type(first) == "boolean" then
      local vals = {}
      for i, s in ipairs(samples) do vals[i] = s[key] == true and 1 or (s[key] == false and 0 or s[key]) end
      batch[key] = dpl.tensor(vals, {device = device})
    else
      local vals = {}
      for i, s in ipairs(samples) do vals[i] = s[key] end
      batch[key] = vals
    end
  end
  return batch
end

local shared_loader
local function default_loader()
  shared_loader = shared_loader or Loader.new()
  return shared_loader
end

-- Queues the files of the samples `idx` (1-based) and returns a pending batch.
local function submit(ds, idx, loader)
  local groups, order = {}, {}
  for k, i in ipairs(idx) do
    for f, spec in ipairs(ds:files(i)) do
      local key = (spec.kind or "image") .. ":" .. (spec.channels or 0)
      local g = groups[key]
      if not g then
        g = {kind = spec.kind or "image", channels = spec.channels or 0, paths = {}}
        groups[key] = g
        order[#order + 1] = key
      end
      g.paths[#g.paths + 1] = spec[1] or spec.path
      g[#g.paths] = {k, f}
    end
  end
  for _, key in ipairs(order) do
    local g = groups[key]
    g.job = loader:submit(g.paths, g.kind, g.channels)
  end
  return {idx = idx, groups = groups, order = order}
end

-- With ds.on_error (a function(i, message)), a sample whose file fails to decode (or whose transform fails) is
-- reported through it and left out of its batch instead of raising; a batch left empty is skipped.
local function decode_samples(ds, pending)
  local decoded, bad = {}, {}
  for k = 1, #pending.idx do decoded[k] = {} end
  for _, key in ipairs(pending.order) do
    local g = pending.groups[key]
    if not ds.on_error then g.job:wait() end
    for j = 1, #g.paths do
      local at = g[j]
      if ds.on_error then
        local ok, t = pcall(g.job.take, g.job, j)
        if ok then decoded[at[1]][at[2]] = t
        elseif not bad[at[1]] then bad[at[1]] = (tostring(t):gsub("^[^:\n]+:%d+: ", "")) end
      else
        decoded[at[1]][at[2]] = g.job:take(j)
      end
    end
  end
  local samples, index = {}, {}
  for k, i in ipairs(pending.idx) do
    if bad[k] then ds.on_error(i, bad[k])
    else
      local ok, s = true, ds:make(i, decoded[k])
      if ds.transform then
        if ds.on_error then
          ok, s = pcall(ds.transform, s, i)
          if not ok then ds.on_error(i, tostring(s)) end
        else
          s = ds.transform(s, i)
        end
      end
      if ok then samples[#samples + 1] = s; index[#index + 1] = i end
    end
  end
  return samples, index
end

local function finish(ds, pending, device)
  local samples, index = decode_samples(ds, pending)
  if #samples == 0 then return nil end
  local batch = M.collate(samples, device)
  batch.index = index
  return batch
end

-- A single sample (CPU tensors), decoded on the loader's threads and waited for (nil when ds.on_error dropped it).
function M.get(ds, i, opts)
  if ds.get then return ds:get(i) end
  return (decode_samples(ds, submit(ds, {i}, (opts and opts.loader) or default_loader())))[1]
end

function M.batches(ds, opts)
  opts = opts or {}
  local bs = opts.batch_size or 1
  local n = ds:len()
  local order = M.order(n, opts)
  local nb = opts.drop_last and math.floor(n / bs) or math.ceil(n / bs)
  local depth = opts.prefetch or 1
  local loader = opts.loader or default_loader()
  local device = opts.device
  local function indices(k)
    local idx = {}
    for j = (k - 1) * bs + 1, math.min(k * bs, n) do idx[#idx + 1] = order[j] end
    return idx
  end
  local start = opts.start or 1
  if start < 1 or start ~= math.floor(start) then error("batches: start must be a positive integer", 2) end
  local queue, k, submitted = {}, start - 1, start - 1
  return function()
    while true do
      k = k + 1
      if k > nb then return nil end
      if ds.get_batch then
        local idx = indices(k)
        local b = ds:get_batch(idx, device)
        b.index = idx
        return b, k
      end
      while submitted < math.min(k + depth, nb) do
        submitted = submitted + 1
        queue[submitted] = submit(ds, indices(submitted), loader)
      end
      local pending = queue[k]
      queue[k] = nil
      local b = finish(ds, pending, device)
      if b then return b, k end
    end
  end
end

return M
