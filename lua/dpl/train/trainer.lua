-- dpl.train.trainer: the training loop the benchmarks share (super-resolution, delineation, autoencoders): epochs,
-- validation after every epoch, the best epoch's weights, checkpoints that survive kill -9, exact resume.
--
--   local trainer = require "dpl.train.trainer"
--   local result = trainer.fit{
--     model = net, optimizer = optim.Adam(net:parameters(), {lr = 1e-3}),
--     data = train_set, batch_size = 4, seed = 42, device = "cpu",      -- any dpl.data.dataset (shuffled per epoch)
--     epochs = 80,
--     step = function(batch, ctx) return criterion(net(batch.lr), batch.hr) end,   -- the loss of one batch
--     validate = function(ctx) return psnr_of_val_set() end,            -- a number per epoch
--     metric = "val_psnr", direction = "max",                           -- which epoch is best ("min" for a loss)
--     checkpoint = "runs/x4_vgg16_E.ckpt", checkpoint_every_s = 600, config_hash = hash,
--   }
--   -- result: {epochs_run, best_epoch, best_metric, train_loss = {per epoch}, val = {per epoch}, val_extra = {...},
--   --          resumed = bool, finished = true}; the model holds the best epoch's weights
--
-- The contract:
--   * step(batch, ctx) runs the forward pass and returns the loss (a one-element tensor that requires grad); the
--     trainer zeroes the gradients before, and calls loss:backward() and optimizer:step() after. ctx = {epoch,
--     step (batch number in the epoch, 1-based), global_step, trainer}. The model is in training mode (and so is
--     every module in opts.modules, e.g. a perceptual loss made with mode = "train").
--   * validate(ctx) returns the epoch's metric (a number) and optionally a table of extra numbers (kept per epoch in
--     result.val_extra); it runs after every epoch under dpl.no_grad with the model and opts.modules in evaluation
--     mode. direction = "max" (default) or "min" says which value is better; the best epoch's weights are kept (the
--     first of equal values wins) and loaded into the model at the end (opts.restore_best = false keeps the last).
--     Without validate, the last epoch is the best.
--   * Early stopping: opts.patience = P ends training after P epochs in a row without a better validation metric
--     (PyTorch Lightning's EarlyStopping with min_delta 0: it stops after epoch e when e - best_epoch >= P); the run is
--     then finished (result.early_stopped = true) and a rerun returns it at once. It needs validate.
--   * Data: opts.data is a dataset (dpl.data.dataset: len/files/make or get_batch), batched with opts.batch_size,
--     shuffled per epoch with numpy's RandomState(seed + epoch) (opts.shuffle = false keeps the order), prefetched on
--     the loader threads while the model trains; opts.drop_last drops a last partial batch. Or opts.batches =
--     function(epoch, start) -> iterator of (batch, k) from batch `start` on, with opts.num_batches(epoch).
--     opts.count(batch) gives the images in a batch (default: #batch.index, else 1) for the images/s figure.
--   * Randomness: dpl.manual_seed(seed) is set before the first epoch (unless opts.reseed == false); the position of
--     dpl's global random stream is part of every checkpoint, so dropout / stochastic depth continue identically.
--   * Checkpoints (opts.checkpoint = path): written atomically (temporary file + rename) after every epoch and every
--     opts.checkpoint_every_s seconds of training within an epoch (default 600), and when a stop is requested (SIGINT or
--     SIGTERM through dpl.signal, see below). A checkpoint holds the model, the optimizer state, the best weights so far, the
--     state of opts.modules (e.g. a train-mode loss network's running statistics), the epoch, the batch within it,
--     the running loss sum, the random stream, the history and opts.config_hash. Running the same command again
--     resumes from it and ends with exactly the result of an uninterrupted run (same seed, same device and threads);
--     a checkpoint written under another config_hash or for another model is refused with a message. A finished
--     run's checkpoint makes fit() return the stored result at once.
--   * A loss that is NaN or infinite stops training with an error naming the epoch and the batch; no checkpoint is
--     written after the last good one.
--   * Progress: one bar per epoch on stderr (running loss, images/s, ETA) and a summary line per epoch; opts.quiet
--     silences both, opts.label prefixes them, opts.on_epoch(record) is called after each epoch with {epoch,
--     train_loss, val, val_extra, best_epoch, seconds}.
--   * Fault injection (tests): DPL_FAULT_KILL_AFTER_CHECKPOINT=N makes the process kill itself with SIGKILL right after
--     the N-th checkpoint it wrote, so a test interrupts a run at an exact point on any machine (dpl.sys.fault).
local dpl = require "dpl"
local autograd = require "dpl.autograd"
local checkpoint = require "dpl.checkpoint"
local dataset = require "dpl.data.dataset"
local fault = require "dpl.sys.fault"
local progress = require "dpl.progress"
local json = require "dpl.json"

local M = {}

M.FORMAT = "dpl.trainer/1"

local function fail(msg, level) error(msg, level or 3) end


-- ---- stop requests (SIGTERM / SIGINT) ------------------------------------------------------------------------------
-- Under dplrun, dpl.signal (lua/dpl/signal.lua, where the host provides it) can defer SIGINT/SIGTERM: fit() defers them
-- while it trains and polls signal.pending() after every batch; on a signal it saves a checkpoint, stops deferring,
-- and the pending signal then unwinds the script as an interruption (dplrun: "interrupted ...; rerun the same command
-- to resume"). Without dpl.signal a stop is never requested and a kill loses at most checkpoint_every_s of training.
-- opts.stop_requested = function() -> nil or a reason replaces the probe (tests).
local function host_signals()
  local ok, sig = pcall(require, "dpl.signal")
  if ok and type(sig) == "table" and type(sig.pending) == "function" and type(sig.defer) == "function" then return sig end
end

-- ---- options -------------------------------------------------------------------------------------------------------
local KNOWN = {model = 1, optimizer = 1, data = 1, batch_size = 1, shuffle = 1, seed = 1, reseed = 1, device = 1,
               drop_last = 1, batches = 1, num_batches = 1, count = 1, epochs = 1, step = 1, validate = 1, metric = 1,
               direction = 1, restore_best = 1, checkpoint = 1, checkpoint_every_s = 1, config_hash = 1, modules = 1,
               quiet = 1, label = 1, on_epoch = 1, prefetch = 1, stop_requested = 1, patience = 1}

local function check_opts(o)
  if type(o) ~= "table" then fail("trainer.fit: expected an options table") end
  for k in pairs(o) do
    if not KNOWN[k] then fail(("trainer.fit: unknown option '%s'"):format(tostring(k))) end
  end
  if type(o.model) ~= "table" or not o.model.state_dict then fail("trainer.fit: model must be an nn module") end
  if type(o.optimizer) ~= "table" or not o.optimizer.step then fail("trainer.fit: optimizer must be a dpl.optim optimizer") end
  if type(o.step) ~= "function" then fail("trainer.fit: step must be a function(batch, ctx) returning the loss") end
  if o.validate ~= nil and type(o.validate) ~= "function" then fail("trainer.fit: validate must be a function") end
  if type(o.epochs) ~= "number" or o.epochs < 1 or o.epochs ~= math.floor(o.epochs) then
    fail("trainer.fit: epochs must be a positive integer, got " .. tostring(o.epochs))
  end
  if o.data == nil and o.batches == nil then fail("trainer.fit: give data (a dataset) or batches (a function)") end
  if o.batches and type(o.num_batches) ~= "function" then fail("trainer.fit: batches needs num_batches(epoch)") end
  if o.patience ~= nil and (type(o.patience) ~= "number" or o.patience < 1 or o.patience ~= math.floor(o.patience)) then
    fail("trainer.fit: patience must be a positive integer, got " .. tostring(o.patience))
  end
  if o.patience and not o.validate then fail("trainer.fit: patience (early stopping) needs validate") end
  local dir = o.direction or "max"
  if dir ~= "max" and dir ~= "min" then fail("trainer.fit: direction must be \"max\" or \"min\", got " .. tostring(dir)) end
end

-- ---- state ---------------------------------------------------------------------------------------------------------
local function clone_state(model)
  local sd, order = model:state_dict()
  return autograd.no_grad(function()
    local out = {}
    for _, name in ipairs(order) do out[name] = sd[name]:detach():clone() end
    return out
  end)
end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- numbers that JSON cannot hold (an infinite PSNR) travel as strings
local function enc_num(v) if finite(v) then return v end return tostring(v) end
local function dec_num(v) if type(v) == "string" then return tonumber(v) end return v end
local function enc_list(l) local o = json.array({}); for i, v in ipairs(l) do o[i] = enc_num(v) end return o end
local function dec_list(l) local o = {}; for i, v in ipairs(l or {}) do o[i] = dec_num(v) end return o end

local Trainer = {}
Trainer.__index = Trainer

function M.new(opts)
  check_opts(opts)
  local self = setmetatable({o = opts}, Trainer)
  self.direction = opts.direction or "max"
  self.modules = opts.modules or {}
  self.every_s = opts.checkpoint_every_s or 600
  if opts.stop_requested then self.stop_requested = opts.stop_requested
  else
    self.signal = host_signals()
    self.stop_requested = self.signal and self.signal.pending or function() return nil end
  end
  self.state = {epoch = 0, step = 0, global_step = 0, loss_sum = 0, loss_count = 0, train_loss = {}, val = {},
                val_extra = {}, best_epoch = nil, best_metric = nil, finished = false}
  return self
end

function Trainer:better(v)
  local b = self.state.best_metric
  if b == nil then return true end
  if self.direction == "max" then return v > b end
  return v < b
end

function Trainer:log(msg)
  if not self.o.quiet then io.stderr:write((self.o.label and (self.o.label .. ": ") or ""), msg, "\n") end
end

-- the checkpoint's tensors and metadata
function Trainer:save(reason)
  local path = self.o.checkpoint
  if not path then return end
  local st = self.state
  local tensors = {}
  for name, t in pairs(self.best_state or {}) do tensors["best." .. name] = t end
  for i, m in ipairs(self.modules) do
    local sd = m:state_dict()
    for name, t in pairs(sd) do tensors[("module%d.%s"):format(i, name)] = t end
  end
  local info = {format = M.FORMAT, epoch = st.epoch, step = st.step, global_step = st.global_step,
                loss_sum = ("%.17g"):format(st.loss_sum), loss_count = st.loss_count,
                train_loss = enc_list(st.train_loss), val = enc_list(st.val), val_extra = json.array(st.val_extra),
                best_epoch = st.best_epoch, best_metric = st.best_metric and enc_num(st.best_metric) or nil,
                finished = st.finished, rng = dpl.get_rng_state(), config_hash = self.o.config_hash, reason = reason,
                epochs = self.o.epochs}
  checkpoint.save(path, {model = self.o.model, optimizer = self.o.optimizer, tensors = tensors,
                         meta = {trainer = json.encode(info)}})
  self.last_save = progress.now()
  fault.point("CHECKPOINT")
end

-- Restores from the checkpoint file when it exists; returns true when it did.
function Trainer:restore()
  local path = self.o.checkpoint
  if not path then return false end
  local f = io.open(path, "rb")
  if not f then return false end
  f:close()
  local ok, meta = pcall(checkpoint.load, path, {})
  if not ok then fail(("checkpoint %s cannot be read: %s (remove it to start over)"):format(path, tostring(meta)), 4) end
  local raw = meta.trainer
  if not raw then fail(("%s is not a trainer checkpoint (no trainer metadata); remove it or choose another path"):format(path), 4) end
  local info = json.decode(raw)
  if info.format ~= M.FORMAT then
    fail(("checkpoint %s has format %s, expected %s"):format(path, tostring(info.format), M.FORMAT), 4)
  end
  if info.config_hash ~= self.o.config_hash then
    fail(("checkpoint %s belongs to another configuration (hash %s, this run %s): it is not resumed; remove it or use "
      .. "another checkpoint path"):format(path, tostring(info.config_hash), tostring(self.o.config_hash)), 4)
  end
  local ok2, err = pcall(checkpoint.load, path, {model = self.o.model, optimizer = self.o.optimizer})
  if not ok2 then
    fail(("checkpoint %s does not fit this model: %s"):format(path, tostring(err):gsub("\n.*", "")), 4)
  end
  local best, mods = {}, {}
  for name, t in pairs(meta.tensors) do
    local b = name:match("^best%.(.*)$")
    if b then best[b] = t
    else
      local i, n = name:match("^module(%d+)%.(.*)$")
      if i then
        i = tonumber(i)
        mods[i] = mods[i] or {}
        mods[i][n] = t
      end
    end
  end
  for i, m in ipairs(self.modules) do
    if mods[i] then m:load_state_dict(mods[i]) end
  end
  local dev = self.o.device
  if next(best) then
    self.best_state = {}
    for name, t in pairs(best) do self.best_state[name] = t:to(dev or self.o.model:state_dict()[name]:device()) end
  end
  local st = self.state
  st.epoch, st.step, st.global_step = info.epoch, info.step, info.global_step
  st.loss_sum, st.loss_count = tonumber(info.loss_sum), info.loss_count
  st.train_loss, st.val, st.val_extra = dec_list(info.train_loss), dec_list(info.val), info.val_extra or {}
  st.best_epoch, st.best_metric = info.best_epoch, info.best_metric and dec_num(info.best_metric) or nil
  st.finished = info.finished
  dpl.set_rng_state(info.rng)
  st.saved_at = {info.epoch, info.step}
  self.resumed = true
  return true
end

function Trainer:set_mode(train)
  local m = self.o.model
  if train then m:training() else m:evaluate() end
  for _, x in ipairs(self.modules) do if train then x:training() else x:evaluate() end end
end

function Trainer:num_batches(epoch)
  if self.o.num_batches then return self.o.num_batches(epoch) end
  local n, bs = self.o.data:len(), self.o.batch_size or 1
  return self.o.drop_last and math.floor(n / bs) or math.ceil(n / bs)
end

function Trainer:batch_iter(epoch, start)
  if self.o.batches then return self.o.batches(epoch, start) end
  return dataset.batches(self.o.data, {batch_size = self.o.batch_size or 1, shuffle = self.o.shuffle ~= false,
    seed = self.o.seed or 0, epoch = epoch, device = self.o.device, drop_last = self.o.drop_last, start = start,
    prefetch = self.o.prefetch})
end

local function count_of(o, batch)
  if o.count then return o.count(batch) end
  if type(batch) == "table" and type(batch.index) == "table" then return #batch.index end
  return 1
end

function Trainer:result()
  local st = self.state
  return {epochs_run = #st.train_loss, best_epoch = st.best_epoch, best_metric = st.best_metric,
          train_loss = st.train_loss, val = st.val, val_extra = st.val_extra, resumed = self.resumed or false,
          finished = st.finished, early_stopped = st.finished and #st.train_loss < self.o.epochs or false,
          best_state = self.best_state}
end

function Trainer:finish()
  if self.best_state and self.o.restore_best ~= false then self.o.model:load_state_dict(self.best_state) end
  return self:result()
end

-- One epoch from batch st.step + 1 on. Returns "stopped" when a stop was requested.
function Trainer:run_epoch(epoch)
  local o, st = self.o, self.state
  local nb = self:num_batches(epoch)
  local bs = o.batch_size or 1
  local total = o.data and not o.drop_last and o.data:len() or nb * bs   -- images, for the bar's rate and ETA
  local bar = progress.new({total = total, start = math.min(st.step * bs, total), label = "", unit = "img",
                            quiet = o.quiet})
  self:set_mode(true)
  local opt = o.optimizer
  for batch, k in self:batch_iter(epoch, st.step + 1) do
    opt:zero_grad()
    local ctx = {epoch = epoch, step = k, global_step = st.global_step + 1, trainer = self}
    local loss = o.step(batch, ctx)
    if not dpl.is_tensor(loss) then fail(("trainer: step returned %s, expected the loss tensor"):format(type(loss)), 2) end
    local v = loss:item()
    if not finite(v) then
      bar:finish()
      fail(("training stopped: the loss is %s at epoch %d, batch %d of %d (global step %d)%s"):format(tostring(v), epoch,
        k, nb, st.global_step + 1, o.checkpoint and (st.saved_at and (("; the last good checkpoint is %s (epoch %d, "
        .. "batch %d)"):format(o.checkpoint, st.saved_at[1], st.saved_at[2])) or "; no checkpoint was written yet")
        or ""), 2)
    end
    loss:backward()
    opt:step()
    loss = nil
    st.step, st.global_step = k, st.global_step + 1
    st.loss_sum, st.loss_count = st.loss_sum + v, st.loss_count + 1
    bar.label = ("%sepoch %d/%d batch %d/%d loss %.5g"):format(o.label and (o.label .. " ") or "", epoch, o.epochs, k,
      nb, st.loss_sum / st.loss_count)
    bar:update(count_of(o, batch))
    self.stopping = self.stopping or self.stop_requested()
    if k < nb then   -- the last batch is followed by validation and the epoch's checkpoint
      if o.checkpoint and (self.stopping or progress.now() - self.last_save >= self.every_s) then
        self:save(self.stopping and ("signal " .. tostring(self.stopping)) or "timer")
        st.saved_at = {epoch, k}
      end
      if self.stopping then
        bar:finish()
        self:log(("stop requested (%s) at epoch %d, batch %d of %d%s"):format(tostring(self.stopping), epoch, k, nb,
          o.checkpoint and ("; " .. o.checkpoint .. " holds it: rerun the same command to resume") or ""))
        return "stopped"
      end
    end
  end
  bar:finish()
  return nil
end

-- Trains (or resumes, or returns a finished run's result).
function Trainer:fit()
  local o, st = self.o, self.state
  if o.reseed ~= false then dpl.manual_seed(o.seed or 0) end
  if self:restore() then
    if st.finished then
      self:log(("%s holds a finished run (%d epochs, best epoch %s): nothing to train"):format(o.checkpoint,
        #st.train_loss, tostring(st.best_epoch)))
      return self:finish()
    end
    self:log(("resuming from %s: epoch %d, batch %d"):format(o.checkpoint, st.epoch + 1, st.step))
  end
  self.last_save = progress.now()
  local run_t0 = progress.now()
  local epochs_timed, time_sum = 0, 0
  while st.epoch < o.epochs do
    local epoch = st.epoch + 1
    local e0 = progress.now()
    local stopped = self:run_epoch(epoch)
    if stopped then
      local r = self:result()
      r.stopped = true
      return r
    end
    local train_loss = st.loss_count > 0 and st.loss_sum / st.loss_count or 0 / 0
    local metric, extra
    if o.validate then
      self:set_mode(false)
      metric, extra = dpl.no_grad(function() return o.validate({epoch = epoch, trainer = self}) end)
      self:set_mode(true)
      if type(metric) ~= "number" then fail("trainer: validate returned " .. type(metric) .. ", expected a number", 2) end
    end
    st.train_loss[epoch] = train_loss
    st.val[epoch] = metric
    st.val_extra[epoch] = extra or {}
    local improved = metric == nil or (metric == metric and self:better(metric))
    if improved then
      st.best_epoch, st.best_metric = epoch, metric
      self.best_state = clone_state(o.model)
    end
    st.epoch, st.step, st.loss_sum, st.loss_count = epoch, 0, 0, 0
    local early = o.patience and st.best_epoch and epoch < o.epochs and epoch - st.best_epoch >= o.patience
    st.finished = epoch == o.epochs or early or false
    self:save(st.finished and "finished" or "epoch")
    st.saved_at = {epoch, 0}
    local secs = progress.now() - e0
    epochs_timed, time_sum = epochs_timed + 1, time_sum + secs
    local left = (o.epochs - epoch) * time_sum / epochs_timed
    self:log(("epoch %d/%d: train loss %.6g%s%s  (%s, ETA %s)"):format(epoch, o.epochs, train_loss,
      metric and ("  %s %.4f"):format(o.metric or "val", metric) or "",
      improved and o.validate and " (best)" or "", progress.clock(secs), progress.clock(left)))
    if o.on_epoch then
      o.on_epoch({epoch = epoch, train_loss = train_loss, val = metric, val_extra = extra, best_epoch = st.best_epoch,
                  seconds = secs})
    end
    if early then
      self:log(("early stop after epoch %d: no better %s for %d epochs (best epoch %d)"):format(epoch, o.metric or "val",
        o.patience, st.best_epoch))
      break
    end
    self.stopping = self.stopping or self.stop_requested()
    if self.stopping and st.epoch < o.epochs then
      self:log("stop requested after epoch " .. epoch .. (o.checkpoint and "; rerun the same command to resume" or ""))
      local r = self:result()
      r.stopped = true
      return r
    end
  end
  self.total_s = progress.now() - run_t0
  return self:finish()
end

-- The model's tensors among a file's (checkpoint.load_tensors): a trainer checkpoint's best weights (best.*), else its
-- current ones (model.*), else a PyTorch {"net": state_dict} (net.*), else the tensors as they are (a plain
-- state_dict), else the tensors under the one prefix that holds `probe` (a PyTorch Lightning checkpoint:
-- "state_dict.<attribute>."). `probe` is a name every state of the model has (e.g. "encoder.conv0.weight"); nil when
-- none holds it, or when two prefixes do.
function M.model_tensors(tensors, probe)
  local function under(prefix)
    local sd = {}
    for name, t in pairs(tensors) do
      if name:sub(1, #prefix) == prefix then sd[name:sub(#prefix + 1)] = t end
    end
    return sd
  end
  for _, prefix in ipairs {"best.", "model.", "net.", ""} do
    if tensors[prefix .. probe] then return under(prefix) end
  end
  -- any other single prefix: a PyTorch Lightning checkpoint ("state_dict.<the module's attribute>.")
  local found
  for name in pairs(tensors) do
    if #name > #probe and name:sub(-#probe - 1) == "." .. probe then
      local prefix = name:sub(1, #name - #probe)
      if found and found ~= prefix then return nil end   -- two networks: which one is meant is unclear
      found = prefix
    end
  end
  return found and under(found) or nil
end

-- trainer.fit(opts): new(opts):fit(), with SIGINT/SIGTERM deferred to the trainer while it runs (see above): after a
-- stop, restoring the previous setting lets the pending signal interrupt the caller.
function M.fit(opts)
  local t = M.new(opts)
  if not t.signal then return t:fit() end
  local prev = t.signal.defer(true)
  local ok, r = pcall(t.fit, t)
  t.signal.defer(prev)
  if not ok then error(r, 0) end
  return r
end

return M
