-- tests/run.lua - runs Lua test suites: `dplrun tests/run.lua [--filter PATTERN] [FILE...]` (default: every
-- tests/lua/test_*.lua). Prints one line per test and closes with "N passed, M failed". Fails when any test fails or
-- when the Vulkan validation layer reported anything (run with DPL_VALIDATION=1, as ctest does); exits 77 (ctest:
-- skipped) when nothing failed but tests were skipped for missing reference data (lua/dpl/test.lua, "Reference files").
local dpl = require "dpl"

local files, filter = {}, nil
local i = 1
while i <= #arg do
  if arg[i] == "--filter" then filter = arg[i + 1]; i = i + 2
  elseif arg[i] == "--help" then
    print("usage: dplrun tests/run.lua [--filter PATTERN] [tests/lua/test_x.lua ...]")
    os.exit(0)
  else files[#files + 1] = arg[i]; i = i + 1 end
end
if #files == 0 then
  local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
  local p = io.popen('ls "' .. here .. '"/lua/test_*.lua 2>/dev/null')
  for f in p:lines() do files[#files + 1] = f end
  p:close()
end

local passed, failed, data_skips = 0, 0, 0
for _, file in ipairs(files) do
  local chunk, err = loadfile(file)
  if not chunk then
    print("FAIL   " .. file .. ": cannot load: " .. tostring(err))
    failed = failed + 1
  else
    local ok, suite = pcall(chunk)
    if not ok then
      print("FAIL   " .. file .. ": " .. tostring(suite))
      failed = failed + 1
    elseif not suite:runs_in() then
      print(("skip   %s: runs in the %s configuration(s) only, not in %s (see the suite's test.suite call)"):format(
        suite.name, table.concat(suite.configurations, ", "), os.getenv("DPL_TEST_CONFIG")))
    else
      local p, f, d = suite:run(filter)
      passed, failed, data_skips = passed + p, failed + f, data_skips + (d or 0)
    end
  end
  collectgarbage("collect")
end

local vmsgs = dpl.validation_messages()
if vmsgs > 0 then
  print(("FAIL   Vulkan validation layer reported %d message(s) (see stderr)"):format(vmsgs))
  failed = failed + 1
end
print(("%d passed, %d failed"):format(passed, failed))
-- 77: ctest reports the suite as skipped (SKIP_RETURN_CODE) when reference data (or something else a test needs,
-- t:skip(reason, {unavailable = true})) was missing and nothing failed
if failed == 0 and data_skips > 0 then
  print(("%d test(s) skipped for missing reference data or facilities (see the skip lines)"):format(data_skips))
  os.exit(77)
end
os.exit(failed == 0 and 0 or 1)
