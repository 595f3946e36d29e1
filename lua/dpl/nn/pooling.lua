-- Pooling, padding and resampling modules over the differentiable spatial ops (lua/dpl/ops/spatial.lua), with PyTorch's
-- arguments: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, ReflectionPad2d, ReplicationPad2d, ZeroPad2d, Upsample.
local F = require "dpl.nn.functional"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local M = {}

local function str(v) return type(v) == "table" and table.concat(v, "x") or tostring(v) end

local MaxPool2d = class("nn.MaxPool2d", Module)
function MaxPool2d:__init(kernel_size, opts)
  Module.__init(self)
  opts = opts or {}
  self.kernel_size = kernel_size
  self.opts = {stride = opts.stride or kernel_size, padding = opts.padding or 0, dilation = opts.dilation or 1,
               ceil_mode = opts.ceil_mode or false}
end
function MaxPool2d:updateOutput(x) return F.max_pool2d(x, self.kernel_size, self.opts) end
function MaxPool2d:extra_repr()
  return ("kernel %s, stride %s, padding %s%s"):format(str(self.kernel_size), str(self.opts.stride),
    str(self.opts.padding), self.opts.ceil_mode and ", ceil_mode" or "")
end
M.MaxPool2d = MaxPool2d

local AvgPool2d = class("nn.AvgPool2d", Module)
function AvgPool2d:__init(kernel_size, opts)
  Module.__init(self)
  opts = opts or {}
  self.kernel_size = kernel_size
  self.opts = {stride = opts.stride or kernel_size, padding = opts.padding or 0, ceil_mode = opts.ceil_mode or false,
               count_include_pad = opts.count_include_pad ~= false}
end
function AvgPool2d:updateOutput(x) return F.avg_pool2d(x, self.kernel_size, self.opts) end
function AvgPool2d:extra_repr()
  return ("kernel %s, stride %s, padding %s"):format(str(self.kernel_size), str(self.opts.stride), str(self.opts.padding))
end
M.AvgPool2d = AvgPool2d

local AdaptiveAvgPool2d = class("nn.AdaptiveAvgPool2d", Module)
function AdaptiveAvgPool2d:__init(output_size)
  Module.__init(self)
  self.output_size = output_size
end
function AdaptiveAvgPool2d:updateOutput(x) return F.adaptive_avg_pool2d(x, self.output_size) end
function AdaptiveAvgPool2d:extra_repr() return str(self.output_size) end
M.AdaptiveAvgPool2d = AdaptiveAvgPool2d

-- padding {left, right, top, bottom} or one number for all sides, as torch.nn.*Pad2d
local function pad_module(name, mode)
  local cls = class("nn." .. name, Module)
  function cls:__init(padding, value)
    Module.__init(self)
    self.padding = type(padding) == "table" and padding or {padding, padding, padding, padding}
    self.value = value or 0
  end
  function cls:updateOutput(x) return F.pad2d(x, self.padding, mode, self.value) end
  function cls:extra_repr() return table.concat(self.padding, ", ") end
  M[name] = cls
end
pad_module("ReflectionPad2d", "reflect")
pad_module("ReplicationPad2d", "replicate")
pad_module("ZeroPad2d", "zero")

-- Upsample({size = {h, w}} or {scale_factor = s}, mode "nearest" | "bilinear"; align_corners is false)
local Upsample = class("nn.Upsample", Module)
function Upsample:__init(opts)
  Module.__init(self)
  self.size, self.scale_factor, self.mode = opts.size, opts.scale_factor, opts.mode or "nearest"
end
function Upsample:updateOutput(x)
  return F.upsample2d(x, self.size or self.scale_factor, self.mode)
end
function Upsample:extra_repr() return (self.size and str(self.size) or ("x" .. tostring(self.scale_factor))) .. ", " .. self.mode end
M.Upsample = Upsample

return M
