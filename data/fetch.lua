-- data/fetch.lua - downloads the benchmark datasets into data/ (or $DPL_DATA): each file from the first of its
-- locations that serves it (official first, byte-identical mirrors after; lua/dpl/data/sources.lua), with a progress
-- bar, resume of interrupted downloads, size and SHA-256 checks, the SHA-256 recorded in SHA256SUMS beside the data,
-- and extraction with the system tar / unzip. docs/data-sources.md has the state of every source.
--   dplrun data/fetch.lua bapps mrd      dplrun data/fetch.lua --list      dplrun data/fetch.lua --check bapps
local cli = require "dpl.cli"
local download = require "dpl.download"
local files = require "dpl.data.files"

local parser = cli.parser("data/fetch.lua", "Download benchmark datasets from their official sources (with "
  .. "fallback locations), resuming interrupted downloads and verifying sizes and checksums.")
parser:argument("name", "Datasets (all of them for --list, --check and --verify when none is named).")
  :args("*")
parser:flag("--list", "List the datasets, their locations and sizes, and whether they are present.")
parser:flag("--check", "Ask every location for its headers only and say which answer with the expected size "
  .. "(file-by-file datasets: the first 3 files). Exit status 1 when a file has no working location.")
parser:flag("--verify", "Recompute the SHA-256 of the downloaded files and compare it with the expected or recorded one.")
parser:option("--dir", "Data root.", files.data_root())
parser:option("--base-url", "A mirror with the official servers' paths: replaces scheme and host of every URL "
  .. "(http://host:port).")
parser:option("--sources", "A Lua file with other dataset sources, in the format of lua/dpl/data/sources.lua.")
parser:flag("--keep-archives", "Keep .tar.gz / .zip files after extracting them.")
parser:flag("--quiet", "No progress bars.")
-- user errors (a bad option, an unreadable --sources file, an unknown dataset) are one line and exit status 2, found
-- before anything is downloaded (lua/dpl/cli.lua)
local args, sources
cli.main("data/fetch.lua", function()
  args = cli.parse(parser, arg)
  if args.sources then
    local chunk, err = loadfile(args.sources)
    if not chunk then cli.fail("--sources %s: %s", args.sources, cli.message(err)) end
    local ok, s = pcall(chunk)
    if not ok or type(s) ~= "table" or type(s.order) ~= "table" then
      cli.fail("--sources %s: not a table of sources in the format of lua/dpl/data/sources.lua", args.sources)
    end
    sources = s
  else
    sources = require "dpl.data.sources"
  end
  for _, name in ipairs(args.name) do
    if not sources[name] or name == "order" then
      cli.fail("unknown dataset '%s' (known: %s)", name, table.concat(sources.order, ", "))
    end
  end
end, arg)

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function run(cmd)
  local ok = os.execute(cmd)
  return ok == 0 or ok == true
end
local function mkdir(dir) os.execute("mkdir -p " .. sh_quote(dir)) end
local function exists(path) return files.exists(path) end
local function say(...) io.stdout:write(...); io.stdout:write("\n"); io.stdout:flush() end

local function locations(list)
  local out = {}
  for i, url in ipairs(list) do out[i] = download.rebase(url, args.base_url) end
  return out
end

local function expectation(item)
  return {bytes = item.bytes, sha256 = item.sha256, approx_bytes = item.approx_bytes}
end

-- ---- where an item lives and how far it got ------------------------------------------------------------------------
local root = args.dir
local function into(item) return root .. "/" .. item.into end
local function dest_of(item) return item.extract and (root .. "/" .. item.file) or (into(item) .. "/" .. item.file) end
local function marker(item) return into(item) .. "/.fetched-" .. (item.file or "index") end
local function extracting(item) return into(item) .. "/.extracting-" .. item.file end

-- "done", "by hand" (in place without a fetch record), "partial" (with what), "wrong size" or "missing"
local function state(item)
  if item.index then
    if exists(marker(item)) then return "done" end
    local listed = files.list(into(item))
    return listed and #listed > 0 and "partial" or "missing", listed and (#listed .. " files, no complete fetch") or nil
  end
  if item.extract then
    if exists(extracting(item)) then return "partial", "extraction was interrupted" end
    if exists(marker(item)) then return "done" end
    if item.check and exists(root .. "/" .. item.check) then return "by hand" end
    if download.file_size(dest_of(item) .. ".part") then return "partial", "download interrupted" end
    return "missing"
  end
  local status, size = download.status(dest_of(item), item)
  if status == "ok" then return "done" end
  if status == "missing" then
    if download.file_size(dest_of(item) .. ".part") then return "partial", "download interrupted" end
    return "missing"
  end
  if status == "wrong size" then return "wrong size", size end
  return "partial", status == "empty" and "0 bytes" or (download.thousands(size) .. " bytes")
end

-- present / present (placed by hand) / incomplete (k of n in place) / missing
local function dataset_state(s)
  local done, hand, any = 0, 0, false
  for _, item in ipairs(s) do
    local st = state(item)
    if st == "done" then done = done + 1 elseif st == "by hand" then hand = hand + 1 end
    if st ~= "missing" then any = true end
  end
  if done + hand == #s and #s > 0 then return hand > 0 and "present (placed by hand)" or "present" end
  if not any then return "missing" end
  return ("incomplete (%d of %d parts in place)"):format(done + hand, #s)
end

local function size_text(item)
  if item.bytes then return download.thousands(item.bytes) .. " bytes" end
  if item.approx_bytes then return "about " .. require("dpl.progress").human(item.approx_bytes, "B") end
end

local function names_or_all()
  if #args.name > 0 then return args.name end
  return sources.order
end

local function known(name)
  if sources[name] then return true end
  io.stderr:write(("%s: unknown dataset '%s' (known: %s)\n"):format(name, name, table.concat(sources.order, ", ")))
  return false
end

-- calls fn(name, dataset) for every dataset named (all of them when none is); returns the number of unknown names
local failures = 0
local function each_dataset(fn)
  local unknown = 0
  for _, name in ipairs(names_or_all()) do
    if known(name) then fn(name, sources[name]) else unknown = unknown + 1 end
  end
  return unknown
end

-- ---- --list --------------------------------------------------------------------------------------------------------
if args.list then
  each_dataset(function(name, s)
    say(("%-11s %-9s %s"):format(name, dataset_state(s), s.about))
    local shown = 0
    for _, item in ipairs(s) do
      if item.index or item.extract or #s <= 3 then
        say(("            %s%s"):format(item.file or item.into, size_text(item) and ("  (" .. size_text(item) .. ")") or ""))
        for k, url in ipairs(item.index or item.urls) do say(("              %d. %s"):format(k, url)) end
        shown = shown + 1
      end
    end
    if shown == 0 then say(("            %d files, each from: %s"):format(#s, table.concat(s[1].urls, " | "))) end
  end)
  os.exit(0)
end

-- ---- --check -------------------------------------------------------------------------------------------------------
if args.check then
  local dead = each_dataset(function(name, s)
    local limit = (#s > 6 and not s[1].extract and not s[1].index) and 3 or #s
    for n, item in ipairs(s) do
      if n > limit then say(("%-11s (%d more files not checked)"):format(name, #s - limit)); break end
      say(("%-11s %s%s"):format(name, item.file or (item.into .. " (index page)"),
        size_text(item) and ("  expected " .. size_text(item)) or ""))
      local working = false
      for _, url in ipairs(locations(item.index or item.urls)) do
        local verdict, text, usable = download.check(url, item.index and {} or item)
        working = working or usable
        say(("    %-10s %s  (%s)"):format(verdict, url, text))
      end
      if not working then failures = failures + 1 end
    end
  end)
  dead = dead + failures
  if failures > 0 then say(("%d file(s) have no working location"):format(failures)) end
  os.exit(dead == 0 and 0 or 1)
end

-- ---- --verify ------------------------------------------------------------------------------------------------------
if args.verify then
  local unknown = each_dataset(function(name, s)
    local checked = 0
    for _, item in ipairs(s) do
      local targets = {}
      if item.index then
        for _, f in ipairs(files.list(into(item)) or {}) do
          if f ~= "SHA256SUMS" and not f:find("^%.") then targets[#targets + 1] = into(item) .. "/" .. f end
        end
      elseif download.file_size(dest_of(item)) then
        targets[1] = dest_of(item)
      end
      for _, path in ipairs(targets) do
        local want = (not item.index and item.sha256) or download.recorded(path)
        if want then
          local problem = download.verify(path, {sha256 = want, bytes = not item.index and item.bytes or nil})
          checked = checked + 1
          if problem then failures = failures + 1; say(("%-11s BAD  %s"):format(name, problem)) end
        else
          say(("%-11s ?    %s: no SHA-256 known or recorded"):format(name, path))
        end
      end
    end
    say(("%-11s %d file(s) checked"):format(name, checked))
  end)
  os.exit(unknown + failures == 0 and 0 or 1)
end

-- ---- fetching ------------------------------------------------------------------------------------------------------
if #args.name == 0 then
  io.stderr:write("data/fetch.lua: name at least one dataset (see --list and --help)\n")
  os.exit(2)
end

local function note_reported(item, info)
  local r = item.sha256_reported
  if not r then return end
  if info.sha256 == r[1] then
    say(("  SHA-256 %s matches the one reported by %s"):format(info.sha256, r[2]))
  else
    say(("  note: SHA-256 %s differs from %s reported by %s (not a checksum from the publisher); the file is kept "
      .. "and its SHA-256 recorded in SHA256SUMS"):format(info.sha256, r[1], r[2]))
  end
end

-- downloads one file of an item into dest (unless it is there with the right size) and returns the fetch info
local function fetch_file(item, urls, dest, quiet_label)
  mkdir(dest:match("^(.*)/") or ".")
  local status, size = download.status(dest, item)
  if status == "ok" then return {sha256 = download.recorded(dest), bytes = size, present = true} end
  if status == "wrong size" then
    error(("%s is %s bytes, but it must be %s: move it away (or delete it) and rerun"):format(download.absolute(dest),
      download.thousands(size), download.expected_text(expectation(item))), 0)
  end
  if status == "partial" and not download.file_size(dest .. ".part") then
    say(("  %s holds %s bytes of %s: continuing it"):format(dest:match("[^/]*$"), download.thousands(size),
      download.thousands(item.bytes)))
    os.rename(dest, dest .. ".part")
  elseif status == "empty" then
    os.remove(dest)
  end
  local _, info = download.fetch(locations(urls), dest, {sha256 = item.sha256, bytes = item.bytes, quiet = args.quiet,
                                                        label = quiet_label or dest:match("[^/]*$")})
  return info
end

local function extract(archive, item)
  local dir = into(item)
  mkdir(dir)
  local cmd
  if item.extract == "tar" then
    cmd = ("tar -xf %s -C %s%s"):format(sh_quote(archive), sh_quote(dir), item.strip and (" --strip-components=" .. item.strip) or "")
  else
    cmd = ("unzip -q -o %s -d %s"):format(sh_quote(archive), sh_quote(dir))
  end
  if not run(cmd) then error(("extracting %s into %s failed (%s); rerun to extract again"):format(archive, dir, cmd), 0) end
end

-- the links of an HTML index page that match the pattern, made absolute
local function index_links(urls, pattern)
  local tmp = os.tmpname()
  local _, info = download.fetch(locations(urls), tmp, {quiet = true, record = false})
  local f = io.open(tmp)
  local html = f:read("*a")
  f:close()
  os.remove(tmp)
  local base = urls[1]:match("^(.*/)")
  local links, seen = {}, {}
  for href in html:gmatch("[hH][rR][eE][fF]%s*=%s*[\"']([^\"']+)[\"']") do
    if href:find(pattern) and not seen[href] then
      seen[href] = true
      links[#links + 1] = href:find("^%a+://") and href or (base .. href:gsub("^%./", ""))
    end
  end
  if #links == 0 then error(("the index page %s lists no files matching %s"):format(info.url, pattern), 0) end
  return links
end

local function write_marker(path, lines)
  local m = assert(io.open(path, "w"))
  m:write(table.concat(lines, "\n"), "\n")
  m:close()
end

local function fetch_item(name, item)
  local st = state(item)
  if st == "done" then return end
  if st == "by hand" then
    say(("%s: %s is in place without a fetch record (placed by hand?): left as it is"):format(name, item.check))
    return
  end
  if item.index then
    local links = index_links(item.index, item.pattern)
    for k, link in ipairs(links) do
      if not args.quiet then io.stderr:write(("%s [%d/%d] "):format(item.into, k, #links)) end
      fetch_file({}, {link}, into(item) .. "/" .. link:match("[^/]*$"))
    end
    write_marker(marker(item), {item.index[1], #links .. " files", os.date("!%Y-%m-%dT%H:%M:%SZ")})
  elseif item.extract then
    local archive = dest_of(item)
    local info = fetch_file(item, item.urls, archive)
    if not info.present then
      say(("%s: %s (%s bytes, SHA-256 %s) from %s"):format(name, item.file, download.thousands(info.bytes), info.sha256,
        info.url))
      note_reported(item, info)
    end
    mkdir(into(item))
    write_marker(extracting(item), {archive})
    extract(archive, item)
    write_marker(marker(item), {info.url or "(kept archive)", "sha256 " .. tostring(info.sha256 or download.recorded(archive)),
                                "bytes " .. tostring(info.bytes), os.date("!%Y-%m-%dT%H:%M:%SZ")})
    os.remove(extracting(item))
    if not args.keep_archives then os.remove(archive) end
  else
    local info = fetch_file(item, item.urls, dest_of(item))
    if not info.present then
      say(("%s: %s (%s bytes, SHA-256 %s%s)"):format(name, item.file, download.thousands(info.bytes), info.sha256,
        item.sha256 and " verified" or " recorded"))
    end
  end
end

local function fetch_dataset(name)
  local s = sources[name]
  if not s then error(("unknown dataset '%s' (known: %s)"):format(name, table.concat(sources.order, ", ")), 0) end
  for _, item in ipairs(s) do fetch_item(name, item) end
  say(("%s: in place under %s"):format(name, root))
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
