"""The README's Python snippet runs; every public name has a docstring and a stub."""
import os
import re

import rotorquant as rq
import rotorquant.benchmark
import rotorquant.compat as compat


def test_readme_python_snippets_run(root):
    text = open(os.path.join(root, "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for b in blocks:
        exec(compile(b, "README.md", "exec"), {})


def test_docstrings_and_stubs():
    pkg = os.path.dirname(rq.__file__)
    stubs = {m: open(os.path.join(pkg, m + ".pyi")).read() for m in ("__init__", "compat", "benchmark")}
    for mod, stub, names in ((rq, stubs["__init__"], rq.__all__), (compat, stubs["compat"], compat.__all__)):
        assert mod.__doc__
        for name in names:
            obj = getattr(mod, name)
            if callable(obj):
                assert obj.__doc__, name
                assert re.search(rf"(def|class) {name}\b", stub), name
    for cls in (rq.Quantizer, rq.KVCache):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"
    assert rotorquant.benchmark.main.__doc__ or rotorquant.benchmark.__doc__
