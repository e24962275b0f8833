"""Byte-identical codes and identical metrics to the C library and the CLI."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import rotorquant as rq

ENCODE_C = r"""
#include <rotorquant.h>
#include <rotorquant_eval.h>
#include <stdio.h>
#include <stdlib.h>
/* encode_npy TYPE SEED IN.npy OUT.bin: the blocks of every row */
int main(int argc, char **argv) {
    rq_npy_array a;
    rq_quantizer *q;
    if (argc != 5 || rq_npy_read(argv[3], &a) || a.n_dims != 2) return 2;
    rq_quant_config cfg = rq_quant_config_default();
    cfg.seed = strtoull(argv[2], NULL, 10);
    if (rq_quantizer_init(&q, argv[1], (int)a.shape[1], &cfg)) return 3;
    size_t bytes = rq_quantizer_bytes_per_vector(q) * a.shape[0];
    unsigned char *out = malloc(bytes);
    if (!out || rq_quantizer_encode(q, a.data, out, a.shape[0])) return 4;
    FILE *f = fopen(argv[4], "wb");
    if (!f || fwrite(out, 1, bytes, f) != bytes || fclose(f)) return 5;
    return 0;
}
"""


@pytest.fixture(scope="module")
def encode_npy(root, tmp_path_factory):
    lib = os.path.join(root, "build", "librotorquant.a")
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not os.path.exists(lib) or not cc:
        pytest.skip("needs build/librotorquant.a (make) and a C compiler")
    d = tmp_path_factory.mktemp("c")
    (d / "encode_npy.c").write_text(ENCODE_C)
    exe = d / "encode_npy"
    subprocess.run([cc, "-std=c11", "-I", os.path.join(root, "include"), str(d / "encode_npy.c"), lib, "-lm",
                    "-lpthread", "-o", str(exe)], check=True)
    return str(exe)


@pytest.fixture(scope="module")
def dumped(cli, tmp_path_factory):
    d = tmp_path_factory.mktemp("dump")
    subprocess.run([cli, "bench", "--dump", str(d), "--dims", "64", "--n", "256", "--ctx", "256"], check=True,
                   stdout=subprocess.DEVNULL)
    return d


@pytest.mark.parametrize("dim", [64, 96, 128])
def test_codes_byte_identical_to_c(encode_npy, tmp_path, dim):
    x = (rq.data("outlier", 64, dim, seed=dim) * 5).astype(np.float32)
    # the k8 types take unit-scale vectors (norms 1/4..4 relative to a cache's key scale): norms 0.3..3.3 here
    xu = (x / np.linalg.norm(x, axis=1, keepdims=True) * np.linspace(0.3, 3.3, 64)[:, None]).astype(np.float32)
    for t in rq.types(dim):
        xt = xu if t["key_scaled"] else x
        np.save(tmp_path / "x.npy", xt)
        for seed in (42, 1234567):
            subprocess.run([encode_npy, t["name"], str(seed), str(tmp_path / "x.npy"), str(tmp_path / "c.bin")],
                           check=True)
            want = np.fromfile(tmp_path / "c.bin", dtype=np.uint8).reshape(64, -1)
            assert np.array_equal(rq.Quantizer(t["name"], dim, seed).encode(xt), want), t["name"]


def close(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(a - b) <= 1e-5 * max(abs(a), abs(b)) + 1e-12
    return a == b


@pytest.mark.parametrize("args", [
    dict(type="turbo3", q=True, v=True),
    dict(type="rotor3p", q=True, v=False),
    dict(type="q8_0", q=False, v=False),
    dict(type="turbo4", type_v="turbo2", q=True, v=True, causal=True),
])
def test_eval_equals_cli_json(cli, dumped, args):
    k = dumped / "outlier_d64_keys.npy"
    qf, vf = dumped / "outlier_d64_queries.npy", dumped / "outlier_d64_values.npy"
    cmd = [cli, "eval", "--type", args["type"], "--keys", str(k), "--json", "--reps", "0"]
    kw = {}
    if args["q"]:
        cmd += ["--queries", str(qf)]
        kw["queries"] = np.load(qf)
    if args["v"]:
        cmd += ["--values", str(vf)]
        kw["values"] = np.load(vf)
    if "type_v" in args:
        cmd += ["--type-v", args["type_v"]]
        kw["type_v"] = args["type_v"]
    if args.get("causal"):
        cmd += ["--causal"]
        kw["causal"] = True
    want = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    got = rq.eval(type=args["type"], keys=np.load(k), reps=0, **kw)
    assert close(got, want), (got, want)


def test_eval_multihead_gqa_f16(cli, tmp_path):
    k = rq.data("outlier", 2 * 100, 64, seed=1).reshape(2, 100, 64)
    q = rq.data("isotropic", 4 * 8, 64, seed=2).reshape(4, 8, 64)
    np.save(tmp_path / "k.npy", k.astype(np.float16))
    np.save(tmp_path / "q.npy", q)
    want = json.loads(subprocess.run([cli, "eval", "--type", "iso3", "--keys", str(tmp_path / "k.npy"), "--queries",
                                      str(tmp_path / "q.npy"), "--json", "--reps", "0", "--seed", "9"],
                                     check=True, capture_output=True, text=True).stdout)
    got = rq.eval("iso3", k.astype(np.float16), q, seed=9, reps=0)
    assert close(got, want)
    assert set(rq.eval("iso3", k, q, reps=1)) >= {"encode_vps", "decode_vps"}
