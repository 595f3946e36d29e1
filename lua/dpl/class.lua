-- dpl.class: minimal single-inheritance classes, as torch.class.
--   local Linear = class("nn.Linear", Module)
--   function Linear:__init(a, b) Module.__init(self) ... end
--   local m = Linear(3, 4)
local function class(name, parent)
  local cls = {}
  cls.__index = cls
  cls.__typename = name
  cls.__parent = parent
  cls.__tostring = function(self)
    if self.__tostring__ then return self:__tostring__() end
    return name
  end
  local mt = {
    __index = parent,
    __call = function(c, ...)
      local obj = setmetatable({}, c)
      if obj.__init then obj:__init(...) end
      return obj
    end,
  }
  setmetatable(cls, mt)
  -- metamethods are not inherited through __index: copy the parent's
  if parent then
    for _, k in ipairs {"__call", "__tostring"} do
      if rawget(parent, k) and k ~= "__tostring" then cls[k] = parent[k] end
    end
  end
  return cls
end

return class
