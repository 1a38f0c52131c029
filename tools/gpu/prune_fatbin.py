#!/usr/bin/env python3
"""Shrinks a CUDA shared library for carrying to one GPU: zeroes the payload of every fatbin
entry (cubin or PTX) built for another architecture, in place, leaving offsets and headers intact
so the library loads as before. Zeroed bytes compress to nothing, so onnxruntime-gpu's 284 MB CUDA
provider travels in a few tens of MB (the device tool carries at most 64 MiB).

    prune_fatbin.py LIB.so --keep 90      # keep sm_90 (H100/H200) entries only

Prints what it kept and zeroed. The CUDA runtime picks the entry matching the device, so a
library pruned for sm_90 works on sm_90 devices only.
"""
import argparse
import struct

FATBIN_MAGIC = 0xBA55ED50


def section(data, name):
    """(offset, size) of the named ELF64 section."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = sections[shstrndx][4]
    for s in sections:
        start = strtab + s[0]
        if data[start:data.index(b"\0", start)].decode() == name:
            return s[4], s[5]
    raise SystemExit(f"no {name} section")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--keep", type=int, action="append", required=True, help="SM version to keep (90 = sm_90)")
    a = ap.parse_args()
    with open(a.lib, "r+b") as f:
        data = bytearray(f.read())
        start, size = section(data, ".nv_fatbin")
        pos, end = start, start + size
        kept = zeroed = 0
        while pos + 16 <= end:
            magic, _version, header_size, fat_size = struct.unpack_from("<IHHQ", data, pos)
            if magic != FATBIN_MAGIC:
                pos += 8  # fatbins are 8-byte aligned; skip padding
                continue
            entry, fat_end = pos + header_size, pos + header_size + fat_size
            while entry < fat_end:
                _kind, _v, eh_size, payload = struct.unpack_from("<HHIQ", data, entry)
                arch, = struct.unpack_from("<I", data, entry + 28)
                body = entry + eh_size
                if arch in a.keep:
                    kept += payload
                else:
                    data[body:body + payload] = bytes(payload)
                    zeroed += payload
                entry = body + payload
            pos = fat_end
        f.seek(0)
        f.write(data)
    print(f"kept {kept / 1e6:.1f} MB of sm_{a.keep} entries, zeroed {zeroed / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
