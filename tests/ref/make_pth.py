#!/usr/bin/python3
"""make_pth.py OUTDIR [LPIPS_DIR [SEED_DIR]] - writes the fixtures of tests/lua/test_pth.lua (run with Debian's
python3-torch).

Good files (each with a manifest OUTDIR/<tag>.txt: one line per tensor "name<TAB>dtype<TAB>d0,d1,..<TAB>npy file",
in state_dict order, and the expected values as float32 .npy files):
  sd_zip.pth / sd_legacy.pth        float32/64/16, bfloat16, int64/32/16/8, uint8, bool, a transposed view and a
                                    narrowed slice sharing one storage, a 0-d tensor, an empty tensor; plain numbers
                                    in the dict are skipped
  sd_zip_p4.pth / sd_legacy_p4.pth  the same with pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE)
  module_zip.pth / module_legacy.pth  a Module.state_dict() (an OrderedDict with _metadata, set by BUILD)
  params_zip.pth / params_legacy.pth  nn.Parameter values (_rebuild_parameter)
  nested_zip.pth / nested_legacy.pth  {'model': state_dict, 'epoch': 3, 'opt': {'lr': 0.1, 'state': {0: tensor}}}
  sd_zip64.pth                      sd_zip.pth rewritten with zip64 sizes and offsets (as for files over 4 GiB)
  big_zip.pth / big_legacy.pth      big-endian data (the zip's byteorder member, the legacy sys_info flag)
  lpips_<net>.txt                   the LPIPS files as torch.load reads them (when LPIPS_DIR is given)
Bad files (OUTDIR/bad_*.pth), each of which must be refused with an error naming the file: hostile globals through
GLOBAL/STACK_GLOBAL/REDUCE (written as bytes, never unpickled here), deep nesting, huge memo indices and lengths, a
deflated data.pkl, a missing storage member, and more. The pickles are only ever written, never loaded.
With SEED_DIR: also (re)writes the small seed files of the fuzzer fuzz_pth (tests/fuzz/corpus/pth).
"""
import collections
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch

out = sys.argv[1]
lpips_dir = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
seed_dir = sys.argv[3] if len(sys.argv) > 3 else None
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


def manifest(tag, sd):
    """writes the expected tensors of a (flattened) state_dict"""
    with open(os.path.join(out, tag + ".txt"), "w") as f:
        for i, (name, t) in enumerate(sd.items()):
            npy = "%s_%d.npy" % (tag, i)
            np.save(os.path.join(out, npy), t.detach().to(torch.float32).contiguous().numpy())
            dtype = str(t.dtype).replace("torch.", "")
            f.write("%s\t%s\t%s\t%s\n" % (name, dtype, ",".join(str(d) for d in t.shape), npy))


def save_both(tag, obj, **kw):
    torch.save(obj, os.path.join(out, tag + "_zip.pth"), **kw)
    torch.save(obj, os.path.join(out, tag + "_legacy.pth"), _use_new_zipfile_serialization=False, **kw)


# ---- the main state_dict ----
base = torch.arange(20, dtype=torch.float32).reshape(4, 5) * 0.5 - 3
sd = collections.OrderedDict()
sd["conv.weight"] = torch.randn(4, 3, 3, 3)
sd["conv.bias"] = torch.randn(4)
sd["f64"] = torch.randn(2, 3, dtype=torch.float64)
sd["f16"] = torch.tensor([0.5, -1.25, 65504.0, 6.1e-5, 1e-7], dtype=torch.float16)
sd["bf16"] = torch.tensor([1.0, -2.5, 3.0e38], dtype=torch.bfloat16)
sd["bn.num_batches_tracked"] = torch.tensor(7)                        # int64, 0-d
sd["i32"] = torch.tensor([[-5, 6], [7, 2147483], [0, -1]], dtype=torch.int32)
sd["i16"] = torch.tensor([-32768, 32767], dtype=torch.int16)
sd["i8"] = torch.tensor([-128, 127, 3], dtype=torch.int8)
sd["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
sd["mask"] = torch.tensor([True, False, True])
sd["base"] = base
sd["base_t"] = base.t()                                               # strides (1, 5), same storage
sd["slice"] = base.narrow(1, 1, 3)[1:]                                # offset 6, strides (5, 1), same storage
sd["scalar"] = torch.tensor(3.5)                                      # 0-d
sd["empty"] = torch.zeros(0, 4)
manifest("sd", sd)
assert sd["base_t"].storage().data_ptr() == sd["base"].storage().data_ptr()
with_numbers = collections.OrderedDict(sd)
with_numbers["lr"] = 0.125                                            # not tensors: skipped
with_numbers["steps"] = 12
with_numbers["note"] = "text"
save_both("sd", with_numbers)
torch.save(with_numbers, os.path.join(out, "sd_zip_p4.pth"), pickle_protocol=4)
torch.save(with_numbers, os.path.join(out, "sd_legacy_p4.pth"), pickle_protocol=4, _use_new_zipfile_serialization=False)



def zip64_copy(data):
    """the same members with every size and offset in zip64 extra fields and a zip64 end of central directory, as
    PyTorch writes files over 4 GiB"""
    src = zipfile.ZipFile(io.BytesIO(data))
    out_b, central = bytearray(), bytearray()
    for info in src.infolist():
        body, name = src.read(info.filename), info.filename.encode()
        crc, off = zlib.crc32(body), len(out_b)
        lextra = struct.pack("<HHQQ", 1, 16, len(body), len(body)) + b"FB" + struct.pack("<H", 5) + b"Z" * 5
        out_b += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0, crc, 0xffffffff, 0xffffffff, len(name),
                             len(lextra)) + name + lextra + body
        cextra = struct.pack("<HHQQQ", 1, 24, len(body), len(body), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0, crc, 0xffffffff, 0xffffffff,
                               len(name), len(cextra), 0, 0, 0, 0, 0xffffffff) + name + cextra
    cd_off = len(out_b)
    out_b += central
    z64, n = len(out_b), len(src.infolist())
    out_b += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    out_b += struct.pack("<IIQI", 0x07064b50, 0, z64, 1)
    out_b += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
    out_b = bytes(out_b)
    assert zipfile.ZipFile(io.BytesIO(out_b)).testzip() is None
    return out_b


open(os.path.join(out, "sd_zip64.pth"), "wb").write(zip64_copy(open(os.path.join(out, "sd_zip.pth"), "rb").read()))

# ---- a module's state_dict (OrderedDict + _metadata through BUILD) ----
net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.Linear(4, 2))
with torch.no_grad():
    net[1].running_mean.uniform_()
    net[1].running_var.uniform_(1, 2)
msd = net.state_dict()
assert hasattr(msd, "_metadata")
manifest("module", msd)
save_both("module", msd)

# ---- parameters ----
params = collections.OrderedDict([("p", torch.nn.Parameter(torch.randn(3, 2))),
                                  ("q", torch.nn.Parameter(torch.ones(1)))])
manifest("params", params)
save_both("params", params)

# ---- nested checkpoint ----
small = collections.OrderedDict([("fc.weight", torch.randn(2, 3)), ("fc.bias", torch.randn(2))])
nested = {"model": small, "epoch": 3, "opt": {"lr": 0.1, "state": {0: torch.arange(3.0)}}, "tail": torch.ones(2)}
manifest("nested", collections.OrderedDict(
    [("model.fc.weight", small["fc.weight"]), ("model.fc.bias", small["fc.bias"]), ("opt.state.0", torch.arange(3.0)),
     ("tail", torch.ones(2))]))
save_both("nested", nested)

# ---- big-endian data: the zip's byteorder member / the legacy sys_info flag ----
w = torch.arange(6, dtype=torch.float32) - 2.5
manifest("big", collections.OrderedDict([("w", w)]))
b = io.BytesIO()
torch.save({"w": w}, b)
src = zipfile.ZipFile(io.BytesIO(b.getvalue()))
with zipfile.ZipFile(os.path.join(out, "big_zip.pth"), "w", zipfile.ZIP_STORED) as z:
    for n in src.namelist():
        data = src.read(n)
        if n.endswith("/data/0"):
            data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
        z.writestr(n, data)
    z.writestr(src.namelist()[0].split("/")[0] + "/byteorder", "big")
b = io.BytesIO()
torch.save({"w": w}, b, _use_new_zipfile_serialization=False)
data = bytearray(b.getvalue())
flag = data.index(b"little_endianq\x02\x88")
data[flag + len(b"little_endianq\x02")] = 0x89
tail = len(data) - 8 - 24
data[tail:tail + 8] = struct.pack(">q", 6)
data[tail + 8:] = np.frombuffer(bytes(data[tail + 8:]), "<f4").astype(">f4").tobytes()
open(os.path.join(out, "big_legacy.pth"), "wb").write(bytes(data))

# ---- the LPIPS files as PyTorch reads them ----
if lpips_dir:
    for net_name in ("alex", "vgg", "squeeze"):
        path = os.path.join(lpips_dir, net_name + ".pth")
        if os.path.exists(path):
            manifest("lpips_" + net_name, torch.load(path, map_location="cpu"))

# ---- bad files ----
MAGIC = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
VERSION = pickle.dumps(1001, protocol=2)
SYSINFO = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)


def bad(name, data):
    open(os.path.join(out, "bad_" + name + ".pth"), "wb").write(data)


def legacy(obj_pickle, keys_pickle=pickle.dumps([], protocol=2), tail=b""):
    return MAGIC + VERSION + SYSINFO + obj_pickle + keys_pickle + tail


def zipped(data_pkl, extra=(), compression=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/version", "3\n")
        for n, d in extra:
            z.writestr(n, d)
    return b.getvalue()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# GLOBAL + REDUCE of os.system, written by hand, as the first pickle of a "legacy" file and as a zip's data.pkl
os_system = b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
bad("global_os_system", os_system)
bad("global_os_system_legacy", legacy(os_system))
bad("global_os_system_zip", zipped(os_system))
# the same made by pickle.dumps of a class with __reduce__ (os.system pickles as posix.system); protocol 4 uses
# STACK_GLOBAL. Only dumped, never loaded.
bad("reduce_class_zip", zipped(pickle.dumps({"w": Evil()}, protocol=2)))
bad("reduce_class_p4_legacy", legacy(pickle.dumps({"w": Evil()}, protocol=4)))
# other globals: builtins.eval, torch.storage._load_from_bytes, a non-storage torch global
bad("global_eval", legacy(b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1q\x00\x85R."))
bad("global_load_from_bytes", zipped(b"\x80\x02ctorch.storage\n_load_from_bytes\nC\x01x\x85R."))
bad("global_tensor", zipped(b"\x80\x02ctorch\ntensor\n]\x85R."))
# an allowed storage type called by REDUCE; a rebuild function with wrong arguments; an OrderedDict from an int
bad("reduce_storage_type", zipped(b"\x80\x02ctorch\nFloatStorage\nK\x05\x85R."))
bad("rebuild_bad_args", zipped(b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\nK\x01K\x02\x86Rs."))
bad("odict_bad_args", zipped(b"\x80\x02ccollections\nOrderedDict\nK\x05\x85R."))
# BUILD on a global; APPEND to a dict; SETITEM on a list
bad("build_on_global", zipped(b"\x80\x02ccollections\nOrderedDict\n}b."))
bad("append_to_dict", zipped(b"\x80\x02}K\x01a."))
bad("setitem_on_list", zipped(b"\x80\x02]K\x01K\x02s."))
# an opcode outside the subset (INST, protocol 0 INT) and an unknown byte
bad("opcode_inst", zipped(b"\x80\x02(ios\nsystem\n."))
bad("opcode_int", zipped(b"\x80\x02I1\n."))
bad("opcode_unknown", zipped(b"\x80\x02\xff."))
# nesting: 100000 MARKs; 2M nested lists; dicts nested 40 deep
bad("many_marks", zipped(b"\x80\x02" + b"(" * 100000 + b"."))
bad("deep_stack", zipped(b"\x80\x02" + b"]" * (1 << 21) + b"."))
deep = {}
d = deep
for _ in range(40):
    d["a"] = {}
    d = d["a"]
bad("deep_dicts", zipped(pickle.dumps(deep, protocol=2)))
# a dict that contains itself
bad("cyclic_dict", zipped(b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s."))
# shared dicts: 2^30 paths to one leaf, with short and with long keys (bounded work, never 2^30 steps)
for tag, k in (("dict_bomb", "k"), ("dict_bomb_long_keys", "k" * 2000)):
    cur = {"x": 1}
    for _ in range(30):
        cur = {k + "a": cur, k + "b": cur}
    bad(tag, zipped(pickle.dumps(cur, protocol=2)))
# memo: a huge LONG_BINPUT, a BINGET of nothing
bad("huge_memo_put", zipped(b"\x80\x02}r\xf0\xff\xff\xff."))
bad("memo_get_undefined", zipped(b"\x80\x02h\x07."))
# huge lengths: BINUNICODE 4G, BINUNICODE8 2^62, LONG4 2G, BINSTRING negative
bad("huge_binunicode", zipped(b"\x80\x02X\xff\xff\xff\xffabc."))
bad("huge_binunicode8", zipped(b"\x80\x02\x8d" + struct.pack("<Q", 1 << 62) + b"abc."))
bad("huge_long4", zipped(b"\x80\x02\x8b\xff\xff\xff\x7f\x00."))
bad("negative_binstring", zipped(b"\x80\x02T\xff\xff\xff\xffx."))
# stack underflows and a missing STOP
bad("underflow", zipped(b"\x80\x02s."))
bad("no_stop", zipped(b"\x80\x02}"))
bad("empty_pickle", zipped(b""))
# zip: a deflated data.pkl; a storage member missing; no data.pkl; a storage member deflated
good = open(os.path.join(out, "sd_zip.pth"), "rb").read()
gz = zipfile.ZipFile(io.BytesIO(good))
prefix = gz.namelist()[0].split("/")[0]
bad("deflated_data_pkl", zipped(gz.read(prefix + "/data.pkl"), compression=zipfile.ZIP_DEFLATED))


def rezip(skip=(), deflate=()):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        for n in gz.namelist():
            if n in skip:
                continue
            z.writestr(n, gz.read(n), zipfile.ZIP_DEFLATED if n in deflate else zipfile.ZIP_STORED)
    return b.getvalue()


bad("missing_storage", rezip(skip={prefix + "/data/0"}))
bad("deflated_storage", rezip(deflate={prefix + "/data/1"}))
bad("no_data_pkl", rezip(skip={prefix + "/data.pkl"}))
bad("not_a_dict", zipped(pickle.dumps([1, 2, 3], protocol=2)))
# a tensor whose view runs past its storage (size 100 on a storage of 2 elements)
bad("view_past_storage", zipped(
    b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
    b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ"
    b"K\x00Kd\x85K\x01\x85\x89NtRs.", extra=[("archive/data/0", b"\x00" * 8)]))
# a 9-dim tensor
bad("too_many_dims", zipped(
    b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
    b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ"
    b"K\x00(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t\x89NtRs.",
    extra=[("archive/data/0", b"\x00" * 4)]))
# a huge stride that would overflow 64-bit arithmetic
bad("huge_stride", zipped(
    b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
    b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ"
    b"K\x00(J\x00\x00\x00\x01K\x02t(K\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40t\x89NtRs.",
    extra=[("archive/data/0", b"\x00" * 8)]))
# one stored float expanded by zero strides to 2^38 elements (a 1 TiB float32 copy): refused before any allocation
bad("zero_stride_bomb", zipped(
    b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
    b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ"
    b"K\x00(J\x00\x00\x08\x00J\x00\x00\x08\x00t(K\x00K\x00t\x89NtRs.",
    extra=[("archive/data/0", b"\x00" * 4)]))
# legacy: a storage listed but its data cut short; a wrong element count; the magic number wrong
lg = open(os.path.join(out, "sd_legacy.pth"), "rb").read()
bad("legacy_truncated_data", lg[:-3])
bad("legacy_bad_magic", pickle.dumps(12345, protocol=2) + lg[len(MAGIC):])
bad("legacy_not_torch", pickle.dumps({"a": 1}, protocol=2))
bad("legacy_wrong_count", legacy(
    b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
    b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00kX\x03\x00\x00\x00cpuK\x02NtQ"
    b"K\x00K\x02\x85K\x01\x85\x89NtRs.", pickle.dumps(["k"], protocol=2), struct.pack("<q", 3) + b"\x00" * 12))
bad("legacy_unknown_key", legacy(pickle.dumps({}, protocol=2), pickle.dumps(["zz"], protocol=2), b"\x00" * 8))

# ---- fuzzing seeds: small (< 4 KB) files covering both formats and the opcodes of protocols 2 and 4 ----
if seed_dir:
    os.makedirs(seed_dir, exist_ok=True)
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    tiny = collections.OrderedDict([("w", t), ("wt", t.t()), ("n", torch.tensor(3)), ("h", torch.ones(2).half())])
    torch.save(tiny, os.path.join(seed_dir, "tiny_zip.pth"))
    torch.save(tiny, os.path.join(seed_dir, "tiny_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(tiny, os.path.join(seed_dir, "tiny_p4_zip.pth"), pickle_protocol=4)
    open(os.path.join(seed_dir, "tiny_zip64.pth"), "wb").write(
        zip64_copy(open(os.path.join(seed_dir, "tiny_zip.pth"), "rb").read()))
    bn = torch.nn.BatchNorm2d(2).state_dict()
    torch.save(bn, os.path.join(seed_dir, "bn_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"model": {"a": torch.ones(1, dtype=torch.bfloat16)}, "p": torch.nn.Parameter(torch.zeros(2)),
                "m": torch.tensor([True, False]), "e": torch.zeros(0), "x": 1.5},
               os.path.join(seed_dir, "mixed_legacy_p4.pth"), pickle_protocol=4, _use_new_zipfile_serialization=False)
    open(os.path.join(seed_dir, "os_system.pth"), "wb").write(os_system)
    for n in os.listdir(seed_dir):
        assert os.path.getsize(os.path.join(seed_dir, n)) < 4096, n
