-- dpl.benchmarks.paper_tables: the paper's published scores as data (its appendix Tables V-XI) and its summary tables
-- III (average rank per benchmark) and IV (best extraction layer), transcribed by hand from the paper's text so that
-- experiments/analysis.lua --compare-paper can put every cell of a reproduction beside the published number.
-- docs/analysis.md says how the transcription was checked and what is missing (Table X).
--
--   local paper = require "dpl.benchmarks.paper_tables"
--   for _, v in ipairs(paper.values()) do print(v.table, v.score, v.arch, v.layer, v.value) end
--   paper.value("bapps/2afc", "alexnet", "M")        --> 0.691 (Table V)
--
-- A table lists its column groups as score ids ("<benchmark>/<score>", the ids of dpl.benchmarks.analysis's
-- BENCHMARKS); each row holds, per column group, the values of layers E, S, M, L in the paper's order. Values are as
-- printed (rounded: 3 decimals, PSNR 1 decimal); `unit` is the factor from dpl's stored score to the printed number.
local M = {}

M.LAYERS = {"E", "S", "M", "L"}

M.TABLES = {
  {id = "V", benchmark = 1, scores = {"bapps/2afc", "bapps/jnd"}, digits = 3,
   title = "2AFC and JND scores of the BAPPS dataset for different loss networks used to measure deep perceptual similarity",
   rows = {
    vgg11 =           {0.635, 0.650, 0.659, 0.682, 0.545, 0.564, 0.573, 0.623},
    vgg16 =           {0.637, 0.641, 0.653, 0.671, 0.557, 0.552, 0.567, 0.614},
    vgg16_bn =        {0.629, 0.636, 0.642, 0.669, 0.545, 0.545, 0.556, 0.621},
    vgg19 =           {0.635, 0.639, 0.653, 0.666, 0.557, 0.547, 0.568, 0.608},
    resnet18 =        {0.629, 0.647, 0.654, 0.674, 0.517, 0.545, 0.559, 0.604},
    resnet50 =        {0.629, 0.661, 0.658, 0.659, 0.525, 0.561, 0.573, 0.593},
    resnext50_32x4d = {0.628, 0.639, 0.652, 0.658, 0.526, 0.540, 0.558, 0.589},
    googlenet =       {0.631, 0.677, 0.682, 0.667, 0.512, 0.542, 0.563, 0.567},
    inception_v3 =    {0.625, 0.669, 0.659, 0.660, 0.516, 0.572, 0.559, 0.555},
    efficientnet_b0 = {0.626, 0.621, 0.665, 0.651, 0.530, 0.540, 0.598, 0.587},
    efficientnet_b7 = {0.629, 0.624, 0.658, 0.638, 0.513, 0.551, 0.579, 0.536},
    alexnet =         {0.643, 0.686, 0.691, 0.688, 0.518, 0.569, 0.586, 0.589},
    densenet121 =     {0.628, 0.648, 0.668, 0.661, 0.506, 0.544, 0.576, 0.579},
    squeezenet1_1 =   {0.635, 0.679, 0.685, 0.678, 0.527, 0.573, 0.602, 0.606},
  }},
  {id = "VI", benchmark = 2, scores = {"superres4/psnr.Set5", "superres4/psnr.Set14", "superres4/psnr.BSD100"}, digits = 1,
   title = "PSNR of x4 upscaling on Set5, Set14 and BSD100 of an image transformation network trained with different loss networks",
   rows = {
    vgg11 =           {30.7, 28.6, 28.1, 27.2, 26.4, 24.9, 24.7, 24.7, 26.3, 24.9, 24.7, 25.2},
    vgg16 =           {30.3, 27.2, 24.9, 25.5, 26.3, 24.7, 23.7, 24.1, 25.9, 24.9, 23.8, 23.9},
    vgg16_bn =        {28.6, 28.5, 23.2, 13.2, 24.7, 24.5, 21.9, 14.3, 25.2, 24.4, 22.7, 15.4},
    vgg19 =           {30.2, 26.1, 26.2, 26.8, 26.3, 24.1, 24.0, 24.0, 26.1, 24.3, 24.2, 23.5},
    resnet18 =        {28.7, 26.8, 28.3, 25.5, 25.4, 24.1, 24.8, 23.1, 25.9, 24.5, 24.6, 23.6},
    resnet50 =        {29.1, 31.0, 28.4, 24.1, 25.5, 25.7, 25.0, 22.5, 25.4, 25.2, 24.8, 24.5},
    resnext50_32x4d = {29.8, 27.3, 29.5, 24.7, 25.9, 24.7, 25.1, 22.4, 26.0, 25.1, 25.3, 22.7},
    googlenet =       {26.5, 29.5, 28.4, 26.0, 24.2, 25.3, 24.7, 23.5, 24.7, 25.0, 24.9, 24.6},
    inception_v3 =    {27.4, 27.4, 26.3, 24.9, 24.2, 24.7, 24.0, 23.7, 24.5, 25.4, 24.0, 24.0},
    efficientnet_b0 = {21.1, 26.8, 27.3, 25.8, 20.7, 24.5, 24.3, 24.1, 21.1, 25.0, 24.8, 24.5},
    efficientnet_b7 = {28.6, 27.7, 27.9, 26.1, 25.5, 24.8, 24.6, 23.4, 25.6, 25.8, 24.9, 23.5},
    alexnet =         {29.9, 29.2, 30.0, 29.7, 25.7, 24.9, 25.2, 25.2, 25.7, 25.1, 24.9, 24.9},
    densenet121 =     {24.8, 30.1, 29.3, 25.1, 23.4, 25.2, 25.2, 22.4, 24.0, 24.9, 24.9, 24.5},
    squeezenet1_1 =   {31.1, 29.1, 28.4, 26.9, 26.5, 25.0, 24.8, 23.9, 26.2, 25.3, 24.6, 24.1},
  }},
  {id = "VII", benchmark = 2, scores = {"superres4/ssim.Set5", "superres4/ssim.Set14", "superres4/ssim.BSD100"}, digits = 3,
   title = "MSSIM of x4 upscaling on Set5, Set14 and BSD100 of an image transformation network trained with different loss networks",
   rows = {
    vgg11 =           {0.855, 0.772, 0.812, 0.793, 0.690, 0.603, 0.630, 0.643, 0.646, 0.546, 0.579, 0.602},
    vgg16 =           {0.859, 0.824, 0.806, 0.804, 0.689, 0.649, 0.640, 0.643, 0.639, 0.603, 0.589, 0.583},
    vgg16_bn =        {0.834, 0.832, 0.807, 0.382, 0.664, 0.660, 0.653, 0.318, 0.613, 0.604, 0.614, 0.357},
    vgg19 =           {0.856, 0.809, 0.815, 0.803, 0.693, 0.641, 0.639, 0.625, 0.641, 0.587, 0.591, 0.551},
    resnet18 =        {0.826, 0.838, 0.834, 0.805, 0.672, 0.665, 0.669, 0.629, 0.638, 0.628, 0.619, 0.574},
    resnet50 =        {0.835, 0.856, 0.837, 0.742, 0.671, 0.677, 0.668, 0.619, 0.621, 0.623, 0.617, 0.618},
    resnext50_32x4d = {0.840, 0.836, 0.846, 0.824, 0.678, 0.671, 0.673, 0.647, 0.636, 0.631, 0.628, 0.594},
    googlenet =       {0.822, 0.847, 0.832, 0.773, 0.655, 0.670, 0.651, 0.615, 0.621, 0.618, 0.598, 0.592},
    inception_v3 =    {0.786, 0.825, 0.813, 0.779, 0.615, 0.667, 0.653, 0.627, 0.568, 0.626, 0.609, 0.590},
    efficientnet_b0 = {0.749, 0.815, 0.826, 0.808, 0.617, 0.668, 0.663, 0.649, 0.587, 0.637, 0.622, 0.606},
    efficientnet_b7 = {0.826, 0.803, 0.812, 0.797, 0.663, 0.648, 0.648, 0.629, 0.615, 0.616, 0.607, 0.582},
    alexnet =         {0.828, 0.803, 0.815, 0.814, 0.665, 0.627, 0.624, 0.632, 0.618, 0.581, 0.562, 0.573},
    densenet121 =     {0.784, 0.851, 0.845, 0.777, 0.628, 0.678, 0.674, 0.624, 0.592, 0.625, 0.626, 0.604},
    squeezenet1_1 =   {0.861, 0.816, 0.831, 0.808, 0.693, 0.641, 0.655, 0.637, 0.646, 0.596, 0.605, 0.582},
  }},
  {id = "VIII", benchmark = 2, scores = {"superres8/psnr.Set5", "superres8/psnr.Set14", "superres8/psnr.BSD100"}, digits = 1,
   title = "PSNR of x8 upscaling on Set5, Set14 and BSD100 of an image transformation network trained with different loss networks",
   rows = {
    vgg11 =           {26.2, 26.0, 22.8, 19.6, 22.8, 22.5, 20.9, 18.4, 22.6, 22.1, 21.3, 19.0},
    vgg16 =           {25.2, 23.4, 19.9, 18.6, 22.5, 21.4, 19.5, 19.0, 22.3, 21.5, 20.1, 19.7},
    vgg16_bn =        {24.6, 21.6, 13.2, 12.0, 21.6, 20.0, 13.0, 11.9, 21.3, 20.1, 13.9, 12.8},
    vgg19 =           {25.4, 22.5, 19.7, 20.0, 22.6, 21.0, 19.3, 19.1, 22.5, 21.3, 20.0, 19.4},
    resnet18 =        {25.6, 24.9, 23.2, 22.1, 22.4, 21.8, 20.5, 20.3, 22.3, 21.5, 20.7, 20.9},
    resnet50 =        {24.7, 25.3, 25.1, 23.3, 21.9, 21.7, 21.6, 21.0, 22.1, 21.3, 21.3, 21.3},
    resnext50_32x4d = {25.5, 25.3, 25.0, 14.7, 22.4, 21.9, 21.5, 15.7, 22.3, 21.7, 21.2, 16.2},
    googlenet =       {22.0, 25.7, 25.2, 24.1, 20.9, 21.9, 21.7, 21.3, 21.2, 21.5, 21.5, 21.1},
    inception_v3 =    {22.6, 24.2, 23.8, 24.5, 20.7, 21.7, 21.7, 21.9, 21.3, 21.7, 21.7, 21.8},
    efficientnet_b0 = {18.4, 24.4, 25.4, 24.8, 18.8, 22.0, 22.2, 22.0, 19.3, 22.2, 21.9, 21.8},
    efficientnet_b7 = {25.0, 23.5, 25.8, 24.6, 22.2, 21.3, 22.4, 21.8, 22.4, 21.9, 22.2, 22.0},
    alexnet =         {26.3, 25.8, 25.5, 24.2, 22.6, 21.9, 21.9, 21.4, 22.1, 21.5, 21.6, 21.4},
    densenet121 =     {21.4, 24.1, 24.9, 23.9, 20.8, 21.6, 21.9, 21.3, 21.4, 21.8, 21.5, 21.4},
    squeezenet1_1 =   {26.5, 25.0, 23.8, 22.1, 22.9, 22.0, 21.5, 20.6, 22.6, 21.7, 21.0, 20.4},
  }},
  {id = "IX", benchmark = 2, scores = {"superres8/ssim.Set5", "superres8/ssim.Set14", "superres8/ssim.BSD100"}, digits = 3,
   title = "MSSIM of x8 upscaling on Set5, Set14 and BSD100 of an image transformation network trained with different loss networks",
   rows = {
    vgg11 =           {0.709, 0.675, 0.590, 0.604, 0.487, 0.452, 0.389, 0.413, 0.452, 0.391, 0.354, 0.377},
    vgg16 =           {0.673, 0.666, 0.605, 0.569, 0.463, 0.453, 0.417, 0.420, 0.420, 0.413, 0.390, 0.394},
    vgg16_bn =        {0.685, 0.649, 0.518, 0.380, 0.478, 0.458, 0.385, 0.282, 0.448, 0.443, 0.401, 0.321},
    vgg19 =           {0.696, 0.661, 0.591, 0.574, 0.481, 0.450, 0.402, 0.399, 0.441, 0.419, 0.373, 0.369},
    resnet18 =        {0.685, 0.657, 0.673, 0.532, 0.480, 0.446, 0.465, 0.374, 0.449, 0.392, 0.424, 0.357},
    resnet50 =        {0.678, 0.688, 0.685, 0.588, 0.479, 0.464, 0.456, 0.402, 0.443, 0.416, 0.398, 0.375},
    resnext50_32x4d = {0.696, 0.695, 0.690, 0.341, 0.483, 0.476, 0.468, 0.272, 0.449, 0.438, 0.413, 0.290},
    googlenet =       {0.617, 0.695, 0.673, 0.620, 0.454, 0.459, 0.460, 0.427, 0.438, 0.414, 0.401, 0.369},
    inception_v3 =    {0.634, 0.661, 0.656, 0.628, 0.451, 0.448, 0.462, 0.437, 0.420, 0.400, 0.431, 0.409},
    efficientnet_b0 = {0.592, 0.669, 0.688, 0.667, 0.436, 0.469, 0.466, 0.460, 0.413, 0.443, 0.413, 0.428},
    efficientnet_b7 = {0.674, 0.644, 0.662, 0.599, 0.470, 0.447, 0.467, 0.409, 0.442, 0.433, 0.423, 0.382},
    alexnet =         {0.681, 0.636, 0.631, 0.611, 0.469, 0.413, 0.412, 0.406, 0.425, 0.366, 0.364, 0.364},
    densenet121 =     {0.605, 0.648, 0.650, 0.582, 0.438, 0.459, 0.436, 0.398, 0.428, 0.419, 0.388, 0.364},
    squeezenet1_1 =   {0.710, 0.606, 0.627, 0.611, 0.491, 0.406, 0.417, 0.417, 0.455, 0.362, 0.354, 0.369},
  }},
  -- Table X's numbers are in the paper (percent, 12 per row), but the text it was transcribed from interleaves its
  -- columns in an order that differs from row to row, so which number is which layer and score cannot be recovered
  -- (docs/analysis.md); its cells are left out rather than guessed. Tables III and IV below still hold the paper's
  -- Benchmark 3 ranks and best layers.
  {id = "X", benchmark = 3, scores = {"delineation/correctness", "delineation/completeness", "delineation/quality"},
   digits = 1, unit = 100, unavailable = "the source text's column order is garbled; not transcribed",
   title = "Correctness, completeness and quality on the MRD test set for U-Net models trained with different loss networks",
   rows = {}},
  {id = "XI", benchmark = 4, scores = {"svhn/accuracy", "stl10/accuracy"}, digits = 3,
   title = "Test accuracy on SVHN and STL-10 for downstream models using autoencoder encodings trained with different loss networks",
   rows = {
    vgg11 =           {0.826, 0.832, 0.860, 0.825, 0.381, 0.453, 0.567, 0.724},
    vgg16 =           {0.826, 0.833, 0.887, 0.837, 0.413, 0.512, 0.592, 0.741},
    vgg16_bn =        {0.816, 0.820, 0.863, 0.492, 0.434, 0.318, 0.247, 0.465},
    vgg19 =           {0.826, 0.833, 0.896, 0.821, 0.397, 0.499, 0.607, 0.736},
    resnet18 =        {0.820, 0.832, 0.867, 0.471, 0.422, 0.473, 0.415, 0.465},
    resnet50 =        {0.821, 0.833, 0.862, 0.571, 0.413, 0.554, 0.413, 0.480},
    resnext50_32x4d = {0.819, 0.830, 0.864, 0.259, 0.419, 0.383, 0.428, 0.403},
    googlenet =       {0.814, 0.868, 0.849, 0.595, 0.373, 0.474, 0.540, 0.593},
    inception_v3 =    {0.803, 0.846, 0.828, 0.366, 0.301, 0.475, 0.528, 0.354},
    efficientnet_b0 = {0.818, 0.828, 0.838, 0.714, 0.393, 0.384, 0.434, 0.695},
    efficientnet_b7 = {0.807, 0.821, 0.851, 0.445, 0.418, 0.277, 0.648, 0.385},
    alexnet =         {0.818, 0.817, 0.799, 0.744, 0.387, 0.596, 0.640, 0.669},
    densenet121 =     {0.758, 0.831, 0.862, 0.264, 0.442, 0.488, 0.565, 0.578},
    squeezenet1_1 =   {0.825, 0.845, 0.843, 0.791, 0.405, 0.513, 0.639, 0.681},
  }},
}

-- Table III: average rank (1 best .. 14 worst) of each architecture's best loss network over the scores of each
-- benchmark (1-4), and over the four benchmarks weighted equally ("all"). The paper ranked unrounded scores.
M.TABLE_III = {
  columns = {1, 2, 3, 4, "all"},
  rows = {
    vgg11 =           {2.5, 2.33, 2.67, 6, 3.38},
    vgg16 =           {4.5, 6.75, 3.67, 1.5, 4.10},
    vgg16_bn =        {4.5, 11.08, 11.33, 9.5, 9.10},
    vgg19 =           {7, 4.25, 1.67, 1.5, 3.60},
    resnet18 =        {5.5, 7.08, 12.67, 8, 8.31},
    resnet50 =        {10, 7.33, 6.67, 8.5, 8.13},
    resnext50_32x4d = {11.5, 5.67, 5.67, 9.5, 8.08},
    googlenet =       {8.5, 9.67, 10.33, 5.5, 8.50},
    inception_v3 =    {10.5, 11.83, 4.67, 11, 9.50},
    efficientnet_b0 = {9, 9.92, 11.67, 8.5, 9.77},
    efficientnet_b7 = {12.5, 8.83, 3, 8.5, 8.21},
    alexnet =         {5, 8.58, 9.33, 10, 8.23},
    densenet121 =     {10.5, 10.5, 13.67, 8.5, 10.79},
    squeezenet1_1 =   {3.5, 1.17, 8, 8.5, 5.29},
  },
}

-- Table IV: the best extraction layer of each architecture for seven scores (the paper underlines the best
-- architecture; the underlining did not survive transcription and is not given here). "MRD (All)" is taken as
-- delineation quality.
M.TABLE_IV = {
  scores = {"bapps/2afc", "bapps/jnd", "superres4/ssim.BSD100", "superres8/ssim.BSD100", "delineation/quality",
            "svhn/accuracy", "stl10/accuracy"},
  rows = {
    vgg11 =           "LLEELML",
    vgg16 =           "LLEEEML",
    vgg16_bn =        "LLMESML",
    vgg19 =           "LLEEMML",
    resnet18 =        "LLEEMMS",
    resnet50 =        "SLSEEMS",
    resnext50_32x4d = "LLEEMMM",
    googlenet =       "MLEELSL",
    inception_v3 =    "SSSMLSM",
    efficientnet_b0 = "MMSSLML",
    efficientnet_b7 = "MMSELMM",
    alexnet =         "MLEELEL",
    densenet121 =     "MLMELML",
    squeezenet1_1 =   "MLEELSL",
  },
}

local by_id = {}
for _, t in ipairs(M.TABLES) do by_id[t.id] = t end

-- the table with this id ("V" .. "XI"), or nil
function M.table(id) return by_id[id] end

-- the tables holding scores of a benchmark id ("superres4" -> Tables VI and VII)
function M.tables_of(benchmark)
  local out = {}
  for _, t in ipairs(M.TABLES) do
    for _, s in ipairs(t.scores) do
      if s:match("^[^/]+") == benchmark then out[#out + 1] = t; break end
    end
  end
  return out
end

-- Every published value: a list of {table =, benchmark = (1-4), score = id, arch =, layer =, value =, digits =,
-- unit =}, in table, row, column order.
function M.values()
  local out = {}
  for _, t in ipairs(M.TABLES) do
    local archs = {}
    for arch in pairs(t.rows) do archs[#archs + 1] = arch end
    table.sort(archs)
    for _, arch in ipairs(archs) do
      local row = t.rows[arch]
      for g, score in ipairs(t.scores) do
        for k, layer in ipairs(M.LAYERS) do
          out[#out + 1] = {table = t.id, benchmark = t.benchmark, score = score, arch = arch, layer = layer,
                           value = row[(g - 1) * #M.LAYERS + k], digits = t.digits, unit = t.unit or 1}
        end
      end
    end
  end
  return out
end

local index
-- The published value of (score id, arch, layer) and its table entry, or nil.
function M.value(score, arch, layer)
  if not index then
    index = {}
    for _, v in ipairs(M.values()) do index[v.score .. "|" .. v.arch .. "|" .. v.layer] = v end
  end
  local v = index[score .. "|" .. arch .. "|" .. layer]
  return v and v.value, v
end

return M
