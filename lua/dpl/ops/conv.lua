-- dpl.ops.conv: convolution and transposed convolution with their gradient kernels, as PyTorch's F.conv2d and
-- F.conv_transpose2d (users reach them as dpl.F.X, lua/dpl/nn/functional.lua).
--
--   local y  = F.conv2d(x, w, b, {stride = 2, padding = 1})            -- x: N x C x H x W, w: O x C/groups x kh x kw
--   local gx = F.conv2d_backward_input(gy, w, x:size(), {stride = 2, padding = 1})
--   local gw = F.conv2d_backward_weight(x, gy, w:size(), {stride = 2, padding = 1})
--   local gb = F.conv2d_backward_bias(gy)                              -- gy summed over N, H, W
--
-- Options: stride, padding, dilation (a number or an {h, w} pair) and groups (a number); defaults 1, 0, 1, 1.
-- conv2d also takes activation = "relu": relu(conv2d(x, w, b)) in one pass where the device can (Vulkan), with the
-- gradient of both.
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local C = dffi.C
local wants = A.wants

local M = {}

local args = require "dpl.ops.args"
local is_int, pair = args.is_int, args.pair

-- A dpl_conv2d_params (or, with output_padding among the keys, a dpl_conv_transpose2d_params) from an options table.
-- Errors point at the caller of the op (level 3: `params` in declare reaches here by a tail call).
local function params_from(fn, opts, ctype, keys)
  opts = args.options(fn, opts, keys, 2)
  local p = ctype()
  p.stride_h, p.stride_w = pair(fn, opts.stride, "stride", 1)
  p.pad_h, p.pad_w = pair(fn, opts.padding, "padding", 0)
  for _, k in ipairs(keys) do
    if k == "output_padding" then p.output_pad_h, p.output_pad_w = pair(fn, opts.output_padding, k, 0) end
  end
  p.dilation_h, p.dilation_w = pair(fn, opts.dilation, "dilation", 1)
  local g = opts.groups or 1
  if not is_int(g) then error(fn .. ": groups must be an integer, got " .. tostring(g), 3) end
  p.groups = g
  return p
end

-- bias may be left out, with opts in its place
local function bias_opts(bias, opts)
  if opts == nil and type(bias) == "table" and not T.is_tensor(bias) then return nil, bias end
  return bias, opts
end

local function shape4(fn, s, what) return args.shape4(fn, s, what, "{N, C, H, W} or {O, C/groups, kh, kw}") end

local ACTIVATIONS = {none = C.DPL_ACT_NONE, relu = C.DPL_ACT_RELU}

-- opts without its activation (what the gradient kernels take), and whether it asked for one
local function without_activation(opts)
  local act = opts and opts.activation
  if act == nil then return opts, false end
  local rest = {}
  for k, v in pairs(opts) do if k ~= "activation" then rest[k] = v end end
  return rest, act ~= "none"
end

-- Declares the op `name` (conv2d, conv_transpose2d) from its C functions dpl_<name>_forward, _backward_input and
-- _backward_weight and its options (`keys`, parsed into a `ctype`; with `activation`, the forward also takes
-- activation = "relu" | "none"): M[name] (differentiable, the gradients from the backward kernels, after the ReLU's
-- mask when fused), M[name .. "_backward_input"](grad_output, weight, input_size, opts) and
-- M[name .. "_backward_weight"](input, grad_output, weight_size, opts), the sizes given as a table, a Size or the
-- tensor.
local function declare(name, ctype, keys, activation)
  local forward, backward_input = C["dpl_" .. name .. "_forward"], C["dpl_" .. name .. "_backward_input"]
  local backward_weight = C["dpl_" .. name .. "_backward_weight"]
  local function params(fn, opts) return params_from(fn, opts, ctype, keys) end
  local forward_keys = keys
  if activation then forward_keys = {unpack(keys)}; forward_keys[#forward_keys + 1] = "activation" end
  local function forward_params(fn, opts) return params_from(fn, opts, ctype, forward_keys) end
  local bi, bw = name .. "_backward_input", name .. "_backward_weight"
  M[bi] = function(grad_output, weight, input_size, opts)
    return T.new(backward_input, T.handle(grad_output, bi .. " grad_output"), T.handle(weight, bi .. " weight"), 4,
                 shape4(bi, input_size, "input_size"), params(bi, opts))
  end
  M[bw] = function(input, grad_output, weight_size, opts)
    return T.new(backward_weight, T.handle(input, bw .. " input"), T.handle(grad_output, bw .. " grad_output"), 4,
                 shape4(bw, weight_size, "weight_size"), params(bw, opts))
  end
  M[name] = A.op {name = name, inputs = 3,
    forward = function(input, weight, bias, opts)
      bias, opts = bias_opts(bias, opts)
      local p = forward_params(name, opts)
      local act = opts and opts.activation
      if act ~= nil then
        if not ACTIVATIONS[act] then
          error(("%s: activation must be \"relu\" or \"none\", got %s"):format(name, tostring(act)), 2)
        end
        p.activation = ACTIVATIONS[act]
      end
      local bh = bias ~= nil and T.handle(bias, name .. " bias") or nil
      return T.new(forward, T.handle(input, name .. " input"), T.handle(weight, name .. " weight"), bh, p)
    end,
    backward = function(c, g)
      local input, weight = c[1], c[2]
      local bias, opts = bias_opts(c[3], c[4])
      local activated
      opts, activated = without_activation(opts)
      if activated then g = g:relu_grad(c.y) end   -- the ReLU's gradient: where its output is positive
      return wants(input) and M[bi](g, weight, input:size(), opts),
             wants(weight) and M[bw](input, g, weight:size(), opts),
             wants(bias) and M.conv2d_backward_bias(g)
    end}
  return params
end

-- conv2d(input, weight[, bias][, opts]): F.conv2d; conv2d_backward_input, conv2d_backward_weight
local conv_params = declare("conv2d", ffi.typeof("dpl_conv2d_params"), {"stride", "padding", "dilation", "groups"},
                            true)

-- Gradient of conv2d (and conv_transpose2d) with respect to its bias: grad_output summed over N, H and W.
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
local transpose_params = declare("conv_transpose2d", ffi.typeof("dpl_conv_transpose2d_params"),
                                 {"stride", "padding", "output_padding", "dilation", "groups"})

-- Output height and width of conv_transpose2d for an h x w input and a kh x kw kernel.
function M.conv_transpose2d_output_size(h, w, kh, kw, opts)
  local p = transpose_params("conv_transpose2d_output_size", opts)
  local oh = (h - 1) * p.stride_h - 2 * p.pad_h + p.dilation_h * (kh - 1) + p.output_pad_h + 1
  local ow = (w - 1) * p.stride_w - 2 * p.pad_w + p.dilation_w * (kw - 1) + p.output_pad_w + 1
  return oh, ow
end

return M
