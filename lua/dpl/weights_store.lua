-- dpl.weights_store: where checkpoints live (weights/ in the source tree, or $DPL_WEIGHTS) and the manifest of the
-- torchvision files, so that a missing checkpoint is an error that prints the exact command that fetches it.
local M = {}

function M.dir()
  local env = os.getenv("DPL_WEIGHTS")
  if env and env ~= "" then return env end
  return (DPL_SOURCE_ROOT or ".") .. "/weights"
end

function M.manifest()
  local path = (DPL_SOURCE_ROOT or ".") .. "/weights/manifest.lua"
  local chunk, err = loadfile(path)
  if not chunk then error("cannot read the weights manifest: " .. tostring(err), 2) end
  return chunk()
end

-- Path of an architecture's checkpoint; errors with the fetch command when it is not there.
function M.path_for(arch)
  local m = M.manifest()
  local e = m[arch]
  if not e then
    error(("unknown architecture '%s' (known: %s)"):format(tostring(arch), table.concat(m.order, ", ")), 2)
  end
  local path = M.dir() .. "/" .. e.file
  local f = io.open(path, "rb")
  if not f then
    error(("the %s checkpoint is missing: %s\nfetch it with: dplrun weights/fetch.lua %s"):format(arch, path, arch), 2)
  end
  f:close()
  return path
end

return M
