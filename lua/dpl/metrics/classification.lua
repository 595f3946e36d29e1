-- Classification accuracy as the reference logs it (docs/benchmarks/autoencoder.md): argmax(output) == argmax(target),
-- averaged over samples. argmax takes the first maximum, as torch.argmax does.
--
--   local cls = require "dpl.metrics.classification"
--   cls.accuracy(outputs, targets)   -- outputs: N x C tensor (or a list of N lists); targets: N x C one-hot
--                                    -- (same shape as outputs) or N class indices counted from 0
local T = require "dpl.tensor"
local M = {}

local function rows(x, what)
  if T.is_tensor(x) then
    if x:dim() == 1 then return x:totable(), 1 end
    if x:dim() ~= 2 then error(("accuracy: %s must be 1-D or 2-D, got shape %s"):format(what, tostring(x:size())), 3) end
    return x:totable(), 2
  end
  if type(x) ~= "table" then error(("accuracy: %s must be a tensor or a list, got %s"):format(what, type(x)), 3) end
  return x, type(x[1]) == "table" and 2 or 1
end

local function argmax(row)
  local best, at = -math.huge, 0
  for j = 1, #row do
    -- torch.argmax treats NaN as the maximum
    if row[j] ~= row[j] then return j - 1 end
    if row[j] > best then best, at = row[j], j - 1 end
  end
  return at
end

function M.accuracy(outputs, targets)
  local out, od = rows(outputs, "outputs")
  local tgt, td = rows(targets, "targets")
  if od ~= 2 then error("accuracy: outputs must be N x C (one row of scores per sample)", 2) end
  if #out ~= #tgt then error(("accuracy: %d outputs but %d targets"):format(#out, #tgt), 2) end
  if #out == 0 then error("accuracy: no samples", 2) end
  local hits = 0
  for i = 1, #out do
    local c = #out[i]
    local label
    if td == 2 then
      if #tgt[i] ~= c then error(("accuracy: sample %d has %d scores but a %d-wide target"):format(i, c, #tgt[i]), 2) end
      label = argmax(tgt[i])
    else
      label = tgt[i]
      if label ~= math.floor(label) or label < 0 or label >= c then
        error(("accuracy: target %d is %s, not a class index in 0..%d"):format(i, tostring(label), c - 1), 2)
      end
    end
    if argmax(out[i]) == label then hits = hits + 1 end
  end
  return hits / #out
end

return M
