-- dpl.benchmarks.stats: the statistics of the paper's analysis (docs/analysis.md): ranks with ties, Pearson and
-- Spearman correlation with two-sided p-values, computed as scipy.stats.rankdata / pearsonr / spearmanr compute them
-- (tests/lua/test_analysis.lua checks them against scipy).
--
--   local stats = require "dpl.benchmarks.stats"
--   local r, p = stats.pearson({1, 2, 3, 4}, {2, 4, 5, 9})
--   local rho, p2 = stats.spearman(x, y)
--   stats.ranks({0.3, 0.1, 0.3}, {descending = true})   --> {1.5, 3, 1.5}
local ffi = require "ffi"
pcall(ffi.cdef, "double lgamma(double x);")
local lgamma = ffi.C.lgamma

local M = {}

-- Ranks 1..n of a list of numbers, ties given the mean of the ranks they span (scipy's rankdata "average").
-- opts.descending: the largest value gets rank 1.
function M.ranks(values, opts)
  local desc = opts and opts.descending
  local order = {}
  for i = 1, #values do order[i] = i end
  table.sort(order, function(a, b)
    local va, vb = values[a], values[b]
    if va ~= vb then if desc then return va > vb else return va < vb end end
    return a < b
  end)
  local ranks, i = {}, 1
  while i <= #order do
    local j = i
    while j < #order and values[order[j + 1]] == values[order[i]] do j = j + 1 end
    for k = i, j do ranks[order[k]] = (i + j) / 2 end
    i = j + 1
  end
  return ranks
end

-- Regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz), using the symmetry
-- I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly.
local function betacf(a, b, x)
  local tiny, eps = 1e-300, 1e-15
  local qab, qap, qam = a + b, a + 1, a - 1
  local c, d = 1, 1 - qab * x / qap
  if math.abs(d) < tiny then d = tiny end
  d = 1 / d
  local h = d
  for m = 1, 10000 do
    local m2 = 2 * m
    local aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1 + aa * d; if math.abs(d) < tiny then d = tiny end
    c = 1 + aa / c; if math.abs(c) < tiny then c = tiny end
    d = 1 / d
    h = h * d * c
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1 + aa * d; if math.abs(d) < tiny then d = tiny end
    c = 1 + aa / c; if math.abs(c) < tiny then c = tiny end
    d = 1 / d
    local del = d * c
    h = h * del
    if math.abs(del - 1) < eps then break end
  end
  return h
end

function M.betainc(a, b, x)
  if x <= 0 then return 0 end
  if x >= 1 then return 1 end
  local front = math.exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * math.log(x) + b * math.log(1 - x))
  if x < (a + 1) / (a + b + 2) then return front * betacf(a, b, x) / a end
  return 1 - front * betacf(b, a, 1 - x) / b
end

-- Two-sided p-value of a correlation coefficient r over n pairs under independence: Student's t with n - 2 degrees
-- of freedom, t^2 = r^2 (n - 2) / (1 - r^2) (exact for Pearson's r of normal data; scipy's spearmanr uses it too).
function M.correlation_p(r, n)
  if r ~= r or n < 3 then return 0 / 0 end
  if math.abs(r) >= 1 then return 0 end
  local df = n - 2
  local t2 = r * r * df / (1 - r * r)
  return M.betainc(df / 2, 0.5, df / (df + t2))
end

-- Pearson's r and its p-value of two equally long lists; NaN when fewer than 3 pairs or a list is constant.
function M.pearson(x, y)
  local n = #x
  if n ~= #y then error(("stats.pearson: %d values against %d"):format(n, #y), 2) end
  if n < 3 then return 0 / 0, 0 / 0, n end
  local xconst, yconst = true, true   -- constant input: no correlation (scipy returns NaN too)
  for i = 2, n do
    if x[i] ~= x[1] then xconst = false end
    if y[i] ~= y[1] then yconst = false end
  end
  if xconst or yconst then return 0 / 0, 0 / 0, n end
  local mx, my = 0, 0
  for i = 1, n do mx, my = mx + x[i], my + y[i] end
  mx, my = mx / n, my / n
  local sxy, sxx, syy = 0, 0, 0
  for i = 1, n do
    local dx, dy = x[i] - mx, y[i] - my
    sxy, sxx, syy = sxy + dx * dy, sxx + dx * dx, syy + dy * dy
  end
  local r = sxy / math.sqrt(sxx * syy)
  r = math.max(-1, math.min(1, r))
  return r, M.correlation_p(r, n), n
end

-- Spearman's rho (Pearson's r of the ranks, ties averaged) and its p-value.
function M.spearman(x, y)
  if #x ~= #y then error(("stats.spearman: %d values against %d"):format(#x, #y), 2) end
  return M.pearson(M.ranks(x), M.ranks(y))
end

function M.mean(list)
  if #list == 0 then return 0 / 0 end
  local s = 0
  for _, v in ipairs(list) do s = s + v end
  return s / #list
end

return M
