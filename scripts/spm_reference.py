#!/usr/bin/env python3
"""spm_reference.py — reference token ids for the SentencePiece tokenizer
(model/tokenizer_spm.c) from an independent implementation: llama.cpp's
`llama-tokenize`, built from the llama.cpp that the llama-cpp-python source
package on PyPI vendors (scripts/spm_reference.sh does the build).

Writes tests/data/gemma3_tok_ref.txt:
  - one line `austen N HASH`: the number of ids of the whole evaluation text
    (scripts/fetch_text.sh) and the 64-bit FNV-1a hash of the ids as
    little-endian int32 (the test recomputes both with our tokenizer);
  - one line per edge case `case SPECIAL HEX IDS`: SPECIAL 0/1 (parse control
    tokens), the input bytes in hex, the ids (no BOS) separated by commas.

Usage: spm_reference.py LLAMA_TOKENIZE MODEL.gguf AUSTEN.txt OUT
"""
import os
import subprocess
import sys
import tempfile

CASES = [
    # whitespace runs, leading/trailing spaces, tabs, newline runs
    b"", b" ", b"  ", b"   hello", b"hello   ", b"a  b   c    d", b"\t", b"\tx\t\ty",
    b"\n", b"\n\n", b"\n\n\n\n\n", b"line one\nline two\r\nline three\r",
    b" \n \n", b"word\n\n\n  indented", b"x" + b" " * 40 + b"y",
    # ordinary text, punctuation, digits
    b"The capital of France is the city of", b"Hello, world!", b"It's 3.14159, isn't it?",
    b"1234567890 12 345", b"e-mail: someone@example.com (test)", b"--- *** ... !!!",
    # Unicode: accents, CJK, Cyrillic, Arabic, emoji, combining marks, ZWJ
    "Café naïve façade — “quotes” ‘single’ …".encode(), "日本語のテキストと中文文本".encode(),
    "Привет, мир".encode(), "مرحبا بالعالم".encode(), "emoji 😀🎉👍🏽 and 👨‍👩‍👧".encode(),
    "e\u0301 combining".encode(), "\u2581 literal lower-one-eighth block".encode(),
    "\ufeffBOM start".encode(), "ǅ ﬁ ㎏ Ⅻ".encode(),
    # bytes that need fallback: rare characters, private use, invalid UTF-8
    "\U0001D54F\U0001D550 math".encode(), "\ue000\uf8ff private".encode(), "\U0010FFFD".encode(),
    b"\xff\xfe invalid", b"abc\x80def", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\x00\x01\x02 ctrl", b"\x7f",
    # HTML-ish user-defined tokens (always split) and control tokens
    b"<div>text</div>", b"<start_of_turn>user\nhi<end_of_turn>", b"<bos>x<eos>",
    b"<unused0><pad> <mask>", b"a<br>b",
]
SPECIAL_CASES = [b"<start_of_turn>user\nhi<end_of_turn>", b"<bos>x<eos>", b"<unused0><pad> <mask>"]


def run(tool, model, path, special):
    # llama-tokenize parses special tokens unless told not to
    cmd = [tool, "-m", model, "-f", path, "--ids", "--no-bos", "--no-escape", "--log-disable"]
    if not special:
        cmd.append("--no-parse-special")
    out = subprocess.run(cmd, check=True, capture_output=True).stdout.decode().strip()
    out = out[out.index("["):]
    return [int(x) for x in out.strip("[]").split(",") if x.strip()]


def fnv64(ids):
    h = 1469598103934665603
    for i in ids:
        for b in int(i).to_bytes(4, "little", signed=True):
            h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    tool, model, austen, out = sys.argv[1:5]
    lines = []
    ids = run(tool, model, austen, False)
    lines.append(f"austen {len(ids)} {fnv64(ids):016x}")
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "case")
        for special, cases in ((0, CASES), (1, SPECIAL_CASES)):
            for c in cases:
                with open(p, "wb") as f:
                    f.write(c)
                ids = run(tool, model, p, special) if c else []
                lines.append(f"case {special} {c.hex() or '-'} {','.join(map(str, ids)) or '-'}")
    with open(out, "w") as f:
        f.write("# reference ids from llama.cpp llama-tokenize (scripts/spm_reference.sh); do not edit\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
