-- weights/fetch.lua - downloads torchvision's ImageNet checkpoints and LPIPS's linear layers into weights/ (or
-- $DPL_WEIGHTS) from the locations in weights/manifest.lua, resuming partial downloads and verifying each file's size
-- and SHA-256. A checkpoint torchvision already cached ($TORCH_HOME/hub/checkpoints) is verified and used from there.
--   dplrun weights/fetch.lua alexnet vgg16     dplrun weights/fetch.lua lpips     dplrun weights/fetch.lua --all
--   dplrun weights/fetch.lua --list            dplrun weights/fetch.lua --check
local cli = require "dpl.cli"
local download = require "dpl.download"
local store = require "dpl.weights_store"

local manifest = store.manifest()
local parser = cli.parser("weights/fetch.lua", "Download torchvision ImageNet checkpoints (IMAGENET1K_V1) and "
  .. "the LPIPS linear layers, with fallback locations, resume and checksums.")
parser:argument("name", "Architectures (" .. table.concat(manifest.order, ", ") .. "), or lpips for LPIPS's "
  .. "linear layers (v0.1 and v0.0; alex, vgg, squeeze). All of them for --list, --check and --verify when none is named.")
  :args("*")
parser:flag("--all", "Fetch all 14 checkpoints and the LPIPS layers.")
parser:flag("--list", "List the files and whether they are present (here or in the torch hub cache).")
parser:flag("--check", "Ask every location for its headers only and say which answer with the expected size. "
  .. "Exit status 1 when a file has no working location.")
parser:flag("--verify", "Recompute the SHA-256 of the files present and compare it with the expected one.")
parser:option("--dir", "Where to store them.", store.dir())
parser:option("--base-url", "A mirror with the official servers' paths: replaces scheme and host of every URL.")
parser:flag("--no-torch-cache", "Do not look in the torch hub cache ($TORCH_HOME/hub/checkpoints).")
parser:flag("--quiet", "No progress bar.")
-- user errors (a bad option, an unknown architecture) are one line and exit status 2, before any download
-- (lua/dpl/cli.lua)
local args
cli.main("weights/fetch.lua", function()
  args = cli.parse(parser, arg)
  for _, name in ipairs(args.name) do
    if name ~= "lpips" and (not manifest[name] or name == "order") then
      cli.fail("unknown architecture '%s' (known: %s, lpips)", name, table.concat(manifest.order, ", "))
    end
  end
end, arg)

local function say(...) io.stdout:write(...); io.stdout:write("\n"); io.stdout:flush() end

-- what to work on: {label, e (manifest entry), dest, hub (a torchvision checkpoint: also in the torch hub cache)}
local function targets(names)
  local list, bad = {}, 0
  for _, name in ipairs(names) do
    if name == "lpips" then
      for _, e in ipairs(manifest.lpips or {}) do
        list[#list + 1] = {label = e.name, e = e, dest = args.dir .. "/" .. e.file}
      end
    elseif manifest[name] and name ~= "order" and name ~= "lpips" then
      local e = manifest[name]
      list[#list + 1] = {label = name, e = e, dest = args.dir .. "/" .. e.file, hub = not args.no_torch_cache}
    else
      io.stderr:write(("unknown architecture '%s' (known: %s, lpips)\n"):format(name, table.concat(manifest.order, ", ")))
      bad = bad + 1
    end
  end
  return list, bad
end

local function everything()
  local names = {}
  for _, a in ipairs(manifest.order) do names[#names + 1] = a end
  if manifest.lpips then names[#names + 1] = "lpips" end
  return names
end

-- the file present for a target: path, where; else nil, and the state of the file at dest ("missing", "partial"...)
local function present(t)
  if t.hub then
    local e = t.e
    local path, where = store.locate(e, args.dir)
    if path then return path, where end
  else
    if download.status(t.dest, t.e) == "ok" then return t.dest, "weights folder" end
  end
  return nil, download.status(t.dest, t.e)
end

local names = args.all and everything() or args.name
if (args.list or args.check or args.verify) and #names == 0 then names = everything() end
local list, failed = targets(names)

-- ---- --list --------------------------------------------------------------------------------------------------------
if args.list then
  for _, t in ipairs(list) do
    local path, where = present(t)
    local state = path and (where == "torch hub cache" and "present (torch hub cache: " .. path .. ")" or "present")
      or where
    local top1 = t.e.top1 and ("top-1 %5.2f"):format(t.e.top1) or ""
    say(("%-18s %-42s %-11s %s"):format(t.label, t.e.file, top1, state))
  end
  os.exit(failed == 0 and 0 or 1)
end

-- ---- --check -------------------------------------------------------------------------------------------------------
if args.check then
  for _, t in ipairs(list) do
    say(("%-18s %s  expected %s"):format(t.label, t.e.file, download.expected_text(t.e)))
    local working = false
    for _, url in ipairs(t.e.urls) do
      url = download.rebase(url, args.base_url)
      local verdict, text, usable = download.check(url, t.e)
      working = working or usable
      say(("    %-10s %s  (%s)"):format(verdict, url, text))
    end
    if not working then failed = failed + 1 end
  end
  if failed > 0 then say(("%d file(s) have no working location"):format(failed)) end
  os.exit(failed == 0 and 0 or 1)
end

-- ---- --verify ------------------------------------------------------------------------------------------------------
if args.verify then
  for _, t in ipairs(list) do
    local path, where = present(t)
    if path then
      local problem, digest = download.verify(path, t.e)
      if problem then failed = failed + 1; say(("%-18s BAD  %s"):format(t.label, problem))
      else say(("%-18s ok   %s (SHA-256 %s, %s)"):format(t.label, path, digest, where)) end
    else
      say(("%-18s %s"):format(t.label, where))
    end
  end
  os.exit(failed == 0 and 0 or 1)
end

-- ---- fetching ------------------------------------------------------------------------------------------------------
if #list == 0 then
  if failed == 0 then io.stderr:write("weights/fetch.lua: name at least one architecture (or lpips), or --all (see --help)\n") end
  os.exit(failed == 0 and 2 or 1)
end

local function fetch(t)
  local e = t.e
  local path, where = present(t)
  if path and where == "weights folder" then
    say(("%s: %s is present"):format(t.label, path))
    return
  end
  if path then
    local problem, digest = download.verify(path, e)
    if not problem then
      say(("%s: found in the torch hub cache: %s (SHA-256 %s verified); used from there, nothing downloaded")
        :format(t.label, path, digest))
      return
    end
    say(("%s: the copy in the torch hub cache is not the expected file (%s); downloading"):format(t.label, problem))
  end
  local dest = t.dest
  os.execute("mkdir -p '" .. (dest:match("^(.*)/") or "."):gsub("'", "'\\''") .. "'")
  local status, size = download.status(dest, e)
  if status == "wrong size" then
    error(("%s is %s bytes, but it must be %s: move it away (or delete it) and rerun"):format(download.absolute(dest),
      download.thousands(size), download.expected_text(e)), 0)
  elseif status == "partial" and not download.file_size(dest .. ".part") then
    say(("%s: %s holds %s bytes of %s: continuing it"):format(t.label, e.file, download.thousands(size),
      download.expected_text({bytes = e.bytes, mib = e.mib})))
    os.rename(dest, dest .. ".part")
  elseif status == "empty" then
    os.remove(dest)
  end
  local urls = {}
  for i, url in ipairs(e.urls) do urls[i] = download.rebase(url, args.base_url) end
  local _, info = download.fetch(urls, dest, {sha256 = e.sha256, sha256_prefix = e.sha256_prefix, bytes = e.bytes,
                                              mib = e.mib, label = e.file, quiet = args.quiet})
  say(("%s: %s (SHA-256 %s verified) from %s"):format(t.label, dest, info.sha256, info.url))
end

for _, t in ipairs(list) do
  local ok, err = pcall(fetch, t)
  if not ok then
    io.stderr:write(t.label, ": ", tostring(err), "\n")
    failed = failed + 1
  end
end
os.exit(failed == 0 and 0 or 1)
