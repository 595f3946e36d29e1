-- data/fetch.lua - downloads the benchmark datasets from their official sources into data/ (or $DPL_DATA), with a
-- progress bar, resume of interrupted downloads, SHA-256 checks where a source publishes one, and extraction with
-- the system tar / unzip.
--   dplrun data/fetch.lua bapps mrd      dplrun data/fetch.lua --list      dplrun data/fetch.lua --help
local argparse = require "argparse"
local download = require "dpl.download"
local sources = require "dpl.data.sources"
local files = require "dpl.data.files"

local parser = argparse("dplrun data/fetch.lua", "Download benchmark datasets from their official sources.")
parser:argument("name", "Datasets to fetch: " .. table.concat(sources.order, ", ")):args("*")
parser:flag("--list", "List the datasets, their sources and whether they are present.")
parser:option("--dir", "Data root.", files.data_root())
parser:option("--base-url", "Mirror to download from: replaces scheme and host of every URL (http://host:port).")
parser:flag("--keep-archives", "Keep .tar.gz / .zip files after extracting them.")
parser:flag("--quiet", "No progress bars.")
local args = parser:parse(arg)

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function run(cmd)
  local ok = os.execute(cmd)
  return ok == 0 or ok == true
end

local function mirror(url)
  if not args.base_url then return url end
  return args.base_url:gsub("/$", "") .. (url:match("^%a+://[^/]+(/.*)$") or url)
end

local function present(name) return files.exists(args.dir .. "/" .. sources[name].check) end

if args.list then
  for _, name in ipairs(sources.order) do
    local s = sources[name]
    print(("%-7s %-8s %s"):format(name, present(name) and "present" or "missing", s.about))
    for _, item in ipairs(s) do
      if item.size or item.index then print(("          %s%s"):format(item.url or item.index, item.size and ("  (" .. item.size .. ")") or "")) end
    end
  end
  os.exit(0)
end
if #args.name == 0 then
  io.stderr:write(parser:get_usage(), "\nname at least one dataset (see --list)\n")
  os.exit(2)
end

local function fetch_file(url, dest, item)
  if download.file_size(dest) then return dest end
  os.execute("mkdir -p " .. sh_quote(dest:match("^(.*)/") or "."))
  return download.fetch(mirror(url), dest, {sha256 = item.sha256, quiet = args.quiet, label = dest:match("[^/]*$")})
end

local function extract(archive, into, item)
  os.execute("mkdir -p " .. sh_quote(into))
  local cmd
  if item.extract == "tar" then
    cmd = ("tar -xf %s -C %s%s"):format(sh_quote(archive), sh_quote(into), item.strip and (" --strip-components=" .. item.strip) or "")
  else
    cmd = ("unzip -q -o %s -d %s"):format(sh_quote(archive), sh_quote(into))
  end
  if not run(cmd) then error(("extracting %s into %s failed (%s)"):format(archive, into, cmd)) end
end

-- the links of an HTML index page that match the pattern, made absolute
local function index_links(url, pattern)
  local tmp = os.tmpname()
  download.fetch(mirror(url), tmp, {quiet = true})
  local f = io.open(tmp)
  local html = f:read("*a")
  f:close()
  os.remove(tmp)
  local base = url:match("^(.*/)")
  local links, seen = {}, {}
  for href in html:gmatch("[hH][rR][eE][fF]%s*=%s*[\"']([^\"']+)[\"']") do
    if href:find(pattern) and not seen[href] then
      seen[href] = true
      links[#links + 1] = href:find("^%a+://") and href or (base .. href:gsub("^%./", ""))
    end
  end
  if #links == 0 then error(("the index page %s lists no files matching %s"):format(url, pattern)) end
  return links
end

local function fetch_dataset(name)
  local s = sources[name]
  if not s then error(("unknown dataset '%s' (known: %s)"):format(name, table.concat(sources.order, ", "))) end
  for _, item in ipairs(s) do
    local into = args.dir .. "/" .. item.into
    if item.index then
      local links = index_links(item.index, item.pattern)
      for k, link in ipairs(links) do
        if not args.quiet then io.write(("%s [%d/%d] "):format(item.into, k, #links)) end
        fetch_file(link, into .. "/" .. link:match("[^/]*$"), item)
      end
    else
      local file = item.url:match("[^/]*$")
      if item.extract then
        local marker = into .. "/.fetched-" .. file
        if not files.exists(marker) then
          local archive = args.dir .. "/" .. file
          fetch_file(item.url, archive, item)
          extract(archive, into, item)
          local m = io.open(marker, "w")
          m:write(item.url, "\n")
          m:close()
          if not args.keep_archives then os.remove(archive) end
        end
      else
        fetch_file(item.url, into .. "/" .. file, item)
      end
    end
  end
  print(("%s: in place under %s"):format(name, args.dir))
end

local failed = 0
for _, name in ipairs(args.name) do
  local ok, err = pcall(fetch_dataset, name)
  if not ok then
    io.stderr:write(name, ": ", tostring(err), "\n")
    failed = failed + 1
  end
end
os.exit(failed == 0 and 0 or 1)
