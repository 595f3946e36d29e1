-- dpl.ops.spatial: pooling, padding and resizing of N x C x H x W tensors (C x H x W also accepted), as PyTorch's
-- F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.pad and F.interpolate (align_corners=False). Users reach them
-- as dpl.F.X (lua/dpl/nn/functional.lua):
--
--   local y = F.max_pool2d(x, 3, {stride = 2, padding = 1, ceil_mode = true})
--   local y, idx = F.max_pool2d(x, {2, 2}, {return_indices = true})        -- idx: y * W + x per plane, as floats
--   local y = F.avg_pool2d(x, 3, {stride = 2, padding = 1, count_include_pad = false})
--   local y = F.adaptive_avg_pool2d(x, {7, 7})                             -- or a number for a square output
--   local y = F.pad2d(x, {left, right, top, bottom}, "reflect")            -- "zero" (or "constant", with a value),
--                                                                           -- "reflect", "replicate"
--   local y = F.upsample2d(x, {h, w}, "bilinear")                          -- or a scale factor: upsample2d(x, 1.5)
--
-- Kernel, stride, padding and dilation are a number or an {h, w} pair; the stride defaults to the kernel size. Every
-- function is differentiable (dpl.autograd); the gradients come from the runtime's backward kernels, which are also
-- exposed: max_pool2d_backward(gy, indices, input_size, kernel, opts), avg_pool2d_backward(gy, input_size, kernel,
-- opts), adaptive_avg_pool2d_backward(gy, input_size), pad2d_backward(gy, input_size, pads, mode) and
-- upsample2d_backward(gy, input_size, mode[, scale]).
local ffi = require "ffi"
local dffi = require "dpl.ffi"
local T = require "dpl.tensor"
local A = require "dpl.autograd"
local C = dffi.C

local M = {}

local pool_params_t = ffi.typeof("dpl_pool2d_params")
local tensor_box = ffi.typeof("dpl_tensor *[1]")
local args = require "dpl.ops.args"
local is_int, pair = args.is_int, args.pair



local max_opts = {"ceil_mode", "dilation", "padding", "return_indices", "stride"}
local avg_opts = {"ceil_mode", "count_include_pad", "padding", "stride"}

-- a dpl_pool2d_params from a kernel and options
local function pool_params(fn, kernel, opts, is_max)
  opts = args.options(fn, opts, is_max and max_opts or avg_opts, 2)
  if kernel == nil then error(fn .. ": a kernel size is required", 3) end
  local p = pool_params_t()
  p.kernel_h, p.kernel_w = pair(fn, kernel, "kernel size")
  if opts.stride ~= nil then
    p.stride_h, p.stride_w = pair(fn, opts.stride, "stride")
    if p.stride_h <= 0 or p.stride_w <= 0 then
      error(("%s: stride must be positive, got (%d, %d)"):format(fn, p.stride_h, p.stride_w), 3)
    end
  end
  p.pad_h, p.pad_w = pair(fn, opts.padding, "padding", 0)
  if is_max then
    p.dilation_h, p.dilation_w = pair(fn, opts.dilation, "dilation", 1)
    if p.dilation_h <= 0 or p.dilation_w <= 0 then
      error(("%s: dilation must be positive, got (%d, %d)"):format(fn, p.dilation_h, p.dilation_w), 3)
    end
  end
  p.ceil_mode = opts.ceil_mode and 1 or 0
  p.count_include_pad = (opts.count_include_pad == nil or opts.count_include_pad) and 1 or 0
  return p, opts
end

-- int64_t[4] from a shape table, a Size or a tensor
local function shape4(fn, s) return args.shape4(fn, s, "input_size") end

-- C x H x W inputs go through as 1 x C x H x W; fn4(x4) returns the result (and extra values, also unbatched)
local function batched(x, fn4)
  if T.is_tensor(x) and x:dim() == 3 then
    local y, extra = fn4(x:unsqueeze(1))
    return y:squeeze(1), extra and extra:squeeze(1) or nil
  end
  return fn4(x)
end

-- ---- max pooling ----------------------------------------------------------------------------------------------------
function M.max_pool2d_backward(grad_output, indices, input_size, kernel, opts)
  local fn = "max_pool2d_backward"
  local p = pool_params(fn, kernel, opts, true)
  return T.new(C.dpl_max_pool2d_backward, T.handle(grad_output, fn .. " grad_output"),
               T.handle(indices, fn .. " indices"), 4, shape4(fn, input_size), p)
end

-- (x4, params) -> y4, indices
local max_pool2d = A.op {name = "max_pool2d",
  forward = function(x4, p)
    local box = tensor_box()
    local y4 = T.new(C.dpl_max_pool2d_forward, T.handle(x4, "max_pool2d input"), p, box)
    return y4, T.wrap(box[0])
  end,
  backward = function(c, g)
    return T.new(C.dpl_max_pool2d_backward, T.handle(g), T.handle(c.saved), 4, shape4("max_pool2d", c[1]), c[2])
  end}

function M.max_pool2d(x, kernel, opts)
  local p, o = pool_params("max_pool2d", kernel, opts, true)
  local y, idx = batched(x, function(x4) return max_pool2d(x4, p) end)
  if o.return_indices then return y, idx end
  return y
end

-- ---- average pooling ------------------------------------------------------------------------------------------------
function M.avg_pool2d_backward(grad_output, input_size, kernel, opts)
  local fn = "avg_pool2d_backward"
  local p = pool_params(fn, kernel, opts, false)
  return T.new(C.dpl_avg_pool2d_backward, T.handle(grad_output, fn .. " grad_output"), 4, shape4(fn, input_size), p)
end

local avg_pool2d = A.op {name = "avg_pool2d",
  forward = function(x4, p) return T.new(C.dpl_avg_pool2d_forward, T.handle(x4, "avg_pool2d input"), p) end,
  backward = function(c, g)
    return T.new(C.dpl_avg_pool2d_backward, T.handle(g), 4, shape4("avg_pool2d", c[1]), c[2])
  end}

function M.avg_pool2d(x, kernel, opts)
  local p = pool_params("avg_pool2d", kernel, opts, false)
  return (batched(x, function(x4) return avg_pool2d(x4, p) end))
end

-- ---- adaptive average pooling ---------------------------------------------------------------------------------------
function M.adaptive_avg_pool2d_backward(grad_output, input_size)
  local fn = "adaptive_avg_pool2d_backward"
  return T.new(C.dpl_adaptive_avg_pool2d_backward, T.handle(grad_output, fn .. " grad_output"), 4, shape4(fn, input_size))
end

local adaptive_avg_pool2d = A.op {name = "adaptive_avg_pool2d",
  forward = function(x4, oh, ow)
    return T.new(C.dpl_adaptive_avg_pool2d_forward, T.handle(x4, "adaptive_avg_pool2d input"), oh, ow)
  end,
  backward = function(c, g)
    return T.new(C.dpl_adaptive_avg_pool2d_backward, T.handle(g), 4, shape4("adaptive_avg_pool2d", c[1]))
  end}

-- size: a number (square output) or {h, w}; a nil entry keeps the input's size, as PyTorch's None
function M.adaptive_avg_pool2d(x, size)
  local fn = "adaptive_avg_pool2d"
  return (batched(x, function(x4)
    local oh, ow = size, size
    if type(size) == "table" then
      oh, ow = size[1], size[2]
      if oh == nil and T.is_tensor(x4) then oh = x4:size(3) end
      if ow == nil and T.is_tensor(x4) then ow = x4:size(4) end
    end
    if not is_int(oh) or not is_int(ow) then
      error(fn .. ": output size must be an integer or a pair {h, w}, got " .. tostring(size), 4)
    end
    return adaptive_avg_pool2d(x4, oh, ow)
  end))
end

-- ---- padding ----------------------------------------------------------------------------------------------------------
local pad_modes = {zero = C.DPL_PAD_CONSTANT, zeros = C.DPL_PAD_CONSTANT, constant = C.DPL_PAD_CONSTANT,
                   reflect = C.DPL_PAD_REFLECT, reflection = C.DPL_PAD_REFLECT,
                   replicate = C.DPL_PAD_REPLICATE, replication = C.DPL_PAD_REPLICATE}

local function pad_args(fn, pads, mode)
  local l, r, t, b
  if is_int(pads) then l, r, t, b = pads, pads, pads, pads
  elseif type(pads) == "table" and #pads == 4 then l, r, t, b = pads[1], pads[2], pads[3], pads[4]
  elseif type(pads) == "table" and #pads == 2 then l, r, t, b = pads[1], pads[2], 0, 0
  end
  if not (is_int(l) and is_int(r) and is_int(t) and is_int(b)) then
    error(fn .. ": pads must be an integer or {left, right, top, bottom} integers, got " .. tostring(pads), 4)
  end
  local m = pad_modes[mode or "zero"]
  if not m then
    error(("%s: unknown mode '%s' (zero/constant, reflect, replicate)"):format(fn, tostring(mode)), 4)
  end
  return l, r, t, b, m
end

function M.pad2d_backward(grad_output, input_size, pads, mode)
  local fn = "pad2d_backward"
  local l, r, t, b, m = pad_args(fn, pads, mode)
  return T.new(C.dpl_pad2d_backward, T.handle(grad_output, fn .. " grad_output"), 4, shape4(fn, input_size), l, r, t, b, m)
end

local pad2d = A.op {name = "pad2d",
  forward = function(x4, l, r, t, b, m, value)
    return T.new(C.dpl_pad2d_forward, T.handle(x4, "pad2d input"), l, r, t, b, m, value)
  end,
  backward = function(c, g)
    return T.new(C.dpl_pad2d_backward, T.handle(g), 4, shape4("pad2d", c[1]), c[2], c[3], c[4], c[5], c[6])
  end}

-- pads: {left, right, top, bottom} (as F.pad's last-dim-first order), {left, right} or one number for all four
function M.pad2d(x, pads, mode, value)
  local fn = "pad2d"
  local l, r, t, b, m = pad_args(fn, pads, mode)
  if value ~= nil and type(value) ~= "number" then error(fn .. ": value must be a number", 2) end
  return (batched(x, function(x4) return pad2d(x4, l, r, t, b, m, value or 0) end))
end

-- ---- resizing -----------------------------------------------------------------------------------------------------------
local up_modes = {nearest = C.DPL_UPSAMPLE_NEAREST, bilinear = C.DPL_UPSAMPLE_BILINEAR}

local function up_mode(fn, mode)
  local m = up_modes[mode or "nearest"]
  if not m then error(("%s: unknown mode '%s' (nearest, bilinear)"):format(fn, tostring(mode)), 4) end
  return m
end

-- (scale_h, scale_w) from nil, a number or a pair of numbers
local function scales(fn, scale)
  if scale == nil then return 0, 0 end
  if type(scale) == "number" then return scale, scale end
  if type(scale) == "table" and type(scale[1]) == "number" and type(scale[2]) == "number" then return scale[1], scale[2] end
  error(fn .. ": scale must be a number or a pair {h, w}", 4)
end

function M.upsample2d_backward(grad_output, input_size, mode, scale)
  local fn = "upsample2d_backward"
  local m = up_mode(fn, mode)
  local sh, sw = scales(fn, scale)
  return T.new(C.dpl_upsample2d_backward, T.handle(grad_output, fn .. " grad_output"), 4, shape4(fn, input_size), m, sh, sw)
end

local upsample2d = A.op {name = "upsample2d",
  forward = function(x4, oh, ow, m, sh, sw)
    return T.new(C.dpl_upsample2d_forward, T.handle(x4, "upsample2d input"), oh, ow, m, sh, sw)
  end,
  backward = function(c, g)
    return T.new(C.dpl_upsample2d_backward, T.handle(g), 4, shape4("upsample2d", c[1]), c[4], c[5], c[6])
  end}

-- size: {h, w} output size, or a scale factor (a number, or {scale = s} / {scale = {sh, sw}}): the output is
-- floor(H * s) x floor(W * s) and the source positions use 1 / s, as F.interpolate(scale_factor = s).
function M.upsample2d(x, size, mode)
  local fn = "upsample2d"
  local m = up_mode(fn, mode)
  return (batched(x, function(x4)
    local H, W = x4:size(3), x4:size(4)
    local oh, ow, sh, sw
    if type(size) == "number" or (type(size) == "table" and size.scale ~= nil) then
      sh, sw = scales(fn, type(size) == "number" and size or size.scale)
      if sh <= 0 or sw <= 0 then error(fn .. ": scale factors must be positive", 4) end
      oh, ow = math.floor(H * sh), math.floor(W * sw)
    elseif type(size) == "table" and is_int(size[1]) and is_int(size[2]) then
      oh, ow, sh, sw = size[1], size[2], 0, 0
    else
      error(fn .. ": size must be {h, w} or a scale factor, got " .. tostring(size), 4)
    end
    return upsample2d(x4, oh, ow, m, sh, sw)
  end))
end

-- ---- output sizes (PyTorch's pooling_output_shape) ----------------------------------------------------------------------
-- Output height and width of max_pool2d / avg_pool2d for an h x w input (may be <= 0 for invalid geometry).
function M.pool2d_output_size(h, w, kernel, opts)
  local o = opts or {}
  local p = pool_params("pool2d_output_size", kernel, {stride = o.stride, padding = o.padding, dilation = o.dilation,
                                                        ceil_mode = o.ceil_mode}, true)
  local function one(n, k, s, pad, d)
    s = s ~= 0 and s or k
    local out = math.floor((n + 2 * pad - d * (k - 1) - 1 + (p.ceil_mode ~= 0 and s - 1 or 0)) / s) + 1
    if p.ceil_mode ~= 0 and (out - 1) * s >= n + pad then out = out - 1 end
    return out
  end
  return one(h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h), one(w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)
end

return M
