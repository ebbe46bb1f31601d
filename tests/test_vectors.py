"""The Python loader (tools/m2rnn_vectors.py) against the shipped vectors; TAP output.

Run by tests/vectors_python.sh with a python3 that has numpy."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get("M2RNN_SRCDIR", "."), "tools"))
import numpy as np  # noqa: E402
import m2rnn_vectors as mv  # noqa: E402

VEC = os.environ.get("M2RNN_VECTORS", "vectors")
results = []


class Skip(Exception):
    pass


def test(name):
    def wrap(fn):
        try:
            fn()
            results.append((True, name, ""))
        except Skip as e:
            results.append((True, name + " # SKIP " + str(e), ""))
        except Exception as e:  # a failed check is a "not ok" line, not a crash
            results.append((False, name, repr(e)))
        return fn
    return wrap


@test("manifest and every file load, sha256 verified")
def _():
    n = sum(1 for _ in mv.cases(VEC))
    assert n == len(mv.load_manifest(VEC)["cases"]) and n > 0


@test("NumPy float64 implementation passes class f64 on every case")
def _():
    p, f, s = mv.check(mv.numpy_recurrence, "f64", VEC, verbose=False)
    assert f == 0 and p > 0, (p, f, s)


@test("NumPy float32 implementation passes class f32 on every case")
def _():
    p, f, s = mv.check(lambda c: mv.numpy_recurrence(c, np.float32), "f32", VEC, verbose=False)
    assert f == 0 and p > 0, (p, f, s)


@test("a broken implementation (W transposed) fails")
def _():
    def broken(case):
        c = mv.Case.__new__(mv.Case)
        c.__dict__.update(case.__dict__)
        c.inputs = dict(case.inputs)
        c.inputs["W"] = np.swapaxes(case.inputs["W"], 1, 2).copy()
        return mv.numpy_recurrence(c)
    p, f, s = mv.check(broken, "f32", VEC, filter="k9v9", verbose=False)
    assert f > 0, (p, f, s)


@test("returning None skips; returning only the forward skips the backward")
def _():
    p, f, s = mv.check(lambda c: None, "f32", VEC, filter="k9v9", verbose=False)
    assert (p, f) == (0, 0) and s > 0
    p, f, s = mv.check(lambda c: {k: v for k, v in mv.numpy_recurrence(c).items() if k in mv.FORWARD}, "f32", VEC,
                       filter="k9v9", verbose=False)
    assert f == 0 and p == s and p > 0, (p, f, s)


@test("the reader rejects a truncated file")
def _():
    path = next(os.path.join(VEC, e["file"]) for e in mv.load_manifest(VEC)["cases"])
    blob = open(path, "rb").read()
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as t:
        t.write(blob[: len(blob) // 2])
        t.flush()
        try:
            mv.read_safetensors(t.name)
        except ValueError:
            return
        raise AssertionError("accepted a truncated file")


@test("every layer op's cases load, with their op, params and outputs; metrics and check() work on them")
def _():
    ops = {}
    for c in mv.cases(VEC, op=None):
        ops[c.op] = ops.get(c.op, 0) + 1
        assert set(c.forward_outputs) | set(c.backward_outputs) == set(c.expected), c.id
        if c.op != "recurrence":
            assert c.params and all(n in c.tolerances for n in c.expected), c.id
    for op in ("decay_gate", "conv1d", "linear", "rmsnorm", "silu", "mlp", "attention", "gdn", "block",
               "embedding", "cross_entropy", "recurrence"):
        assert ops.get(op, 0) > 0, op
    # returning the expected outputs themselves (rounded to fp32) passes f32 on every layer case
    p, f, s = mv.check(lambda c: {k: v.astype(np.float32) for k, v in c.expected.items()}, "f32", VEC, verbose=False, op=None)
    assert f == 0 and p > 0, (p, f, s)
    # a wrong answer on one layer op fails
    p, f, s = mv.check(lambda c: {k: v * 1.01 for k, v in c.expected.items()}, "f32", VEC, verbose=False, op="rmsnorm")
    assert f > 0 and p == 0, (p, f, s)


@test("the PyTorch example passes class f32 (skipped without torch)")
def _():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise Skip("torch not installed")
    p, f, s = mv.check(mv.torch_recurrence, "f32", VEC, verbose=False)
    assert f == 0 and p > 0, (p, f, s)


print(f"1..{len(results)}")
for i, (ok, name, why) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {name}")
    if why:
        print(f"# {why}")
sys.exit(0 if all(ok for ok, _, _ in results) else 1)
