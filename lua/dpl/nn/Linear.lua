-- nn.Linear(in_features, out_features[, {bias = false, device = ...}]): y = x W^T + b, with PyTorch's parameter names
-- and default initialisation (kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)) for weight and bias).
local dpl = require "dpl"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local Linear = class("nn.Linear", Module)

function Linear:__init(in_features, out_features, opts)
  Module.check_sizes("nn.Linear", {{"in_features", in_features}, {"out_features", out_features}})
  opts = Module.options("nn.Linear", opts, {"bias", "device"})
  Module.__init(self)
  self.in_features, self.out_features = in_features, out_features
  local bound = 1 / math.sqrt(in_features)
  self:register_parameter("weight", dpl.uniform(-bound, bound, {out_features, in_features}, {device = opts.device}))
  if opts.bias ~= false then
    self:register_parameter("bias", dpl.uniform(-bound, bound, {out_features}, {device = opts.device}))
  end
end

function Linear:updateOutput(x)
  if x:size(-1) ~= self.in_features then
    error(("nn.Linear(%d -> %d): input has %d features (shape %s)"):format(self.in_features, self.out_features,
      x:size(-1), tostring(x:size())), 2)
  end
  local y = x:matmul(self.weight:t())
  if self.bias then y = y + self.bias end
  return y
end

function Linear:extra_repr()
  return ("%d -> %d%s"):format(self.in_features, self.out_features, self.bias and "" or ", no bias")
end

return Linear
