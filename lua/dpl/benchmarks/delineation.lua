-- dpl.benchmarks.delineation: Benchmark 3, road delineation on the Massachusetts Roads dataset with iterative
-- refinement and a deep perceptual loss (docs/benchmarks/delineation.md). A 4-level U-Net (lua/dpl/models/unet.lua)
-- refines its own road map K times; it is trained with the iteration-weighted BCE plus mu times the iteration-weighted
-- feature MSE at one layer of a frozen loss network, and scored by completeness, correctness and quality.
--
-- This module is what is specific to delineation; lua/dpl/benchmarks/runner.lua does the sweep (architecture and layer
-- lists, weights, configuration hash, resume, results store, --json, tables): experiments/delineation.lua is
--   require("dpl.benchmarks.runner").main(require "dpl.benchmarks.delineation", arg)
-- The pieces are also usable on their own:
--   local D = require "dpl.benchmarks.delineation"
--   local train = D.train_set("data/mass_roads", {seed = 1})          -- random 224 crops + flips of full tiles
--   local loss, bce, mse = D.loss(net, crit, batch.image, batch.mask, {K = 3, mu = 0.01})
--   local r = D.evaluate(net, D.eval_set("data/mass_roads", "test"), {K = 3, tolerance = 3, save = "out"})
--   local net, meta = D.load_model("model.safetensors")                -- a trained U-Net (dpl or PyTorch file)
local ffi = require "ffi"
local dpl = require "dpl"
local tf = dpl.transforms
local F = require "dpl.nn.functional"
local mrd = require "dpl.data.mrd"
local files = require "dpl.data.files"
local dataset = require "dpl.data.dataset"
local metrics = require "dpl.metrics.delineation"
local unet = require "dpl.models.unet"
local perceptual = require "dpl.perceptual"
local optim = require "dpl.optim"
local trainer = require "dpl.train.trainer"
local progress = require "dpl.progress"
local checkpoint = require "dpl.checkpoint"
local results = require "dpl.results"
local json = require "dpl.json"

local B = {name = "delineation",
           description = "Benchmark 3: a U-Net refining its road map K times on the Massachusetts Roads dataset, trained "
             .. "with BCE + mu x one loss network's feature MSE; completeness, correctness and quality."}

B.SIZE = 224                    -- training crops and the evaluation resize (the protocol)
B.MEASURES = {"completeness", "correctness", "quality"}
B.RELAXED = {"relaxed_completeness", "relaxed_correctness", "relaxed_quality"}
-- --quick: a named, recorded configuration that runs in minutes on a CPU
B.QUICK = {train = 8, epochs = 2}   -- validation and evaluation on every image given

local strip = require("dpl.cli").message   -- an error's message without the Lua position

-- ---- data ----------------------------------------------------------------------------------------------------------
-- The files of sample i, for messages.
local function names_of(ds, i)
  local f = ds:files(i)
  return f[1][1], f[2][1]
end

-- A mask must be the image's size and hold only 0 and 255 (0 and 1 after decoding): one line naming the file otherwise.
local function check_pair(ds, i, s)
  local img, mask = s.image, s.mask
  if img:size(2) ~= mask:size(2) or img:size(3) ~= mask:size(3) then
    local ip, mp = names_of(ds, i)
    error(("mask %s is %dx%d but its image %s is %dx%d"):format(mp, mask:size(3), mask:size(2), ip, img:size(3),
      img:size(2)), 0)
  end
  local buf, n = mask:contiguous():float_data()
  for k = 0, n - 1 do
    local v = buf[k]
    if v ~= 0 and v ~= 1 then
      local _, mp = names_of(ds, i)
      error(("mask %s holds the value %d: road masks must hold only 0 and 255"):format(mp, math.floor(v * 255 + 0.5)), 0)
    end
  end
end

-- Opens a split, with a clear message when it is missing; opts.limit keeps the first N (sorted) samples.
local function open_split(root, split, limit)
  local ok, ds = pcall(mrd.dataset, split, {root = root})
  if not ok then error(strip(ds), 0) end
  if limit and limit < #ds.stems then
    local stems = {}
    for i = 1, limit do stems[i] = ds.stems[i] end
    ds.stems = stems
  end
  ds.root, ds.split = root, split
  return ds
end

-- The training set: per sample a random size x size crop of the full-resolution image and the same crop of the mask,
-- then a horizontal flip of both with probability 1/2. The crop and the flip are drawn from a generator seeded by
-- (seed, epoch, sample): the same in every run and on resume, whatever the batch order. ds.epoch is set per epoch.
function B.train_set(root, opts)
  opts = opts or {}
  local ds = open_split(root, "train", opts.limit)
  local size, seed = opts.size or B.SIZE, opts.seed or 0
  ds.epoch = 1
  ds.transform = function(s, i)
    check_pair(ds, i, s)
    if s.image:size(2) < size or s.image:size(3) < size then
      local ip = names_of(ds, i)
      error(("image %s (%dx%d) is smaller than the %d x %d training crop"):format(ip, s.image:size(3), s.image:size(2),
        size, size), 0)
    end
    local rng = tf.rng(((seed * 1000003 + ds.epoch) * 1000003 + i) % 9007199254740992)
    local top, left = rng:randint(1, s.image:size(2) - size + 1), rng:randint(1, s.image:size(3) - size + 1)
    local img, mask = tf.crop(s.image, top, left, size, size), tf.crop(s.mask, top, left, size, size)
    if rng:random() < 0.5 then img, mask = tf.hflip(img), tf.hflip(mask) end
    return {image = img:contiguous(), mask = mask:contiguous(), name = s.name}
  end
  return ds
end

-- A validation or test set: the whole image and its mask resized to size x size, bilinear without antialiasing
-- (torchvision's tensor resize, as the reference).
function B.eval_set(root, split, opts)
  opts = opts or {}
  local ds = open_split(root, split, opts.limit)
  local size = opts.size or B.SIZE
  ds.transform = function(s, i)
    check_pair(ds, i, s)
    return {image = tf.resize_tensor(s.image, {size, size}):contiguous(),
            mask = tf.resize_tensor(s.mask, {size, size}):contiguous(), name = s.name}
  end
  return ds
end

-- ---- the loss ------------------------------------------------------------------------------------------------------
local function rep3(m) return dpl.cat({m, m, m}, 2) end

-- The training loss of one batch (docs/benchmarks/delineation.md, "Iterations and loss"): the K maps of the refinement,
-- loss = sum_k k BCE(map_k, y) / (K(K+1)/2) + mu sum_k k MSE(phi(map_k), phi(y)) / (K(K+1)/2), phi = crit's loss network
-- on the map repeated to 3 channels (ImageNet normalisation is crit's). The loss network sees map_1 .. map_K, then the
-- target (the reference's order, which decides a training-mode loss network's running statistics). crit = nil: BCE
-- only. Returns loss, bce, mse (tensors; mse nil without crit) and the maps.
function B.loss(net, crit, rgb, mask, opts)
  local K, mu = opts.K or 3, opts.mu or 0.01
  local maps = unet.refine(net, rgb, K)
  local coeff = K * (K + 1) / 2
  local bce, mse
  for k = 1, K do
    local term = F.binary_cross_entropy(maps[k], mask) * (k / coeff)
    bce = bce and bce + term or term
  end
  if crit then
    local feats = {}
    for k = 1, K do feats[k] = crit:features(rep3(maps[k])) end
    local target = dpl.no_grad(function() return crit:features(rep3(mask)) end)
    for k = 1, K do
      local term = F.mse_loss(feats[k], target) * (k / coeff)
      mse = mse and mse + term or term
    end
    return bce + mse * mu, bce, mse, maps
  end
  return bce, bce, nil, maps
end

-- ---- validation and test -------------------------------------------------------------------------------------------
-- The reference's validation number: the sum over batches (of opts.batch, 8) of the mean BCE of the last iteration.
function B.validate(net, data, opts)
  local sum, n = 0, 0
  for batch in dataset.batches(data, {batch_size = opts.batch or 8, device = opts.device}) do
    local maps = unet.refine(net, batch.image, opts.K or 3)
    sum, n = sum + F.binary_cross_entropy(maps[#maps], batch.mask):item(), n + 1
  end
  if n == 0 then error("delineation: the validation split has no image that can be read", 0) end
  return sum
end

-- An 8-bit probability map (1 x H x W) per iteration, the input and its ground truth as the network saw them
-- (<stem>_image.png, <stem>_gt.png) and a colour overlay: the aerial image at half brightness, true positives green,
-- false positives red, false negatives blue (thresholds of dpl.metrics.delineation).
local function save_outputs(dir, name, rgb, maps, gt)
  for k, m in ipairs(maps) do dpl.image.save(m, ("%s/%s_k%d.png"):format(dir, name, k)) end
  dpl.image.save(rgb, ("%s/%s_image.png"):format(dir, name))
  dpl.image.save(gt, ("%s/%s_gt.png"):format(dir, name))
  local h, w = gt:size(2), gt:size(3)
  local n = h * w
  local pb = maps[#maps]:contiguous():float_data()
  local gb = gt:contiguous():float_data()
  local ib = rgb:contiguous():float_data()
  local out = ffi.new("float[?]", 3 * n)
  local pt, gtt = tonumber(ffi.new("float", metrics.PRED_THRESHOLD)), tonumber(ffi.new("float", metrics.GT_THRESHOLD))
  for i = 0, n - 1 do
    local p, g = pb[i] > pt, gb[i] > gtt
    local r, gr, bl = ib[i] * 0.5, ib[n + i] * 0.5, ib[2 * n + i] * 0.5
    if p and g then r, gr, bl = 0, 1, 0 elseif p then r, gr, bl = 1, 0, 0 elseif g then r, gr, bl = 0, 0.4, 1 end
    out[i], out[n + i], out[2 * n + i] = r, gr, bl
  end
  dpl.image.save(dpl.from_pointer(out, {3, h, w}, {device = "cpu"}), ("%s/%s_overlay.png"):format(dir, name))
end

local function mean_of(images, key, k)
  local s, c = 0, 0
  for _, img in ipairs(images) do
    local v = img.iterations[k][key]
    if v == v then s, c = s + v, c + 1 end
  end
  return c > 0 and s / c or 0 / 0, c
end

-- Scores a network on an evaluation set: K iterations per image (eval mode, the unthresholded map fed back), the
-- strict scores of every iteration (and the relaxed ones with opts.tolerance > 0) per image. Returns
--   {images = {{name, iterations = {{completeness, ...} per k}}}, per_iteration = {{completeness, ...} per k: means over
--    the images where the measure is defined}, final = per_iteration[K], published = the reference script's
--    accumulated numbers (dpl.metrics.delineation.accumulate_published; an undefined score adds 0), undefined =
--    {measure -> images left out of the last iteration's mean}}
-- opts: K, tolerance, device, batch (8), save (a folder for the PNGs), save_limit (save the first N images only),
-- quiet.
function B.evaluate(net, data, opts)
  opts = opts or {}
  local K = opts.K or 3
  net:evaluate()
  if opts.save then files.mkdir(opts.save) end
  local images, by_iteration = {}, {}
  for k = 1, K do by_iteration[k] = {} end
  local bar = progress.new({total = data:len(), label = "test " .. (data.split or ""), unit = "img", quiet = opts.quiet})
  for batch in dataset.batches(data, {batch_size = opts.batch or 8, device = opts.device}) do
    local maps = dpl.no_grad(function() return unet.refine(net, batch.image, K) end)
    for k = 1, K do maps[k] = maps[k]:to("cpu") end
    local rgb = batch.image:to("cpu")
    local mask = batch.mask:to("cpu")
    for j, name in ipairs(batch.name) do
      local gt = mask:select(1, j)
      local img = {name = name, iterations = {}}
      local own = {}
      for k = 1, K do
        own[k] = maps[k]:select(1, j)
        local s = metrics.scores(own[k], gt, {tolerance = opts.tolerance})
        img.iterations[k] = s
        by_iteration[k][#by_iteration[k] + 1] = s
      end
      images[#images + 1] = img
      if opts.save and #images <= (opts.save_limit or math.huge) then
        save_outputs(opts.save, name, rgb:select(1, j), own, gt)
      end
    end
    bar:update(#batch.name)
  end
  bar:finish()
  if #images == 0 then error("delineation: the evaluation split has no image that can be read", 0) end
  local keys = {unpack(B.MEASURES)}
  if opts.tolerance and opts.tolerance > 0 then for _, k in ipairs(B.RELAXED) do keys[#keys + 1] = k end end
  local per_iteration, undefined = {}, {}
  for k = 1, K do
    local row = {}
    for _, key in ipairs(keys) do
      local v, c = mean_of(images, key, k)
      row[key] = v
      if k == K then undefined[key] = #images - c end
    end
    per_iteration[k] = row
  end
  return {images = images, per_iteration = per_iteration, final = per_iteration[K], undefined = undefined,
          published = metrics.accumulate_published(by_iteration, keys, {undefined_as_zero = true}), keys = keys}
end

-- ---- the model file ------------------------------------------------------------------------------------------------
-- Writes the U-Net as a safetensors file (the reference's state_dict names) with its provenance.
function B.save_model(net, path, meta) checkpoint.save_model(net, path, "delineation", meta) end

-- A trained U-Net from a file: a model file this benchmark wrote, a trainer checkpoint (its best weights), or a
-- PyTorch state_dict of the reference's U-Net (.pth, also the reference's {"net": state_dict}). meta holds arch, layer,
-- epoch when the file has them.
function B.load_model(path, opts)
  opts = opts or {}
  local tensors, meta = checkpoint.read_model(path, "delineation", {"arch", "layer", "epoch"})
  local sd = trainer.model_tensors(tensors, "d1.layer.down_1_conv.weight")
  if not sd then
    error(("--checkpoint %s is not a U-Net of this benchmark (no d1.layer.down_1_conv.weight)"):format(path), 0)
  end
  for k in pairs(sd) do
    if not k:match("^[du]%d%.layer%.") then sd[k] = nil end   -- e.g. a trainer checkpoint's other modules
  end
  local net = unet.new({device = opts.device})
  local ok2, err = pcall(net.load_state_dict, net, sd)
  if not ok2 then error(("--checkpoint %s does not fit the U-Net: %s"):format(path, strip(err)), 0) end
  net:evaluate()
  return net, meta
end

-- ---- scores <-> JSON -----------------------------------------------------------------------------------------------
-- The store keeps flat name -> number scores; everything the --json entry shows is among them:
--   test.<measure> (the --eval mode's numbers: the names docs/analysis.md reads), test.k<k>.<measure> (means of
--   iteration k), test.published.<measure> (the reference script's accumulation), test.image.<stem>.<measure> (the last
--   iteration), test.images, test.undefined.<measure>, val_bce.<epoch>, train_loss.<epoch> (3 digits), val_bce.best,
--   best_epoch, epochs_run; <measure> includes relaxed_* with --tolerance
function B.flat_scores(r, eval_mode, train)
  local s = {}
  local K = #r.per_iteration
  local main = eval_mode == "faithful" and r.published or r.final
  for _, key in ipairs(r.keys) do
    s["test." .. key] = main[key]
    s["test.published." .. key] = r.published[key]
    s["test.undefined." .. key] = r.undefined[key]
    for k = 1, K do s[("test.k%d.%s"):format(k, key)] = r.per_iteration[k][key] end
    for _, img in ipairs(r.images) do s[("test.image.%s.%s"):format(img.name, key)] = img.iterations[K][key] end
  end
  s["test.images"], s["test.K"] = #r.images, K
  if train then
    for e, v in ipairs(train.val) do s[("val_bce.%03d"):format(e)] = v end
    for e, v in ipairs(train.train_loss) do s[("train_loss.%03d"):format(e)] = v end
    s["val_bce.best"], s.best_epoch, s.epochs_run = train.best_metric, train.best_epoch, train.epochs_run
  end
  for k, v in pairs(s) do if v ~= v then s[k] = nil end end   -- NaN (no defined value) is left out
  return s
end

-- The --json entry of one run (the issue's shape) from its flat scores and configuration.
function B.json_entry(arch, layer, config, scores)
  local function series(prefix) return require("dpl.benchmarks.report").epoch_series(scores, prefix) end
  local keys = {unpack(B.MEASURES)}
  if (config.tolerance or 0) > 0 then for _, k in ipairs(B.RELAXED) do keys[#keys + 1] = k end end
  local test = {split = config.split, eval = config.eval, per_iteration = json.array({}), images = json.array({}),
                published = {}}
  for _, key in ipairs(keys) do
    test[key] = scores["test." .. key]
    test.published[key] = scores["test.published." .. key]
  end
  for k = 1, scores["test.K"] or 0 do
    local row = {}
    for _, key in ipairs(keys) do row[key] = scores[("test.k%d.%s"):format(k, key)] end
    test.per_iteration[k] = row
  end
  local stems = {}
  for k in pairs(scores) do
    local stem = k:match("^test%.image%.(.+)%.quality$") or k:match("^test%.image%.(.+)%.completeness$")
      or k:match("^test%.image%.(.+)%.correctness$")
    if stem and not stems[stem] then stems[stem] = true; stems[#stems + 1] = stem end
  end
  table.sort(stems)
  for i, stem in ipairs(stems) do
    local img = {name = stem}
    for _, key in ipairs(keys) do img[key] = scores[("test.image.%s.%s"):format(stem, key)] end
    test.images[i] = img
  end
  return {arch = arch, layer = layer, config = config, epochs_run = scores.epochs_run or 0, best_epoch = scores.best_epoch,
          val_bce = series("val_bce"), train_loss = series("train_loss"), test = test}
end

-- ---- the runner's contract (lua/dpl/benchmarks/runner.lua) ---------------------------------------------------------
local positive = require("dpl.benchmarks.runner").positive

local function nonnegative(name)
  return function(v)
    local n = tonumber(v)
    if not n or n < 0 then return nil, ("--%s must be a number >= 0, got %s"):format(name, v) end
    return n
  end
end

function B.arguments(parser)
  parser:option("--data", "The Massachusetts Roads folder, holding train/, valid/ (or val/) and test/ as {sat,map} or "
    .. "{input,output}, or images/ + masks/ (one set used for every split). Default: $DPL_DATA/mass_roads "
    .. "(dplrun data/fetch.lua mrd).")
  parser:option("--epochs", "Training epochs.", "100"):convert(positive("epochs"))
  parser:option("--batch", "Batch size.", "8"):convert(positive("batch"))
  parser:option("--lr", "Adam's learning rate.", "1e-3"):convert(tonumber)
  parser:option("--K", "Refinement iterations (training and test).", "3"):convert(positive("K"))
  parser:option("--mu", "Weight of the perceptual term.", "0.01"):convert(nonnegative("mu"))
  parser:option("--seed", "Seed of the initial weights, the data order and the crops.", "1"):convert(tonumber)
  parser:option("--limit-train", "Use only the first N training images."):convert(positive("limit-train"))
  parser:option("--limit-val", "Use only the first N validation images."):convert(positive("limit-val"))
  parser:option("--limit-test", "Use only the first N evaluation images."):convert(positive("limit-test"))
  parser:option("--eval", "fixed: the test split, the last iteration's scores averaged over images; faithful: the "
    .. "reference script (the validation split, scores accumulated over iterations).", "fixed")
    :choices({"fixed", "faithful"})
  parser:option("--split", "The split scored (default: test for --eval fixed, valid for --eval faithful).")
    :choices({"train", "valid", "val", "test"})
  parser:option("--lossnet-mode", "The loss network's batch norms while training: train (batch statistics, as the "
    .. "reference code) or eval (running statistics).", "train"):choices({"train", "eval"})
  parser:flag("--no-perceptual", "BCE only (the baseline without a loss network).")
  parser:option("--tolerance", "Also report relaxed completeness/correctness/quality with a buffer of PX pixels "
    .. "(0: strict only).", "0"):convert(nonnegative("tolerance"))
  parser:option("--size", "Side of the training crops and of the evaluation resize (the protocol: 224; a multiple of "
    .. "16; recorded in the configuration).", "224"):convert(positive("size"))
  parser:option("--save", "Write per evaluated image DIR/<stem>_k<k>.png (the map of iteration k), "
    .. "DIR/<stem>_overlay.png (green: found, red: false, blue: missed), the input <stem>_image.png and its ground "
    .. "truth <stem>_gt.png.")
  parser:option("--save-limit", "With --save: only the first N evaluated images."):convert(positive("save-limit"))
  parser:option("--checkpoint", "Score this trained U-Net (a file this benchmark wrote, a trainer checkpoint or a "
    .. "PyTorch state_dict of the reference U-Net) instead of training.")
  parser:option("--checkpoint-minutes", "Minutes of training between checkpoints within an epoch.", "10"):convert(tonumber)
  parser:flag("--quick", ("A short recorded configuration: the first %d training images, %d epochs (unless "
    .. "--limit-train / --epochs say otherwise); validation and evaluation on every image given."):format(B.QUICK.train,
    B.QUICK.epochs))
end

function B.setup(args)
  if args.size % 16 ~= 0 then error(("--size %d is not a multiple of 16 (the U-Net halves it 4 times)"):format(args.size), 0) end
  local ctx = {root = args.data or (files.data_root() .. "/mass_roads")}
  ctx.split = args.split or (args.eval == "faithful" and "valid" or "test")
  if ctx.split == "val" then ctx.split = "valid" end
  ctx.epochs = args.epochs
  if args.quick and args.epochs == 100 then ctx.epochs = B.QUICK.epochs end
  local q = args.quick and B.QUICK or {}
  local opts = {size = args.size, seed = args.seed}
  if args.checkpoint then
    if not io.open(args.checkpoint, "rb") then error("--checkpoint " .. args.checkpoint .. ": no such file", 0) end
  else
    opts.limit = args.limit_train or q.train
    ctx.train = B.train_set(ctx.root, opts)
    ctx.val = B.eval_set(ctx.root, "valid", {size = args.size, limit = args.limit_val})
  end
  ctx.test = B.eval_set(ctx.root, ctx.split, {size = args.size, limit = args.limit_test})
  return ctx
end

function B.describe(ctx)
  local parts = {}
  if ctx.train then parts[#parts + 1] = ("train %d, valid %d images"):format(ctx.train:len(), ctx.val:len()) end
  parts[#parts + 1] = ("%s %d images (%s)"):format(ctx.split, ctx.test:len(), ctx.root)
  return table.concat(parts, "; ")
end

-- cells: every (arch, layer); with --no-perceptual one BCE-only cell; with --checkpoint the one network in the file
function B.cells(args, archs, layers)
  if args.checkpoint then
    local ok, _, _, metafn = pcall(checkpoint.load_tensors, args.checkpoint, "cpu")
    local arch = ok and metafn and metafn("delineation.arch") or ""
    local layer = ok and metafn and metafn("delineation.layer") or ""
    return {{arch = arch ~= "" and arch or nil, layer = layer ~= "" and layer or "checkpoint", weights = false}}
  end
  if args.no_perceptual then return {{layer = "bce", weights = false}} end
  local cells = {}
  local lossnet = require "dpl.models.lossnet"
  for _, a in ipairs(archs) do   -- each layer under its canonical name (E/S/M/L, else the module name), as the runner
    for _, l in ipairs(layers) do cells[#cells + 1] = {arch = a, layer = lossnet.layer_label(a, l)} end
  end
  return cells
end

local function describe_set(ds)
  return {source = ds.root, split = ds.split, images = ds:len()}
end

-- what decides the trained network (its hash names the training checkpoint, so that another --eval, --split,
-- --tolerance or --limit-test reuses the trained network)
local function training_config(args, ctx, cell)
  return {experiment = B.name, arch = cell.arch, layer = cell.layer, weights_sha256 = cell.weights_sha256,
          train = describe_set(ctx.train), val = describe_set(ctx.val), epochs = ctx.epochs, batch = args.batch,
          lr = args.lr, K = args.K, mu = args.no_perceptual and 0 or args.mu, seed = args.seed, size = args.size,
          lossnet_mode = not args.no_perceptual and args.lossnet_mode or nil, perceptual = not args.no_perceptual}
end

function B.config(args, ctx, cell)
  local c = {eval = args.eval, split = ctx.split, test = describe_set(ctx.test), K = args.K, size = args.size,
             tolerance = args.tolerance, model = "unet4 (docs/benchmarks/delineation.md)"}
  if args.checkpoint then
    c.checkpoint = args.checkpoint
    c.checkpoint_sha256 = require("dpl.download").sha256(args.checkpoint)
    return c
  end
  c.preset = args.quick and "quick" or ((args.limit_train or args.limit_val or ctx.epochs ~= 100 or args.batch ~= 8 or
    args.lr ~= 1e-3 or args.K ~= 3 or args.mu ~= 0.01 or args.size ~= B.SIZE) and "custom" or "paper")
  for k, v in pairs(training_config(args, ctx, cell)) do
    if k ~= "experiment" and k ~= "arch" and k ~= "layer" and k ~= "weights_sha256" then c[k] = v end
  end
  c.loss = args.no_perceptual and "iteration-weighted BCE" or ("iteration-weighted BCE + mu x iteration-weighted "
    .. "feature MSE, loss network frozen, %s mode, ImageNet normalisation"):format(args.lossnet_mode)
  return c
end

function B.run(args, ctx, cell)
  local device = cell.device
  local t0 = progress.now()
  local timing = {}
  local net, train
  if args.checkpoint then
    net = B.load_model(args.checkpoint, {device = device})
  else
    -- the training checkpoint lives in a folder named by the training configuration only (see training_config)
    local thash = results.config_hash(training_config(args, ctx, cell))
    local workdir = (cell.workdir:match("^(.*)/[^/]*$") or ".") .. "/train-" .. thash:sub(1, 16)
    files.mkdir(workdir)
    net = unet.new({seed = args.seed, device = device})
    local crit
    if not args.no_perceptual then
      crit = perceptual.loss{arch = cell.arch, layer = cell.layer, weights = cell.weights, name_map = cell.name_map,
                             normalize = true, mode = args.lossnet_mode, device = device}
    end
    local opt = optim.Adam(net:parameters(), {lr = args.lr})
    local data = ctx.train
    local label = cell.arch and ("%s %s"):format(cell.arch, cell.layer) or "BCE only"
    train = trainer.fit{
      model = net, optimizer = opt, seed = args.seed, device = device, epochs = ctx.epochs, label = label,
      batch_size = args.batch,
      batches = function(epoch, start)
        data.epoch = epoch   -- the crops and flips of this epoch (B.train_set)
        return dataset.batches(data, {batch_size = args.batch, shuffle = true, seed = args.seed, epoch = epoch,
                                      device = device, start = start})
      end,
      num_batches = function() return math.ceil(data:len() / args.batch) end,
      metric = "val BCE", direction = "min",
      checkpoint = workdir .. "/train.ckpt", checkpoint_every_s = (args.checkpoint_minutes or 10) * 60,
      config_hash = thash, modules = {crit},
      step = function(batch)
        cell.touch()   -- the claim's heartbeat (runner.lua): other processes leave this cell to us while it trains
        return (B.loss(net, crit, batch.image, batch.mask, {K = args.K, mu = args.mu}))
      end,
      validate = function() return B.validate(net, ctx.val, {K = args.K, device = device, batch = args.batch}) end,
    }
    if train.stopped then error("stopped by a signal; rerun the same command to resume", 0) end
    timing.train_s = progress.now() - t0
    B.save_model(net, workdir .. ("/model_%s_%s.safetensors"):format(cell.arch or "bce", cell.layer),
      {arch = cell.arch, layer = cell.layer, epoch = train.best_epoch})
  end
  local t1 = progress.now()
  local r = B.evaluate(net, ctx.test, {K = args.K, tolerance = args.tolerance, device = device, save = args.save,
                                       save_limit = args.save_limit, batch = args.batch})
  timing.test_s = progress.now() - t1
  return B.flat_scores(r, args.eval, train), timing
end

function B.summary(scores)
  local parts = {}
  if scores.best_epoch then
    parts[#parts + 1] = ("best epoch %d (val BCE %.4f)"):format(scores.best_epoch, scores["val_bce.best"] or 0 / 0)
  end
  parts[#parts + 1] = ("completeness %.3f, correctness %.3f, quality %.3f"):format(scores["test.completeness"] or 0 / 0,
    scores["test.correctness"] or 0 / 0, scores["test.quality"] or 0 / 0)
  return table.concat(parts, ", ")
end

function B.json(cell, scores)
  return B.json_entry(cell.arch, cell.layer, cell.config, scores)
end

-- Table X from stored runs: rows = architectures by family, columns = correctness, completeness, quality x layers.
function B.table(runs, opts)
  opts = opts or {}
  local report = require "dpl.benchmarks.report"
  local columns = {{key = "test.correctness", label = "Correctness"}, {key = "test.completeness", label = "Completeness"},
                   {key = "test.quality", label = "Quality"}}
  local text = "Table X: road delineation on the Massachusetts Roads dataset (strict per-pixel scores)\n" ..
    report.paper_table(runs, columns, {digits = 3, config = opts.config, all_configs = opts.all_configs})
  -- runs outside the grid, one line each below it: the BCE-only baseline (--no-perceptual) and networks scored with
  -- --checkpoint whose file does not name its loss network
  local lines = {text}
  for _, r in ipairs(runs) do
    if r.scores and (r.layer == "bce" or not r.arch) then
      local ok, c = true, r.config
      if type(c) ~= "table" then ok, c = pcall(json.decode, c or "{}") end
      lines[#lines + 1] = ("%s, run %s%s: correctness %.3f, completeness %.3f, quality %.3f"):format(
        r.layer == "bce" and "BCE only (no loss network)" or ("--checkpoint " .. tostring(ok and c.checkpoint or "?")),
        tostring(r.id or "?"), ok and c.eval and (", eval " .. c.eval) or "",
        r.scores["test.correctness"] or 0 / 0, r.scores["test.completeness"] or 0 / 0, r.scores["test.quality"] or 0 / 0)
    end
  end
  return table.concat(lines, "\n")
end

return B
