-- experiments/bapps.lua - Benchmark 1: deep perceptual similarity on BAPPS (docs/benchmarks/bapps.md).
--   dplrun experiments/bapps.lua --arch alexnet --layer M                  one loss network
--   dplrun experiments/bapps.lua --arch all --layer all                    all 56, resuming; prints Table V
--   dplrun experiments/bapps.lua --arch squeezenet1_1 --lpips              LPIPS v0.1 itself (alex, vgg, squeeze)
--   ... --data DIR --weights FILE|DIR --device D --batch N --db FILE --subsets traditional,cnn --json out.json
-- The protocol is lua/dpl/benchmarks/bapps.lua; the shared runner (lua/dpl/benchmarks/runner.lua) does the sweep:
-- every run goes to the results store in one transaction when it is complete, and a run whose configuration already
-- has a finished row is skipped (resume), so an interrupted sweep continues where it stopped.
require("dpl.benchmarks.runner").main(require "dpl.benchmarks.bapps", arg)
