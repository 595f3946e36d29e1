-- tests/lua/http_fixture.lua - what the download suites (test_download.lua, test_fetch_data.lua) share: local HTTP
-- servers on 127.0.0.1 (tests/ref/http_server.py: HEAD, Range, --strict paths, --drop-after N, --no-range), a shell
-- helper and the path of dplrun. Loaded with dofile; not a suite itself.
--   local fx = dofile(root .. "/tests/lua/http_fixture.lua").new(root, work)
--   local url = fx:server(served_dir, "--strict")   ...   fx:stop()
local M = {}

function M.sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

-- the dplrun running this suite (arg[-1] or further left: dplrun's own options)
function M.dplrun()
  local i = -1
  while arg[i - 1] do i = i - 1 end
  return arg[i]
end

local Fixture = {}
Fixture.__index = Fixture

-- root: the source tree; work: a scratch folder (the servers' log is <served>/../server.log)
function M.new(root, work)
  os.execute(("mkdir -p '%s'"):format(work))
  return setmetatable({root = root, work = work, pids = {}, n = 0, sh = M.sh, dplrun = M.dplrun()}, Fixture)
end

-- starts a server for `served` with extra options (a string); returns its base URL
function Fixture:server(served, options)
  self.n = self.n + 1
  local portfile = ("%s/port%d"):format(self.work, self.n)
  os.execute(("/usr/bin/python3 %s/tests/ref/http_server.py '%s' '%s' --lifetime 300 %s >/dev/null 2>&1 & echo $! > '%s.pid'")
    :format(self.root, served, portfile, options or "", portfile))
  for _ = 1, 100 do
    local f = io.open(portfile)
    if f then
      local port = f:read("*a")
      f:close()
      local pf = io.open(portfile .. ".pid")
      self.pids[#self.pids + 1] = pf:read("*a"):gsub("%s", "")
      pf:close()
      return "http://127.0.0.1:" .. port
    end
    os.execute("sleep 0.1")
  end
  error("the test HTTP server did not start")
end

-- a URL on which nothing listens (a server started and stopped at once)
function Fixture:dead_url()
  local url = self:server(self.work)
  os.execute("kill " .. self.pids[#self.pids] .. " 2>/dev/null; sleep 0.2")
  return url
end

-- the request log of the servers serving `served`: "GET /path Range" lines
function Fixture:log(served)
  local f = io.open(served .. "/../server.log")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- runs `dplrun SCRIPT ARGS` with environment assignments `env` ("A=1 B=2"), returning its output and "rc=N"
function Fixture:run(env, script, args)
  return M.sh(("%s %s --quiet %s/%s %s 2>&1; echo rc=$?"):format(env or "", self.dplrun, self.root, script, args))
end

function Fixture:stop()
  for _, pid in ipairs(self.pids) do os.execute("kill " .. pid .. " 2>/dev/null") end
  self.pids = {}
end

return M
