"""Data-parallel training under ``torchrun``: process group, batch sharding, reductions, rank-0 writes.

``torchrun --nproc_per_node=K -m laser_train ...`` starts K processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in the environment; :func:`init`
reads them and starts the process group (``nccl`` when the run's device is CUDA, ``gloo`` on
the CPU). Without those variables everything here is a no-op for one process, so the trainer
has a single code path.

How a step is split (the same global batch as a one-process run, ``train.batch_size``):

* every rank draws the same epoch permutation and the same negatives for the **global** batch
  (the generators are seeded by ``(seed, epoch)``), then keeps its contiguous slice
  (:meth:`Dist.shard`): rank r of K gets ``len(batch)·r/K ... len(batch)·(r+1)/K``;
* each loss term is a mean over items (videos, negatives, hinted events, frames); the trainer
  rescales a rank's term by ``local_count · K / global_count`` (:func:`Dist.all_reduce_sum`
  of the counts), so that after DDP averages the gradients over the K ranks the result is the
  gradient of the global mean — the one-process step, up to float summation order;
* a rank whose slice is empty (a last batch smaller than K) still runs forward and backward on
  one video with weight 0, because DDP needs every rank in every gradient all-reduce.

Data: :class:`GlobalBatchSampler` makes each rank's DataLoader read only its slice of each
global batch. Evaluation is sharded and gathered: each rank evaluates a contiguous block of the
held-out videos (no padding, so none is counted twice) and the metric sums of all ranks are
gathered and added (:func:`laser_train.evaluate.evaluate_model`), on every rank. Only rank 0 writes files (:attr:`Dist.is_main`); checkpoints are written
by rank 0 with a barrier after the atomic rename, so no rank reads or races a torn file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Dist", "GlobalBatchSampler", "init", "current", "unwrap"]


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> tuple[int, int]:
        """``[start, stop)`` of this rank's contiguous slice of ``n`` items (sizes differ by at most one)."""
        return n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (a copy; one process: ``values`` itself)."""
        if not self.enabled:
            return values
        out = values.detach().clone()
        torch.distributed.all_reduce(out)
        return out

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable; tensors are moved to the CPU first), in rank order."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model in :class:`~torch.nn.parallel.DistributedDataParallel` (unchanged for one process)."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


class GlobalBatchSampler(torch.utils.data.Sampler):
    """A batch sampler: the global batches of ``order`` (any sampler with ``set_epoch``), this rank's slice of each.

    :meth:`global_batches` gives every rank the whole batches of the epoch (negatives are drawn for
    them); iterating yields this rank's contiguous slice, or the batch's first video when the slice is
    empty (the trainer gives that step weight 0). With one process it yields the global batches.
    """

    def __init__(self, order: Any, batch_size: int, dist: "Dist"):
        self.order, self.batch_size, self.dist = order, batch_size, dist

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.order, "set_epoch"):
            self.order.set_epoch(epoch)

    def global_batches(self) -> list[list[int]]:
        idx = list(self.order)
        return [idx[s:s + self.batch_size] for s in range(0, len(idx), self.batch_size)]

    def __iter__(self):
        for batch in self.global_batches():
            lo, hi = self.dist.shard(len(batch))
            yield batch[lo:hi] if lo < hi else batch[:1]

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)


_CURRENT = Dist()


def current() -> Dist:
    """The :class:`Dist` set up by :func:`init` (rank 0 of 1 before that or without torchrun)."""
    return _CURRENT


def init(device: torch.device) -> Dist:
    """Start the process group from torchrun's environment (idempotent); returns this process's :class:`Dist`."""
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _CURRENT
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        missing = [v for v in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise RuntimeError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: start distributed runs "
                               "with torchrun --nproc_per_node=K -m laser_train ...")
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    _CURRENT = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)
    return _CURRENT


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP wrapper (or the model itself)."""
    return getattr(model, "module", model)
