-- examples/sr_degradation.lua - load an image, degrade it as the super-resolution benchmark does
-- (docs/benchmarks/superres.md), upscale the low-resolution input back with bicubic interpolation, and print PSNR/SSIM.
--   dplrun examples/sr_degradation.lua --image PATH [--factor 4] [--out DIR]
local argparse = require "argparse"
local dpl = require "dpl"
local tf = require "dpl.data.transforms"
local sr = require "dpl.metrics.sr"

local parser = argparse("dplrun examples/sr_degradation.lua", "The SR benchmark's degradation and the bicubic baseline.")
parser:option("--image", "Input image (PNG, JPEG or TIFF)."):count(1)
parser:option("--factor", "Downscaling factor (4 or 8 in the paper).", "4"):convert(tonumber)
parser:option("--out", "Also write hr.png, lr.png and bicubic.png into this directory.")
local args = parser:parse(arg)

local img = dpl.image.load(args.image, {device = "cpu"})                           -- RGB, 3 x H x W in [0, 1]
-- target: Resize(288) (shorter side, Pillow bilinear) + CenterCrop(288)
local hr = tf.center_crop(tf.resize(img, 288), 288)
-- input: Pillow GaussianBlur(1) on the original, Resize(288 / f, bicubic) + CenterCrop(288 / f)
local n = math.floor(288 / args.factor)
local lr = tf.center_crop(tf.resize(tf.gaussian_blur(img, 1), n, {interpolation = "bicubic"}), n)
-- the baseline "network": bicubic upscaling back to 288 x 288
local up = tf.resize(lr, {288, 288}, {interpolation = "bicubic"})

print(("%s: %dx%d -> HR %dx%d, LR %dx%d"):format(args.image, img:size(2), img:size(3), 288, 288, n, n))
local r = sr.reference_scores(up, hr)
print(("benchmark metrics: PSNR %.4f dB, MSSIM %.5f, PSNR_2 %.4f dB, tensor SSIM %.5f"):format(
  r.psnr, r.mssim, r.psnr_2, r.tensor_ssim))
local psnr, ssim = sr.sr_scores(up, hr, args.factor)
print(("usual SR protocol (Y, shave %d): PSNR %.4f dB, SSIM %.5f"):format(args.factor, psnr, ssim))

if args.out then
  dpl.image.save(hr, args.out .. "/hr.png")
  dpl.image.save(lr, args.out .. "/lr.png")
  dpl.image.save(up, args.out .. "/bicubic.png")
  print("wrote hr.png, lr.png and bicubic.png to " .. args.out)
end
