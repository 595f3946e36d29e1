-- dpl.nn: modules in the style of torch/nn with PyTorch's names. `local nn = require "dpl.nn"`.
local nn = {
  Module = require "dpl.nn.Module",
  Container = require "dpl.nn.Container",
  Sequential = require "dpl.nn.Sequential",
  Concat = require "dpl.nn.Concat",
  Residual = require "dpl.nn.Residual",
  Linear = require "dpl.nn.Linear",
  Conv2d = require "dpl.nn.Conv2d",
  ConvTranspose2d = require "dpl.nn.ConvTranspose2d",
  Dropout = require "dpl.nn.Dropout",
  BatchNorm2d = require "dpl.nn.BatchNorm2d",
  functional = require "dpl.nn.functional",
}
for name, cls in pairs(require "dpl.nn.activations") do nn[name] = cls end
for name, cls in pairs(require "dpl.nn.pooling") do nn[name] = cls end
for name, cls in pairs(require "dpl.nn.losses") do nn[name] = cls end
return nn
