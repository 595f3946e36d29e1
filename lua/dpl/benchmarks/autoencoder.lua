-- dpl.benchmarks.autoencoder: Benchmark 4, perceptual autoencoders probed by MLPs (docs/benchmarks/autoencoder.md).
-- A convolutional autoencoder (lua/dpl/models/autoencoder.lua) learns to reconstruct SVHN (padded to 64 x 64) or
-- STL-10 (96 x 96) images with the feature MSE at one layer of a frozen loss network as its only loss; its 64-value
-- codes of the labelled images then train seven small MLPs; the score is the test accuracy of the MLP that did best on
-- its validation split.
--
-- This module is what is specific to the benchmark; lua/dpl/benchmarks/runner.lua does the sweep:
--   experiments/autoencoder.lua is require("dpl.benchmarks.runner").main(require "dpl.benchmarks.autoencoder", arg)
-- The pieces are usable on their own:
--   local B = require "dpl.benchmarks.autoencoder"
--   local d = B.open_data("svhn", {root = "data", seed = 0})    -- {ae_train, ae_val, train, val, test} datasets
--   local emb = B.encode(net, d.train, {device = "cpu"})        -- {n, buf = float[n * 64], labels = {0-based}}
--   local r = B.train_mlp({64, 32}, {train = e1, val = e2, test = e3}, {epochs = 100})
local ffi = require "ffi"
local dpl = require "dpl"
local F = require "dpl.nn.functional"
local sets = require "dpl.data.imagesets"
local files = require "dpl.data.files"
local mt = require "dpl.data.mt19937"
local dataset = require "dpl.data.dataset"
local ae = require "dpl.models.autoencoder"
local perceptual = require "dpl.perceptual"
local optim = require "dpl.optim"
local trainer = require "dpl.train.trainer"
local progress = require "dpl.progress"
local checkpoint = require "dpl.checkpoint"
local cls = require "dpl.metrics.classification"
local results = require "dpl.results"
local fault = require "dpl.sys.fault"
local json = require "dpl.json"
local cli = require "dpl.cli"

local B = {name = "autoencoder",
           description = "Benchmark 4: an autoencoder trained with one loss network's feature MSE on SVHN or STL-10; "
             .. "seven MLPs on its codes; the test accuracy of the best-validated MLP."}

-- the datasets: image side, reflection padding, the splits of the autoencoder, the MLPs and the test
B.DATASETS = {
  svhn = {label = "SVHN", side = 64, pad = 16, ae = "extra", train = "train", test = "test"},
  stl10 = {label = "STL-10", side = 96, pad = 0, ae = "unlabeled", train = "train", test = "test"},
}
B.DATASET_ORDER = {"svhn", "stl10"}
B.CLASSES = 10
-- --quick: a named, recorded configuration that runs in minutes on a CPU
B.QUICK = {ae = 1024, train = 2000, test = 1000, ae_epochs = 2, mlp_epochs = 20}
B.DEFAULTS = {ae_epochs = 10, mlp_epochs = 100, batch = 256}
B.MLP_PATIENCE = 10

-- Lightning's EarlyStopping patience of the reference: max(10, epochs / 20)
function B.patience(epochs) return math.max(10, math.floor(epochs / 20)) end

-- ---- data ----------------------------------------------------------------------------------------------------------
-- A view of `base` (anything with len/get_batch) through a list of 1-based indices.
local function subset(base, indices, name)
  local s = {n = #indices, name = name, indices = indices}
  function s.len() return s.n end
  function s.get_batch(_, idx, device)
    local m = {}
    for k, i in ipairs(idx) do m[k] = indices[i] end
    return base:get_batch(m, device)
  end
  return s
end
B.subset = subset

-- The seeded 80/20 split of n samples (the reference's random_split([n - v, v]) with v = floor(fraction n), unseeded
-- there): a permutation drawn as numpy's RandomState(seed).permutation(n); its first n - v entries train, the rest
-- validate. Returns two lists of 1-based indices.
function B.split(n, fraction, seed)
  local v = math.floor(fraction * n)
  local p = mt.permutation(n, seed % 4294967296)
  local train, val = {}, {}
  for i = 1, n - v do train[i] = p[i] + 1 end
  for i = n - v + 1, n do val[#val + 1] = p[i] + 1 end
  return train, val
end

local function first(n, limit)
  local out = {}
  for i = 1, math.min(n, limit or n) do out[i] = i end
  return out
end

-- Opens one dataset's three splits under `root` (holding svhn/ and stl10/ as dplrun data/fetch.lua lays them out).
-- opts: root, seed (of the splits), val_fraction (0.2), limit_ae / limit_train / limit_test (the first N images of
-- that split, before the split), need_ae (false: the autoencoder's split is not opened). Returns {ae_train, ae_val,
-- train, val, test, info} (datasets whose batches are {image = N x 3 x side x side in [0, 1], label}).
function B.open_data(name, opts)
  opts = opts or {}
  local spec = B.DATASETS[name]
  if not spec then error(("--dataset: unknown dataset '%s' (svhn or stl10)"):format(tostring(name)), 0) end
  local root = opts.root or files.data_root()
  local transform
  if spec.pad > 0 then
    transform = function(b)
      b.image = F.pad2d(b.image, {spec.pad, spec.pad, spec.pad, spec.pad}, "reflect")
      return b
    end
  end
  local function open(split)
    local ok, s = pcall(name == "svhn" and sets.svhn or sets.stl10, split,
      {root = root .. "/" .. name, batch_transform = transform})
    if not ok then error(tostring(s):gsub("^[^\n]-%.lua:%d+: ", ""), 0) end
    return s
  end
  local fraction, seed = opts.val_fraction or 0.2, opts.seed or 0
  local d = {spec = spec, name = name, info = {}}
  local function two_way(base, limit, what)
    local idx = first(base:len(), limit)
    local tr, va = B.split(#idx, fraction, seed)
    for i, k in ipairs(tr) do tr[i] = idx[k] end
    for i, k in ipairs(va) do va[i] = idx[k] end
    if #tr == 0 or #va == 0 then
      error(("%s: %d image(s) cannot be split %g/%g into training and validation"):format(base.name, #idx,
        1 - fraction, fraction), 0)
    end
    d.info[what] = {split = base.name, images = #idx, train = #tr, val = #va}
    return subset(base, tr, base.name .. " (train part)"), subset(base, va, base.name .. " (val part)")
  end
  if opts.need_ae ~= false then d.ae_train, d.ae_val = two_way(open(spec.ae), opts.limit_ae, "ae") end
  d.train, d.val = two_way(open(spec.train), opts.limit_train, "mlp")
  local test = open(spec.test)
  d.test = subset(test, first(test:len(), opts.limit_test), test.name)
  d.info.test = {split = test.name, images = d.test.n}
  return d
end

-- ---- the autoencoder's loss ----------------------------------------------------------------------------------------
-- The reconstruction loss: the feature MSE of `crit` (a perceptual.loss) between input and reconstruction, the
-- input's features computed first (the reference's order: in train mode each forward moves the loss network's running
-- statistics), or the pixel MSE when crit is nil.
function B.ae_loss(crit, rec, x)
  if not crit then return F.mse_loss(rec, x) end
  local ft = dpl.no_grad(function() return crit:features(x) end)
  return F.mse_loss(crit:features(rec), ft)
end

-- The validation loss: the mean of the batch losses weighted by batch size (Lightning's epoch mean of val_loss).
function B.ae_val_loss(net, crit, data, opts)
  local sum, n = 0, 0
  for b in dataset.batches(data, {batch_size = opts.batch or 256, device = opts.device}) do
    local k = b.image:size(1)
    sum, n = sum + B.ae_loss(crit, net:forward(b.image), b.image):item() * k, n + k
  end
  return sum / n
end

-- ---- codes ---------------------------------------------------------------------------------------------------------
-- The codes (mu) of every image of `data` with the autoencoder in evaluation mode: {n, dim, buf = float[n * dim]
-- (row-major, on the host), labels = {class indices}}. opts: device, batch (256), quiet, label.
function B.encode(net, data, opts)
  opts = opts or {}
  net:evaluate()
  local n, dim = data:len(), net.z
  local out = {n = n, dim = dim, buf = ffi.new("float[?]", math.max(n * dim, 1)), labels = {}}
  local bar = progress.new({total = n, label = opts.label or "encode", unit = "img", quiet = opts.quiet})
  local pos = 0
  for b in dataset.batches(data, {batch_size = opts.batch or 256, device = opts.device}) do
    local z = dpl.no_grad(function() return net:encode(b.image) end)
    local k = z:size(1)
    local buf = z:float_data()
    ffi.copy(out.buf + pos * dim, buf, k * dim * 4)
    if b.label then
      for i, v in ipairs(b.label:tolist()) do out.labels[pos + i] = v end
    end
    pos = pos + k
    bar:update(k)
  end
  bar:finish()
  return out
end

-- codes from a float32 tensor N x dim and a list of labels (tests, saved codes)
function B.codes(x, labels)
  local n, dim = x:size(1), x:size(2)
  local buf = x:contiguous():float_data()
  return {n = n, dim = dim, buf = buf, labels = labels}
end

-- An in-memory dataset over codes: batches {x = k x dim, y = k x 10 one-hot, index}.
local function code_dataset(c)
  local s = {}
  function s.len() return c.n end
  function s.get_batch(_, idx, device)
    local k = #idx
    local xb = ffi.new("float[?]", math.max(k * c.dim, 1))
    local yb = ffi.new("float[?]", math.max(k * B.CLASSES, 1))
    for j, i in ipairs(idx) do
      ffi.copy(xb + (j - 1) * c.dim, c.buf + (i - 1) * c.dim, c.dim * 4)
      yb[(j - 1) * B.CLASSES + c.labels[i]] = 1
    end
    return {x = dpl.from_pointer(xb, {k, c.dim}, {device = device}),
            y = dpl.from_pointer(yb, {k, B.CLASSES}, {device = device})}
  end
  return s
end

local function all_of(c, device)
  local b = code_dataset(c):get_batch(first(c.n), device)
  return b.x, b.y
end

-- MSE against one-hot (the mean over every element, as the reference's mse_loss and Lightning's size-weighted
-- epoch mean) and accuracy (argmax of the output = the class; cls.accuracy) of an MLP on a set of codes.
function B.score_mlp(net, c, device)
  local x, y = all_of(c, device)
  net:evaluate()
  local out = dpl.no_grad(function() return net:forward(x) end)
  return F.mse_loss(out, y):item(), cls.accuracy(out:to("cpu"), c.labels)
end

-- Trains one MLP on codes, as the reference: MSE against one-hot, Adam(lr), batch `batch`, shuffled per epoch
-- (numpy's RandomState(seed + epoch)), early stopping on the validation MSE with patience 10 (Lightning's
-- EarlyStopping), the best-validation-loss weights kept. codes = {train, val, test}. opts: epochs (100), batch (256), lr
-- (1e-3), seed (0), patience, device, init (a state_dict to start from instead of the seeded initialisation), quiet,
-- label, on_epoch. Returns {hidden, epochs_run, best_epoch, early_stopped, train_loss = {}, val_loss_curve = {},
-- val_loss, val_accuracy, test_loss, test_accuracy, net}.
function B.train_mlp(hidden, codes, opts)
  opts = opts or {}
  local device = opts.device
  local net = ae.mlp(hidden, {seed = opts.seed or 0, inputs = codes.train.dim, classes = B.CLASSES, device = device})
  if opts.init then net:load_state_dict(opts.init) end
  local opt = optim.Adam(net:parameters(), {lr = opts.lr or 1e-3})
  local vx, vy = all_of(codes.val, device)
  local epochs = opts.epochs or 100
  local bar = progress.new({total = epochs, label = opts.label or ("MLP " .. ae.mlp_name(hidden)), unit = "epoch",
                            quiet = opts.quiet})
  local r = trainer.fit{
    model = net, optimizer = opt, data = code_dataset(codes.train), batch_size = opts.batch or 256,
    seed = opts.seed or 0, reseed = false, device = device, epochs = epochs, patience = opts.patience or B.MLP_PATIENCE,
    metric = "val loss", direction = "min", quiet = true,
    step = function(b) return F.mse_loss(net:forward(b.x), b.y) end,
    validate = function() return F.mse_loss(net:forward(vx), vy):item() end,
    on_epoch = function(rec)
      bar.label = ("%s val loss %.5f (best epoch %d)"):format(opts.label or ("MLP " .. ae.mlp_name(hidden)), rec.val,
        rec.best_epoch)
      bar:update(1)
      if opts.on_epoch then opts.on_epoch(rec) end
    end,
  }
  bar:finish()
  local out = {hidden = hidden, epochs_run = r.epochs_run, best_epoch = r.best_epoch, early_stopped = r.early_stopped,
               train_loss = r.train_loss, val_loss_curve = r.val, net = net}
  out.val_loss, out.val_accuracy = B.score_mlp(net, codes.val, device)
  if codes.test then out.test_loss, out.test_accuracy = B.score_mlp(net, codes.test, device) end
  return out
end

-- The MLP reported: the best validation accuracy (by = "val_accuracy") or the lowest validation loss ("val_loss");
-- the first of equal values in the configuration order wins. Returns its index in `list`.
function B.select(list, by)
  local best
  for i, m in ipairs(list) do
    if not best then best = i
    elseif by == "val_loss" and m.val_loss < list[best].val_loss then best = i
    elseif by ~= "val_loss" and m.val_accuracy > list[best].val_accuracy then best = i end
  end
  return best
end

-- ---- the model file ------------------------------------------------------------------------------------------------
-- Writes the autoencoder as a safetensors file (state_dict names as the reference's) with its provenance.
function B.save_model(net, path, meta) checkpoint.save_model(net, path, "autoencoder", meta) end

-- A trained autoencoder from a file: one this benchmark wrote, a trainer checkpoint (its best weights), or a PyTorch
-- state_dict of the reference module (.pth; a loss network's "perceptual_net." entries are ignored). The side comes
-- from opts.side (the dataset's). Returns the network (eval mode) and its metadata.
function B.load_model(path, opts)
  opts = opts or {}
  local tensors, meta = checkpoint.read_model(path, "autoencoder", {"arch", "layer", "dataset", "epoch"})
  local sd = trainer.model_tensors(tensors, "encoder.conv0.weight")
  if not sd then
    error(("--checkpoint %s is not an autoencoder of this benchmark (no encoder.conv0.weight)"):format(path), 0)
  end
  for name in pairs(sd) do
    if name:match("^perceptual_net%.") then sd[name] = nil end   -- a Lightning module's loss network
  end
  local net = ae.new({side = opts.side or 64, device = opts.device})
  local ok2, err = pcall(net.load_state_dict, net, sd)
  if not ok2 then
    error(("--checkpoint %s does not fit the %d x %d autoencoder: %s"):format(path, net.side, net.side,
      tostring(err):gsub("^.-:%d+: ", "")), 0)
  end
  net:evaluate()
  return net, meta
end

-- ---- outputs -------------------------------------------------------------------------------------------------------

-- a JSON file's value, or nil when it is missing or not JSON (a result file written before a kill is whole: see below)
local function read_json(path)
  local text = cli.read_file(path)
  local ok, v = pcall(json.decode, text or "")
  return ok and v or nil
end

-- --save DIR: a PNG of up to 8 test images (top row) over their reconstructions (bottom row), and the codes as .npy
-- (codes_<split>.npy, N x 64; labels_<split>.npy)
function B.save_outputs(dir, net, d, codes, device)
  files.mkdir(dir)
  local n = math.min(8, d.test:len())
  local idx = first(n)
  local b = d.test:get_batch(idx, device)
  net:evaluate()
  local rec = dpl.no_grad(function() return net:forward(b.image) end)
  local rows = {}
  for _, t in ipairs {b.image, rec} do
    local cols = {}
    for i = 1, n do cols[i] = t:select(1, i):to("cpu") end
    rows[#rows + 1] = dpl.cat(cols, 3)
  end
  dpl.image.save(dpl.cat(rows, 2), dir .. "/reconstructions.png")
  for split, c in pairs(codes) do
    dpl.from_pointer(c.buf, {c.n, c.dim}, {device = "cpu"}):save_npy(("%s/codes_%s.npy"):format(dir, split))
    if #c.labels == c.n then
      dpl.tensor(c.labels, {device = "cpu"}):save_npy(("%s/labels_%s.npy"):format(dir, split))
    end
  end
end

-- ---- scores <-> JSON -----------------------------------------------------------------------------------------------
-- The store's flat scores (everything the --json entry shows):
--   test.accuracy, test.loss (the selected MLP's: docs/analysis.md reads test.accuracy), selected.index,
--   by_val_accuracy.index / .test_accuracy, by_val_loss.index / .test_accuracy,
--   mlp.<name>.{epochs_run, best_epoch, val_loss, val_accuracy, test_loss, test_accuracy} (name: linear, 32, 64-32, ...)
--   ae.val_loss.<epoch> and ae.train_loss.<epoch> (3 digits), ae.best_epoch, ae.epochs_run, ae.val_loss.best
function B.flat_scores(mlps, select_by, train)
  local s = {}
  for _, m in ipairs(mlps) do
    local p = "mlp." .. ae.mlp_name(m.hidden) .. "."
    for _, k in ipairs {"epochs_run", "best_epoch", "val_loss", "val_accuracy", "test_loss", "test_accuracy"} do
      s[p .. k] = m[k]
    end
  end
  local by_acc, by_loss = B.select(mlps, "val_accuracy"), B.select(mlps, "val_loss")
  s["by_val_accuracy.index"], s["by_val_accuracy.test_accuracy"] = by_acc, mlps[by_acc].test_accuracy
  s["by_val_loss.index"], s["by_val_loss.test_accuracy"] = by_loss, mlps[by_loss].test_accuracy
  local sel = select_by == "val_loss" and by_loss or by_acc
  s["selected.index"], s["test.accuracy"], s["test.loss"] = sel, mlps[sel].test_accuracy, mlps[sel].test_loss
  if train then
    for e, v in ipairs(train.val) do s[("ae.val_loss.%03d"):format(e)] = v end
    for e, v in ipairs(train.train_loss) do s[("ae.train_loss.%03d"):format(e)] = v end
    s["ae.best_epoch"], s["ae.epochs_run"], s["ae.val_loss.best"] = train.best_epoch, train.epochs_run, train.best_metric
  end
  return s
end

-- The --json entry of one run (the issue's shape) from its flat scores and configuration.
function B.json_entry(arch, layer, config, scores)
  local function series(prefix) return require("dpl.benchmarks.report").epoch_series(scores, prefix) end
  local mlps = json.array({})
  for i, name in ipairs(config.mlps or {}) do
    local p = "mlp." .. name .. "."
    mlps[i] = {name = name, hidden = json.array(ae.mlp_hidden(name) or {}), epochs_run = scores[p .. "epochs_run"],
               best_epoch = scores[p .. "best_epoch"], val_loss = scores[p .. "val_loss"],
               val_accuracy = scores[p .. "val_accuracy"], test_loss = scores[p .. "test_loss"],
               test_accuracy = scores[p .. "test_accuracy"]}
  end
  local function choice(by, index)
    local m = index and mlps[index]
    return m and {by = by, hidden = m.hidden, name = m.name, val_loss = m.val_loss, val_accuracy = m.val_accuracy,
                  test_accuracy = m.test_accuracy} or nil
  end
  local by = config.select or "val_accuracy"
  local e = {dataset = config.dataset, arch = arch, layer = layer, config = config, mlps = mlps,
             selected = choice(by, scores["selected.index"]),
             selected_by_val_loss = choice("val_loss", scores["by_val_loss.index"]),
             selected_by_val_accuracy = choice("val_accuracy", scores["by_val_accuracy.index"])}
  if scores["ae.epochs_run"] then
    e.ae = {epochs_run = scores["ae.epochs_run"], best_epoch = scores["ae.best_epoch"], val_loss = series("ae.val_loss"),
            train_loss = series("ae.train_loss")}
  end
  return e
end

-- ---- the runner's contract (lua/dpl/benchmarks/runner.lua) ------------------------------------------------------------
local positive = require("dpl.benchmarks.runner").positive

function B.arguments(parser)
  parser:option("--dataset", "svhn, stl10 or svhn,stl10.", "svhn")
  parser:option("--data", "Data root holding svhn/ and stl10/ (as dplrun data/fetch.lua lays them out). Default: "
    .. "$DPL_DATA, else ./data.")
  parser:option("--ae-epochs", "Autoencoder training epochs (the paper: 10).", "10"):convert(positive("ae-epochs"))
  parser:option("--mlp-epochs", "MLP training epochs at most (the paper: 100; early stopping, patience 10).", "100")
    :convert(positive("mlp-epochs"))
  parser:option("--batch", "Batch size of the autoencoder and the MLPs.", "256"):convert(positive("batch"))
  parser:option("--lr", "Adam's learning rate (autoencoder and MLPs).", "1e-3"):convert(tonumber)
  parser:option("--seed", "Seed of the splits, the initial weights and the data order.", "0"):convert(tonumber)
  parser:option("--val-fraction", "Validation share of each 80/20 split.", "0.2"):convert(function(v)
    local x = tonumber(v)
    if not x or x <= 0 or x >= 1 then return nil, "--val-fraction must be between 0 and 1, got " .. v end
    return x
  end)
  parser:option("--limit-ae", "Use only the first N images of the autoencoder's split.")
    :convert(positive("limit-ae"))
  parser:option("--limit-train", "Use only the first N images of the MLPs' training split.")
    :convert(positive("limit-train"))
  parser:option("--limit-test", "Use only the first N test images."):convert(positive("limit-test"))
  parser:option("--mlps", "The MLPs: all, or a comma list of linear, 32, 64, 32-32, 64-32, 64-64, 128-128.", "all")
  parser:option("--select", "How the reported MLP is chosen: val_accuracy or val_loss (both are stored).",
    "val_accuracy"):choices({"val_accuracy", "val_loss"})
  parser:option("--lossnet-mode", "The loss network while the autoencoder trains: train (batch statistics, as the "
    .. "reference) or eval.", "train"):choices({"train", "eval"})
  parser:flag("--pixel", "The baseline: the autoencoder trained with the pixel MSE (no loss network).")
  parser:option("--save", "Write DIR/reconstructions.png (test images over their reconstructions) and the codes as "
    .. ".npy (codes_<split>.npy, labels_<split>.npy).")
  parser:option("--checkpoint", "Use this trained autoencoder (a file this benchmark wrote, a trainer checkpoint or a "
    .. "PyTorch state_dict) instead of training one.")
  parser:option("--checkpoint-minutes", "Minutes of training between checkpoints within an epoch.", "10"):convert(tonumber)
  parser:flag("--quick", ("A short recorded configuration: %d autoencoder images, %d MLP images, %d test images, %d "
    .. "autoencoder epochs, %d MLP epochs (unless the options say otherwise)."):format(B.QUICK.ae, B.QUICK.train,
    B.QUICK.test, B.QUICK.ae_epochs, B.QUICK.mlp_epochs))
end

local function datasets_of(s)
  local out = {}
  for w in tostring(s):gmatch("[^,%s]+") do
    if not B.DATASETS[w] then error(("--dataset: unknown dataset '%s' (svhn, stl10 or svhn,stl10)"):format(w), 0) end
    out[#out + 1] = w
  end
  if #out == 0 then error("--dataset: give svhn, stl10 or svhn,stl10", 0) end
  return out
end

local function mlps_of(s)
  if s == "all" then return ae.MLPS end
  local out = {}
  for w in tostring(s):gmatch("[^,%s]+") do
    local h = ae.mlp_hidden(w)
    if not h then
      error(("--mlps: '%s' is not an MLP (all, or a comma list of linear, 32, 64, 32-32, 64-32, 64-64, 128-128)")
        :format(w), 0)
    end
    out[#out + 1] = h
  end
  if #out == 0 then error("--mlps: give all or a comma list", 0) end
  return out
end

function B.setup(args)
  local ctx = {datasets = datasets_of(args.dataset), mlps = mlps_of(args.mlps), data = {}}
  local q = args.quick and B.QUICK or {}
  ctx.ae_epochs = (args.quick and args.ae_epochs == B.DEFAULTS.ae_epochs) and q.ae_epochs or args.ae_epochs
  ctx.mlp_epochs = (args.quick and args.mlp_epochs == B.DEFAULTS.mlp_epochs) and q.mlp_epochs or args.mlp_epochs
  ctx.limit_ae, ctx.limit_train, ctx.limit_test = args.limit_ae or q.ae, args.limit_train or q.train,
    args.limit_test or q.test
  if args.checkpoint then
    local f = io.open(args.checkpoint, "rb")
    if not f then error("--checkpoint " .. args.checkpoint .. ": no such file", 0) end
    f:close()
  end
  -- open everything now, so that missing data is reported before any training
  for _, name in ipairs(ctx.datasets) do
    ctx.data[name] = B.open_data(name, {root = args.data, seed = args.seed, val_fraction = args.val_fraction,
      limit_ae = ctx.limit_ae, limit_train = ctx.limit_train, limit_test = ctx.limit_test,
      need_ae = not args.checkpoint})
  end
  return ctx
end

function B.describe(ctx)
  local parts = {}
  for _, name in ipairs(ctx.datasets) do
    local i = ctx.data[name].info
    parts[#parts + 1] = ("%s: %sMLPs %d + %d, test %d"):format(B.DATASETS[name].label, i.ae and
      ("autoencoder %d + %d, "):format(i.ae.train, i.ae.val) or "", i.mlp.train, i.mlp.val, i.test.images)
  end
  return table.concat(parts, "; ")
end

-- cells: every (dataset, arch, layer); --pixel: one baseline cell per dataset; --checkpoint: the network in the file
function B.cells(args, archs, layers)
  local cells = {}
  for _, name in ipairs(datasets_of(args.dataset)) do
    if args.pixel then
      cells[#cells + 1] = {layer = "pixel", weights = false, dataset = name}
    elseif args.checkpoint then
      local ok, _, _, metafn = pcall(checkpoint.load_tensors, args.checkpoint, "cpu")
      local arch = ok and metafn and metafn("autoencoder.arch") or ""
      local layer = ok and metafn and metafn("autoencoder.layer") or ""
      cells[#cells + 1] = {arch = arch ~= "" and arch or nil, layer = layer ~= "" and layer or "checkpoint",
                           weights = false, dataset = name}
    else
      for _, a in ipairs(archs) do
        for _, l in ipairs(layers) do cells[#cells + 1] = {arch = a, layer = l, dataset = name} end
      end
    end
  end
  return cells
end

-- What trains the networks (the --select choice is left out: it only picks among the same MLPs, so a run with the
-- other choice reuses the trained autoencoder and MLPs; see B.run).
function B.train_config(args, ctx, cell)
  local d = ctx.data[cell.dataset]
  local names = json.array({})
  for i, h in ipairs(ctx.mlps) do names[i] = ae.mlp_name(h) end
  local c = {dataset = cell.dataset, side = d.spec.side, mlps = names, mlp_epochs = ctx.mlp_epochs,
             mlp_patience = B.MLP_PATIENCE, batch = args.batch, lr = args.lr, seed = args.seed,
             val_fraction = args.val_fraction, data = d.info, code = ae.Z}
  if args.checkpoint then
    c.checkpoint = args.checkpoint
    c.checkpoint_sha256 = require("dpl.download").sha256(args.checkpoint)
  else
    c.ae_epochs, c.ae_patience = ctx.ae_epochs, B.patience(ctx.ae_epochs)
    c.loss = args.pixel and "pixel MSE" or "feature MSE, loss network frozen, no ImageNet normalisation"
    c.lossnet_mode = not args.pixel and args.lossnet_mode or nil
  end
  local paper = ctx.ae_epochs == 10 and ctx.mlp_epochs == 100 and args.batch == 256 and args.lr == 1e-3 and
    args.val_fraction == 0.2 and not ctx.limit_ae and not ctx.limit_train and not ctx.limit_test and
    #ctx.mlps == #ae.MLPS and args.lossnet_mode == "train" and not args.checkpoint
  c.preset = args.quick and "quick" or (paper and "paper" or "custom")
  return c
end

function B.config(args, ctx, cell)
  local c = B.train_config(args, ctx, cell)
  c.select = args.select
  return c
end

function B.run(args, ctx, cell)
  local d = ctx.data[cell.dataset]
  local device = cell.device
  local timing = {}
  -- the training folder is keyed by the configuration without --select (see B.train_config)
  local train_hash = results.config_hash((function()
    local c = B.train_config(args, ctx, cell)
    c.experiment, c.arch, c.layer, c.weights_sha256 = B.name, cell.arch, cell.layer, cell.weights_sha256
    return c
  end)())
  local workdir = (cell.workdir:match("^(.*)/[^/]*$") or ".") .. "/" .. train_hash:sub(1, 16)
  files.mkdir(workdir)
  local touch = cell.touch or function() end
  local label = ("%s %s %s"):format(d.spec.label, cell.arch or "pixel", cell.layer)
  local t0 = progress.now()
  local net, train
  if args.checkpoint then
    net = B.load_model(args.checkpoint, {side = d.spec.side, device = device})
  else
    net = ae.new({side = d.spec.side, seed = args.seed, device = device})
    local crit
    if not args.pixel then
      crit = perceptual.loss{arch = cell.arch, layer = cell.layer, weights = cell.weights, name_map = cell.name_map,
                             normalize = false, mode = args.lossnet_mode, device = device}
    end
    train = trainer.fit{
      model = net, optimizer = optim.Adam(net:parameters(), {lr = args.lr}), data = d.ae_train,
      batch_size = args.batch, seed = args.seed, device = device, epochs = ctx.ae_epochs,
      patience = B.patience(ctx.ae_epochs), label = label, metric = "val loss", direction = "min",
      checkpoint = workdir .. "/ae.ckpt", checkpoint_every_s = (args.checkpoint_minutes or 10) * 60,
      config_hash = train_hash, modules = crit and {crit} or nil,
      step = function(batch)
        touch()   -- the claim's heartbeat (runner.lua): other processes leave this cell to us while it trains
        return B.ae_loss(crit, net:forward(batch.image), batch.image)
      end,
      validate = function() return B.ae_val_loss(net, crit, d.ae_val, {batch = args.batch, device = device}) end,
    }
    if train.stopped then error("stopped by a signal; rerun the same command to resume", 0) end
    timing.ae_train_s = progress.now() - t0
    B.save_model(net, workdir .. "/autoencoder.safetensors", {arch = cell.arch or "pixel", layer = cell.layer,
      dataset = cell.dataset, epoch = train.best_epoch})
  end
  -- the codes of the MLPs' splits and of the test split
  local t1 = progress.now()
  local codes = {}
  for _, split in ipairs {"train", "val", "test"} do
    touch()
    codes[split] = B.encode(net, d[split], {device = device, batch = args.batch, label = label .. " encode " .. split})
  end
  timing.encode_s = progress.now() - t1
  timing.encode_images_per_s = (codes.train.n + codes.val.n + codes.test.n) / math.max(timing.encode_s, 1e-9)
  if args.save then
    B.save_outputs(#ctx.datasets > 1 and (args.save .. "/" .. cell.dataset) or args.save, net, d, codes, device)
  end
  -- the MLPs: a finished one's result is read back, not retrained
  local t2 = progress.now()
  local mlps = {}
  for i, hidden in ipairs(ctx.mlps) do
    local name = ae.mlp_name(hidden)
    local path = ("%s/mlp_%s.json"):format(workdir, name)
    local r = read_json(path)
    if r and r.test_accuracy then
      io.stderr:write(("%s: MLP %s already trained (%s), val accuracy %.4f\n"):format(label, name, path, r.val_accuracy))
    else
      touch()
      r = B.train_mlp(hidden, codes, {epochs = ctx.mlp_epochs, batch = args.batch, lr = args.lr, seed = args.seed + i,
        device = device, label = ("%s MLP %s"):format(label, name), on_epoch = touch})
      r.net, r.train_loss, r.val_loss_curve = nil, nil, nil
      cli.write_file(path, json.encode(r), "MLP result")
      io.stderr:write(("%s: MLP %s: %d epochs (best %d), val accuracy %.4f, test accuracy %.4f\n"):format(label, name,
        r.epochs_run, r.best_epoch, r.val_accuracy, r.test_accuracy))
      fault.point("MLP")   -- DPL_FAULT_KILL_AFTER_MLP=N: tests of the resume of this phase (dpl.sys.fault)
    end
    r.hidden = hidden
    mlps[i] = r
  end
  timing.mlp_s = progress.now() - t2
  return B.flat_scores(mlps, args.select, train), timing
end

function B.summary(scores)
  local parts = {}
  if scores["ae.best_epoch"] then
    parts[#parts + 1] = ("autoencoder best epoch %d (val loss %.5g)"):format(scores["ae.best_epoch"],
      scores["ae.val_loss.best"] or 0 / 0)
  end
  parts[#parts + 1] = ("test accuracy %.4f (MLP %d)"):format(scores["test.accuracy"], scores["selected.index"])
  return table.concat(parts, ", ")
end

function B.json(cell, scores)
  return B.json_entry(cell.arch, cell.layer, cell.config, scores)
end

B.table_title = "autoencoders: test accuracy of the best-validated MLP per dataset, as the paper's Table XI"

-- The paper's Table XI layout from stored runs: one table per dataset, rows = architectures by family, columns = layers
-- E, S, M, L, the test accuracy of the selected MLP; the pixel-MSE baseline under it when stored.
function B.table(runs, opts)
  opts = opts or {}
  local report = require "dpl.benchmarks.report"
  local by, order = {}, {}
  for _, r in ipairs(runs) do
    local ok, config = pcall(json.decode, r.config or "{}")
    local name = ok and config.dataset or "svhn"
    if not by[name] then by[name] = {}; order[#order + 1] = name end
    table.insert(by[name], r)
  end
  local rank = {}
  for i, name in ipairs(B.DATASET_ORDER) do rank[name] = i end
  table.sort(order, function(a, b) return (rank[a] or 99) < (rank[b] or 99) or (rank[a] == rank[b] and a < b) end)
  local parts = {}
  for _, name in ipairs(order) do
    local spec = B.DATASETS[name] or {label = name}
    parts[#parts + 1] = ("Table XI (%s): test accuracy of the best-validated MLP"):format(spec.label)
    parts[#parts + 1] = (report.paper_table(by[name], {{key = "test.accuracy", label = spec.label}},
      {digits = 3, config = opts.config, all_configs = opts.all_configs}))
    for _, r in ipairs(by[name]) do
      if r.layer == "pixel" and r.scores and r.scores["test.accuracy"] then
        parts[#parts + 1] = ("pixel-MSE baseline: %.3f"):format(r.scores["test.accuracy"])
      end
    end
  end
  return table.concat(parts, "\n")
end

return B
