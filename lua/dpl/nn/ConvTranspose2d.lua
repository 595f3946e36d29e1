-- nn.ConvTranspose2d, as PyTorch: weight (in, out/groups, kh, kw) and bias (out), both initialised
-- U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = out/groups * kh * kw (PyTorch's kaiming_uniform with a = sqrt(5)
-- computes the fan from the weight's dim 1, which for a transposed convolution holds the output channels).
-- Options: stride, padding, output_padding, dilation (numbers or {h, w} pairs), groups, bias (false: none), device.
-- forward(x[, output_size]) takes, as PyTorch's, an optional output size {H, W} (or {N, C, H, W}) that picks the
-- output_padding among the sizes the stride allows.
local dpl = require "dpl"
local F = require "dpl.nn.functional"
local class = require "dpl.class"
local Module = require "dpl.nn.Module"

local ConvTranspose2d = class("nn.ConvTranspose2d", Module)

local function pair(v) if type(v) == "table" then return v[1], v[2] end return v, v end

function ConvTranspose2d:__init(in_channels, out_channels, kernel_size, opts)
  opts = Module.options("nn.ConvTranspose2d", opts, {"stride", "padding", "output_padding", "dilation", "groups",
                                                     "bias", "device"})
  Module.check_sizes("nn.ConvTranspose2d", {{"in_channels", in_channels}, {"out_channels", out_channels},
                                            {"kernel_size", kernel_size}, {"groups", opts.groups or 1}})
  Module.__init(self)
  self.in_channels, self.out_channels = in_channels, out_channels
  self.kh, self.kw = pair(kernel_size)
  self.groups = opts.groups or 1
  if in_channels % self.groups ~= 0 or out_channels % self.groups ~= 0 then
    error(("nn.ConvTranspose2d: groups %d must divide in_channels %d and out_channels %d"):format(self.groups,
      in_channels, out_channels), 2)
  end
  self.opts = {stride = opts.stride or 1, padding = opts.padding or 0, output_padding = opts.output_padding or 0,
               dilation = opts.dilation or 1, groups = self.groups}
  local fan_in = out_channels / self.groups * self.kh * self.kw
  local bound = 1 / math.sqrt(fan_in)
  self:register_parameter("weight", dpl.uniform(-bound, bound,
    {in_channels, out_channels / self.groups, self.kh, self.kw}, {device = opts.device}))
  if opts.bias ~= false then
    self:register_parameter("bias", dpl.uniform(-bound, bound, {out_channels}, {device = opts.device}))
  end
end

-- output_padding giving `output_size` for input x (PyTorch's _output_padding)
function ConvTranspose2d:output_padding_for(x, output_size)
  local want = {output_size[#output_size - 1], output_size[#output_size]}
  local sh, sw = pair(self.opts.stride)
  local stride = {sh, sw}
  local opts = {}
  for k, v in pairs(self.opts) do opts[k] = v end
  opts.output_padding = 0
  local mh, mw = F.conv_transpose2d_output_size(x:size(3), x:size(4), self.kh, self.kw, opts)
  local min = {mh, mw}
  local op = {}
  for i = 1, 2 do
    op[i] = want[i] - min[i]
    if op[i] < 0 or op[i] >= stride[i] then
      error(("nn.ConvTranspose2d: requested output size %dx%d is not reachable from input %s: valid sizes are %dx%d "
        .. "to %dx%d"):format(want[1], want[2], tostring(x:size()), min[1], min[2], min[1] + stride[1] - 1,
        min[2] + stride[2] - 1), 3)
    end
  end
  return op
end

function ConvTranspose2d:forward(input, output_size)
  self._output_size = output_size   -- read by updateOutput, for this call only
  local ok, y = pcall(Module.forward, self, input)
  self._output_size = nil
  if not ok then error(y, 0) end
  return y
end
ConvTranspose2d.__call = ConvTranspose2d.forward

function ConvTranspose2d:updateOutput(x)
  local opts = self.opts
  if self._output_size then
    opts = {}
    for k, v in pairs(self.opts) do opts[k] = v end
    opts.output_padding = self:output_padding_for(x, self._output_size)
  end
  return F.conv_transpose2d(x, self.weight, self.bias, opts)
end

function ConvTranspose2d:extra_repr()
  local function s(v) return type(v) == "table" and table.concat(v, "x") or tostring(v) end
  local o = self.opts
  return ("%d -> %d, %dx%d, stride %s, padding %s, output_padding %s%s%s"):format(self.in_channels,
    self.out_channels, self.kh, self.kw, s(o.stride), s(o.padding), s(o.output_padding),
    s(o.dilation) ~= "1" and (", dilation " .. s(o.dilation)) or "", self.groups > 1 and (", groups " .. self.groups) or "")
end

return ConvTranspose2d
