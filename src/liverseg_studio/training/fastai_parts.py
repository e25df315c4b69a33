"""fastai/torch pieces of ``liverseg train``: loss, metrics, callbacks.

This module imports torch and fastai at import time; only
:mod:`liverseg_studio.training.train` imports it, inside its functions.  All
classes are module-level (picklable for ``learn.export`` and DataLoader workers)
and use only fastai's vision runtime (no fastai.text, no spacy).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.callback.tracker import SaveModelCallback
from fastai.learner import Metric

from liverseg_studio.training.data import PARTIAL


class MarginalCrossEntropy:
    """Cross-entropy with partial labels (targets 0/1/2 and 3 = liver-or-tumour).

    Pixels with target 0, 1 or 2: plain cross-entropy ``-log p_t``.  Pixels with
    target 3 (liver or tumour, merged by the source): the marginal
    ``-log(p_liver + p_tumour)``, so a merged mask never teaches "tumour = liver".
    Logits (N, 3, H, W) are computed in float32 whatever the autocast dtype.
    """

    reduction = "mean"

    def __init__(self, reduction: str = "mean", tumour_weight: float = 1.0) -> None:
        self.reduction = reduction
        #: pixels whose target is tumour (2) weigh this much (tumours are rare pixels)
        self.tumour_weight = float(tumour_weight)

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if type(logits) is not torch.Tensor:
            logits = logits.as_subclass(torch.Tensor)
        target = target.as_subclass(torch.Tensor).long() if type(target) is not torch.Tensor else target.long()
        logp = F.log_softmax(logits, dim=1)
        partial = target == PARTIAL
        plain_t = torch.where(partial, torch.zeros_like(target), target)
        nll_plain = -logp.gather(1, plain_t.unsqueeze(1)).squeeze(1)
        nll_part = -torch.logsumexp(logp[:, 1:3], dim=1)
        loss = torch.where(partial, nll_part, nll_plain)
        if getattr(self, "tumour_weight", 1.0) != 1.0:
            loss = loss * torch.where(target == 2, loss.new_tensor(self.tumour_weight), loss.new_tensor(1.0))
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.mean()

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x.float(), dim=1)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=1)


def _pred_targ(learn: Any) -> tuple[torch.Tensor, torch.Tensor]:
    pred = learn.pred.detach().float().argmax(dim=1).as_subclass(torch.Tensor)
    targ = learn.yb[0].detach().as_subclass(torch.Tensor)
    return pred, targ


class _DiceBase(Metric):
    """Dice accumulated over every validation pixel (global Dice)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.inter = 0.0
        self.total = 0.0

    def _masks(self, pred: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def accumulate(self, learn: Any) -> None:
        p, t = self._masks(*_pred_targ(learn))
        self.inter += float((p & t).sum())
        self.total += float(p.sum() + t.sum())

    @property
    def value(self) -> float:
        return 2.0 * self.inter / self.total if self.total > 0 else float("nan")


class DiceLiver(_DiceBase):
    """Liver as LiTS scores it: label >= 1 (tumour and liver-or-tumour included)."""

    @property
    def name(self) -> str:
        return "dice_liver"

    def _masks(self, pred: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pred >= 1, targ >= 1


class DiceTumour(_DiceBase):
    """Tumour (label 2), ignoring pixels whose truth is liver-or-tumour (partial)."""

    @property
    def name(self) -> str:
        return "dice_tumour"

    def _masks(self, pred: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        known = targ != PARTIAL
        return (pred == 2) & known, targ == 2


class ForegroundAccuracy(Metric):
    """Accuracy over foreground truth pixels; a liver-or-tumour pixel is right when predicted liver or tumour."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.correct = 0.0
        self.count = 0.0

    @property
    def name(self) -> str:
        return "foreground_acc"

    def accumulate(self, learn: Any) -> None:
        pred, targ = _pred_targ(learn)
        fg = targ > 0
        ok = (pred == targ) | ((targ == PARTIAL) & (pred >= 1))
        self.correct += float((ok & fg).sum())
        self.count += float(fg.sum())

    @property
    def value(self) -> float:
        return self.correct / self.count if self.count else float("nan")


class BF16Autocast(Callback):
    """bfloat16 autocast for the forward pass and the loss (CPU or CUDA); weights stay float32."""

    order = 10

    def __init__(self, device_type: str) -> None:
        self.device_type = device_type
        self._ctx: Any = None

    def before_batch(self) -> None:
        self._ctx = torch.autocast(self.device_type, dtype=torch.bfloat16)
        self._ctx.__enter__()

    def after_loss(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None

    def after_cancel_batch(self) -> None:
        self.after_loss()

    def after_fit(self) -> None:
        self.after_loss()


class FreezeBatchNorm(Callback):
    """BatchNorm layers in eval mode while training: running statistics frozen, affine parameters still learn.

    For warm starts from a folded model (its BatchNorms carry no statistics of their own) and for the small
    batches a CPU affords, whose statistics are noisy."""

    order = 11

    def before_batch(self) -> None:
        if self.training:
            for m in self.learn.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()


class PauseWhileFile(Callback):
    """Waits between batches while ``path`` exists (a benchmark wants the CPU); logs once per pause."""

    order = 12

    def __init__(self, path: Path, poll_s: float = 5.0) -> None:
        self.path = Path(path)
        self.poll_s = poll_s

    def before_batch(self) -> None:
        if not self.path.exists():
            return
        t0 = time.monotonic()
        sys.stderr.write(f"train: paused while {self.path} exists\n")
        while self.path.exists():
            time.sleep(self.poll_s)
        sys.stderr.write(f"train: resumed after {time.monotonic() - t0:.0f}s\n")


class StopAfterEpochs(Callback):
    """Ends ``fit`` after ``n`` epochs of a longer schedule (a one-cycle schedule cut short, as recorded)."""

    order = 80  # after the checkpoint (70) of the last epoch

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def after_epoch(self) -> None:
        if self.epoch + 1 >= self.n:
            from fastai.callback.core import CancelFitException

            raise CancelFitException()


class BestModelSaver(SaveModelCallback):
    """SaveModelCallback that ignores the epochs skipped when resuming (``fit(start_epoch=)``).

    fastai calls ``after_epoch`` for skipped epochs too, with no recorded values.
    """

    def __init__(self, *args: Any, skip_to: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skip_to = skip_to

    def after_epoch(self) -> None:
        if self.epoch < self.skip_to or not self.recorder.values or not len(self.recorder.values[-1]):
            return
        super().after_epoch()


class CsvEpochLog(Callback):
    """Append one CSV row per trained epoch (header once; skipped epochs of a resume are not written)."""

    order = 60  # after the Recorder (50)

    def __init__(self, path: Path, skip_to: int = 0) -> None:
        self.path = Path(path)
        self.skip_to = skip_to
        self._t0 = 0.0

    def before_epoch(self) -> None:
        self._t0 = time.monotonic()

    def after_epoch(self) -> None:
        if self.epoch < self.skip_to or not self.recorder.values or not len(self.recorder.values[-1]):
            return
        names = [n for n in self.recorder.metric_names if n not in ("epoch", "time")]
        vals = list(self.recorder.values[-1])
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", encoding="utf-8") as fh:
            if new:
                fh.write(",".join(["epoch", *names, "seconds"]) + "\n")
            cells = [str(int(self.epoch))] + [f"{float(v):.6g}" for v in vals[: len(names)]]
            fh.write(",".join(cells + [f"{time.monotonic() - self._t0:.1f}"]) + "\n")


class EpochCheckpoint(Callback):
    """After every epoch: ``checkpoints/last.pth`` (model + optimizer) and ``checkpoints/state.json``.

    ``liverseg train --resume`` restarts from the epoch after the one recorded.
    """

    order = 70  # after SaveModelCallback (61) has updated its best value

    def __init__(self, info: dict[str, Any], tracker: Any = None, skip_to: int = 0) -> None:
        self.info = info
        self.tracker = tracker
        self.skip_to = skip_to

    def after_epoch(self) -> None:
        if self.epoch < self.skip_to:
            return
        self.learn.save("last", with_opt=True)
        best = getattr(self.tracker, "best", None) if self.tracker is not None else None
        state = dict(self.info)
        state.update(
            epoch_done=int(self.epoch),
            n_epoch=int(self.n_epoch),
            best=None if best is None or not math.isfinite(float(best)) else float(best),
            saved=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        path = Path(self.learn.path) / self.learn.model_dir / "state.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        tmp.replace(path)


class ProgressLine(Callback):
    """A compact progress line on stderr (replaces fastai's ProgressCallback)."""

    order = 65

    def __init__(self, every_s: float = 10.0, stream: Any = None) -> None:
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.losses: list[float] = []  #: raw training loss of every batch
        self.batch_seconds: list[float] = []

    def before_epoch(self) -> None:
        self.t0 = time.monotonic()
        self.last = self.t0

    def before_batch(self) -> None:
        self.tb = time.monotonic()

    def after_batch(self) -> None:
        if not self.training:
            return
        now = time.monotonic()
        self.losses.append(float(self.loss))
        self.batch_seconds.append(now - self.tb)
        n = len(self.dl)
        if now - self.last >= self.every_s or self.iter + 1 == n:
            self.last = now
            done = self.iter + 1
            rate = (now - self.t0) / done
            loss = float(self.smooth_loss) if hasattr(self, "smooth_loss") else float("nan")
            self.stream.write(
                f"train: epoch {self.epoch + 1}/{self.n_epoch} batch {done}/{n} loss {loss:.4f} "
                f"{rate:.2f} s/batch\n"
            )
            self.stream.flush()


class EpochLogger:
    """``learn.logger``: one readable line per epoch (fastai's Recorder passes the raw values)."""

    def __init__(self, learn: Any, stream: Any = None) -> None:
        self.learn = learn
        self.stream = stream or sys.stderr

    def __call__(self, values: Any) -> None:
        names = list(getattr(self.learn.recorder, "metric_names", []))
        vals = list(values)
        if len(vals) <= 2:  # an epoch skipped on resume: nothing was measured
            return
        parts = []
        for n, v in zip(names, vals):
            if isinstance(v, float):
                parts.append(f"{n} {v:.4f}")
            else:
                parts.append(f"{n} {v}")
        self.stream.write("train: " + "  ".join(parts) + "\n")
        self.stream.flush()


def batch_timer_stats(times: list[float]) -> dict[str, float]:
    a = np.asarray(times, dtype=np.float64)
    return {"mean_s": float(a.mean()), "median_s": float(np.median(a)), "n": int(a.size)}
