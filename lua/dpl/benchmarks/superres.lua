-- dpl.benchmarks.superres: Benchmark 2, super-resolution trained with a deep perceptual loss (docs/benchmarks/
-- superres.md). A transformation network (lua/dpl/models/superres.lua) learns to upscale x4 or x8 with the feature MSE
-- at one layer of a frozen loss network as its only loss; it is tested on Set5, Set14 and BSD100.
--
-- This module is what is specific to super-resolution; lua/dpl/benchmarks/runner.lua does the sweep (architecture and
-- layer lists, weights, configuration hash, resume, results store, --json, tables): experiments/superres.lua is
--   require("dpl.benchmarks.runner").main(require "dpl.benchmarks.superres", arg)
-- The pieces are also usable on their own:
--   local sr = require "dpl.benchmarks.superres"
--   local ds = sr.dataset("photos/", {scale = 4})              -- samples {hr = 3x288x288, lr = 3x72x72, name}
--   local scores = sr.evaluate(net, {sr.test_set("data/Set5/image_SRF_2", 4)}, {save = "out"})
--   local net, meta = sr.load_model("model.safetensors")      -- a trained network (dpl or PyTorch file)
local dpl = require "dpl"
local tf = dpl.transforms
local folders = require "dpl.data.folders"
local files = require "dpl.data.files"
local dataset = require "dpl.data.dataset"
local metrics = require "dpl.metrics.sr"
local superres = require "dpl.models.superres"
local perceptual = require "dpl.perceptual"
local optim = require "dpl.optim"
local trainer = require "dpl.train.trainer"
local progress = require "dpl.progress"
local checkpoint = require "dpl.checkpoint"
local json = require "dpl.json"

local B = {name = "superres",
           description = "Benchmark 2: a x4/x8 super-resolution network trained with one loss network's feature MSE, "
             .. "tested on Set5, Set14 and BSD100 (PSNR/SSIM variants of the reference code, and the full-image protocol)."}

B.HR = 288                        -- the side of the HR crops (training, validation and the reference test protocol)
B.METRICS = {"psnr", "ssim", "psnr_2", "tensor_ssim"}
-- --quick: a named, recorded configuration that runs in minutes on a laptop CPU
B.QUICK = {train = 200, val = 20, epochs = 2, test = {"Set5"}}

-- ---- data ----------------------------------------------------------------------------------------------------------
-- The pair of spec "Data": from the original image (3 x H x W in [0,1], 8-bit values), HR = Resize(288) (shorter side,
-- Pillow bilinear with antialiasing) + CenterCrop(288); LR = Pillow GaussianBlur(1) of the original, then
-- Resize(288/f, bicubic) + CenterCrop(288/f). LR is not made from the HR crop: both come from the original.
function B.make_pair(img, scale, size)
  size = size or B.HR
  local lr_side = math.floor(size / scale)
  local hr = tf.center_crop(tf.resize(img, size), size):contiguous()
  local lr = tf.center_crop(tf.resize(tf.gaussian_blur(img, 1), lr_side, {interpolation = "bicubic"}), lr_side)
  return hr, lr:contiguous()
end

-- The conventional full-image protocol (examples/sr_baseline.lua): HR = the image cropped to a multiple of f (top
-- left, MATLAB's modcrop), LR = MATLAB bicubic imresize(HR, 1/f).
function B.make_full_pair(img, scale)
  local h, w = img:size(2), img:size(3)
  local hr = tf.crop(img, 1, 1, h - h % scale, w - w % scale):contiguous()
  return hr, tf.imresize(hr, 1 / scale)
end

-- The image files of a folder: a SelfExSR folder (img_NNN_SRF_s_HR.png beside its LR files) gives its HR files only.
local function image_folder(dir, opts)
  local list = files.list(dir)
  if not list then
    error(("%s: no such folder (expected a folder of images%s)"):format(dir, opts.fetch and
      ("; fetch it with: dplrun data/fetch.lua " .. opts.fetch) or ""), 0)
  end
  local hr = {}
  for _, n in ipairs(list) do if n:find("_HR%.png$") then hr[#hr + 1] = n end end
  local ok, ds = pcall(folders.folder, dir, {names = #hr > 0 and hr or nil})
  if not ok then error(tostring(ds):gsub("^.-:%d+: ", "") .. (opts.fetch and
    ("; fetch it with: dplrun data/fetch.lua " .. opts.fetch) or ""), 0) end
  return ds
end

-- A training/validation/test dataset over a folder (or an image-folder dataset): samples {hr, lr, name}, plus the
-- full-image pair {full_hr, full_lr} with opts.full. opts: scale (4), size (the HR side, 288), limit (the first N
-- images), full, on_error.
function B.dataset(src, opts)
  opts = opts or {}
  local scale = opts.scale or 4
  local ds = type(src) == "string" and image_folder(src, opts) or src
  if opts.limit and opts.limit < #ds.names then
    local names = {}
    for i = 1, opts.limit do names[i] = ds.names[i] end
    ds.names = names
  end
  ds.key = "image"
  ds.lr_names = nil
  ds.transform = function(s)
    local out = {name = s.name}
    out.hr, out.lr = B.make_pair(s.image, scale, opts.size)
    if opts.full then out.full_hr, out.full_lr = B.make_full_pair(s.image, scale) end
    return out
  end
  ds.on_error = opts.on_error
  return ds
end

-- A test set: {name, dir, data} for a folder; the set is named by its folder (a SelfExSR image_SRF_s folder by its
-- parent: data/Set5/image_SRF_2 is "Set5").
function B.test_set(dir, scale, opts)
  opts = opts or {}
  local clean = dir:gsub("/+$", "")
  local base = clean:match("([^/]+)$") or clean
  local name = base
  if base:match("^image_SRF_%d+$") then name = clean:match("([^/]+)/[^/]+$") or base end
  local set = {name = name, dir = dir, skipped = 0}
  set.data = B.dataset(dir, {scale = scale, size = opts.size, full = true, limit = opts.limit, fetch = opts.fetch,
    on_error = function(i, msg)
      set.skipped = set.skipped + 1
      io.stderr:write(("superres: %s: skipped an image that cannot be read: %s\n"):format(name, msg))
    end})
  return set
end

-- the default test sets under the data root: Set5 and Set14 (SelfExSR's scale-2 HR files, as the reference code; the
-- scale-4 files when only those are there) and BSD100
function B.default_test_dirs()
  local root = files.data_root()
  local out = {}
  for _, s in ipairs {{"Set5", "set5"}, {"Set14", "set14"}} do
    local d = root .. "/" .. s[1] .. "/image_SRF_2"
    if not files.is_dir(d) and files.is_dir(root .. "/" .. s[1] .. "/image_SRF_4") then
      d = root .. "/" .. s[1] .. "/image_SRF_4"
    end
    out[#out + 1] = {dir = d, fetch = s[2]}
  end
  out[#out + 1] = {dir = root .. "/BSDS300/images/test", fetch = "bsd100"}
  return out
end

-- ---- the model -----------------------------------------------------------------------------------------------------
-- A trained network from a file: a dpl checkpoint (safetensors: the model file this benchmark writes, or a trainer
-- checkpoint, whose best weights are taken) or a PyTorch state_dict (.pth). The scale comes from the file's layers
-- (x4: 8 blocks, x8: 9); meta holds arch / layer / scale / epoch when the file has them. opts.scale must agree.
function B.load_model(path, opts)
  opts = opts or {}
  local tensors, meta = checkpoint.read_model(path, "superres", {"arch", "layer", "epoch"})
  local sd = require("dpl.train.trainer").model_tensors(tensors, "layers.0.conv_layer.weight") or {}
  local top = -1
  for k in pairs(sd) do
    local i = k:match("^layers%.(%d+)%.")
    if i then top = math.max(top, tonumber(i)) end
  end
  local scale = ({[7] = 4, [8] = 8})[top]
  if not scale then
    error(("--checkpoint %s is not a super-resolution network of this benchmark (expected layers.0 .. layers.7 for x4 "
      .. "or layers.8 for x8, found %s)"):format(path, top >= 0 and ("layers up to " .. top) or "no layers.* tensors"), 0)
  end
  if opts.scale and opts.scale ~= scale then
    error(("--checkpoint %s is a x%d network, but --scale %d was asked for"):format(path, scale, opts.scale), 0)
  end
  meta.scale = scale
  local net = superres.new({scale = scale, device = opts.device})
  local ok2, err = pcall(net.load_state_dict, net, sd)
  if not ok2 then error(("--checkpoint %s does not fit the x%d network: %s"):format(path, scale, tostring(err)), 0) end
  net:evaluate()
  return net, meta
end

-- Writes the network as a safetensors file (state_dict names as the PyTorch module's) with its provenance.
function B.save_model(net, path, meta) checkpoint.save_model(net, path, "superres", meta) end

-- ---- validation and test -------------------------------------------------------------------------------------------
-- The validation PSNR of the reference code: per batch of 4, torchmetrics-style PSNR on the Y channel (16..235) with
-- the batch's HR Y range as data range, averaged weighted by batch size.
function B.validate(net, data, device)
  local sum, n = 0, 0
  for batch in dataset.batches(data, {batch_size = 4, device = device}) do
    local out = net:forward(batch.lr)
    local k = batch.lr:size(1)
    sum, n = sum + metrics.batch_psnr(out:to("cpu"), batch.hr:to("cpu")) * k, n + k
  end
  if n == 0 then error("superres: no validation image could be read", 0) end
  return sum / n
end

local function mean(list, key)
  local s, n = 0, 0
  for _, r in ipairs(list) do if r[key] then s, n = s + r[key], n + 1 end end
  return n > 0 and s / n or nil
end


-- Scores the network on test sets (batch 1, eval mode): per image and per set the four metrics of the reference code
-- (dpl.metrics.sr.reference_scores on the 288 crops) and, as "full", the conventional full-image PSNR/SSIM
-- (dpl.metrics.sr.sr_scores: Y of uint8 images, `scale` pixels shaved). opts.save = DIR writes DIR/<set>/<stem>.png
-- (the network's output), <stem>_hr.png (the HR crop) and <stem>_lr.png (its LR input), for the first
-- opts.save_limit images of each set (default: all); opts.keep keeps each image's tensors (image.tensors = {sr,
-- hr, full_sr, full_hr}). Returns {[set] = {psnr, ssim, psnr_2, tensor_ssim, full =
-- {psnr, ssim}, images = {{name, psnr, ...}}, skipped}} and the list of set names in order.
function B.evaluate(net, sets, opts)
  opts = opts or {}
  local device = opts.device
  net:evaluate()
  local out, names = {}, {}
  for _, set in ipairs(sets) do
    local imgs = {}
    local bar = progress.new({total = set.data:len(), label = "test " .. set.name, unit = "img", quiet = opts.quiet})
    if opts.save then files.mkdir(opts.save .. "/" .. set.name) end
    for batch in dataset.batches(set.data, {batch_size = 1, device = device}) do
      local name = batch.name[1]
      local sr = dpl.no_grad(function() return net:forward(batch.lr) end):to("cpu")
      local hr = batch.hr:to("cpu")
      local r = metrics.reference_scores(sr, hr)
      local full_sr = dpl.no_grad(function() return net:forward(batch.full_lr) end):to("cpu")
      local fp, fs = metrics.sr_scores(full_sr, batch.full_hr:to("cpu"), net.scale)
      imgs[#imgs + 1] = {name = name, psnr = r.psnr, ssim = r.mssim, psnr_2 = r.psnr_2, tensor_ssim = r.tensor_ssim,
                         full_psnr = fp, full_ssim = fs,
                         tensors = opts.keep and {sr = sr, hr = hr, full_sr = full_sr, full_hr = batch.full_hr:to("cpu")}}
      if opts.save and #imgs <= (opts.save_limit or math.huge) then
        dpl.image.save(sr:select(1, 1), ("%s/%s/%s.png"):format(opts.save, set.name, name))
        dpl.image.save(hr:select(1, 1), ("%s/%s/%s_hr.png"):format(opts.save, set.name, name))
        dpl.image.save(batch.lr:to("cpu"):select(1, 1), ("%s/%s/%s_lr.png"):format(opts.save, set.name, name))
      end
      bar:update(1)
    end
    bar:finish()
    local s = {images = imgs, skipped = set.skipped or 0, full = {psnr = mean(imgs, "full_psnr"), ssim = mean(imgs, "full_ssim")}}
    for _, m in ipairs(B.METRICS) do s[m] = mean(imgs, m) end
    out[set.name] = s
    names[#names + 1] = set.name
  end
  return out, names
end

-- ---- scores <-> JSON -----------------------------------------------------------------------------------------------
-- The store keeps flat name -> number scores; everything the --json entry shows is among them:
--   test.<set>.<metric>, test.<set>.full.psnr|ssim, test.<set>.images, test.<set>.skipped,
--   test.<set>.image.<stem>.<metric> (and .full_psnr / .full_ssim), val_psnr.<epoch>, train_loss.<epoch> (3 digits),
--   val_psnr.best, best_epoch, epochs_run, skipped.train, skipped.val
function B.flat_scores(tests, train)
  local s = {}
  for set, r in pairs(tests) do
    for _, m in ipairs(B.METRICS) do s[("test.%s.%s"):format(set, m)] = r[m] end
    s[("test.%s.full.psnr"):format(set)], s[("test.%s.full.ssim"):format(set)] = r.full.psnr, r.full.ssim
    s[("test.%s.images"):format(set)], s[("test.%s.skipped"):format(set)] = #r.images, r.skipped
    for _, img in ipairs(r.images) do
      for _, m in ipairs {"psnr", "ssim", "psnr_2", "tensor_ssim", "full_psnr", "full_ssim"} do
        s[("test.%s.image.%s.%s"):format(set, img.name, m)] = img[m]
      end
    end
  end
  if train then
    for e, v in ipairs(train.val) do s[("val_psnr.%03d"):format(e)] = v end
    for e, v in ipairs(train.train_loss) do s[("train_loss.%03d"):format(e)] = v end
    s["val_psnr.best"], s.best_epoch, s.epochs_run = train.best_metric, train.best_epoch, train.epochs_run
    s["skipped.train"], s["skipped.val"] = train.skipped_train, train.skipped_val
  end
  return s
end

-- The --json entry of one run (the issue's shape) from its flat scores and configuration.
function B.json_entry(arch, layer, config, scores)
  local function series(prefix) return require("dpl.benchmarks.report").epoch_series(scores, prefix) end
  local test = {}
  local full = {}
  for _, set in ipairs(config.test or {}) do
    local name = set.name
    if scores[("test.%s.psnr"):format(name)] then
      local entry = {images = json.array({})}
      for _, m in ipairs(B.METRICS) do entry[m] = scores[("test.%s.%s"):format(name, m)] end
      local stems = {}
      local pat = "^test%." .. name:gsub("%p", "%%%0") .. "%.image%.(.+)%.psnr$"
      for k in pairs(scores) do
        local stem = k:match(pat)
        if stem then stems[#stems + 1] = stem end
      end
      table.sort(stems)
      local fimgs = json.array({})
      for _, stem in ipairs(stems) do
        local img = {name = stem}
        for _, m in ipairs(B.METRICS) do img[m] = scores[("test.%s.image.%s.%s"):format(name, stem, m)] end
        entry.images[#entry.images + 1] = img
        fimgs[#fimgs + 1] = {name = stem, psnr = scores[("test.%s.image.%s.full_psnr"):format(name, stem)],
                             ssim = scores[("test.%s.image.%s.full_ssim"):format(name, stem)]}
      end
      test[name] = entry
      full[name] = {psnr = scores[("test.%s.full.psnr"):format(name)], ssim = scores[("test.%s.full.ssim"):format(name)],
                    images = fimgs}
    end
  end
  return {arch = arch, layer = layer, scale = config.scale, config = config, epochs_run = scores.epochs_run or 0,
          best_epoch = scores.best_epoch, val_psnr = series("val_psnr"), train_loss = series("train_loss"), test = test,
          -- extras beside the reference protocol's numbers: the conventional full-image PSNR/SSIM (Y, shave = scale)
          test_full_image = full}
end

-- ---- the runner's contract (lua/dpl/benchmarks/runner.lua) ------------------------------------------------------------
local function positive(_, name) return require("dpl.benchmarks.runner").positive(name) end

function B.arguments(parser)
  parser:option("--scale", "Upscaling factor(s): 4, 8 or 4,8.", "4")
  parser:option("--train", "Training images: any folder of images (default: the MS-COCO 2014 train subset of the "
    .. "reference, 10,000 images; dplrun data/fetch.lua coco).")
  parser:option("--val", "Validation images: any folder (default: the 100-image MS-COCO 2014 val subset).")
  parser:option("--test", "Test sets: folders, comma-separated, each named by its folder (default: Set5, Set14, BSD100).")
  parser:option("--epochs", "Training epochs.", "80"):convert(positive(parser, "epochs"))
  parser:option("--batch", "Batch size.", "4"):convert(positive(parser, "batch"))
  parser:option("--lr", "Adam's learning rate.", "1e-3"):convert(tonumber)
  parser:option("--seed", "Seed of the initial weights and of the data order.", "42"):convert(tonumber)
  parser:option("--limit-train", "Use only the first N training images."):convert(positive(parser, "limit-train"))
  parser:option("--limit-val", "Use only the first N validation images."):convert(positive(parser, "limit-val"))
  parser:option("--limit-test", "Use only the first N images of each test set."):convert(positive(parser, "limit-test"))
  parser:option("--save", "Write the test outputs as PNG: DIR/<set>/<stem>.png, the HR crop <stem>_hr.png and its " ..
    "LR input <stem>_lr.png.")
  parser:option("--save-limit", "With --save: only the first N images of each test set."):convert(positive(parser,
    "save-limit"))
  parser:option("--checkpoint", "Score this trained network (a file this benchmark wrote, a trainer checkpoint or a "
    .. "PyTorch state_dict) instead of training.")
  parser:option("--checkpoint-minutes", "Minutes of training between checkpoints within an epoch.", "10"):convert(tonumber)
  parser:option("--hr-size", "Side of the HR crops (the reference: 288; smaller for quick checks, recorded in the "
    .. "configuration).", "288"):convert(positive(parser, "hr-size"))
  parser:flag("--quick", ("A short recorded configuration: %d training images, %d validation images, %d epochs, Set5 "
    .. "only (unless --train/--val/--test/--epochs say otherwise)."):format(B.QUICK.train, B.QUICK.val, B.QUICK.epochs))
end

local function scales_of(s)
  local out = {}
  for w in tostring(s):gmatch("[^,%s]+") do
    local f = tonumber(w)
    if f ~= 4 and f ~= 8 then error(("--scale: %s is not 4 or 8"):format(w), 0) end
    out[#out + 1] = f
  end
  if #out == 0 then error("--scale: give 4, 8 or 4,8", 0) end
  return out
end

-- the data of one scale: train/val datasets (nil when scoring a checkpoint) and the test sets
local function open_data(args, ctx, scale)
  local d = {}
  local quick = args.quick
  local skipped = {train = 0, val = 0}
  local function counter(what) return function(_, msg)
    skipped[what] = skipped[what] + 1
    io.stderr:write(("superres: %s: skipped an image that cannot be read: %s\n"):format(what, msg))
  end end
  if not args.checkpoint then
    local limit_train = args.limit_train or (quick and not args.train and B.QUICK.train) or nil
    local limit_val = args.limit_val or (quick and not args.val and B.QUICK.val) or nil
    local train_src = args.train or folders.coco("train")
    local val_src = args.val or folders.coco("val")
    d.train = B.dataset(train_src, {scale = scale, size = args.hr_size, limit = limit_train, on_error = counter("train")})
    d.val = B.dataset(val_src, {scale = scale, size = args.hr_size, limit = limit_val, on_error = counter("val")})
  end
  d.skipped = skipped
  d.tests = {}
  for _, t in ipairs(ctx.test_dirs) do
    d.tests[#d.tests + 1] = B.test_set(t.dir, scale, {limit = args.limit_test, fetch = t.fetch, size = args.hr_size})
  end
  return d
end

local function describe_set(ds, default_name)
  return {source = ds.dir or default_name, images = ds:len()}
end

function B.setup(args)
  local ctx = {scales = scales_of(args.scale)}
  for _, f in ipairs(ctx.scales) do
    if args.hr_size % f ~= 0 then error(("--hr-size %d is not a multiple of the scale %d"):format(args.hr_size, f), 0) end
  end
  if args.quick and not args.test then
    ctx.test_dirs = {}
    for _, t in ipairs(B.default_test_dirs()) do
      for _, want in ipairs(B.QUICK.test) do
        if t.dir:find("/" .. want .. "/", 1, true) then ctx.test_dirs[#ctx.test_dirs + 1] = t end
      end
    end
  elseif args.test then
    ctx.test_dirs = {}
    for w in args.test:gmatch("[^,]+") do ctx.test_dirs[#ctx.test_dirs + 1] = {dir = w} end
  else
    ctx.test_dirs = B.default_test_dirs()
  end
  -- --quick sets the epochs unless --epochs was given (argparse leaves the default "80" when it was not)
  ctx.epochs = args.epochs
  if args.quick and args.epochs == 80 then ctx.epochs = B.QUICK.epochs end
  if args.checkpoint then
    local f = io.open(args.checkpoint, "rb")
    if not f then error("--checkpoint " .. args.checkpoint .. ": no such file", 0) end
    f:close()
  end
  -- open everything now, so that missing data is reported before any training
  ctx.data = {}
  for _, scale in ipairs(ctx.scales) do ctx.data[scale] = open_data(args, ctx, scale) end
  return ctx
end

function B.describe(ctx)
  local d = ctx.data[ctx.scales[1]]
  local parts = {}
  if d.train then parts[#parts + 1] = ("train %d, val %d images"):format(d.train:len(), d.val:len()) end
  local sets = {}
  for _, t in ipairs(d.tests) do sets[#sets + 1] = ("%s (%d)"):format(t.name, t.data:len()) end
  parts[#parts + 1] = "test " .. table.concat(sets, ", ")
  return table.concat(parts, "; ")
end

-- cells: every (arch, layer, scale); with --checkpoint, the one network in the file
function B.cells(args, archs, layers)
  local cells = {}
  if args.checkpoint then
    local ok, tensors, _, metafn = pcall(checkpoint.load_tensors, args.checkpoint, "cpu")
    local arch = ok and metafn and metafn("superres.arch") or ""
    local layer = ok and metafn and metafn("superres.layer") or ""
    for _, scale in ipairs(scales_of(args.scale)) do
      cells[#cells + 1] = {arch = arch ~= "" and arch or nil, layer = layer ~= "" and layer or "checkpoint",
                           scale = scale, weights = false}
    end
    return cells
  end
  for _, scale in ipairs(scales_of(args.scale)) do
    for _, a in ipairs(archs) do
      for _, l in ipairs(layers) do cells[#cells + 1] = {arch = a, layer = l, scale = scale} end
    end
  end
  return cells
end

function B.config(args, ctx, cell)
  local d = ctx.data[cell.scale]
  local sets = json.array({})
  for _, t in ipairs(d.tests) do sets[#sets + 1] = {name = t.name, source = t.dir, images = t.data:len()} end
  local c = {scale = cell.scale, test = sets, hr_size = args.hr_size,
             protocol = "HR centre crops (reference) + full image (conventional)"}
  if args.checkpoint then
    c.checkpoint = args.checkpoint
    c.checkpoint_sha256 = require("dpl.download").sha256(args.checkpoint)
    return c
  end
  c.preset = args.quick and "quick" or ((args.train or args.val or args.limit_train or args.limit_val or
    ctx.epochs ~= 80 or args.batch ~= 4 or args.lr ~= 1e-3 or args.hr_size ~= B.HR) and "custom" or "paper")
  c.train = describe_set(d.train, "coco2014 train subset (10,000, sorted names)")
  c.val = describe_set(d.val, "coco2014 val subset (100, sorted names)")
  c.epochs, c.batch, c.lr, c.seed = ctx.epochs, args.batch, args.lr, args.seed
  c.loss = "feature MSE, loss network frozen, eval mode, no ImageNet normalisation"
  c.model = "superres-bn x" .. cell.scale
  return c
end

function B.run(args, ctx, cell)
  local d = ctx.data[cell.scale]
  local device = cell.device
  local t0 = progress.now()
  local timing = {}
  local net, train
  if args.checkpoint then
    net = B.load_model(args.checkpoint, {scale = cell.scale, device = device})
  else
    files.mkdir(cell.workdir)
    net = superres.new({scale = cell.scale, seed = args.seed, device = device})
    local crit = perceptual.loss{arch = cell.arch, layer = cell.layer, weights = cell.weights, normalize = false,
                                 mode = "eval", device = device}
    local opt = optim.Adam(net:parameters(), {lr = args.lr})
    local label = ("%s %s x%d"):format(cell.arch, cell.layer, cell.scale)
    train = trainer.fit{
      model = net, optimizer = opt, data = d.train, batch_size = args.batch, seed = args.seed, device = device,
      epochs = ctx.epochs, label = label, metric = "val PSNR", direction = "max",
      checkpoint = cell.workdir .. "/train.ckpt", checkpoint_every_s = (args.checkpoint_minutes or 10) * 60,
      config_hash = cell.hash, modules = {crit},
      step = function(batch)
        cell.touch()   -- the claim's heartbeat (runner.lua): other processes leave this cell to us while it trains
        return crit(net:forward(batch.lr), batch.hr)
      end,
      validate = function() return B.validate(net, d.val, device) end,
    }
    if train.stopped then error("stopped by a signal; rerun the same command to resume", 0) end
    train.skipped_train, train.skipped_val = d.skipped.train, d.skipped.val
    timing.train_s = progress.now() - t0
    B.save_model(net, cell.workdir .. ("/model_x%d_%s_%s.safetensors"):format(cell.scale, cell.arch, cell.layer),
      {arch = cell.arch, layer = cell.layer, scale = cell.scale, epoch = train.best_epoch})
  end
  local t1 = progress.now()
  local tests = B.evaluate(net, d.tests, {device = device, save = args.save and (#ctx.scales > 1 and
    ("%s/x%d"):format(args.save, cell.scale) or args.save), save_limit = args.save_limit})
  timing.test_s = progress.now() - t1
  return B.flat_scores(tests, train), timing
end

function B.summary(scores)
  local parts = {}
  if scores.best_epoch then parts[#parts + 1] = ("best epoch %d (val PSNR %.2f)"):format(scores.best_epoch,
    scores["val_psnr.best"] or 0 / 0) end
  local sets = {}
  for k, v in pairs(scores) do
    local set = k:match("^test%.([^.]+)%.psnr$")
    if set then sets[#sets + 1] = ("%s PSNR %.2f SSIM %.3f"):format(set, v, scores["test." .. set .. ".ssim"] or 0 / 0) end
  end
  table.sort(sets)
  for _, s in ipairs(sets) do parts[#parts + 1] = s end
  return table.concat(parts, ", ")
end

function B.json(cell, scores)
  return B.json_entry(cell.arch, cell.layer, cell.config, scores)
end

B.table_title = "super-resolution: test PSNR and SSIM per test set, as the paper's Tables VI-IX"
B.TABLES = {{metric = "psnr", name = "PSNR", digits = 1, numbers = {[4] = "VI", [8] = "VIII"}},
            {metric = "ssim", name = "MSSIM", digits = 3, numbers = {[4] = "VII", [8] = "IX"}}}
local PAPER_SETS = {Set5 = 1, Set14 = 2, BSD100 = 3, test = 3}

-- Tables VI-IX from stored runs: one table per scale and metric, rows = architectures by family, columns = the test
-- sets (Set5, Set14, BSD100 first, as the paper) x layers E, S, M, L; each of one configuration (report.paper_table:
-- opts.config / opts.all_configs choose which, experiments/results.lua --config / --all-configs).
function B.table(runs, opts)
  opts = opts or {}
  local report = require "dpl.benchmarks.report"
  local by_scale, scales, sets, seen, sizes = {}, {}, {}, {}, {}
  for _, r in ipairs(runs) do
    local ok, config = pcall(json.decode, r.config or "{}")
    local scale = ok and config.scale or 4
    sizes[ok and config.hr_size or B.HR] = true
    if not by_scale[scale] then by_scale[scale] = {}; scales[#scales + 1] = scale end
    table.insert(by_scale[scale], r)
    for k in pairs(r.scores) do
      local set = k:match("^test%.([^.]+)%.psnr$")
      if set and not seen[set] then seen[set] = true; sets[#sets + 1] = set end
    end
  end
  table.sort(scales)
  table.sort(sets, function(a, b)
    local pa, pb = PAPER_SETS[a] or 99, PAPER_SETS[b] or 99
    if pa ~= pb then return pa < pb end
    return a < b
  end)
  local crop_sides = {}
  for side in pairs(sizes) do crop_sides[#crop_sides + 1] = ("%d x %d"):format(side, side) end
  table.sort(crop_sides)
  crop_sides = table.concat(crop_sides, ", ")
  local parts = {}
  for _, scale in ipairs(scales) do
    for _, tab in ipairs(B.TABLES) do
      local columns = {}
      for _, set in ipairs(sets) do columns[#columns + 1] = {key = ("test.%s.%s"):format(set, tab.metric), label = set} end
      parts[#parts + 1] = ("Table %s: %s of x%d upscaling (%s centre crops, the reference's \"%s\")"):format(
        tab.numbers[scale] or "-", tab.name, scale, crop_sides, tab.metric == "psnr" and "Test PSNR" or "Test MSSIM")
      parts[#parts + 1] = (report.paper_table(by_scale[scale], columns, {digits = tab.digits, config = opts.config,
        all_configs = opts.all_configs}))
    end
  end
  return table.concat(parts, "\n")
end

return B
