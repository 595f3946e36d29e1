-- weights/fetch.lua - downloads torchvision's ImageNet checkpoints into weights/ (or $DPL_WEIGHTS), resuming partial
-- downloads and verifying each file's SHA-256 against the prefix in its name.
--   dplrun weights/fetch.lua alexnet vgg16      dplrun weights/fetch.lua --all      dplrun weights/fetch.lua --list
local argparse = require "argparse"
local download = require "dpl.download"
local store = require "dpl.weights_store"

local manifest = store.manifest()
local parser = argparse("dplrun weights/fetch.lua", "Download torchvision ImageNet checkpoints (IMAGENET1K_V1).")
parser:argument("arch", "Architectures to fetch: " .. table.concat(manifest.order, ", ")):args("*")
parser:flag("--all", "Fetch all 14 checkpoints.")
parser:flag("--list", "List the checkpoints and whether they are present.")
parser:option("--dir", "Where to store them.", store.dir())
parser:option("--base-url", "Mirror to download from (default: the URLs in the manifest).")
parser:flag("--quiet", "No progress bar.")
local args = parser:parse(arg)

local list = args.all and manifest.order or args.arch
if args.list then
  for _, arch in ipairs(manifest.order) do
    local e = manifest[arch]
    local present = download.file_size(args.dir .. "/" .. e.file)
    print(("%-16s %-42s top-1 %5.2f  %s"):format(arch, e.file, e.top1, present and "present" or "missing"))
  end
  os.exit(0)
end
if #list == 0 then
  io.stderr:write(parser:get_usage(), "\nname at least one architecture, or --all\n")
  os.exit(2)
end
os.execute("mkdir -p '" .. args.dir .. "'")
local failed = 0
for _, arch in ipairs(list) do
  local e = manifest[arch]
  if not e then
    io.stderr:write(("unknown architecture '%s' (known: %s)\n"):format(arch, table.concat(manifest.order, ", ")))
    failed = failed + 1
  else
    local dest = args.dir .. "/" .. e.file
    if download.file_size(dest) then
      print(("%s: %s is present"):format(arch, dest))
    else
      local url = args.base_url and (args.base_url:gsub("/$", "") .. "/" .. e.file) or e.url
      local ok, err = pcall(download.fetch, url, dest, {sha256_prefix = e.sha256_prefix, label = e.file,
                                                        quiet = args.quiet})
      if ok then print(("%s: %s (sha256 %s... verified)"):format(arch, dest, e.sha256_prefix))
      else io.stderr:write(arch, ": ", tostring(err), "\n"); failed = failed + 1 end
    end
  end
end
os.exit(failed == 0 and 0 or 1)
