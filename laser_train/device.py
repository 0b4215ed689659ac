"""Where a run computes and in which precision: the one place that decides device, autocast and dtypes.

:func:`runtime` turns ``train.device`` / ``train.precision`` / ``train.spec_dtype`` (and, under
``torchrun``, the local rank) into a :class:`Runtime` that the trainer, the evaluator and the
benchmark use for everything device-related:

* ``device``: ``auto`` is ``cuda`` when :func:`torch.cuda.is_available` (under torchrun: the GPU of
  the process's ``LOCAL_RANK``), else ``cpu``; ``cuda`` / ``cuda:N`` without a usable GPU is an
  error that says so (never a silent fall-back to the CPU);
* ``autocast()``: the context the **perception model** runs in — fp32: none; bf16 / fp16:
  :func:`torch.autocast` on that device. Spec evaluation and the losses run outside it;
* ``scaler``: a :class:`torch.amp.GradScaler` for fp16 (disabled otherwise: then ``scale`` is the
  identity and ``step`` an ordinary optimizer step);
* ``spec_dtype``: the dtype the scene-graph probabilities are cast to before spec evaluation.
  float64 by default on every device: the losses take ``-log v`` and ``-log (1 - v)`` of
  products of many probabilities, and in float32 a negative the model firmly believes
  (``v = 1 - 1e-9``) rounds to 1 and loses its gradient (see :mod:`laser_train.losses`). Spec
  evaluation is a small share of a CLIP step (``bench/train_throughput.py``), and data-centre GPUs
  run float64 at half their float32 rate, so the safe dtype costs little where it matters;
  ``float32`` is the option for GPUs with slow float64 (``docs/training.md`` has the measured
  difference).

No CUDA query happens at import time; :func:`runtime` is called once per run.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Runtime", "runtime", "resolve_device", "to_device", "DeviceError"]

_AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_SPEC_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class DeviceError(RuntimeError):
    """The configured device cannot be used on this machine."""


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` → a usable :class:`torch.device` (raises :class:`DeviceError`).

    Under torchrun (``local_rank`` given), ``auto`` and ``cuda`` mean this process's GPU, ``cuda:{local_rank}``.
    """
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"train.device={name}: CUDA is not available here (torch {torch.__version__}, "
                          f"built {'with' if torch.backends.cuda.is_built() else 'without'} CUDA); "
                          "use --train.device=cpu or auto")
    count = torch.cuda.device_count()
    if name in ("auto", "cuda"):
        index = local_rank if local_rank is not None else torch.cuda.current_device()
    else:
        index = int(name.split(":", 1)[1])
    if index >= count:
        raise DeviceError(f"train.device={name}: GPU {index} does not exist (this machine has {count}: "
                          f"cuda:0 .. cuda:{count - 1})")
    return torch.device("cuda", index)


@dataclass(frozen=True)
class Runtime:
    """The resolved device and precision of a run (see the module docstring)."""

    device: torch.device
    precision: str = "fp32"
    spec_dtype: torch.dtype = torch.float64

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return _AMP_DTYPES[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context the perception model's forward pass runs in."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> "torch.amp.GradScaler":
        """A GradScaler, enabled only for fp16 (bf16 has float32's range and needs none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def to(self, batch: Any) -> Any:
        return to_device(batch, self.device)

    def describe(self) -> str:
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        return f"{name}, {self.precision}, specs in {str(self.spec_dtype).replace('torch.', '')}"


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (a tensor, or a dict / list / tuple of them) on ``device``; other values unchanged.

    Host-to-GPU copies are non-blocking (the DataLoader pins memory when the device is CUDA).
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def runtime(train_cfg: Any) -> Runtime:
    """The :class:`Runtime` of a :class:`laser_train.config.TrainConfig` (device, precision, spec dtype)."""
    local_rank = int(os.environ["LOCAL_RANK"]) if "LOCAL_RANK" in os.environ else None
    device = resolve_device(train_cfg.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        if train_cfg.precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise DeviceError(f"train.precision=bf16: {torch.cuda.get_device_name(device)} has no bfloat16; "
                              "use fp16 or fp32")
    return Runtime(device, train_cfg.precision, _SPEC_DTYPES[train_cfg.spec_dtype])

