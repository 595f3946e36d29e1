#version 450
// spatial2d.comp - the spatial ops (pooling, padding, resizing; runtime/src/ops/spatial.c): a separable gather driven
// by per-axis tables. One invocation computes TX consecutive destination elements of one row (plane p, row y,
// columns x0 .. x0 + TX - 1), walking the source rows listed for y (read once for the TX outputs) times the source
// columns listed for each x. The tables (binding 2) hold, as floats, CSR entry numbers ptr_y[0..dh] and ptr_x[0..dw]
// and entries (source index, weight) at ent_y + 2e and ent_x + 2e.
// MODE 0 (sum): dst = sum wy * wx * src, or `value` when fill is set and a list is empty.
// MODE 1 (max): dst = max of the listed elements (a NaN wins, the last one; else the first max), -inf when none;
//               idx (binding 3, dst's shape) = its position sy * sw + sx in the plane, -1 when none.
// MODE 2 (max-pool gradient): dst = sum of the listed src elements whose idx (binding 3, src's shape) equals the
//               destination's position y * dw + x.
// Bindings: 0 dst, 1 src, 2 tables, 3 indices (mode 0: any buffer, unused).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int MODE = 0;
layout(constant_id = 2) const uint TX = 4;
layout(std430, binding = 0) writeonly buffer Dst { float dst[]; };
layout(std430, binding = 1) readonly buffer Src { float src[]; };
layout(std430, binding = 2) readonly buffer Tab { float tab[]; };
layout(std430, binding = 3) buffer Idx { float idx[]; };
layout(push_constant) uniform Params {
  uint planes, sh, sw, dh, dw;
  uint dst_off, src_off, idx_off, tab_off;
  uint ptr_y, ptr_x, ent_y, ent_x;
  uint fill;
  float value;
} pc;

void main() {
  uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  uint tiles = (pc.dw + TX - 1u) / TX;
  if (id >= pc.planes * pc.dh * tiles) return;
  uint xt = id % tiles, rest = id / tiles;
  uint y = rest % pc.dh, p = rest / pc.dh;
  uint x0 = xt * TX, nx = min(TX, pc.dw - x0);
  uint splane = pc.sh * pc.sw;
  uint py = pc.tab_off + pc.ptr_y + y, px = pc.tab_off + pc.ptr_x + x0;
  uint r0 = uint(tab[py]), r1 = uint(tab[py + 1u]);
  uint cb[TX + 1u];
  for (uint t = 0u; t <= TX; t++) cb[t] = t <= nx ? uint(tab[px + t]) : cb[nx];
  uint ey = pc.tab_off + pc.ent_y, ex = pc.tab_off + pc.ent_x;
  uint sbase = pc.src_off + p * splane;
  uint dbase = (p * pc.dh + y) * pc.dw + x0;   // within the plane range of this dispatch

  if (MODE == 0) {
    float acc[TX];
    for (uint t = 0u; t < TX; t++) acc[t] = 0.0;
    for (uint e = r0; e < r1; e++) {
      uint row = sbase + uint(tab[ey + 2u * e]) * pc.sw;
      float wy = tab[ey + 2u * e + 1u];
      for (uint t = 0u; t < TX; t++)
        for (uint c = cb[t]; c < cb[t + 1u]; c++) acc[t] += wy * tab[ex + 2u * c + 1u] * src[row + uint(tab[ex + 2u * c])];
    }
    for (uint t = 0u; t < nx; t++) {
      float v = acc[t];
      if (pc.fill != 0u && (r0 == r1 || cb[t] == cb[t + 1u])) v = pc.value;
      dst[pc.dst_off + dbase + t] = v;
    }
  } else if (MODE == 1) {
    float best[TX];
    int at[TX];
    for (uint t = 0u; t < TX; t++) { best[t] = uintBitsToFloat(0xff800000u); at[t] = -1; }
    for (uint e = r0; e < r1; e++) {
      uint rowpos = uint(tab[ey + 2u * e]) * pc.sw;
      for (uint t = 0u; t < TX; t++)
        for (uint c = cb[t]; c < cb[t + 1u]; c++) {
          uint pos = rowpos + uint(tab[ex + 2u * c]);
          float v = src[sbase + pos];
          if (v > best[t] || isnan(v)) { best[t] = v; at[t] = int(pos); }
        }
    }
    for (uint t = 0u; t < nx; t++) {
      dst[pc.dst_off + dbase + t] = best[t];
      idx[pc.idx_off + dbase + t] = float(at[t]);
    }
  } else {
    float acc[TX];
    for (uint t = 0u; t < TX; t++) acc[t] = 0.0;
    uint ibase = pc.idx_off + p * splane;
    for (uint e = r0; e < r1; e++) {
      uint rowpos = uint(tab[ey + 2u * e]) * pc.sw;
      for (uint t = 0u; t < TX; t++) {
        float self = float(y * pc.dw + x0 + t);
        for (uint c = cb[t]; c < cb[t + 1u]; c++) {
          uint s = rowpos + uint(tab[ex + 2u * c]);
          if (idx[ibase + s] == self) acc[t] += src[sbase + s];
        }
      }
    }
    for (uint t = 0u; t < nx; t++) dst[pc.dst_off + dbase + t] = acc[t];
  }
}
