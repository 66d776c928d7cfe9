"""Training at the paper's scale: reading, samples/s in 1 and N processes, and an epoch's time.

    .venv/bin/python -m training.benchmarks.scale                      # CPU: 1 and 2 processes
    .venv/bin/python -m training.benchmarks.scale --device cuda        # a GPU (scripts/gpu_check.sh)
    .venv/bin/python -m training.benchmarks.scale --records 1000000 --steps 5   # a quick look

Generates once, into ``--cache`` (default ~/.cache/sinr-qgis/scale), a synthetic occurrence file
of the paper's shape as GBIF publishes it (Parquet, columns taxonKey / decimalLatitude /
decimalLongitude): ``--records`` records (35.5 M) of ``--species`` species (47,375) with
long-tailed counts (a power law, at least 10 per species: a few species hold hundreds of
thousands, most a few dozen), each species around its own centre. Then prints, side by side:

- reading: the training reader (``training.columnar``) on the whole file in a fresh process, its
  time and peak resident memory (VmHWM);
- training: samples/s of AN-full with the paper's network (width 256, depth 4, batch 2048
  positives + 2048 random pseudo-negatives, 47,375-way head) for ``--steps`` steps after a warm-up,
  in 1 process and under ``torchrun`` in N (``--processes``; gloo on the CPU, nccl on GPUs), with
  the same global batch; each process on ``cores / N`` threads on the CPU;
- the extrapolated time of one epoch over all records and over the records capped at 1,000 per
  species (the paper's setting), from each samples/s.

Samples are positive training records (the random pseudo-negatives are not counted). The
machine may be shared: record its load with the figures (training/benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PAPER_RECORDS = 35_500_000
PAPER_SPECIES = 47_375
CAP = 1000  # the paper's records per species
MIN_PER_SPECIES = 10
CHUNK = 1_000_000  # records generated and written at a time
ROOT = Path(__file__).resolve().parents[2]


def species_counts(records: int, species: int, exponent: float = 1.1) -> np.ndarray:
    """int64 [species]: records per species, long-tailed (rank^-exponent), at least
    ``MIN_PER_SPECIES`` each, summing to ``records`` exactly."""
    w = np.arange(1, species + 1, dtype=np.float64) ** -exponent
    spare = records - MIN_PER_SPECIES * species
    if spare < 0:
        raise SystemExit(f"--records must be at least {MIN_PER_SPECIES} x --species")
    counts = MIN_PER_SPECIES + np.floor(w / w.sum() * spare).astype(np.int64)
    counts[0] += records - counts.sum()
    return counts


def generate(cache: Path, records: int, species: int, seed: int = 0) -> Path:
    """The cached Parquet file of ``records`` x ``species`` (written once, atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = cache / f"occurrences_{records}_{species}_{seed}.parquet"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = species_counts(records, species)
    centre_lon = rng.uniform(-180, 180, species)
    centre_lat = np.degrees(np.arcsin(rng.uniform(-0.8, 0.95, species)))
    spread = rng.uniform(0.5, 15.0, species)  # degrees: endemics to widespread species
    order = rng.permutation(records).astype(np.int64)  # file order is not species order
    labels = np.repeat(np.arange(species, dtype=np.int32), counts)[order]
    del order
    schema = pa.schema([("taxonKey", pa.int64()), ("decimalLatitude", pa.float64()),
                        ("decimalLongitude", pa.float64())])
    tmp = path.with_name(path.name + ".part")
    with pq.ParquetWriter(tmp, schema) as writer:
        for a in range(0, records, CHUNK):
            sp = labels[a:a + CHUNK]
            lon = (centre_lon[sp] + rng.normal(0, spread[sp]) + 180) % 360 - 180
            lat = np.clip(centre_lat[sp] + rng.normal(0, spread[sp] / 2), -89.9, 89.9)
            writer.write_table(pa.table({"taxonKey": 1_000_000 + sp.astype(np.int64),
                                         "decimalLatitude": np.round(lat, 5), "decimalLongitude": np.round(lon, 5)},
                                        schema=schema))
    os.replace(tmp, path)
    return path


def read_worker(path: str) -> dict:
    """In a fresh process: the training reader on ``path``; seconds and peak memory."""
    from training.columnar import read_training_occurrences

    with open("/proc/self/clear_refs", "w") as f:  # VmHWM from here: the imports are not the data
        f.write("5")
    t = time.perf_counter()
    occ, how = read_training_occurrences(path)
    seconds = time.perf_counter() - t
    status = Path("/proc/self/status").read_text()
    peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
    return {"records": len(occ), "seconds": seconds, "peak_bytes": peak, "reader": how}


def train_worker(a: argparse.Namespace) -> dict | None:
    """In each process: ``a.steps`` steps of the paper's training on synthetic records; rank 0
    returns samples/s (every process counts the global batch)."""
    import torch

    from training.data import TrainingData
    from training.distributed import TrainingSession
    from training.trainer import TrainConfig, Trainer, resolve_precision

    if a.threads:
        torch.set_num_threads(a.threads)
    with TrainingSession.start(a.device) as session:
        rng = np.random.default_rng(0)  # the same records in every process
        counts = np.minimum(species_counts(a.records, a.species), CAP)
        n = a.batch_size * (a.steps + a.warmup)
        labels = rng.choice(a.species, size=n, p=counts / counts.sum()).astype(np.int64)
        lonlat = np.stack([rng.uniform(-180, 180, n), rng.uniform(-60, 80, n)], 1).astype(np.float32)
        data = TrainingData(lonlat=lonlat, species=labels, codes=[str(1_000_000 + i) for i in range(a.species)],
                            names=[f"species {i}" for i in range(a.species)])
        cfg = TrainConfig(loss="an_full", epochs=1, batch_size=a.batch_size, pos_weight=2048.0,
                          precision=resolve_precision(a.precision, session.device))
        trainer = Trainer(data, cfg, device=session.device, dist=session.env)
        trainer.fit(progress=False, max_steps=a.warmup)  # allocations, autotuning, first-touch
        result = trainer.fit(progress=False, max_steps=a.steps)
        if not session.env.is_leader:
            return None
        return {"samples_per_s": result.samples / result.seconds, "steps": result.steps,
                "device": session.device.type, "precision": cfg.precision, "processes": session.env.world_size,
                "threads": torch.get_num_threads()}


def _child(args: list[str], processes: int = 1) -> dict:
    """Run this module in a child process (under torchrun for ``processes`` > 1); its JSON line."""
    me = [sys.executable, "-m", "training.benchmarks.scale"]
    if processes > 1:
        me = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
              "-m", "training.benchmarks.scale"]
    out = subprocess.run(me + args, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(me + args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def _hms(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{rest // 60} min {rest % 60:02d} s"


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options (hidden ones are set by the parent for its worker processes)."""
    p = argparse.ArgumentParser(prog="python -m training.benchmarks.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sinr-qgis" / "scale",
                   help="where the synthetic file is generated once")
    p.add_argument("--records", type=int, default=PAPER_RECORDS)
    p.add_argument("--species", type=int, default=PAPER_SPECIES)
    p.add_argument("--steps", type=int, default=20, help="measured training steps per run (after --warmup)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps"))
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--skip-read", action="store_true", help="no generation or reading (e.g. on a GPU check)")
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)  # per process, set by the parent
    p.add_argument("--worker", choices=("read", "train"), help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    a = build_parser().parse_args(argv)
    if a.worker == "read":
        print(json.dumps(read_worker(a.path)))
        return 0
    if a.worker == "train":
        result = train_worker(a)
        if result is not None:
            print(json.dumps(result))
        return 0
    capped = int(np.minimum(species_counts(a.records, a.species), CAP).sum())
    print(f"paper-shaped set: {a.records:,} records of {a.species:,} species ({capped:,} capped at {CAP:,} per "
          f"species); {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}", flush=True)
    if not a.skip_read:
        t = time.perf_counter()
        path = generate(a.cache, a.records, a.species)
        print(f"data: {path} ({path.stat().st_size / 2**20:,.0f} MiB; ready in {time.perf_counter() - t:.0f} s)",
              flush=True)
        r = _child(["--worker", "read", "--path", str(path)])
        print(f"read: {r['records']:,} records in {r['seconds']:.1f} s ({r['records'] / r['seconds']:,.0f} records/s), "
              f"peak memory {r['peak_bytes'] / 2**30:.2f} GiB ({r['peak_bytes'] / r['records']:.0f} B/record); "
              f"{r['reader']}", flush=True)
    common = ["--worker", "train", "--records", str(a.records), "--species", str(a.species), "--steps", str(a.steps),
              "--warmup", str(a.warmup), "--batch-size", str(a.batch_size), "--device", a.device,
              "--precision", a.precision]
    print(f"{'processes':>9}  {'device':>6}  {'precision':>9}  {'threads':>7}  {'samples/s':>10}  "
          f"{'epoch (all records)':>19}  {'epoch (capped)':>14}", flush=True)
    for n in a.processes:
        threads = max(1, (os.cpu_count() or 1) // n) if a.device == "cpu" else 0
        r = _child([*common, "--threads", str(threads)], processes=n)
        rate = r["samples_per_s"]
        print(f"{r['processes']:>9}  {r['device']:>6}  {r['precision']:>9}  {r['threads']:>7}  {rate:>10,.0f}  "
              f"{_hms(a.records / rate):>19}  {_hms(capped / rate):>14}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
