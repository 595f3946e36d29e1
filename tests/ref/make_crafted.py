#!/usr/bin/python3
"""make_crafted.py OUTDIR [--big] [--seeds DIR] - writes hostile and malformed inputs for every reader of dpl (the reproducers of
issue 18 and their relatives), each built byte by byte with the standard library only (no torch, no numpy, no PIL),
and OUTDIR/index.tsv, one line per file:

    file <TAB> reader <TAB> expectation <TAB> environment

reader: pth (dpl.weights.load: zip and legacy checkpoints, safetensors), npy (dpl.load_npy), image
(dpl.image.load), svhn (dpl_svhn_open), stl10 (dpl_stl10_open of FILE and FILE.labels when that exists).
expectation: "ok" (must load), "error:TEXT" (must fail with TEXT in the message, which names the file), or
"warn:TEXT" (loads, and stderr says TEXT). environment: "-" or NAME=VALUE[,NAME=VALUE] set while reading it.
Every file is read in a process whose address space is capped (tests/lua/test_robustness.lua), so an input that makes
a reader reserve gigabytes fails that test.

With --big, also the files that need a few hundred MB of (sparse, zero) disk space: valid files too large for the
capped process, whose out-of-memory error must name the file (issue 18 item 7).

With --seeds DIR: also (re)writes the small seed files of the safetensors, npy, mat and stl10 fuzzers
(DIR/<reader>/, i.e. tests/fuzz/corpus; the pth, png, jpeg and tiff seeds come from make_pth.py and image files).

tests/lua/test_robustness.lua runs this script."""
import os
import struct
import sys
import zipfile
import zlib

out = sys.argv[1]
big = "--big" in sys.argv[2:]
seed_dir = sys.argv[sys.argv.index("--seeds") + 1] if "--seeds" in sys.argv else None
os.makedirs(out, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
corpus_jpeg = os.path.join(here, "..", "fuzz", "corpus", "jpeg")
index = []


def emit(name, data, reader, expect, env="-"):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    index.append((name, reader, expect, env))


# ---- pickles and PyTorch checkpoints, written by hand ------------------------------------------------------------
def p_str(s):
    b = s.encode() if isinstance(s, str) else s
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(i):
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    if -(1 << 31) <= i < (1 << 31):
        return b"J" + struct.pack("<i", i)
    return b"\x8a\x08" + struct.pack("<q", i)


def p_tensor(key, numel, offset, shape, stride, storage_type="FloatStorage", legacy=False):
    """torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, False, None) with a persistent-id storage (the
    legacy format's persistent id has a sixth item, the view: None)"""
    return (b"ctorch._utils\n_rebuild_tensor_v2\n((" + p_str("storage") + b"ctorch\n" + storage_type.encode() + b"\n" +
            p_str(key) + p_str("cpu") + p_int(numel) + (b"N" if legacy else b"") + b"tQ" + p_int(offset) +
            b"(" + b"".join(p_int(d) for d in shape) + b"t(" + b"".join(p_int(s) for s in stride) + b"t\x89NtR")


def p_state_dict(items):
    """{name: tensor pickle, ...} as protocol 2 (EMPTY_DICT, MARK, key/value pairs, SETITEMS)"""
    return b"\x80\x02}(" + b"".join(p_str(n) + t for n, t in items) + b"u."


def zip_pth(data_pkl, storages, extra=()):
    """a torch.save zip archive (stored members) with data.pkl, version and data/<key> for each storage"""
    import io
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        for key, data in storages:
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", "3\n")
        for n, d in extra:
            z.writestr(n, d)
    return b.getvalue()


MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."          # LONG1 of 0x1950a86a20f9469cfc6c
VERSION = b"\x80\x02M\xe9\x03."                                # 1001
SYSINFO = (b"\x80\x02}(" + p_str("protocol_version") + b"M\xe9\x03" + p_str("little_endian") + b"\x88" +
           p_str("type_sizes") + b"}(" + p_str("short") + b"K\x02" + p_str("int") + b"K\x04" + p_str("long") +
           b"K\x04uu.")


def legacy_pth(obj_pickle, storages):
    """a pre-1.6 torch.save file: magic, version, sys_info, the object, the key list, then count + bytes per key"""
    keys = b"\x80\x02(" + b"".join(p_str(k) for k, _, _ in storages) + b"l."
    tail = b"".join(struct.pack("<q", n) + data for _, n, data in storages)
    return MAGIC + VERSION + SYSINFO + obj_pickle + keys + tail


def floats(n, scale=1.0):
    return struct.pack("<%df" % n, *[((i * 37) % 101 - 50) * scale for i in range(n)])


# item 3: 4096 tensors that all view one 1M-float (4 MB) storage: a copy per alias was 16 GiB
alias_n, alias_numel = 4096, 1 << 20


def alias_pickle(legacy):
    return p_state_dict([("t%d" % i, p_tensor("0", alias_numel, 0, [1024, 1024], [1024, 1], legacy=legacy))
                         for i in range(alias_n)])


emit("pth_aliases.pth", zip_pth(alias_pickle(False), [("0", floats(alias_numel))]), "pth", "ok")
emit("pth_aliases_legacy.pth", legacy_pth(alias_pickle(True), [("0", alias_numel, floats(alias_numel))]), "pth", "ok")
# the same storage read as views with other offsets, shapes and strides (a transposed view, a slice)
views = p_state_dict([("full", p_tensor("0", 12, 0, [3, 4], [4, 1])), ("t", p_tensor("0", 12, 0, [4, 3], [1, 4])),
                      ("slice", p_tensor("0", 12, 5, [2, 2], [4, 1]))])
emit("pth_views.pth", zip_pth(views, [("0", floats(12))]), "pth", "ok")

# item 1: an empty tensor whose other sizes multiply past 2^64 (0 x 2^40 x 2^40 x 2^40)
emit("pth_zero_huge.pth", zip_pth(p_state_dict([("w", p_tensor("0", 1, 0, [0, 1 << 40, 1 << 40, 1 << 40],
                                                                [0, 0, 0, 0]))]), [("0", floats(1))]),
     "pth", "error:too large")

# item 8 (the .pth side): a NUL inside a tensor name is refused, not cut short
emit("pth_nul_name.pth", zip_pth(p_state_dict([("a\x00b", p_tensor("0", 2, 0, [2], [1]))]), [("0", floats(2))]),
     "pth", "error:contains a NUL byte")

# item 9: a weight edited to 1e30 after saving: the member's CRC-32 no longer matches
good = zip_pth(p_state_dict([("w", p_tensor("0", 4, 0, [4], [1]))]), [("0", floats(4))])
zf = zipfile.ZipFile(__import__("io").BytesIO(good))
info = zf.getinfo("archive/data/0")
at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
tampered = good[:at] + struct.pack("<f", 1e30) + good[at + 4:]
emit("pth_crc.pth", tampered, "pth", "error:CRC-32")
# a tampered data.pkl too (a key renamed)
pkl = zf.getinfo("archive/data.pkl")
at = pkl.header_offset + 30 + len(pkl.filename.encode()) + len(pkl.extra)
renamed = bytearray(good)
k = renamed.index(b"X\x01\x00\x00\x00w", at) + 5
renamed[k] = ord("v")
emit("pth_crc_pickle.pth", bytes(renamed), "pth", "error:CRC-32")

# item 11: file bytes echoed into messages: a byteorder member that would clear the terminal, a control-character
# tensor name given twice
emit("pth_escape_byteorder.pth", zip_pth(p_state_dict([]), [], extra=[("archive/byteorder", b"\x1b[2J\x1b[H")]),
     "pth", "error:unknown byte order '\\x1b[2J\\x1b[H'")
name = "\x1b]0;owned\x07"
emit("pth_escape_name.pth", zip_pth(p_state_dict([(name, p_tensor("0", 2, 0, [2], [1])),
                                                  (name, p_tensor("0", 2, 0, [2], [1]))]), [("0", floats(2))]),
     "pth", "error:'\\x1b]0;owned\\x07' appears twice")


# ---- safetensors ------------------------------------------------------------------------------------------------
def safetensors(header_json, data):
    h = header_json.encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def st_entry(dtype, shape, begin, end):
    return '{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}' % (dtype, ",".join(str(d) for d in shape), begin, end)


emit("st_ok.safetensors", safetensors('{"__metadata__":{"k":"v"},"a":%s,"b":%s}' % (
    st_entry("F32", [2], 0, 8), st_entry("F32", [1], 8, 12)), floats(3)), "pth", "ok")
# listed in another order than their data: JSON objects are unordered, fine
emit("st_listed_out_of_order.safetensors", safetensors('{"b":%s,"a":%s}' % (
    st_entry("F32", [1], 8, 12), st_entry("F32", [2], 0, 8)), floats(3)), "pth", "ok")
# item 1: shape [2^32, 2^32, 2^32] overflowed the stride loop before validation
emit("st_stride_overflow.safetensors", safetensors('{"a":%s}' % st_entry("F32", [1 << 32] * 3, 0, 4), floats(1)),
     "pth", "error:too large")
# item 3/8: overlapping data, a hole, bytes after the last tensor, reversed offsets
emit("st_overlap.safetensors", safetensors('{"a":%s,"b":%s}' % (st_entry("F32", [2], 0, 8), st_entry("F32", [2], 4, 12)),
                                           floats(3)), "pth", "error:overlap")
emit("st_alias.safetensors", safetensors('{"a":%s,"b":%s}' % (st_entry("F32", [2], 0, 8), st_entry("F32", [2], 0, 8)),
                                         floats(2)), "pth", "error:overlap")
emit("st_hole.safetensors", safetensors('{"a":%s,"b":%s}' % (st_entry("F32", [1], 0, 4), st_entry("F32", [1], 8, 12)),
                                        floats(3)), "pth", "error:a hole")
emit("st_trailing.safetensors", safetensors('{"a":%s}' % st_entry("F32", [1], 0, 4), floats(2)), "pth",
     "error:after the last tensor")
emit("st_reversed.safetensors", safetensors('{"a":%s}' % st_entry("F32", [0], 4, 0), floats(1)), "pth",
     "error:data offsets [4, 0) are reversed")
# item 8: a duplicate key (the last won in dpl.weights.load, the first in lossnet), a NUL in a name (cut short)
emit("st_duplicate.safetensors", safetensors('{"a":%s,"a":%s}' % (st_entry("F32", [1], 0, 4), st_entry("F32", [1], 4, 8)),
                                             floats(2)), "pth", "error:'a' appears twice")
emit("st_nul_escape.safetensors", safetensors('{"a\\u0000b":%s}' % st_entry("F32", [1], 0, 4), floats(1)), "pth",
     "error:NUL")
emit("st_nul_raw.safetensors", safetensors('{"a\x00b":%s}' % st_entry("F32", [1], 0, 4), floats(1)), "pth",
     "error:NUL")
emit("st_field_twice.safetensors", safetensors('{"a":{"dtype":"F32","dtype":"I8","shape":[1],"data_offsets":[0,4]}}',
                                               floats(1)), "pth", "error:field 'dtype' twice")
emit("st_metadata_twice.safetensors", safetensors('{"__metadata__":{},"__metadata__":{},"a":%s}' %
                                                  st_entry("F32", [1], 0, 4), floats(1)), "pth",
     "error:__metadata__ twice")
emit("st_junk_after.safetensors", safetensors('{"a":%s} x' % st_entry("F32", [1], 0, 4), floats(1)), "pth",
     "error:bytes after the JSON object")
# item 11: an escape sequence in a tensor name and in a dtype
emit("st_escape_dtype.safetensors", safetensors('{"a":%s}' % st_entry("\\u001b[2J", [1], 0, 4), floats(1)), "pth",
     "error:'\\x1b[2J'")
emit("st_unicode_name.safetensors", safetensors('{"caf\\u00e9 \\ud83d\\ude00":%s}' % st_entry("F32", [1], 0, 4),
                                                floats(1)), "pth", "ok")


# ---- .npy ---------------------------------------------------------------------------------------------------------
def npy(header, data=b"", version=1):
    h = header.encode("latin1")
    pre = 10 if version == 1 else 12
    h += b" " * (-(pre + len(h) + 1) % 64) + b"\n"
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


emit("npy_ok.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats(6)), "npy", "ok")
emit("npy_ok_py2_long.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", floats(6)), "npy",
     "ok")
emit("npy_ok_double_quotes.npy", npy('{"shape": (3,), "fortran_order": True, "descr": "<f4"}', floats(3)), "npy", "ok")
# item 10: a duplicated descr (Python keeps the last, the substring search took the first), '<f4<f4', a
# fortran_order that is not a bool, 'shape' inside another value, unknown keys, trailing garbage
emit("npy_duplicate_descr.npy", npy("{'descr': '<f4', 'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                                    floats(4)), "npy", "error:the key 'descr' twice")
emit("npy_descr_twice_in_string.npy", npy("{'descr': '<f4<f4', 'fortran_order': False, 'shape': (2,), }", floats(2)),
     "npy", "error:unsupported dtype '<f4<f4'")
emit("npy_fortran_maybe.npy", npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", floats(2)), "npy",
     "error:fortran_order")
emit("npy_shape_in_string.npy", npy("{'descr': '<f4', 'fortran_order': False, 'x': \"'shape': (1,)\", }", floats(1)),
     "npy", "error:'x'")
emit("npy_no_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", floats(1)), "npy", "error:no 'shape'")
emit("npy_trailing.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } 7", floats(1)), "npy",
     "error:after the header's dict")
emit("npy_not_a_dict.npy", npy("['descr', '<f4']", floats(1)), "npy", "error:not a Python dict")
emit("npy_shape_float.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,), }", floats(1)), "npy",
     "error:shape")
emit("npy_structured.npy", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", floats(1)),
     "npy", "error:descr")
# item 1: an empty array whose other sizes multiply past 2^64
emit("npy_zero_huge.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, %d, %d, %d), }" %
                              ((1 << 40,) * 3)), "npy", "error:too large")
# item 11: an escape sequence in the dtype
emit("npy_escape.npy", npy("{'descr': '\x1b[2J', 'fortran_order': False, 'shape': (1,), }", floats(1)), "npy",
     "error:'\\x1b[2J'")


# ---- images -------------------------------------------------------------------------------------------------------
def png_chunk(kind, data, length=None):
    n = len(data) if length is None else length
    return struct.pack(">I", n) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png(width, height, rows=None, color=0, depth=8, extra=b""):
    """a PNG whose pixels are all zero (compressed as a stream, so a 2^27-pixel image costs little memory here)"""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0))
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    row = b"\x00" * (1 + (width * channels * depth + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height if rows is None else rows)) + z.flush()
    return PNG_SIG + ihdr + extra + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


# item 4: a 44-byte PNG that declares a 2 GB tEXt chunk
ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
emit("png_text_2gb.png", PNG_SIG + ihdr + struct.pack(">I", 0x7ffffff0) + b"tEXtab", "image", "error:PNG")
# a zTXt that inflates to 64 MB (the chunk limit refuses it as it inflates)
bomb = zlib.compress(b"\x00" * (64 << 20), 9)
emit("png_ztxt_bomb.png", png(1, 1, extra=png_chunk(b"zTXt", b"k\x00\x00" + bomb)), "image", "ok")
# item 6: 2^27 pixels in 400 KB (11 s and 1.6 GB per load before): Pillow's policy warns above DPL_MAX_IMAGE_PIXELS
# and refuses above twice that; the capped process sees it refused with a lower limit, and warned with a higher one
# whose data is cut short after a few rows (so the load fails fast, after the warning)
emit("png_2e27_pixels.png", png(16384, 8192), "image", "error:exceeds the limit", "DPL_MAX_IMAGE_PIXELS=33554432")
emit("png_warn_zone.png", png(15, 10), "image", "warn:decompression bomb", "DPL_MAX_IMAGE_PIXELS=100")
emit("png_over_twice.png", png(21, 10), "image", "error:exceeds the limit", "DPL_MAX_IMAGE_PIXELS=100")
emit("png_default_refused.png", png(20000, 9000, rows=1), "image", "error:exceeds the limit")
emit("png_limit_off.png", png(3, 2), "image", "ok", "DPL_MAX_IMAGE_PIXELS=0")


def jpeg_with_size(src, width, height):
    d = bytearray(open(os.path.join(corpus_jpeg, src), "rb").read())
    i = 2
    while i < len(d):
        marker, length = d[i + 1], struct.unpack(">H", d[i + 2:i + 4])[0]
        if marker in (0xc0, 0xc1, 0xc2, 0xc9, 0xca):
            d[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(d)
        i += 2 + length
    raise SystemExit("no SOF in " + src)


# item 5: a progressive JPEG declaring 32771 x 64517 (4.1 GB of coefficient buffers before the size check)
emit("jpeg_huge_progressive.jpg", jpeg_with_size("prog.jpg", 32771, 64517), "image", "error:exceeds the limit")
emit("jpeg_huge_baseline.jpg", jpeg_with_size("rgb.jpg", 64515, 4000), "image", "error:exceeds the limit")
# item 6: 64515 x 1280 (82.6 M pixels, under Pillow's default limit) with the limit lowered
emit("jpeg_bomb.jpg", jpeg_with_size("rgb.jpg", 64515, 1280), "image", "error:exceeds the limit",
     "DPL_MAX_IMAGE_PIXELS=16777216")


def tiff_header(width, height):
    """a little-endian baseline TIFF (8-bit gray, one strip) whose data is missing"""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, width * height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, typ, n) + (struct.pack("<HH", v, 0) if typ == 3 else struct.pack("<I", v))
        for tag, typ, n, v in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


emit("tiff_huge.tif", tiff_header(60000, 60000), "image", "error:exceeds the limit")


# ---- SVHN .mat (MATLAB 5) and STL-10 ----------------------------------------------------------------------------
def mat_element(kind, data, pad=True):
    body = struct.pack("<II", kind, len(data)) + data
    return body + (b"\x00" * (-len(body) % 8) if pad else b"")


def mat_matrix(name, dims, mi_type, cls, data):
    flags = mat_element(6, struct.pack("<II", cls, 0))
    dim = mat_element(5, struct.pack("<%di" % len(dims), *dims))
    nm = mat_element(1, name.encode("latin1"))
    return mat_element(14, flags + dim + nm + mat_element(mi_type, data))


MAT_HEADER = b"MATLAB 5.0 MAT-file, written by make_crafted.py".ljust(116, b" ") + b"\x00" * 8 + b"\x00\x01IM"


def mat_compressed(element):
    c = zlib.compress(element)
    return struct.pack("<II", 15, len(c)) + c


labels16 = mat_matrix("y", [16, 1], 2, 9, bytes(range(1, 11)) + bytes(range(1, 7)))
# item 1: X declared 2^30 x 2^30 x 3 x 16 uint8 with no data: the element count wrapped to 0 and the copy loop wrote
# far past a wrapped allocation (392 bytes)
emit("svhn_wrap.mat", MAT_HEADER + mat_matrix("X", [1 << 30, 1 << 30, 3, 16], 2, 9, b"") + labels16, "svhn",
     "error:dimensions too large")
emit("svhn_ok.mat", MAT_HEADER + mat_compressed(mat_matrix("X", [4, 4, 3, 16], 2, 9, bytes(range(256)) * 3)) +
     mat_compressed(labels16), "svhn", "ok")
# y declared 16 x 1 x 0 (no data) while X has 16 images: read past y's data before
emit("svhn_empty_y.mat", MAT_HEADER + mat_matrix("X", [4, 4, 3, 16], 2, 9, bytes(range(256)) * 3) +
     mat_matrix("y", [16, 1, 0], 2, 9, b""), "svhn", "error:one label per image")
# a compressed element that inflates past the element it declares (a zlib bomb behind a small tag)
x_elem = mat_matrix("X", [4, 4, 3, 16], 2, 9, bytes(range(256)) * 3)
emit("svhn_inflate_past.mat", MAT_HEADER + mat_compressed(x_elem + b"\x00" * (8 << 20)) + mat_compressed(labels16),
     "svhn", "error:past the size its element declares")
emit("svhn_escape_name.mat", MAT_HEADER + mat_matrix("\x1b[2J", [2, 1], 2, 9, b"\x01") + labels16, "svhn",
     "error:'\\x1b[2J'")
emit("stl10_ok.bin", bytes(range(256)) * (3 * 96 * 96 * 2 // 256), "stl10", "ok")
emit("stl10_ok.bin.labels", b"\x01\x0a", "-", "-")
emit("stl10_partial.bin", b"\x00" * (3 * 96 * 96 + 5), "stl10", "error:not a whole number")

# ---- item 7: valid files too large for the capped process: the out-of-memory error names the file ---------------
if big:
    def sparse(name, head, size, tail=b""):
        """head, then zeros (a hole: no disk space) up to size, then tail"""
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(size - len(tail))
            f.seek(size - len(tail))
            f.write(tail)

    def tensor_files(prefix, N, expect):
        """one N-element float32 tensor as .npy, safetensors, legacy and zip .pth (sparse zeros)"""
        h = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % N)
        sparse(prefix + ".npy", h, len(h) + 4 * N)
        index.append((prefix + ".npy", "npy", expect, "-"))
        h = safetensors('{"a":%s}' % st_entry("F32", [N], 0, 4 * N), b"")
        sparse(prefix + ".safetensors", h, len(h) + 4 * N)
        index.append((prefix + ".safetensors", "pth", expect, "-"))
        # a legacy checkpoint with one N-element storage
        obj = p_state_dict([("w", p_tensor("0", N, 0, [N], [1], legacy=True))])
        h = MAGIC + VERSION + SYSINFO + obj + b"\x80\x02(" + p_str("0") + b"l." + struct.pack("<q", N)
        sparse(prefix + "_legacy.pth", h, len(h) + 4 * N)
        index.append((prefix + "_legacy.pth", "pth", expect, "-"))
        # a zip checkpoint whose one storage is N zeros (a correct CRC-32, computed in pieces)
        pkl = p_state_dict([("w", p_tensor("0", N, 0, [N], [1]))])
        crc, zero = 0, b"\x00" * (1 << 20)
        for _ in range(4 * N >> 20):
            crc = zlib.crc32(zero, crc)
        members, body = [], b""
        for name, data, size, c in (("archive/data.pkl", pkl, len(pkl), zlib.crc32(pkl)), ("archive/version", b"3\n",
                                    2, zlib.crc32(b"3\n")), ("archive/data/0", None, 4 * N, crc)):
            members.append((name.encode(), len(body) if data is not None else None, size, c))
            local = struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, 0, 0, 0, c, size, size, len(name), 0) + name.encode()
            if data is not None:
                body += local + data
            else:
                storage_at, storage_local = len(body), local
        path = os.path.join(out, prefix + "_zip.pth")
        central = b""
        with open(path, "wb") as f:
            f.write(body + storage_local)
            f.truncate(len(body) + len(storage_local) + 4 * N)
            f.seek(0, 2)
            for name, off, size, c in members:
                central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, 0, 0, 0, c, size, size, len(name),
                                       0, 0, 0, 0, 0, storage_at if off is None else off) + name
            cd_at = f.tell()
            f.write(central + struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, len(members), len(members), len(central),
                                          cd_at, 0))
        index.append((prefix + "_zip.pth", "pth", expect, "-"))

    # 100 M elements (400 MB of float32): the reader's own buffers do not fit
    tensor_files("big", 100 << 20, "error:out of memory")
    # 44 M elements (176 MB): the file's bytes and their float32 conversion fit, the tensor made of them may not
    # (before the fix: "dpl_tensor_from_host: out of host memory", no file named); loading is fine too
    tensor_files("late_oom", 44 << 20, "oom")
    # a 24000 x 24000 PNG with the pixel limit off: its 576 MB of pixels do not fit
    emit("big.png", png(24000, 24000, rows=1), "image", "error:out of memory", "DPL_MAX_IMAGE_PIXELS=0")
    # STL-10: 20000 images, 553 MB as bytes
    sparse("big_stl10.bin", b"", 3 * 96 * 96 * 20000)
    index.append(("big_stl10.bin", "stl10", "error:out of memory", "-"))

# ---- the malformed-checkpoint loop of issue 18 item 2 -------------------------------------------------------------
# dpl.weights.info in pcall over malformed checkpoints (the loop gets compiled on the error path), then valid ones
# without tensors (a side trace, in which the shape buffer ffi.new("int64_t[?]", 8) is sunk), then valid ones with
# tensors (the side exit that rebuilds the buffer): LuaJIT's sinking rebuilt it with size -1 and the shape query
# wrote over the GC heap (tests/lua/test_robustness.lua)
os.makedirs(os.path.join(out, "loop"), exist_ok=True)
for name, data in (("malformed.pth", b"\x80\x02not a checkpoint"), ("no_tensors.pth", zip_pth(p_state_dict([]), [])),
                   ("tensors.pth", zip_pth(views, [("0", floats(12))]))):
    with open(os.path.join(out, "loop", name), "wb") as f:
        f.write(data)

# ---- fuzzing seeds (tests/fuzz/corpus/<reader>): small valid files covering each format's variants ----------------
if seed_dir:
    def seed(reader, name, data):
        os.makedirs(os.path.join(seed_dir, reader), exist_ok=True)
        with open(os.path.join(seed_dir, reader, name), "wb") as f:
            f.write(data)

    seed("safetensors", "two_meta.safetensors", safetensors('{"__metadata__":{"format":"pt"},"a":%s,"b":%s}' % (
        st_entry("F32", [2], 0, 8), st_entry("F32", [1], 8, 12)), floats(3)))
    parts, at, data = [], 0, b""
    for name, dtype, shape, raw in (("f16", "F16", [2], b"\x00\x3c\x00\xc0"), ("bf16", "BF16", [1], b"\x80\x3f"),
                                    ("f64", "F64", [1, 1], struct.pack("<d", 2.5)), ("i64", "I64", [], struct.pack("<q", -3)),
                                    ("i32", "I32", [1], struct.pack("<i", 7)), ("i16", "I16", [1], struct.pack("<h", -2)),
                                    ("i8", "I8", [2], b"\x80\x7f"), ("u8", "U8", [1], b"\xff"), ("m", "BOOL", [2], b"\x01\x00"),
                                    ("empty", "F32", [0, 3], b""), ("caf\\u00e9", "F32", [1], floats(1))):
        parts.append('"%s":%s' % (name, st_entry(dtype, shape, at, at + len(raw))))
        at += len(raw)
        data += raw
    seed("safetensors", "dtypes.safetensors", safetensors("{" + ",".join(parts) + "}", data))
    seed("npy", "f4_c.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats(6)))
    seed("npy", "f8_fortran.npy", npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
                                      struct.pack("<4d", 1, 2, 3, 4)))
    seed("npy", "i2_big.npy", npy("{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }", struct.pack(">3h", 1, -2, 3)))
    seed("npy", "u1_v2.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 2), }", b"\x01\x02\x03\xff",
                                 version=2))
    seed("npy", "b1_0d.npy", npy("{'descr': '|b1', 'fortran_order': False, 'shape': (), }", b"\x01"))
    seed("npy", "i8_py2.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2L,), }", struct.pack("<2q", 5, -5)))
    x_elem = mat_matrix("X", [4, 4, 3, 2], 2, 9, bytes(range(96)))
    y_double = mat_matrix("y", [2, 1], 9, 6, struct.pack("<2d", 10, 3))
    seed("mat", "svhn_compressed.mat", MAT_HEADER + mat_compressed(x_elem) + mat_compressed(y_double))
    seed("mat", "svhn_plain.mat", MAT_HEADER + mat_matrix("y", [2, 1], 2, 9, b"\x01\x0a") + x_elem +
         mat_matrix("extra", [1, 3], 9, 6, struct.pack("<3d", 1, 2, 3)))
    # fuzz_stl10.c splits its input: byte 0 = label count k, then k label bytes, then the image file
    seed("stl10", "one_labeled.bin", b"\x01\x05" + bytes(range(256)) * (3 * 96 * 96 // 256))
    seed("stl10", "two_unlabeled.bin", b"\x00" + bytes(range(256)) * (2 * 3 * 96 * 96 // 256))

with open(os.path.join(out, "index.tsv"), "w") as f:
    for row in index:
        if row[1] != "-":
            f.write("\t".join(row) + "\n")
