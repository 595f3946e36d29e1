-- dpl.cli: what the command-line scripts (experiments/, examples/) share, so that they behave alike:
--   * a user error (bad flag value, unknown arch or layer, missing or wrong-type file, unknown device, an output path
--     that is a folder or whose folder is missing) is ONE line "<script>: <what> (<the fix>)" and exit status 2;
--   * an internal error (a bug) is "<script>: internal error: <message>" and exit status 1, with the stack trace only
--     under --traceback (or DPL_TRACEBACK=1);
--   * checks that could fail after long work (is the output writable?) are made before the work starts;
--   * `--device` given on the command line is blamed as --device;
--   * every --json output carries its provenance (cli.provenance).
--
--   local cli = require "dpl.cli"
--   local parser = cli.parser("examples/distance.lua", "Perceptual distance between images.")
--   parser:option("--out", "CSV or JSON file.")
--   cli.main("distance.lua", function()
--     local args = cli.parse(parser, arg)
--     cli.output(args.out, "--out", {"csv", "json"})          -- fails now, not after the work
--     cli.device(args.device)
--     local net = cli.try(lossnet.new, args.arch, args.layer, {weights = args.weights})   -- errors here are the user's
--     if bad then cli.fail("--layer %s has no effect with --lpips (drop it)", args.layer) end
--   end)
local files = require "dpl.data.files"

local M = {}

local USER = {}   -- metatable marking a user error

-- Raises a user error: a one-line message (format and arguments as string.format).
function M.fail(fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  error(setmetatable({msg = msg}, USER), 0)
end

function M.is_user_error(e) return getmetatable(e) == USER end

-- A library error message without the "file.lua:123: " position and without a trailing traceback.
function M.message(e)
  if M.is_user_error(e) then return e.msg end
  local s = tostring(e)
  s = s:gsub("\nstack traceback:.*$", "")
  s = s:gsub("^[^\n:]*%.lua:%d+: ", "")
  return s
end

-- Calls fn(...); any error it raises is the user's (an unknown architecture, a missing weights file, an unreadable
-- image): re-raised as a one-line user error, prefixed with `what` when given.
function M.try(fn, ...)
  local res = {pcall(fn, ...)}
  if not res[1] then M.fail("%s", M.message(res[2])) end
  return unpack(res, 2, table.maxn(res))
end

-- the same with a prefix naming the argument: cli.try_as("--weights x.pth", lossnet.new, ...)
function M.try_as(what, fn, ...)
  local res = {pcall(fn, ...)}
  if not res[1] then M.fail("%s: %s", what, M.message(res[2])) end
  return unpack(res, 2, table.maxn(res))
end

local function traceback_wanted(argv)
  local env = os.getenv("DPL_TRACEBACK")
  if env and env ~= "" and env ~= "0" then return true end
  for _, a in ipairs(argv or {}) do if a == "--traceback" then return true end end
  return false
end

-- An error handler for xpcall: a user error stays one; an error already classified stays so; anything else is
-- internal, with its stack trace kept. cli.classify_plain also takes messages without a source position (raised with
-- error(msg, 0), as the library does for the user's mistakes) as user errors.
function M.classify(e)
  if M.is_user_error(e) or (type(e) == "table" and e.internal) then return e end
  return {internal = tostring(e), trace = debug.traceback("", 2)}
end
function M.classify_plain(e)
  if type(e) == "string" and not e:match("^[^\n]*%.lua:%d+: ") then return setmetatable({msg = e}, USER) end
  return M.classify(e)
end

-- Runs a script's body: user errors end it with one line and exit 2, internal errors with exit 1 (stack trace under
-- --traceback or DPL_TRACEBACK=1). The body's own os.exit calls go through as usual.
function M.main(name, body, argv)
  argv = argv or arg
  local tb = traceback_wanted(argv)
  local ok, err = xpcall(body, M.classify)
  if ok then return end
  -- an interruption (SIGINT/SIGTERM, lua/dpl/signal.lua) is neither the user's error nor a bug: it goes on up to
  -- dplrun, which runs the cleanups, prints "interrupted ..." and exits 130 / 143
  local signal = package.loaded["dpl.signal"]
  if signal and signal.pending() then
    error(type(err) == "table" and (err.internal or err.msg) or err, 0)
  end
  io.stdout:flush()
  if M.is_user_error(err) then
    io.stderr:write(name, ": ", err.msg, "\n")
    os.exit(2)
  end
  if tb then
    io.stderr:write(name, ": internal error: ", err.internal, err.trace, "\n")
  else
    io.stderr:write(name, ": internal error: ", M.message(err.internal),
      " (rerun with --traceback for the stack trace, and please report it)\n")
  end
  os.exit(1)
end

-- An argparse parser with the options every script has: --traceback (and argparse's --help).
function M.parser(name, description, epilog)
  local parser = require("argparse")("dplrun " .. name, description, epilog)
  parser:flag("--traceback", "On an internal error, print the stack trace.")
  return parser
end

-- Parses argv (default: the script's arg) with parser; a parse error is one line and exit 2.
function M.parse(parser, argv)
  local ok, args = parser:pparse(argv or arg)
  if not ok then M.fail("%s (see --help)", tostring(args)) end
  return args
end

-- the file-system checks are dpl.data.files'
local is_dir, exists = files.is_dir, files.exists
M.is_dir, M.exists = is_dir, exists

-- the whole content of a file, or nil
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- The extension of a path, lower case, without the dot ("" when none).
function M.extension(path) return (path:match("%.([^./]+)$") or ""):lower() end

-- Checks, before any work, that `path` (the value of option `opt`) can be written: not a folder, its folder exists,
-- writable, and (exts: a list such as {"csv", "json"}) a known extension. Returns the extension.
function M.output(path, opt, exts)
  if path == nil then return nil end
  if path == "" then M.fail("%s: empty file name", opt) end
  if is_dir(path) then M.fail("%s %s is a folder: give a file name in it (e.g. %s/out.%s)", opt, path,
    path:gsub("/+$", ""), exts and exts[1] or "txt") end
  local ext = M.extension(path)
  if exts then
    local known = false
    for _, e in ipairs(exts) do known = known or e == ext end
    if not known then
      M.fail("%s %s: unknown file type '.%s' (give a file ending in .%s)", opt, path, ext, table.concat(exts, " or ."))
    end
  end
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" and not is_dir(dir) then
    M.fail("%s %s: the folder %s does not exist (create it first)", opt, path, dir)
  end
  local existed = exists(path)
  local f, err = io.open(path, "ab")
  if not f then M.fail("%s %s: cannot write it (%s)", opt, path, M.message(err)) end
  f:close()
  if not existed then os.remove(path) end
  return ext
end

-- Checks that `path` (option `opt`) is an existing folder, or creates it when opts.create.
function M.output_dir(path, opt, opts)
  if exists(path) and not is_dir(path) then M.fail("%s %s is a file, not a folder", opt, path) end
  if not is_dir(path) then
    if not (opts and opts.create) then M.fail("%s %s: no such folder (create it first)", opt, path) end
    local parent = path:match("^(.*)/[^/]*$")
    if parent and parent ~= "" and not is_dir(parent) then
      M.fail("%s %s: the folder %s does not exist (create it first)", opt, path, parent)
    end
    os.execute(("mkdir '%s' 2>/dev/null"):format(path:gsub("'", "'\\''")))
    if not is_dir(path) then M.fail("%s %s: cannot create the folder", opt, path) end
  end
  local probe = path .. "/.dpl_write_test"
  local f = io.open(probe, "wb")
  if not f then M.fail("%s %s: the folder is not writable", opt, path) end
  f:close()
  os.remove(probe)
  return path
end

-- Checks that `path` (option or argument `what`) is a readable file (not a folder).
function M.input_file(path, what)
  if is_dir(path) then M.fail("%s %s is a folder, not a file", what, path) end
  if not exists(path) then M.fail("%s %s: no such file", what, path) end
  return path
end

-- Selects the device of --device (nil: dplrun's choice, $DPL_DEVICE or the first GPU); a bad value is blamed on
-- --device. Returns the device spec in use.
function M.device(spec)
  local dpl = require "dpl"
  if spec then
    local ok, err = pcall(dpl.device, spec)
    if not ok then M.fail("--device %s: %s", spec, M.message(err)) end
    return dpl.device()
  end
  local ok, d = pcall(dpl.device)
  if not ok then M.fail("%s", M.message(d)) end
  return d
end

-- An image size option: "HxW" (e.g. 64x64) or "N" (N x N) -> {h, w}; nil for nil; a bad value fails naming opt.
function M.size(value, opt)
  if value == nil then return nil end
  local h, w = value:match("^(%d+)[xX](%d+)$")
  if not h then h = value:match("^(%d+)$"); w = h end
  h, w = tonumber(h), tonumber(w)
  if not h or h < 1 or w < 1 then M.fail("%s %s: give HxW (e.g. 64x64) or N", opt, value) end
  return {h, w}
end

-- ---- provenance --------------------------------------------------------------------------------------------------
-- The weights of a network as provenance: {file, sha256, kind} for a checkpoint ("torchvision" when it is the file
-- dpl's manifest lists for arch, else "custom"), {folder, sha256 (of the sorted "name sha256" lines of its .npy files),
-- name_map} for a folder of .npy files, {random = "random:SEED", untrained = true} for untrained weights.
function M.weights_info(path, arch, name_map)
  if path == nil then return nil end
  if type(path) == "string" and path:match("^random:%d+$") then return {random = path, untrained = true} end
  local crypto = require "dpl.sys.crypto"
  local abs = require("dpl.download").absolute(path)
  if is_dir(path) then
    local p = io.popen("ls -1A -- '" .. path:gsub("'", "'\\''") .. "'")
    local names = {}
    for n in p:lines() do if n:lower():match("%.npy$") then names[#names + 1] = n end end
    p:close()
    table.sort(names)
    local lines = {}
    for _, n in ipairs(names) do lines[#lines + 1] = n .. " " .. crypto.sha256_file(path .. "/" .. n) end
    return {folder = abs, sha256 = crypto.sha256_string(table.concat(lines, "\n")), files = #names,
            name_map = name_map}
  end
  local sha = crypto.sha256_file(path)
  local kind = require("dpl.benchmarks.report").weights_kind(arch, sha, path)
  return {file = abs, sha256 = sha, kind = kind:match("^custom") and "custom" or kind}
end

-- What every --json output carries besides its own configuration: dpl's version and commit, the date (UTC), the
-- device. extra: more keys (merged in).
function M.provenance(extra)
  local dpl = require "dpl"
  local results = require "dpl.results"
  local out = {dpl_version = dpl.version, code_version = results.code_version(), date = results.iso_time(results.now()),
               device = dpl.device(), device_banner = dpl.device_banner()}
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

-- Writes text to path atomically (a temporary file renamed over it), or fails with one line naming opt.
function M.write_file(path, text, opt)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then M.fail("%s %s: cannot write it (%s)", opt or "output", path, M.message(err)) end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp); M.fail("%s %s: cannot write it (%s)", opt or "output", path, M.message(rerr)) end
end

return M
