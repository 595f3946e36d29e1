-- nn.Container: a module made of children; errors raised inside a child are re-raised with the child's position,
-- name and type (torch/nn's rethrowErrors), e.g. "In child 3 (features.2: nn.Conv2d) of nn.Sequential: ...".
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local Container = class("nn.Container", Module)

function Container:__init()
  Module.__init(self)
end

function Container:get(i)
  local e = self._children[i]
  return e and e[2]
end

function Container:size() return #self._children end

function Container:call_child(i, fn)
  local ok, res = xpcall(fn, function(err)
    if type(err) == "string" and not err:find("\n  In child", 1, true) then
      return err .. "\n" .. debug.traceback("", 2)
    end
    return err
  end)
  if not ok then
    local e = self._children[i]
    local msg = tostring(res)
    local head, trace = msg:match("^(.-)\n(stack traceback:.*)$")
    head = head or msg
    error(("In child %d (%s: %s) of %s: %s"):format(i, e[1], e[2].__typename or "?", self.__typename, head), 0)
  end
  return res
end

return Container
