#!/usr/bin/env python3
"""Check an M²RNN implementation written in Python against the golden vectors.

The same vectors, metrics and tolerances as `m2rnn check`, for a function you write in NumPy,
PyTorch, JAX, Triton, ...  Needs only numpy; uses torch when you ask for torch tensors.

    import m2rnn_vectors as mv

    def my_recurrence(case):            # case.inputs: q k v W f [h0] [cu_seqlens] dy [dht]
        ...                             # case.clip_mode ('none' | 'carry' | 'total'), case.clip
        return {"y": y, "ht": ht,       # any of y ht dq dk dv dW df dh0 (numpy or torch);
                "dq": dq, ...}          # return None to skip a case

    passed, failed, skipped = mv.check(my_recurrence, cls="f32", vectors="vectors")

Each output is compared with the reference's (F64) by relative L2 error ‖out−ref‖₂/‖ref‖₂ and
normalised max error max|out−ref|/max|ref|, both within the manifest's tolerance for the class;
NaN/±Inf must sit exactly where the reference has them. A case passes when every output the
function returned is within tolerance; the ops it did not return are reported as skipped.

Run as a script for the built-in implementations:
    python3 tools/m2rnn_vectors.py --impl numpy --class f64      # float64 NumPy, SPEC.md §1
    python3 tools/m2rnn_vectors.py --impl numpy32 --class f32    # the same in float32
    python3 tools/m2rnn_vectors.py --impl torch --class f32      # the worked PyTorch example
"""
import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np

OUTPUTS = ("y", "ht", "dq", "dk", "dv", "dW", "df", "dh0")
FORWARD = ("y", "ht")
BACKWARD = ("dq", "dk", "dv", "dW", "df", "dh0")
CLASSES = ("f64", "f32", "tf32", "bf16")

# ---- safetensors, numpy only --------------------------------------------------------------

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file; BF16 is widened exactly to float32.
    Strict like the C reader: a malformed file raises ValueError."""
    with open(path, "rb") as fh:
        blob = fh.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if hlen == 0 or hlen > len(blob) - 8 or hlen > 100 * 1024 * 1024:
        raise ValueError(f"{path}: bad header length {hlen}")
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not an object")
    data = memoryview(blob)[8 + hlen:]
    meta = header.pop("__metadata__", {}) or {}
    spans, tensors = [], {}
    for name, e in header.items():
        dt, shape, (b, end) = e["dtype"], e["shape"], e["data_offsets"]
        if dt not in _DTYPES and dt != "BF16":
            raise ValueError(f"{path}: {name}: dtype {dt}")
        size = 2 if dt == "BF16" else np.dtype(_DTYPES[dt]).itemsize
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= b <= end <= len(data)) or end - b != n * size:
            raise ValueError(f"{path}: {name}: bad data_offsets")
        spans.append((b, end))
        raw = bytes(data[b:end])
        if dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dt]).newbyteorder("<"))
        tensors[name] = arr.reshape(shape).copy()
    at = 0
    for b, end in sorted(spans):
        if b != at:
            raise ValueError(f"{path}: hole or overlap in the data section")
        at = end
    if at != len(data):
        raise ValueError(f"{path}: trailing bytes")
    return tensors, meta


# ---- vectors and manifest ------------------------------------------------------------------

class Case:
    """One golden vector: .id, .inputs (dict of numpy arrays; storage BF16 arrives as float32
    holding bf16 values), .storage ('F32' | 'BF16'), .clip_mode, .clip, .expected, .tolerances."""

    def __init__(self, entry, directory):
        self.id = entry["id"]
        self.op = entry.get("op", "recurrence")       # schema 2: every case names its op
        # the outputs of each direction (the recurrence's are fixed; a layer case lists its own)
        self.forward_outputs = tuple(entry.get("forward_outputs", FORWARD if self.op == "recurrence" else ()))
        self.backward_outputs = tuple(entry.get("backward_outputs", BACKWARD if self.op == "recurrence" else ()))
        self.flags = entry.get("flags", [])
        self.comment = entry.get("comment", "")
        self.storage = entry.get("storage", "F32")
        self.tolerances = entry.get("tolerances", {})
        self.not_checked = entry.get("not_checked", {})
        path = os.path.join(directory, entry["file"])
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        if digest != entry["sha256"]:
            raise ValueError(f"{path}: sha256 differs from the manifest")
        tensors, meta = read_safetensors(path)
        self.meta = meta
        self.clip_mode = meta.get("clip_mode", "none")
        self.clip = float(meta.get("clip", "0"))
        # a layer case's parameters: "activation=1 eps=1e-05 ..." -> {"activation": 1.0, ...}
        self.params = {k: float(v) for k, v in (kv.split("=", 1) for kv in meta.get("params", "").split())}
        self.inputs = {k: v for k, v in tensors.items() if not k.startswith("expected.")}
        self.expected = {k[len("expected."):]: v for k, v in tensors.items() if k.startswith("expected.")}

    def torch_inputs(self, dtype=None, device="cpu"):
        """The inputs as torch tensors (BF16 storage as torch.bfloat16 unless dtype is given)."""
        import torch
        if dtype is None:
            dtype = torch.bfloat16 if self.storage == "BF16" else torch.float32
        return {k: (torch.from_numpy(v).to(device) if k == "cu_seqlens" else torch.from_numpy(v).to(device=device, dtype=dtype))
                for k, v in self.inputs.items()}


def load_manifest(directory):
    with open(os.path.join(directory, "MANIFEST.json")) as fh:
        m = json.load(fh)
    if m.get("schema", {}).get("name") != "m2rnn-golden-vectors" or m["schema"].get("version") != 2:
        raise ValueError("not an m2rnn-golden-vectors v2 manifest")
    return m


def cases(directory="vectors", filter=None, op=None):
    """Yield every Case of the manifest whose id contains filter and whose op is op (None: any)."""
    for entry in load_manifest(directory)["cases"]:
        if (filter is None or filter in entry["id"]) and (op is None or entry.get("op", "recurrence") == op):
            yield Case(entry, directory)


# ---- metrics -------------------------------------------------------------------------------

def _to_numpy(x):
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().to("cpu").double().numpy()
    return np.asarray(x, dtype=np.float64)


def measure(out, ref):
    """(rel_l2, max_norm, nonfinite_mismatches) of out against ref, as the C checker computes them."""
    out = _to_numpy(out).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    if out.shape != ref.shape:
        return float("inf"), float("inf"), max(out.size, ref.size)
    fo, fr = np.isfinite(out), np.isfinite(ref)
    same = (np.isnan(out) & np.isnan(ref)) | (np.isinf(out) & np.isinf(ref) & (np.signbit(out) == np.signbit(ref)))
    mismatch = int(np.sum(~(fo & fr) & ~same))
    both = fo & fr
    d, r = out[both] - ref[both], ref[both]
    nr, mr = np.sqrt(np.sum(r * r)), (np.max(np.abs(r)) if r.size else 0.0)
    nd, md = np.sqrt(np.sum(d * d)), (np.max(np.abs(d)) if d.size else 0.0)
    return (nd / nr if nr > 0 else nd), (md / mr if mr > 0 else md), mismatch


def check(fn, cls="f32", vectors="vectors", filter=None, verbose=True, op="recurrence"):
    """Run fn on every case of op (default the recurrence; None: every op, fn then gets cases of
    every op) and compare; returns (passed, failed, skipped), counted per case and direction
    like `m2rnn check`. Prints one line per case and direction, and the summary line."""
    if cls not in CLASSES:
        raise ValueError(f"class {cls!r}: one of {CLASSES}")
    passed = failed = skipped = 0
    for case in cases(vectors, filter, op):
        results = None
        if cls not in case.not_checked:
            results = fn(case)
        for direction, names in (("forward", case.forward_outputs), ("backward", case.backward_outputs)):
            if cls in case.not_checked:
                verdict, why = "SKIP", f"not checked in class {cls}: {case.not_checked[cls]}"
            elif results is None or not any(n in results for n in names):
                verdict, why = "SKIP", "the function returned none of " + " ".join(names)
            else:
                verdict, why, parts = "PASS", "", []
                for n in names:
                    if n not in results:
                        verdict, why = "FAIL", f"{n} missing"
                        continue
                    tol = case.tolerances[n][cls]
                    l2, mx, bad = measure(results[n], case.expected[n])
                    parts.append(f"{n} {l2:.1e}/{tol['rel_l2']:.1e} {mx:.1e}/{tol['max_norm']:.1e}")
                    if bad:
                        verdict, why = "FAIL", why or f"{n}: {bad} NaN/Inf mismatches"
                    elif not (l2 <= tol["rel_l2"] and mx <= tol["max_norm"]):
                        verdict, why = "FAIL", why or f"{n}: rel_l2 {l2:.2e} (tol {tol['rel_l2']:.2e}), max_norm {mx:.2e} (tol {tol['max_norm']:.2e})"
                why = "  ".join(parts) + (f"  -- {why}" if why else "")
            if verbose:
                print(f"{verdict} python {cls} {case.id} {direction}  {why}".rstrip())
            passed += verdict == "PASS"
            failed += verdict == "FAIL"
            skipped += verdict == "SKIP"
    if verbose:
        print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return passed, failed, skipped


# ---- a NumPy implementation of SPEC.md §1 (forward and backward) ----------------------------

def _expand(x, N, axis):
    """Repeat heads so that state head n reads source head n // (N // Nx) (repeat_interleave)."""
    return np.repeat(x, N // x.shape[axis], axis=axis)


def _reduce(g, nx, axis):
    """Sum per-state-head gradients back into their nx source heads (consecutive groups)."""
    shape = list(g.shape)
    N = shape[axis]
    shape[axis:axis + 1] = [nx, N // nx]
    return g.reshape(shape).sum(axis=axis + 1)


def numpy_recurrence(case, dtype=np.float64):
    """SPEC.md §1 in NumPy, computed in dtype: forward and backward (with both clip modes)."""
    x = {k: (v if k == "cu_seqlens" else v.astype(dtype)) for k, v in case.inputs.items()}
    q, k, v, W, f = x["q"], x["k"], x["v"], x["W"], x["f"]
    varlen = "cu_seqlens" in x
    if not varlen:  # dense (B,S,...): treat as B sequences of S packed tokens
        B, S = q.shape[:2]
        q, k, v, f = (a.reshape((B * S,) + a.shape[2:]) for a in (q, k, v, f))
        dy = x["dy"].reshape((B * S,) + x["dy"].shape[2:])
        cu = np.arange(B + 1) * S
    else:
        cu, dy = x["cu_seqlens"].astype(np.int64), x["dy"]
        B = len(cu) - 1
    N = max(q.shape[1], k.shape[1], v.shape[1], f.shape[1], W.shape[0])
    K, V = q.shape[2], v.shape[2]
    qe, ke, ve, fe, We = _expand(q, N, 1), _expand(k, N, 1), _expand(v, N, 1), _expand(f, N, 1), _expand(W, N, 0)
    T = q.shape[0]
    y = np.zeros((T, N, V), dtype)
    ht = np.zeros((B, N, K, V), dtype)
    dq, dk, dv = np.zeros((T, N, K), dtype), np.zeros((T, N, K), dtype), np.zeros((T, N, V), dtype)
    df = np.zeros((T, N), dtype)
    dW = np.zeros((N, V, V), dtype)
    dh0 = np.zeros((B, N, K, V), dtype)
    c = abs(case.clip)
    for b in range(B):
        s0, s1 = int(cu[b]), int(cu[b + 1])
        H = x["h0"][b].copy() if "h0" in x else np.zeros((N, K, V), dtype)
        Hs, Zs = [H], []
        for t in range(s0, s1):
            A = H @ We + ke[t][:, :, None] * ve[t][:, None, :]
            Z = np.tanh(A)
            ft = fe[t][:, None, None]
            H = ft * H + (1 - ft) * Z
            y[t] = np.einsum("nk,nkv->nv", qe[t], H)
            Hs.append(H)
            Zs.append(Z)
        ht[b] = H
        G = x["dht"][b].copy() if "dht" in x else np.zeros((N, K, V), dtype)
        for i in range(s1 - s0 - 1, -1, -1):
            t = s0 + i
            if case.clip_mode == "carry":
                G = np.clip(G, -c, c)
            D = qe[t][:, :, None] * dy[t][:, None, :] + G
            if case.clip_mode == "total":
                D = np.clip(D, -c, c)
            Hp, Hc, Z = Hs[i], Hs[i + 1], Zs[i]
            ft = fe[t][:, None, None]
            dq[t] = np.einsum("nkv,nv->nk", Hc, dy[t])
            df[t] = np.sum(D * (Hp - Z), axis=(1, 2))
            dA = (1 - ft) * D * (1 - Z * Z)
            G = ft * D + dA @ np.swapaxes(We, 1, 2)
            dW += np.swapaxes(Hp, 1, 2) @ dA
            dk[t] = np.einsum("nkv,nv->nk", dA, ve[t])
            dv[t] = np.einsum("nkv,nk->nv", dA, ke[t])
        dh0[b] = G
    out = {"y": y, "ht": ht, "dq": _reduce(dq, q.shape[1], 1), "dk": _reduce(dk, k.shape[1], 1),
           "dv": _reduce(dv, v.shape[1], 1), "df": _reduce(df[:, :, None], f.shape[1], 1)[:, :, 0],
           "dW": _reduce(dW, W.shape[0], 0), "dh0": dh0}
    if not varlen:
        for n in ("y", "dq", "dk", "dv", "df"):
            out[n] = out[n].reshape((B, -1) + out[n].shape[1:])
    return out


# ---- the worked PyTorch example --------------------------------------------------------------

def torch_recurrence(case):
    """A plain PyTorch implementation: forward written out, backward by autograd.

    Autograd cannot express gradient clipping inside the recurrence, so clipped cases are
    skipped (return None). Computes in float32 (class f32); inputs stored as bf16 are widened."""
    import torch
    if case.clip_mode != "none":
        return None
    x = case.torch_inputs(dtype=torch.float32)
    q, k, v, W, f = (x[n].clone().requires_grad_(True) for n in ("q", "k", "v", "W", "f"))
    varlen = "cu_seqlens" in x
    if varlen:
        cu = [int(c) for c in x["cu_seqlens"]]
        qs, ks, vs, fs = q, k, v, f
    else:
        Bd, S = q.shape[:2]
        cu = [b * S for b in range(Bd + 1)]
        qs, ks, vs, fs = (t.reshape((-1,) + tuple(t.shape[2:])) for t in (q, k, v, f))
    B = len(cu) - 1
    N = max(q.shape[-2], k.shape[-2], v.shape[-2], f.shape[-1], W.shape[0])
    K, V = q.shape[-1], v.shape[-1]
    # Without h0 the state starts at zero; a zero h0 that requires grad gives dh0 all the same.
    h0 = (x["h0"].clone() if "h0" in x else torch.zeros(B, N, K, V)).requires_grad_(True)
    rep = lambda t, dim: t.repeat_interleave(N // t.shape[dim], dim=dim)  # head n reads n // G
    qe, ke, ve, fe, We = rep(qs, 1), rep(ks, 1), rep(vs, 1), rep(fs, 1), rep(W, 0)
    ys, hts = [None] * qs.shape[0], []
    for b in range(B):
        H = h0[b]
        for t in range(cu[b], cu[b + 1]):
            Z = torch.tanh(H @ We + ke[t][:, :, None] * ve[t][:, None, :])
            ft = fe[t][:, None, None]
            H = ft * H + (1 - ft) * Z
            ys[t] = torch.einsum("nk,nkv->nv", qe[t], H)
        hts.append(H)
    y = torch.stack(ys) if ys else torch.zeros(0, N, V)
    ht = torch.stack(hts)
    if not varlen:
        y = y.reshape(Bd, S, N, V)
    loss = (y * x["dy"]).sum()
    if "dht" in x:
        loss = loss + (ht * x["dht"]).sum()
    wrt = [q, k, v, W, f, h0]
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    dq, dk, dv, dW, df, dh0 = (torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt))
    return {"y": y, "ht": ht, "dq": dq, "dk": dk, "dv": dv, "dW": dW, "df": df, "dh0": dh0}


# ---- command line ----------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vectors", default=os.environ.get("M2RNN_VECTORS", "vectors"))
    p.add_argument("--class", dest="cls", default="f64", choices=CLASSES)
    p.add_argument("--impl", default="numpy", choices=("numpy", "numpy32", "torch"))
    p.add_argument("--filter", default=None)
    a = p.parse_args(argv)
    fn = {"numpy": numpy_recurrence, "numpy32": lambda c: numpy_recurrence(c, np.float32), "torch": torch_recurrence}[a.impl]
    _, failed, _ = check(fn, a.cls, a.vectors, a.filter)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
