-- experiments/attributes.lua - the attributes the paper analyses (section V, Tables I and II) for every loss network:
-- parameters up to the layer and in total, depth up to the layer and in total, forward MFLOPs at an input size,
-- channels and feature count (C x H x W) at the layer, ImageNet top-1 accuracy and the architecture flags (skip
-- connections, branching, 1x1 convolutions, batch norm). Definitions: lua/dpl/models/attributes.lua.
--   dplrun experiments/attributes.lua                                  all 56 loss networks, 224 x 224
--   dplrun experiments/attributes.lua --arch vgg16 --arch resnet50 --layer M --size 64 --csv attrs.csv
-- Computed on the CPU (no weights are needed: random values give the same counts).
local cli = require "dpl.cli"
local attributes = require "dpl.models.attributes"
local lossnet = require "dpl.models.lossnet"

local parser = cli.parser("experiments/attributes.lua", "Attributes of the loss networks (paper Tables I-II).")
parser:option("--arch", "Architecture (repeatable; default all): " .. table.concat(lossnet.ORDER, ", ")):count("*")
parser:option("--layer", "Extraction layer (repeatable; default E S M L): E, S, M, L (any case), a 0-based child " ..
  "index or a torchvision module name.")
  :count("*")
parser:option("--size", "Input side for MFLOPs and feature counts.", "224")
parser:option("--csv", "Also write the table as CSV to this file.")

cli.main("attributes.lua", function()
  local args = cli.parse(parser)
  args.size = tonumber(args.size)
  if not args.size or args.size < 32 or args.size ~= math.floor(args.size) then cli.fail("--size must be an integer >= 32") end
  local archs = #args.arch > 0 and args.arch or lossnet.ORDER
  for _, a in ipairs(archs) do
    if not lossnet.ARCHS[a] then
      cli.fail("--arch %s: unknown architecture (known: %s)", a, table.concat(lossnet.ORDER, ", "))
    end
  end
  local layers
  if #args.layer > 0 then
    layers = {}
    for _, l in ipairs(args.layer) do
      local ok, list = pcall(lossnet.parse_layers, l, archs)
      if not ok then cli.fail("%s", cli.message(list)) end
      for _, x in ipairs(list) do layers[#layers + 1] = x end
    end
  end
  cli.output(args.csv, "--csv")

  local COLUMNS = {
    {"arch", "%-16s"}, {"layer", "%-5s"}, {"child", "%5s"}, {"params_layer", "%13s"}, {"params_total", "%13s"},
    {"params_frac", "%11s"}, {"depth_layer", "%11s"}, {"depth_total", "%11s"}, {"mflops_layer", "%12s"},
    {"mflops_total", "%12s"}, {"channels", "%8s"}, {"features", "%10s"}, {"top1", "%6s"}, {"skip", "%4s"},
    {"branch", "%6s"}, {"conv1x1", "%7s"}, {"batchnorm", "%9s"},
  }

  local function yes(b) return b and "yes" or "no" end

  local rows = {}
  for _, arch in ipairs(archs) do
    local a = cli.try_as("--arch " .. arch, attributes.compute, arch, {size = args.size, layers = layers})
    for _, name in ipairs(a.order) do
      local r = a.layers[name]
      rows[#rows + 1] = {
        arch = arch, layer = name, child = r.index, params_layer = r.params, params_total = a.params,
        params_frac = ("%.4g"):format(r.params / a.params), depth_layer = r.depth, depth_total = a.depth,
        mflops_layer = ("%.1f"):format(r.mflops), mflops_total = ("%.1f"):format(a.mflops),
        channels = r.channels or "", features = r.features or "", top1 = ("%.2f"):format(a.accuracy),
        skip = yes(a.flags.skip), branch = yes(a.flags.branch), conv1x1 = yes(a.flags.conv1x1),
        batchnorm = yes(a.flags.batchnorm),
      }
    end
  end

  local header, line = {}, {}
  for i, c in ipairs(COLUMNS) do header[i] = c[2]:format(c[1]) end
  print(("attributes at %d x %d (MFLOPs: multiply-adds + bias, BN, activation and pooling elements; batch 1)")
    :format(args.size, args.size))
  print(table.concat(header, " "))
  for _, r in ipairs(rows) do
    for i, c in ipairs(COLUMNS) do line[i] = c[2]:format(tostring(r[c[1]])) end
    print(table.concat(line, " "))
  end

  if args.csv then
    local names, out = {}, {}
    for i, c in ipairs(COLUMNS) do names[i] = c[1] end
    out[1] = table.concat(names, ",") .. ",size"
    for _, r in ipairs(rows) do
      local v = {}
      for i, c in ipairs(COLUMNS) do v[i] = tostring(r[c[1]]) end
      out[#out + 1] = table.concat(v, ",") .. "," .. args.size
    end
    cli.write_file(args.csv, table.concat(out, "\n") .. "\n", "--csv")
    io.stderr:write(("attributes.lua: %d rows -> %s\n"):format(#rows, args.csv))
  end
end)
