"""The run folder's records: ``metrics.csv``, TensorBoard events, loss plots, progress bar (rank 0), and
the training throughput that ``summary.json`` reports.

``metrics.csv`` is long-format, one value per row, so phases with different losses share one file::

    step,epoch,phase,split,name,value
    100,0.52,gan,train,g_total,0.0213
    100,0.52,gan,val,model.psnr,31.84
    100,0.52,gan,val,bicubic.psnr,29.10

A resumed run first drops the rows (and TensorBoard events) written after its checkpoint, so a run
killed and resumed leaves the same records as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mrisr.io.atomic import atomic_write_text
from mrisr.train.plots import plot_losses

FIELDS = ("step", "epoch", "phase", "split", "name", "value")


class RunLog:
    """Writers of one run folder; every method is a no-op unless ``enabled`` (rank 0)."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int | None, total_steps: int, progress: str):
        self.run_dir = run_dir
        self.enabled = enabled
        self.csv_path = run_dir / "metrics.csv"
        self._tb: Any = None
        self._bar: Any = None
        self._plotted = -float("inf")
        if not enabled:
            return
        if resume_step is not None and self.csv_path.exists():
            self._truncate(resume_step)
        new = not self.csv_path.exists()
        self._fh = open(self.csv_path, "a", newline="")  # closed in close()
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(FIELDS)
            self._fh.flush()
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(str(run_dir / "tensorboard"),
                                 purge_step=None if resume_step is None else resume_step + 1)
        show = progress == "always" or (progress == "auto" and sys.stderr.isatty())
        if show:
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, initial=resume_step or 0, unit="step", dynamic_ncols=True,
                             smoothing=0.05, file=sys.stderr)

    def _truncate(self, step: int) -> None:
        with open(self.csv_path, newline="") as fh:
            rows = list(csv.reader(fh))
        keep = [rows[0]] + [r for r in rows[1:] if len(r) == len(FIELDS) and int(r[0]) <= step]
        buf = io.StringIO()
        csv.writer(buf).writerows(keep)
        atomic_write_text(self.csv_path, buf.getvalue(), force=True)

    def scalars(self, step: int, epoch: float, phase: str, split: str, values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        for name, value in values.items():
            self._csv.writerow((step, f"{epoch:.4f}", phase, split, name, f"{value:.6g}"))
            self._tb.add_scalar(f"{split}/{name}", value, step)
        self._fh.flush()

    def figure(self, tag: str, path: Path, step: int) -> None:
        """Also show a written PNG in TensorBoard."""
        if not self.enabled:
            return
        import numpy as np
        from PIL import Image

        img = np.asarray(Image.open(path).convert("RGB"))
        self._tb.add_image(tag, img, step, dataformats="HWC")

    def progress(self, step: int, postfix: Mapping[str, Any] | None = None) -> None:
        """Move the bar to ``step`` (it shows it/s and the ETA)."""
        if self._bar is None:
            return
        self._bar.update(step - self._bar.n)
        if postfix is not None:
            self._bar.set_postfix(postfix, refresh=False)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def plot_losses(self, min_interval_s: float = 0.0) -> None:
        """Redraw ``plots/losses_*.png`` from ``metrics.csv`` (so resumed runs plot their whole history),
        unless the last drawing is less than ``min_interval_s`` seconds old."""
        if not self.enabled or time.monotonic() - self._plotted < min_interval_s:
            return
        self._plotted = time.monotonic()
        self._fh.flush()
        with open(self.csv_path, newline="") as fh:
            rows = [(float(r["epoch"]), r["name"], float(r["value"]))
                    for r in csv.DictReader(fh) if r["split"] == "train"]
        out = self.run_dir / "plots"
        out.mkdir(exist_ok=True)
        plot_losses(rows, out)

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        self._tb.flush()
        self._tb.close()
        self._fh.close()


class Throughput:
    """Samples per second of the training steps (data waits included; validation, checkpoints and the
    first ``warmup`` steps excluded). No per-step device sync: the clocks are read after a sync at the
    warm-up's end, around the excluded work and at the end. Also this process's CPU seconds over the
    same span (on a shared CPU machine, samples per CPU second is the steadier figure)."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup = warmup
        self.device = device
        self.steps = 0
        self.timed = 0
        self.samples = 0
        self.excluded = (0.0, 0.0)
        self._begin: tuple[float, float] | None = None
        self._paused = (0.0, 0.0)

    def _now(self) -> tuple[float, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter(), time.process_time()

    def step_done(self, samples: int) -> None:
        self.steps += 1
        if self._begin is not None:
            self.samples += samples
            self.timed += 1
        elif self.steps >= self.warmup:
            self._begin = self._now()

    def pause(self) -> None:
        if self._begin is not None:
            self._paused = self._now()

    def resume(self) -> None:
        if self._begin is not None:
            wall, cpu = time.perf_counter(), time.process_time()
            self.excluded = (self.excluded[0] + wall - self._paused[0], self.excluded[1] + cpu - self._paused[1])

    def summary(self) -> dict[str, float | int | None]:
        if self._begin is None or self.samples == 0:
            return {"timed_steps": 0, "seconds": 0.0, "samples_per_second": None}
        wall, cpu = (n - b - e for n, b, e in zip(self._now(), self._begin, self.excluded, strict=True))
        return {"timed_steps": self.timed, "seconds": round(wall, 4), "cpu_seconds": round(cpu, 4),
                "samples_per_second": round(self.samples / wall, 3),
                "samples_per_cpu_second": round(self.samples / cpu, 3) if cpu > 0 else None}
