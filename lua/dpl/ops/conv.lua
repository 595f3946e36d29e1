-- dpl.ops.conv: convolution and transposed convolution with their gradient kernels, as PyTorch's F.conv2d and
-- F.conv_transpose2d (users reach them as dpl.F.X, lua/dpl/nn/functional.lua).
--
--   local y  = F.conv2d(x, w, b, {stride = 2, padding = 1})            -- x: N x C x H x W, w: O x C/groups x kh x kw
--   local gx = F.conv2d_backward_input(gy, w, x:size(), {stride = 2, padding = 1})
--   local gw = F.conv2d_backward_weight(x, gy, w:size(), {stride = 2, padding = 1})
--   local gb = F.conv2d_backward_bias(gy)                              -- gy summed over N, H, W
--
-- Options: stride, padding, dilation (a number or an {h, w} pair) and groups (a number); defaults 1, 0, 1, 1.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local C = dffi.C
local wants = A.wants

local M = {}

local params_t = ffi.typeof("dpl_conv2d_params")
local int64_4 = ffi.typeof("int64_t[4]")

local function is_int(v) return type(v) == "number" and v == math.floor(v) end

local function pair(fn, v, name, default)
  if v == nil then return default, default end
  if is_int(v) then return v, v end
  if type(v) == "table" and #v == 2 and is_int(v[1]) and is_int(v[2]) then return v[1], v[2] end
  error(("%s: %s must be an integer or a pair of integers {h, w}, got %s"):format(fn, name, tostring(v)), 4)
end

-- A dpl_conv2d_params (or, with output_padding among the keys, a dpl_conv_transpose2d_params) from an options table.
-- Errors point at the caller of the op (level 3: conv_params below reaches here by a tail call).
local function params_from(fn, opts, ctype, keys)
  if opts ~= nil and type(opts) ~= "table" then error(fn .. ": options must be a table, got " .. type(opts), 3) end
  opts = opts or {}
  local allowed = {}
  for _, k in ipairs(keys) do allowed[k] = true end
  for k in pairs(opts) do
    if not allowed[k] then
      error(("%s: unknown option '%s' (%s)"):format(fn, tostring(k), table.concat(keys, ", ")), 3)
    end
  end
  local p = ctype()
  p.stride_h, p.stride_w = pair(fn, opts.stride, "stride", 1)
  p.pad_h, p.pad_w = pair(fn, opts.padding, "padding", 0)
  if allowed.output_padding then
    p.output_pad_h, p.output_pad_w = pair(fn, opts.output_padding, "output_padding", 0)
  end
  p.dilation_h, p.dilation_w = pair(fn, opts.dilation, "dilation", 1)
  local g = opts.groups or 1
  if not is_int(g) then error(fn .. ": groups must be an integer, got " .. tostring(g), 3) end
  p.groups = g
  return p
end

local CONV_KEYS = {"stride", "padding", "dilation", "groups"}
local function conv_params(fn, opts) return params_from(fn, opts, params_t, CONV_KEYS) end

local function shape4(fn, s, what)
  if T.is_tensor(s) then s = s:size() end
  if type(s) ~= "table" or #s ~= 4 then
    error(("%s: %s must be 4 sizes {N, C, H, W} or {O, C/groups, kh, kw}"):format(fn, what), 3)
  end
  local arr = int64_4()
  for i = 1, 4 do
    if not is_int(s[i]) then error(("%s: %s must hold integers"):format(fn, what), 3) end
    arr[i - 1] = s[i]
  end
  return arr
end

-- bias may be left out, with opts in its place
local function bias_opts(bias, opts)
  if opts == nil and type(bias) == "table" and not T.is_tensor(bias) then return nil, bias end
  return bias, opts
end

-- conv2d(input, weight[, bias][, opts]): F.conv2d, differentiable (the gradients come from the backward kernels)
M.conv2d = A.op {name = "conv2d", inputs = 3,
  forward = function(input, weight, bias, opts)
    bias, opts = bias_opts(bias, opts)
    local p = conv_params("conv2d", opts)
    local bh = bias ~= nil and T.handle(bias, "conv2d bias") or nil
    return T.new(C.dpl_conv2d_forward, T.handle(input, "conv2d input"), T.handle(weight, "conv2d weight"), bh, p)
  end,
  backward = function(c, g)
    local input, weight = c[1], c[2]
    local bias, opts = bias_opts(c[3], c[4])
    return wants(input) and M.conv2d_backward_input(g, weight, input:size(), opts),
           wants(weight) and M.conv2d_backward_weight(input, g, weight:size(), opts),
           wants(bias) and M.conv2d_backward_bias(g)
  end}

-- Gradient of conv2d with respect to its input; input_size: the input's shape (a table, a Size or the tensor).
function M.conv2d_backward_input(grad_output, weight, input_size, opts)
  local p = conv_params("conv2d_backward_input", opts)
  local s = shape4("conv2d_backward_input", input_size, "input_size")
  return T.new(C.dpl_conv2d_backward_input, T.handle(grad_output, "conv2d_backward_input grad_output"),
               T.handle(weight, "conv2d_backward_input weight"), 4, s, p)
end

-- Gradient of conv2d with respect to its weight; weight_size: the weight's shape (a table, a Size or the tensor).
function M.conv2d_backward_weight(input, grad_output, weight_size, opts)
  local p = conv_params("conv2d_backward_weight", opts)
  local s = shape4("conv2d_backward_weight", weight_size, "weight_size")
  return T.new(C.dpl_conv2d_backward_weight, T.handle(input, "conv2d_backward_weight input"),
               T.handle(grad_output, "conv2d_backward_weight grad_output"), 4, s, p)
end

-- Gradient of conv2d with respect to its bias: grad_output summed over N, H and W.
function M.conv2d_backward_bias(grad_output)
  return T.new(C.dpl_conv2d_backward_bias, T.handle(grad_output, "conv2d_backward_bias grad_output"))
end

-- Output height and width of conv2d for an h x w input and a kh x kw kernel (may be <= 0 for invalid geometry).
function M.conv2d_output_size(h, w, kh, kw, opts)
  local p = conv_params("conv2d_output_size", opts)
  local oh = math.floor((h + 2 * p.pad_h - p.dilation_h * (kh - 1) - 1) / p.stride_h) + 1
  local ow = math.floor((w + 2 * p.pad_w - p.dilation_w * (kw - 1) - 1) / p.stride_w) + 1
  return oh, ow
end

-- ---- transposed convolution (F.conv_transpose2d) ----------------------------------------------------------------
--   local y  = F.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1})
--                                                   -- x: N x C_in x H x W, w: C_in x C_out/groups x kh x kw
--   local gx = F.conv_transpose2d_backward_input(gy, w, x:size(), opts)
--   local gw = F.conv_transpose2d_backward_weight(x, gy, w:size(), opts)
--   local gb = F.conv2d_backward_bias(gy)
-- Options: stride, padding, output_padding, dilation (numbers or {h, w} pairs) and groups; defaults 1, 0, 0, 1, 1.
local tparams_t = ffi.typeof("dpl_conv_transpose2d_params")
local TRANSPOSE_KEYS = {"stride", "padding", "output_padding", "dilation", "groups"}
local function transpose_params(fn, opts) return params_from(fn, opts, tparams_t, TRANSPOSE_KEYS) end

-- conv_transpose2d(input, weight[, bias][, opts]): F.conv_transpose2d, differentiable.
M.conv_transpose2d = A.op {name = "conv_transpose2d", inputs = 3,
  forward = function(input, weight, bias, opts)
    bias, opts = bias_opts(bias, opts)
    local p = transpose_params("conv_transpose2d", opts)
    local bh = bias ~= nil and T.handle(bias, "conv_transpose2d bias") or nil
    return T.new(C.dpl_conv_transpose2d_forward, T.handle(input, "conv_transpose2d input"),
                 T.handle(weight, "conv_transpose2d weight"), bh, p)
  end,
  backward = function(c, g)
    local input, weight = c[1], c[2]
    local bias, opts = bias_opts(c[3], c[4])
    return wants(input) and M.conv_transpose2d_backward_input(g, weight, input:size(), opts),
           wants(weight) and M.conv_transpose2d_backward_weight(input, g, weight:size(), opts),
           wants(bias) and M.conv2d_backward_bias(g)
  end}

-- Gradient of conv_transpose2d with respect to its input; input_size: the input's shape (a table, a Size or a tensor).
function M.conv_transpose2d_backward_input(grad_output, weight, input_size, opts)
  local fn = "conv_transpose2d_backward_input"
  local p = transpose_params(fn, opts)
  local s = shape4(fn, input_size, "input_size")
  return T.new(C.dpl_conv_transpose2d_backward_input, T.handle(grad_output, fn .. " grad_output"),
               T.handle(weight, fn .. " weight"), 4, s, p)
end

-- Gradient of conv_transpose2d with respect to its weight; weight_size: the weight's shape.
function M.conv_transpose2d_backward_weight(input, grad_output, weight_size, opts)
  local fn = "conv_transpose2d_backward_weight"
  local p = transpose_params(fn, opts)
  local s = shape4(fn, weight_size, "weight_size")
  return T.new(C.dpl_conv_transpose2d_backward_weight, T.handle(input, fn .. " input"),
               T.handle(grad_output, fn .. " grad_output"), 4, s, p)
end

-- Output height and width of conv_transpose2d for an h x w input and a kh x kw kernel.
function M.conv_transpose2d_output_size(h, w, kh, kw, opts)
  local p = transpose_params("conv_transpose2d_output_size", opts)
  local oh = (h - 1) * p.stride_h - 2 * p.pad_h + p.dilation_h * (kh - 1) + p.output_pad_h + 1
  local ow = (w - 1) * p.stride_w - 2 * p.pad_w + p.dilation_w * (kw - 1) + p.output_pad_w + 1
  return oh, ow
end

return M
