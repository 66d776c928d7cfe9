"""A tiny stand-in for ``python -m training train --jsonl`` used to test the supervisor.

Usage: ``fake_train_cli.py [--mode MODE] [--delay S] [--pid-file F] train --out OUT --epochs N ...``
Modes: ok, user_error (exit 2), crash (traceback, exit 1), grandchild (spawns a sleeping
grandchild, writes both pids to --pid-file), stubborn (ignores SIGTERM, leaves a .part file),
error_event (an {"event": "error"} line then exit 2), silent_ok (exit 0 without ``done``),
no_torch (dies on ``import torch``), mute (closes stdout, keeps running).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

STEPS = 4


def emit(**event):
    print(json.dumps(event), flush=True)


def parse_args() -> argparse.Namespace:
    """The fake's own options and the part of ``train``'s that the supervisor passes."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--pid-file")
    ap.add_argument("command")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--jsonl", action="store_true")
    return ap.parse_known_args()[0]


def fail_before_training(args: argparse.Namespace) -> int | None:
    """The exit code of the modes that end before any training step, None for the others."""
    if args.mode == "user_error":
        print("warming up", file=sys.stderr)
        print("error: too few records: 3 records, at least 20 are needed", file=sys.stderr)
        return 2
    if args.mode == "error_event":
        emit(event="error", message="Species column 'sp' has one value only.")
        return 2
    if args.mode == "no_torch":
        print("Traceback (most recent call last):", file=sys.stderr)
        print("ModuleNotFoundError: No module named 'torch'", file=sys.stderr)
        return 1
    if args.mode == "mute":  # closes stdout, then keeps running
        if args.pid_file:
            Path(args.pid_file).write_text(str(os.getpid()))
        sys.stdout.close()
        os.close(1)
        time.sleep(60)
        return 0
    if args.mode == "silent_ok":
        return 0
    return None


def misbehave(args: argparse.Namespace, out: Path) -> None:
    """The modes that train, but leave a grandchild behind or ignore SIGTERM with a .part file."""
    if args.mode == "grandchild":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        Path(args.pid_file).write_text(f"{os.getpid()} {child.pid}")
    if args.mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        out.with_name(f".{out.name}.abc123.part.sinr").write_bytes(b"half")
        if args.pid_file:
            Path(args.pid_file).write_text(str(os.getpid()))


def train(args: argparse.Namespace, ckpt: Path, start_epoch: int) -> int | None:
    """Step and epoch events (a checkpoint per epoch); the exit code of a crash, None when trained."""
    total = args.epochs * STEPS
    emit(event="start", n_records=120, n_species=4, epochs=args.epochs, steps_total=total,
         start_epoch=start_epoch + 1)
    for epoch in range(start_epoch, args.epochs):
        for s in range(STEPS):
            step = epoch * STEPS + s + 1
            if args.mode == "crash" and step == 3:
                print("Traceback (most recent call last):", file=sys.stderr)
                print("RuntimeError: CUDA out of memory (fake)", file=sys.stderr)
                return 1
            emit(event="step", epoch=epoch + 1, step=step, steps_total=total, loss=1.0 / step,
                 progress=step / total)
            print("not json, ignored", flush=True)
            time.sleep(args.delay)
        ckpt.write_text(json.dumps({"epoch": epoch + 1}))
        emit(event="epoch", epoch=epoch + 1, epochs=args.epochs, loss=0.5, progress=(epoch + 1) / args.epochs,
             checkpoint=str(ckpt))
    return None


def write_bundle(out: Path) -> None:
    """A stand-in bundle (only model.json's data counts), written to a .part file and moved in place."""
    tmp = out.with_name(f".{out.name}.xyz.part.sinr")
    with zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr("model.json", json.dumps({"data": {
            "n_read": 130, "dropped": {"missing": 2, "out_of_range": 0, "null_island": 1},
            "n_removed_below_min_records": 5, "n_removed_by_cap": 0, "n_used": 120}}))
    os.replace(tmp, out)


def main() -> int:
    args = parse_args()
    out = Path(args.out)
    ckpt = out.with_name(out.name + ".ckpt.pt")
    code = fail_before_training(args)
    if code is not None:
        return code
    misbehave(args, out)
    start_epoch = 0
    if args.resume:
        if not ckpt.is_file():
            emit(event="error", message=f"No checkpoint to resume at {ckpt}. Run without --resume first.")
            return 2
        start_epoch = json.loads(ckpt.read_text())["epoch"]
    code = train(args, ckpt, start_epoch)
    if code is not None:
        return code
    write_bundle(out)
    ckpt.unlink()
    emit(event="done", out=str(out), n_species=4, n_records=120, final_loss=0.25, epochs=args.epochs,
         elapsed_s=1.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
