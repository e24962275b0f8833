#!/usr/bin/env python3
"""Extract Jane Austen's six novels from the R package janeaustenr's
lazy-load database, without R (../shared/research/real_model.md §6).

Usage: austen_extract.py DATA_DIR OUT_FILE
  DATA_DIR holds Rdata.rdx and Rdata.rdb (usr/lib/R/site-library/
  janeaustenr/data inside the r-cran-janeaustenr .deb).

Format (R's lazy-load database, src/main/serialize.c):
  Rdata.rdx  gzip of an R serialization of
             list(variables = list(<name> = c(offset, length), ...),
                  references = ..., compressed = TRUE | 2 | 3)
  Rdata.rdb  records at those offsets: 4-byte big-endian uncompressed length,
             then a zlib stream (compressed = TRUE; 2 = bzip2 and 3 = xz carry
             a one-byte type tag first); each inflates to an R serialization
             of one object, here a character vector (one string per line).
  R serialization (XDR, versions 2 and 3): "X\\n", version, writer and
  minimum reader versions (v3: + native encoding name); then items, each an
  int of flags (type = low byte, bit 8 object, bit 9 has attributes, bit 10
  has tag, bits 12.. "levels", which for CHARSXP hold the encoding) and the
  type's payload. CHARSXP (9): length (-1 = NA) and bytes.

Output: the novels in alphabetical order of their variable names (emma,
mansfieldpark, northangerabbey, persuasion, prideprejudice,
sensesensibility), each novel's lines joined by "\\n", the novels joined by
"\\n", ending with one "\\n", UTF-8 (Latin-1-flagged strings are converted;
NA strings become empty lines).
"""
import bz2
import gzip
import lzma
import struct
import sys
import zlib

# SEXP types and pseudo-types used by serialization (serialize.c).
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP = 9, 10, 13, 14, 15, 16, 17
VECSXP, EXPRSXP, RAWSXP = 19, 20, 24
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP = 255, 254, 253, 252
MISSINGARG_SXP, BASENAMESPACE_SXP, EMPTYENV_SXP, BASEENV_SXP = 251, 247, 242, 241
LATIN1_MASK = 1 << 2  # CHARSXP levels bit: string is Latin-1

NOVELS = 6


class RSerial:
    """Just enough of an R XDR unserializer for data: vectors, pairlists,
    symbols, references and the singleton environments."""

    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []
        if self.d[:2] != b"X\n":
            raise ValueError("not an XDR R serialization (header %r)" % self.d[:2])
        self.p = 2
        version = self.int()
        self.int()  # writer's R version
        self.int()  # minimum reader version
        if version == 3:
            n = self.int()
            self.p += n  # native encoding name
        elif version != 2:
            raise ValueError("R serialization version %d" % version)

    def int(self):
        (v,) = struct.unpack_from(">i", self.d, self.p)
        self.p += 4
        return v

    def length(self):
        n = self.int()
        if n == -1:  # long vector: two more ints
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if t in (NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP,
                 EMPTYENV_SXP, BASEENV_SXP):
            return None
        if t == REFSXP:
            i = flags >> 8
            if i == 0:
                i = self.int()
            return self.refs[i - 1]
        if t == SYMSXP:
            name = self.item()
            self.refs.append(("sym", name))
            return ("sym", name)
        if t == CHARSXP:
            n = self.int()
            if n == -1:
                return None  # NA_character_
            raw = self.d[self.p:self.p + n]
            self.p += n
            enc = "latin-1" if (flags >> 12) & LATIN1_MASK else "utf-8"
            return raw.decode(enc)
        if t in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP):
            out = {}
            while True:  # walk the CDR chain iteratively
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                car = self.item()
                out[tag[1] if tag else len(out)] = car
                flags = self.int()
                t = flags & 0xFF
                has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
                if t == NILVALUE_SXP:
                    return out
                if t not in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP):
                    raise ValueError("unsupported pairlist tail type %d" % t)
        if t == ENVSXP:
            env = {}
            self.refs.append(env)
            self.int()  # locked
            self.item()  # enclosure
            frame = self.item()
            self.item()  # hash table
            self.item()  # attributes
            if isinstance(frame, dict):
                env.update(frame)
            return env
        if t in (LGLSXP, INTSXP):
            n = self.length()
            v = list(struct.unpack_from(">%di" % n, self.d, self.p))
            self.p += 4 * n
        elif t == REALSXP:
            n = self.length()
            v = list(struct.unpack_from(">%dd" % n, self.d, self.p))
            self.p += 8 * n
        elif t == CPLXSXP:
            n = self.length()
            self.p += 16 * n
            v = None
        elif t == RAWSXP:
            n = self.length()
            v = self.d[self.p:self.p + n]
            self.p += n
        elif t in (STRSXP, VECSXP, EXPRSXP):
            n = self.length()
            v = [self.item() for _ in range(n)]
        else:
            raise ValueError("unsupported SEXP type %d at byte %d" % (t, self.p - 4))
        attrs = self.item() if has_attr else None
        if t == VECSXP and isinstance(attrs, dict) and "names" in attrs:
            return dict(zip(attrs["names"], v))
        return v


def read_record(rdb, offset, length, compressed):
    rec = rdb[offset:offset + length]
    if len(rec) != length or length < 5:
        raise ValueError("record at %d: truncated" % offset)
    (n,) = struct.unpack_from(">I", rec, 0)
    body = rec[4:]
    if compressed is True or compressed == 1:
        data = zlib.decompress(body)
    elif compressed in (2, 3):
        tag, body = body[:1], body[1:]
        if tag == b"0":
            data = body
        elif tag == b"2":
            data = bz2.decompress(body)
        elif tag == b"Z":
            data = zlib.decompress(body)
        else:
            data = lzma.decompress(body)
    else:
        raise ValueError("unknown compression %r" % (compressed,))
    if len(data) != n:
        raise ValueError("record at %d: %d bytes, header says %d" % (offset, len(data), n))
    return RSerial(data).item()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: austen_extract.py DATA_DIR OUT_FILE")
    data_dir, out_path = sys.argv[1], sys.argv[2]
    with gzip.open(data_dir + "/Rdata.rdx", "rb") as f:
        index = RSerial(f.read()).item()
    compressed = index["compressed"][0]
    if isinstance(compressed, int) and compressed not in (2, 3):
        compressed = bool(compressed)  # a logical TRUE reads as int 1
    with open(data_dir + "/Rdata.rdb", "rb") as f:
        rdb = f.read()
    variables = index["variables"]
    if len(variables) != NOVELS:
        sys.exit("austen_extract: expected %d objects, found %s" % (NOVELS, sorted(variables)))
    novels = []
    for name in sorted(variables):
        offset, length = variables[name]
        lines = read_record(rdb, offset, length, compressed)
        if not isinstance(lines, list) or not all(s is None or isinstance(s, str) for s in lines):
            sys.exit("austen_extract: %s is not a character vector" % name)
        print("  %-18s %6d lines" % (name, len(lines)), file=sys.stderr)
        novels.append("\n".join("" if s is None else s for s in lines))
    with open(out_path, "wb") as f:
        f.write(("\n".join(novels) + "\n").encode("utf-8"))


if __name__ == "__main__":
    main()
