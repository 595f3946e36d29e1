-- dpl.weights_store: where weights live and the manifest of the files dpl knows (weights/manifest.lua, or the file
-- named by $DPL_WEIGHTS_MANIFEST). A checkpoint is found in the weights folder (weights/ in the source tree, or
-- $DPL_WEIGHTS) or where torchvision caches it ($TORCH_HOME/hub/checkpoints); a missing or incomplete one is an error
-- that names the exact path, what the file must be, and the command that fetches it.
local download = require "dpl.download"

local M = {}

-- The weights folder: $DPL_WEIGHTS; in a source checkout its weights/ folder; installed (cmake --install), the XDG
-- cache ($XDG_CACHE_HOME/dpl/weights, default ~/.cache/dpl/weights), since the install prefix may not be writable.
function M.dir()
  local env = os.getenv("DPL_WEIGHTS")
  if env and env ~= "" then return env end
  if DPL_INSTALLED then
    local xdg = os.getenv("XDG_CACHE_HOME")
    return ((xdg and xdg ~= "") and xdg or ((os.getenv("HOME") or ".") .. "/.cache")) .. "/dpl/weights"
  end
  return (DPL_SOURCE_ROOT or ".") .. "/weights"
end

function M.manifest()
  local path = os.getenv("DPL_WEIGHTS_MANIFEST")
  if not path or path == "" then path = (DPL_SOURCE_ROOT or ".") .. "/weights/manifest.lua" end
  local chunk, err = loadfile(path)
  if not chunk then error("cannot read the weights manifest: " .. tostring(err), 2) end
  return chunk()
end

-- The checkpoint of a manifest entry on disk: path and where ("weights folder" or "torch hub cache"), looking for
-- its file name and its aliases in `dir` (default M.dir()) and then (unless opts.hub == false) in the torch hub cache;
-- a file whose size does not fit is not taken. nil and the list of unfit files ({path, status, size}) when there is none.
function M.locate(e, dir, opts)
  local names = {e.file}
  for _, a in ipairs(e.aliases or {}) do names[#names + 1] = a end
  local unfit = {}
  local places = {{dir or M.dir(), "weights folder"}}
  if not (opts and opts.hub == false) then places[2] = {download.torch_hub_dir(), "torch hub cache"} end
  for _, place in ipairs(places) do
    for _, n in ipairs(names) do
      local p = place[1] .. "/" .. n
      local status, size = download.status(p, e)
      if status == "ok" then return p, place[2] end
      if status ~= "missing" then unfit[#unfit + 1] = {path = p, status = status, size = size} end
    end
  end
  return nil, unfit
end

-- Path of an architecture's checkpoint; errors (one line) with the exact path, what it must be and the fetch command
-- when it is not there.
function M.path_for(arch)
  local m = M.manifest()
  local e = m[arch]
  if not e then
    error(("unknown architecture '%s' (known: %s)"):format(tostring(arch), table.concat(m.order, ", ")), 2)
  end
  local path, unfit = M.locate(e)
  if path then return path end
  local want = download.expected_text(e)
  local bad = unfit[1]
  if bad then
    error(("the %s checkpoint %s is %s (%s bytes; expected %s): fetch it with: dplrun weights/fetch.lua %s (a partial "
      .. "download resumes), or replace it by hand"):format(arch, download.absolute(bad.path), bad.status,
      download.thousands(bad.size), want, arch), 2)
  end
  error(("the %s checkpoint is missing: %s (%s; also looked in %s); fetch it with: dplrun weights/fetch.lua %s, or "
    .. "put it there by hand"):format(arch, download.absolute(M.dir() .. "/" .. e.file), want,
    download.torch_hub_dir(), arch), 2)
end

-- LPIPS's linear layers v<version>/<net>.pth: $DPL_LPIPS_WEIGHTS, then <weights folder>/lpips (where
-- `dplrun weights/fetch.lua lpips` puts them). The path, or nil and the folders looked in.
function M.lpips_path(net, version)
  local dirs = {}
  local env = os.getenv("DPL_LPIPS_WEIGHTS")
  if env and env ~= "" then dirs[#dirs + 1] = env end
  dirs[#dirs + 1] = M.dir() .. "/lpips"
  for _, d in ipairs(dirs) do
    local p = ("%s/v%s/%s.pth"):format(d, version, net)
    if download.status(p) == "ok" then return p end
  end
  return nil, dirs
end

return M
