-- nn.Conv2d, as PyTorch: weight (out, in/groups, kh, kw) and bias (out), initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in))
-- (PyTorch's kaiming_uniform with a = sqrt(5)); stride, padding, dilation as numbers or {h, w} pairs.
local dpl = require "dpl"
local F = require "dpl.nn.functional"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local Conv2d = class("nn.Conv2d", Module)

local function pair(v) if type(v) == "table" then return v[1], v[2] end return v, v end

function Conv2d:__init(in_channels, out_channels, kernel_size, opts)
  opts = Module.options("nn.Conv2d", opts, {"stride", "padding", "dilation", "groups", "bias", "device"})
  Module.check_sizes("nn.Conv2d", {{"in_channels", in_channels}, {"out_channels", out_channels},
                                   {"kernel_size", kernel_size}, {"groups", opts.groups or 1}})
  Module.__init(self)
  self.in_channels, self.out_channels = in_channels, out_channels
  self.kh, self.kw = pair(kernel_size)
  self.groups = opts.groups or 1
  if in_channels % self.groups ~= 0 or out_channels % self.groups ~= 0 then
    error(("nn.Conv2d: groups %d must divide in_channels %d and out_channels %d"):format(self.groups, in_channels,
      out_channels), 2)
  end
  self.opts = {stride = opts.stride or 1, padding = opts.padding or 0, dilation = opts.dilation or 1, groups = self.groups}
  local fan_in = in_channels / self.groups * self.kh * self.kw
  local bound = 1 / math.sqrt(fan_in)
  self:register_parameter("weight", dpl.uniform(-bound, bound, {out_channels, in_channels / self.groups, self.kh, self.kw},
    {device = opts.device}))
  if opts.bias ~= false then
    self:register_parameter("bias", dpl.uniform(-bound, bound, {out_channels}, {device = opts.device}))
  end
end

function Conv2d:updateOutput(x)
  return F.conv2d(x, self.weight, self.bias, self.opts)
end

function Conv2d:extra_repr()
  local s, p = self.opts.stride, self.opts.padding
  return ("%d -> %d, %dx%d, stride %s, padding %s%s"):format(self.in_channels, self.out_channels, self.kh, self.kw,
    type(s) == "table" and table.concat(s, "x") or s, type(p) == "table" and table.concat(p, "x") or p,
    self.groups > 1 and (", groups " .. self.groups) or "")
end

return Conv2d
