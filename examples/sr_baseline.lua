-- examples/sr_baseline.lua - the bicubic super-resolution baseline, scored with the usual protocol.
--   dplrun examples/sr_baseline.lua --hr PATH... --scale S [--json FILE]
-- For each HR image (PNG/JPEG/TIFF files, or directories: their *_HR.png files if they hold any, as Set5/image_SRF_4
-- does next to the *_LR.png files, else all their images, in sorted order; the count is printed): crop to a multiple of
-- S (top-left, as MATLAB's modcrop), make the LR image with MATLAB-style bicubic imresize(hr, 1/S), upscale it back
-- with imresize(lr, S), and score against the HR image: Y of MATLAB's rgb2ycbcr (rounded, as on uint8 images; gray
-- images are their own Y), S pixels shaved off each border, PSNR and Gaussian 11x11 SSIM with data range 255
-- (dpl.metrics.sr.sr_scores). Prints one line per image and the mean; --json writes
-- {"images": [{"name": ..., "file": ..., "psnr": x, "ssim": x}, ...], "mean": {"psnr": x, "ssim": x}, "config": {scale,
-- inputs, protocol, dpl version and commit, device, date}}.
local dpl = require "dpl"
local cli = require "dpl.cli"
local tf = require "dpl.data.transforms"
local sr = require "dpl.metrics.sr"

local parser = cli.parser("examples/sr_baseline.lua",
  "Bicubic super-resolution baseline: MATLAB-style bicubic down and up, PSNR/SSIM on Y with the border shaved.")
parser:option("--hr", "HR image files, or directories (their *_HR.png files if any, else every image)."):args("+"):count(1)
parser:option("--scale", "Integer scale factor S (2, 3, 4, 8, ...)."):count(1):convert(tonumber)
parser:option("--json", "Write the per-image and mean scores to this JSON file.")
local NAME = "sr_baseline.lua"
cli.main(NAME, function()
  local args = cli.parse(parser)

  local S = args.scale
  if not S or S < 1 or S ~= math.floor(S) then cli.fail("--scale must be a positive integer") end
  cli.output(args.json, "--json")

  local function is_dir(path)
    local f = io.open(path .. "/.", "r")
    if f then f:close() return true end
    return false
  end

  -- The images of a directory, sorted by name (listed with ls, so names are not interpreted by a shell): its *_HR.png
  -- files when it has any (the Set5/Set14 image_SRF_S layout, which holds *_HR.png and *_LR.png side by side), else
  -- every PNG, JPEG and TIFF file.
  local function images_in(dir)
    local p = assert(io.popen("ls -1A -- '" .. dir:gsub("'", "'\\''") .. "'"))
    local all, hr = {}, {}
    for name in p:lines() do
      local lower = name:lower()
      if lower:match("%.png$") or lower:match("%.jpe?g$") or lower:match("%.tiff?$") then
        all[#all + 1] = dir .. "/" .. name
        if lower:match("_hr%.png$") then hr[#hr + 1] = dir .. "/" .. name end
      end
    end
    p:close()
    local out = #hr > 0 and hr or all
    table.sort(out)
    return out, #hr > 0
  end

  local files = {}
  for _, p in ipairs(args.hr) do
    if is_dir(p) then
      local found, only_hr = images_in(p)
      if #found == 0 then cli.fail("--hr %s: no PNG, JPEG or TIFF files in it", p) end
      io.stderr:write(("sr_baseline.lua: %s: %d image%s%s\n"):format(p, #found, #found == 1 and "" or "s",
        only_hr and " (its *_HR.png files)" or ""))
      for _, f in ipairs(found) do files[#files + 1] = f end
    else
      files[#files + 1] = cli.input_file(p, "--hr")
    end
  end


  local results, sum_psnr, sum_ssim = {}, 0, 0
  for _, file in ipairs(files) do
    local ok, hr = pcall(dpl.image.load, file, {mode = "keep", device = "cpu"})
    if not ok then cli.fail("--hr %s: %s", file, cli.message(hr)) end
    if hr:size(1) == 2 or hr:size(1) == 4 then hr = hr:narrow(1, 1, hr:size(1) - 1) end   -- drop alpha
    local h, w = hr:size(2), hr:size(3)
    local ch, cw = h - h % S, w - w % S
    if ch < 3 * S or cw < 3 * S then cli.fail("--hr %s: %dx%d is too small for scale %d", file, h, w, S) end
    hr = tf.crop(hr, 1, 1, ch, cw)
    local lr = tf.imresize(hr, 1 / S)
    local up = tf.imresize(lr, S)
    local psnr, ssim = sr.sr_scores(up, hr, S)
    local name = file:match("[^/]+$")
    results[#results + 1] = {name = name, file = file, psnr = psnr, ssim = ssim}
    sum_psnr, sum_ssim = sum_psnr + psnr, sum_ssim + ssim
    print(("%-40s PSNR %8.4f dB   SSIM %.5f"):format(name, psnr, ssim))
  end
  local mean_psnr, mean_ssim = sum_psnr / #results, sum_ssim / #results
  print(("%-40s PSNR %8.4f dB   SSIM %.5f   (%d images, x%d)"):format("mean", mean_psnr, mean_ssim, #results, S))

  -- JSON has no infinity (PSNR of an image the baseline reproduces exactly): such values are written as null
  local function num(v) return (v == v and v ~= math.huge and v ~= -math.huge) and v or nil end

  if args.json then
    local json = require "dpl.json"
    local images = json.array()
    for _, r in ipairs(results) do images[#images + 1] = {name = r.name, file = r.file, psnr = num(r.psnr), ssim = num(r.ssim)} end
    local config = {scale = S, protocol = "modcrop, MATLAB bicubic down/up, rounded rgb2ycbcr Y, shave S, PSNR and " ..
                    "Gaussian SSIM, range 255", inputs = args.hr, images = #results}
    for k, v in pairs(cli.provenance()) do config[k] = v end
    cli.write_file(args.json, json.encode({images = images, mean = {psnr = num(mean_psnr), ssim = num(mean_ssim)},
                                           config = config}, {indent = "  "}) .. "\n", "--json")
  end
end)
