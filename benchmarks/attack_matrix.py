"""Replay hostile and unlucky attempts (issue 12) against a small trained run and count the outcomes.

    PYTHONPATH=. python benchmarks/attack_matrix.py              # this checkout
    PYTHONPATH=/work/main python benchmarks/attack_matrix.py     # another checkout, same attempts

Every attempt runs the ``ncmargin`` CLI (or a one-line Python call of a public function) in a subprocess
on a fresh copy of one tiny trained run, and is classified:

    code execution   a crafted file's payload ran (it creates a marker file)
    data loss        a file that should survive is gone or changed, or something was written outside the
                     output directory
    traceback        a Python traceback reached the user
    silently wrong   exit 0 (or a misleading message) where the input was bad, or a run left stuck
    clear error      a non-zero exit with one line that names the problem (and no traceback)
    handled          the right result (e.g. a stale lock taken over, a killed run finished by --resume)

The table printed at the end counts the classes. This is a replay harness, not a test: it never asserts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

TINY = ["n_per_class=10", "n_test_per_class=5", "depth=1", "width=16", "batch_size=50", "lr=0.05",
        "num_checkpoints=2", "save_every=2", "quiet=true", "num_threads=1", "epochs=4"]
SET = [a for s in TINY for a in ("--set", s)]
CLASSES = ("code execution", "data loss", "traceback", "silently wrong", "clear error", "handled")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "ncmargin", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout, check=False, **kw)


def py(code, timeout=120):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                          timeout=timeout, check=False)


def outcome(r, *, ok_is_wrong=True, must_name: str | None = None) -> str:
    """Classify a run of bad input: a traceback, a clear error, or (exit 0) silently wrong."""
    if "Traceback (most recent call last)" in r.stderr:
        return "traceback"
    if r.returncode == 0:
        return "silently wrong" if ok_is_wrong else "handled"
    if "internal error" in r.stderr:
        return "traceback"
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    if must_name is not None and not any(must_name in ln for ln in lines):
        return "silently wrong"  # an error, but it does not say which file
    return "clear error"


class Attempts:
    def __init__(self, base: Path, work: Path):
        self.base, self.work, self.rows = base, work, []
        self.n = 0

    def fresh(self) -> Path:
        self.n += 1
        d = self.work / f"a{self.n:02d}"
        shutil.copytree(self.base, d / "run")
        return d / "run"

    def add(self, cls: str, name: str, result: str, note: str = ""):
        self.rows.append((cls, name, result, note))
        print(f"  {result:<15} {cls:<14} {name}  {note}", flush=True)


def crafted_pickle(path: Path, marker: Path, torch_save=True):
    code = (
        "import torch\n"
        "class X:\n"
        f"    def __reduce__(self): return (open, ({str(marker)!r}, 'w'))\n"
        f"torch.save({{'epoch': 2, 'onset_epoch': None, 'model': {{}}, 'optimizer': {{}}, 'x': X()}}, "
        f"{str(path)!r})\n")
    r = py(code)
    assert r.returncode == 0, r.stderr


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ncm_attack_"))
    t0 = time.perf_counter()
    base = work / "base"
    r = cli("train", "quick_digits", *SET, "--out", base)
    if r.returncode != 0:
        print(r.stderr)
        return 1
    ck = sorted((base / "checkpoints").glob("epoch_*.npz"))
    A = Attempts(base, work)
    print(f"base run: {base} (checkpoints {[p.name for p in ck]})")

    # --- 1. crafted pickles ------------------------------------------------------------------------
    for target, cmd in (("last.pt", "train --resume"), ("model_0004.pt", "analyze")):
        run = A.fresh()
        marker = run.parent / "PWNED"
        if target == "last.pt":
            (run / "summary.json").write_text(json.dumps({**json.loads((run / "summary.json").read_text()),
                                                          "complete": False}))
        crafted_pickle(run / "checkpoints" / target, marker)
        r = cli("train", "--resume", run, "--quiet") if cmd.startswith("train") else cli("analyze", run, "--quiet")
        A.add("pickle", f"crafted {target} + {cmd}", "code execution" if marker.exists() else
              outcome(r, must_name=target))

    # --- 2. concurrent writers, stale lock ---------------------------------------------------------
    out = A.work / "conc"
    cmd = [sys.executable, "-m", "ncmargin", "train", "quick_digits", *SET, "--set", "epochs=12", "--out", str(out)]
    a = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(0.5)
    b = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    ra, rb = a.communicate(), b.communicate()
    epochs = [json.loads(ln)["epoch"] for ln in (out / "log.jsonl").read_text().splitlines() if ln.strip()] \
        if (out / "log.jsonl").exists() else []
    if a.returncode == 0 and b.returncode == 0:
        A.add("lock", "two `train --out D` at once", "silently wrong", f"both exit 0; log epochs {epochs[:8]}...")
    elif "Traceback" in ra[1] + rb[1]:
        A.add("lock", "two `train --out D` at once", "traceback")
    else:
        good = epochs == list(range(13))
        A.add("lock", "two `train --out D` at once", "clear error" if good else "data loss",
              (rb[1] or ra[1]).strip().splitlines()[-1][:100])
    run = A.fresh()
    shutil.rmtree(run)
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / ".ncmargin.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    r = cli("train", "quick_digits", *SET, "--out", run)
    A.add("lock", "stale lock (dead pid) then train", "handled" if r.returncode == 0 else outcome(r))

    # --- 3. kill points, leftovers, failed runs ----------------------------------------------------
    run = A.fresh()
    s = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**s, "complete": False, "last_epoch": 2, "state_epoch": 2}))
    r = cli("train", "--resume", run, "--quiet")
    done = json.loads((run / "summary.json").read_text()).get("complete")
    A.add("kill", "kill between last.pt and summary.json at the final epoch; --resume",
          "handled" if r.returncode == 0 and done else ("silently wrong" if r.returncode == 0 else outcome(r)),
          f"summary complete={done}")
    run = A.fresh()
    s = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**s, "complete": False}))
    for nm in (".log.jsonl.abcd1234.jsonl", "checkpoints/.last.pt.q1w2e3r4.pt"):
        (run / nm).write_bytes(b"half")
    r = cli("train", "--resume", run, "--quiet")
    left = [p.name for p in run.rglob(".*.*") if p.name != ".ncmargin.lock"]
    A.add("kill", "temp files of a kill, then --resume", "handled" if r.returncode == 0 and not left else
          ("silently wrong" if r.returncode == 0 else outcome(r)), f"left: {left}")
    div = A.work / "div"
    r1 = cli("train", "quick_digits", *SET, "--set", "lr=1e30", "--out", div)
    A.add("failed", "diverging run (lr=1e30)", outcome(r1))
    r2 = cli("train", "quick_digits", *SET, "--out", div)
    msg = r2.stderr.strip()
    A.add("failed", "--out on a failed run", "clear error" if r2.returncode and "rm -r" in msg and
          "Traceback" not in msg else ("traceback" if "Traceback" in msg else "silently wrong"), msg[-90:])
    r3 = cli("train", "--resume", div, "--quiet")
    A.add("failed", "--resume on a failed run", "clear error" if r3.returncode and "failed" in r3.stderr and
          "Traceback" not in r3.stderr else outcome(r3), r3.stderr.strip()[-90:])

    # --- 4. damaged files --------------------------------------------------------------------------
    feat = ck[-1].name

    def damaged(kind):
        run = A.fresh()
        p = run / "checkpoints" / feat
        raw = p.read_bytes()
        if kind == "truncated npz":
            p.write_bytes(raw[: len(raw) // 2])
        elif kind == "CRC-corrupted npz":
            with zipfile.ZipFile(p) as z:
                info = z.getinfo("features.npy")
            off = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
            b = bytearray(raw)
            b[off] ^= 0xFF
            p.write_bytes(bytes(b))
        elif kind == "empty npz":
            p.write_bytes(b"")
        elif kind == "object-array npz":
            np.savez(p, features=np.array([object()] * 4, dtype=object).reshape(2, 2), labels=np.array([0, 1]))
        elif kind == "npz without labels":
            np.savez(p, features=np.zeros((3, 2)))
        elif kind == "complex features":
            with np.load(p) as z:
                arrs = dict(z)
            arrs["features"] = arrs["features"] * (1 + 1j)
            arrs.pop("test_features")
            np.savez(p, **arrs)
        return run, p

    for kind in ("truncated npz", "CRC-corrupted npz", "empty npz", "object-array npz", "npz without labels",
                 "complex features"):
        run, p = damaged(kind)
        r = cli("svm", p, "--no-arrays")
        A.add("file", f"{kind} -> svm", outcome(r, must_name=p.name))
        if kind in ("truncated npz", "CRC-corrupted npz"):
            r = cli("analyze", run, "--quiet", "--no-spectral")
            A.add("file", f"{kind} -> analyze", outcome(r, must_name=p.name))
    for kind, data in (("truncated config.json", None), ("binary config.json", b"\x89PNG\x00\xff\xfe" * 20),
                       ("truncated log.jsonl", None)):
        run = A.fresh()
        name = "log.jsonl" if "log" in kind else "config.json"
        p = run / name
        if data is None:
            raw = p.read_bytes()
            p.write_bytes(raw[: len(raw) // 3] if name == "config.json" else raw[:40] + b"\n" + raw[200:])
        else:
            p.write_bytes(data)
        r = cli("analyze", run, "--quiet", "--no-spectral")
        A.add("file", f"{kind} -> analyze", outcome(r, must_name=name))
    for kind in ("truncated model .pt", "empty model .pt", "garbage model .pt"):
        run = A.fresh()
        p = run / "checkpoints" / "model_0004.pt"
        raw = p.read_bytes()
        p.write_bytes(raw[: len(raw) // 2] if "truncated" in kind else (b"" if "empty" in kind else b"\x00" * 99))
        r = cli("analyze", run, "--quiet")
        A.add("file", f"{kind} -> analyze", outcome(r, must_name="model_0004.pt"))
    for kind in ("truncated last.pt", "garbage last.pt"):
        run = A.fresh()
        (run / "summary.json").write_text(json.dumps({**json.loads((run / "summary.json").read_text()),
                                                      "complete": False}))
        p = run / "checkpoints" / "last.pt"
        raw = p.read_bytes()
        p.write_bytes(raw[: len(raw) // 2] if "truncated" in kind else b"\x00garbage" * 20)
        r = cli("train", "--resume", run, "--quiet")
        A.add("file", f"{kind} -> train --resume", outcome(r, must_name="last.pt"))

    # --- 5. paths ----------------------------------------------------------------------------------
    run = A.fresh()
    sep = A.work / "separable.npz"  # well separated clusters: the hard-margin SVM is solvable
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 8)
    np.savez(sep, features=np.eye(3)[y] * 5 + 0.1 * rng.normal(size=(24, 3)), labels=y)
    p = sep
    (run / "adir").mkdir()
    r = cli("svm", p, "--no-arrays", "--out", run / "adir")
    A.add("path", "svm --out an existing directory", outcome(r, must_name="adir"))
    r = cli("svm", p, "--no-arrays", "--out", "/sys/ncmargin_sol.json")
    A.add("path", "svm --out unwritable (/sys)", outcome(r, must_name="/sys"))
    r = cli("svm", p, "--no-arrays", "--out", run / "config.json" / "sol.json")
    A.add("path", "svm --out under a regular file", outcome(r, must_name="config.json"))
    (run / "afile").write_text("x")
    r = cli("train", "quick_digits", *SET, "--out", run / "afile")
    A.add("path", "train --out an existing regular file", outcome(r, must_name="afile"))
    r = cli("analyze", run / "checkpoints" / feat, "--quiet")
    A.add("path", "analyze on a file instead of a run dir", outcome(r, must_name=feat))
    tiny = dict(t.split("=", 1) for t in TINY)
    pre = A.work / "trav_preset.json"
    pre.write_text(json.dumps({"name": "trav", "device": "cpu", "jobs": 1,
                               "runs": {"../../x_trav": {"config": "quick_digits", "set": tiny}},
                               "analysis": {"svm_tol": 1e-8, "svm_epochs": "terminal", "spectral": False},
                               "claim2": {"runs": ["../../x_trav"], "alpha": 0.05, "min_points": 2}}))
    vout = A.work / "vroot" / "out"
    r = cli("verify", "--preset", pre, "--claims", "2", "--out", vout, "--no-figures", "--quiet")
    esc = (vout / "runs" / ".." / ".." / "x_trav").resolve()
    A.add("path", "verify preset with run name '../../x_trav'",
          "data loss" if esc.exists() else outcome(r), f"written outside --out: {esc.exists()}")
    r = cli("sweep", "sweep_quick", "--out", A.work / "empty_sweep", "--no-train", "--alignments", "2",
            "--seeds", "2", "--quiet")
    A.add("number", "sweep --no-train with nothing trained", outcome(r), r.stdout.strip().splitlines()[0][:80]
          if r.stdout.strip() else "")

    # --- 6. bad numbers ----------------------------------------------------------------------------
    run = A.fresh()
    p = sep
    for args, name in (((p, "--tol", "-1"), "svm --tol -1"), ((p, "--tol", "nan"), "svm --tol nan"),
                       ((p, "--gap-tol=-1e-6"), "svm --gap-tol=-1e-6"), ((p, "--soft", "-5"), "svm --soft -5"),
                       ((p, "--soft", "nan"), "svm --soft nan")):
        r = cli("svm", *args, "--no-arrays")
        A.add("number", name, outcome(r))
    for args, name in ((("--svm-tol", "-1"), "analyze --svm-tol -1"), (("--svm-tol", "nan"), "analyze --svm-tol nan"),
                       (("--svm-epochs", "3,999"), "analyze --svm-epochs 3,999 (no such epochs)")):
        r = cli("analyze", run, "--quiet", "--no-spectral", "--force", *args)
        A.add("number", name, outcome(r))
    r = cli("ufm", "-K", "3", "-n", "2", "-d", "3", "-T", "5", "--lr", "nan", "--quiet")
    A.add("number", "ufm --lr nan", outcome(r))
    r = cli("ufm", "-K", "3", "-n", "2", "-d", "3", "-T", "5", "--init-scale", "-1", "--quiet")
    A.add("number", "ufm --init-scale -1", outcome(r))
    plain = A.work / "plain.npz"
    np.savez(plain, features=np.random.default_rng(0).normal(size=(6, 3)), labels=np.array([0, 1, 2] * 2))
    r = py(f"from ncmargin.io import load_features; fs = load_features({str(plain)!r}, split='bogus'); "
           "print(fs.split)")
    A.add("number", "load_features(split='bogus')", "silently wrong" if r.returncode == 0 else
          ("clear error" if "train" in r.stderr and "test" in r.stderr else "traceback"), r.stdout.strip())
    r = py("import numpy as np; from ncmargin.theory import is_etf, simplex_etf; print(is_etf(simplex_etf(4), "
           "atol=float('nan')))")
    A.add("number", "theory.is_etf(atol=nan)", "silently wrong" if r.returncode == 0 else
          ("clear error" if "ValueError" in r.stderr else "traceback"), r.stdout.strip())

    verify_attempts(A, tiny)

    rows = A.rows
    counts = Counter(res for _, _, res, _ in rows)
    print(f"\n{len(rows)} attempts in {time.perf_counter() - t0:.0f} s (work dir {work})")
    print(" | ".join(f"{c}: {counts.get(c, 0)}" for c in CLASSES))
    by = Counter((cls, res) for cls, _, res, _ in rows)
    for cls in dict.fromkeys(c for c, _, _, _ in rows):
        print(f"  {cls:<8} " + ", ".join(f"{res} {n}" for (c, res), n in by.items() if c == cls))
    if "--keep" not in sys.argv:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _verdicts(out: Path) -> dict:
    try:
        return {v["id"]: v for v in json.loads((out / "verdicts.json").read_text())["verdicts"]}
    except (OSError, ValueError, KeyError):
        return {}


def verify_attempts(A: Attempts, tiny: dict) -> None:
    """Section 7 (issue 12 phase 2): `verify` writers, partial --claims, one bad run, failed run, numbers."""
    runs12 = {"config": "quick_digits", "set": {**tiny, "epochs": "12"}}
    pre = A.work / "v_preset.json"
    base = {"name": "att", "device": "cpu", "jobs": 1,
            "analysis": {"svm_tol": 1e-8, "svm_epochs": "terminal", "spectral": False},
            "claim1c": {"alpha": 0.05, "min_points": 2}, "claim2": {"alpha": 0.05, "min_points": 2}}
    pre.write_text(json.dumps({**base, "runs": {"r": runs12}}))
    # two `verify` on one --out at once
    out = A.work / "v_two"
    cmd = [sys.executable, "-m", "ncmargin", "verify", "--preset", str(pre), "--claims", "1c,2", "--out", str(out),
           "--no-figures"]
    a = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    t = time.perf_counter()
    while a.poll() is None and time.perf_counter() - t < 120:  # until the first one is at work
        lock = out / ".ncmargin.lock"
        if (lock.exists() and lock.read_text().strip()) or (out / "runs" / "r" / "log.jsonl").exists():
            break
        time.sleep(0.05)
    b = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    ra, rb = a.communicate(), b.communicate()
    log = out / "runs" / "r" / "log.jsonl"
    epochs = [json.loads(ln)["epoch"] for ln in log.read_text().splitlines() if ln.strip()] if log.exists() else []
    lines = [ln for ln in ra[1].splitlines() if ln.startswith("[verify]")]
    if "Traceback" in ra[1] + rb[1]:
        res = "traceback"
    elif a.returncode == 0 and b.returncode == 0:
        res = "silently wrong"
    elif epochs != list(range(13)) or not _verdicts(out):
        res = "data loss"
    else:
        res = "clear error" if b.returncode == 2 and "in use by pid" in rb[1] else "silently wrong"
    A.add("lock", "two `verify` on one --out at once", res,
          f"rc {a.returncode}/{b.returncode}; dup lines {len(lines) - len(set(lines))}; "
          + (rb[1].strip().splitlines() or [""])[-1][:70])
    # partial --claims on an existing verdicts.json
    before = _verdicts(out)
    r = cli("verify", "--preset", pre, "--claims", "1c", "--out", out, "--no-figures", "--quiet")
    after = _verdicts(out)
    kept = [i for i in before if i.startswith("2.") and after.get(i) == before[i]]
    n2 = sum(i.startswith("2.") for i in before)
    A.add("verdicts", "verify --claims 1c after 1c,2 keeps claim 2's verdicts",
          outcome(r) if r.returncode not in (0, 1) else ("handled" if n2 and len(kept) == n2 and
                                                          set(after) == set(before) else "data loss"),
          f"{len(before)} -> {len(after)} verdicts")
    # one truncated checkpoint of one of two runs
    out2 = A.work / "v_bad"
    for name in ("r1", "r2"):
        shutil.copytree(A.base, out2 / "runs" / name)
    pre2 = A.work / "v_preset2.json"
    four = {"config": "quick_digits", "set": tiny}
    pre2.write_text(json.dumps({**base, "runs": {"r1": four, "r2": four}}))
    r = cli("verify", "--preset", pre2, "--claims", "1c,2", "--out", out2, "--no-figures", "--quiet")
    before = _verdicts(out2)
    ck = max((out2 / "runs" / "r1" / "checkpoints").glob("epoch_*.npz"))
    raw = ck.read_bytes()
    ck.write_bytes(raw[: len(raw) // 2])
    r = cli("verify", "--preset", pre2, "--claims", "1c,2", "--out", out2, "--no-figures", "--quiet")
    after = _verdicts(out2)
    r2 = {i: v["value"] for i, v in before.items() if i.endswith(".r2")}
    stand = bool(r2) and all(i in after and after[i]["value"] == v for i, v in r2.items())
    errs = [v for i, v in after.items() if i.endswith(".error")]
    if "Traceback" in r.stderr:
        res = "traceback"
    elif not stand:
        res = "data loss"
    elif r.returncode == 0 or not errs or not all(ck.name in v["detail"].get("error", "") for v in errs):
        res = "silently wrong"
    else:
        res = "handled"
    A.add("verdicts", "one truncated checkpoint of one of two runs -> verify",
          res, f"rc {r.returncode}; r2 verdicts stand: {stand}; error verdicts {[v['id'] for v in errs]}")
    # a run marked failed in a verify --out
    from ncmargin.store import mark_failed

    out3 = A.work / "v_failed"
    shutil.copytree(A.base, out3 / "runs" / "r1")
    (out3 / "runs" / "r1" / "summary.json").unlink()
    mark_failed(out3 / "runs" / "r1", "non-finite loss", epoch=3)
    pre3 = A.work / "v_preset3.json"
    pre3.write_text(json.dumps({**base, "runs": {"r1": four}}))
    r = cli("verify", "--preset", pre3, "--claims", "2", "--out", out3, "--no-figures", "--quiet")
    errs = [v for i, v in _verdicts(out3).items() if i.endswith(".error")]
    retrained = (out3 / "runs" / "r1" / "summary.json").exists()
    if "Traceback" in r.stderr or "internal error" in r.stderr:
        res = "traceback"
    elif retrained or r.returncode == 0:
        res = "silently wrong"
    elif errs and "rm -r" in errs[0]["detail"]["error"]:
        res = "handled"  # an error verdict for that run, naming the reason and the fix
    else:
        res = outcome(r, must_name="rm -r")
    A.add("failed", "verify on an --out whose run is marked failed", res, f"rc {r.returncode}; retrained {retrained}")
    # negative tolerance in a verify preset
    pre4 = A.work / "v_preset4.json"
    pre4.write_text(json.dumps({**base, "runs": {"r1": four}, "analysis": {"svm_tol": -1}}))
    out4 = A.work / "v_tol"
    r = cli("verify", "--preset", pre4, "--claims", "2", "--out", out4, "--no-figures", "--quiet")
    A.add("number", "verify preset analysis.svm_tol = -1",
          "silently wrong" if out4.exists() and r.returncode != 2 else outcome(r, must_name="svm_tol"),
          f"--out created: {out4.exists()}")


if __name__ == "__main__":
    raise SystemExit(main())
