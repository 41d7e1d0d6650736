"""Sample arrays resident on the device, cut into batches padded only as far as needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from sarn.models import Batch

_HISTORY_KEYS = ("hist_item", "hist_category", "hist_timestamp", "neg_item", "neg_category")
_ID_KEYS = ("item", "category", "timestamp", "context")


class BatchIndex(NamedTuple):
    """One batch: its sample indices (on the device) and its width, the longest history
    among them (at least 1). The width is found on the host, so cutting a batch never
    waits for the device."""

    index: torch.Tensor
    width: int


class DeviceSamples:
    """One split's arrays as tensors on ``device``; no per-sample Python when batching.

    The integer arrays are stacked into two tensors, one of per-sample values and one of
    histories, so that cutting a batch takes a handful of operations whatever the number
    of fields: on a GPU each costs a kernel launch at every step.
    """

    def __init__(self, arrays: dict[str, np.ndarray], device: torch.device, max_len: int | None = None) -> None:
        width = arrays["hist_item"].shape[1] if max_len is None else max_len
        length = np.minimum(arrays["length"], width)
        self.device = device
        self.size = int(arrays["label"].size)
        self.user = arrays["user"]
        self.label = arrays["label"].astype(np.float64)
        self._length = torch.as_tensor(length)  # on the host: batch widths without a device sync
        self._device_length = self._length.to(device)
        self._id_keys = [key for key in _ID_KEYS if key in arrays]
        self._ids = torch.as_tensor(np.stack([arrays[key] for key in self._id_keys], dtype=np.int64), device=device)
        self._label = torch.as_tensor(arrays["label"], dtype=torch.float32, device=device)
        # Histories are stored left-aligned (oldest first); keeping the latest ``width``
        # clicks means dropping from the left for histories longer than ``width``.
        positions = np.arange(width)[None, :] + (arrays["length"] - length)[:, None]
        positions = np.minimum(positions, arrays["hist_item"].shape[1] - 1)
        self._hist = torch.as_tensor(  # (fields, samples, width)
            np.stack([np.take_along_axis(arrays[key], positions, axis=1) for key in _HISTORY_KEYS], dtype=np.int64),
            device=device)

    def batch(self, part: BatchIndex) -> Batch:
        """The samples of ``part``, histories cut to its width."""
        index, width = part
        valid = torch.arange(width, device=self.device)[None, :] < self._device_length[index][:, None]
        hist = self._hist[:, index, :width] * valid
        return Batch(
            **dict(zip(self._id_keys, self._ids[:, index], strict=True)),
            **dict(zip(_HISTORY_KEYS, hist, strict=True)),
            mask=valid.float(),
            label=self._label[index],
        )

    def _parts(self, host_indices: list[torch.Tensor]) -> list[BatchIndex]:
        """Batches of the given host-side indices, copied to the device in one transfer
        (a copy from the host waits for the GPU: one per epoch, not one per batch)."""
        if not host_indices:
            return []
        on_device = torch.cat(host_indices).to(self.device).split([len(index) for index in host_indices])
        return [BatchIndex(index, max(int(self._length[host].max()), 1))
                for host, index in zip(host_indices, on_device, strict=True)]

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[Batch]:
        """Consecutive batches following ``order`` (a permutation of sample indices, on the host)."""
        for part in self._parts(list(order.split(batch_size)) if len(order) else []):
            yield self.batch(part)

    def training_batches(self, batch_size: int, sort_chunk: int, generator: torch.Generator) -> list[BatchIndex]:
        """One epoch's batches, grouped by history length.

        As the reference data iterator does: shuffle, cut into chunks of
        ``sort_chunk`` batches, sort each chunk by history length, cut it into batches
        and shuffle the batches. Batches of similar lengths need far less padding, which
        matters for the models whose cost grows with L². ``sort_chunk = 1`` gives plain
        shuffled batches.
        """
        order = torch.randperm(self.size, generator=generator)
        lengths = self._length[order]
        chunk = batch_size * sort_chunk
        batches = []
        for start in range(0, self.size, chunk):
            part = order[start : start + chunk]
            part = part[torch.sort(lengths[start : start + chunk], stable=True).indices]
            batches += list(part.split(batch_size))
        shuffle = torch.randperm(len(batches), generator=generator)
        return self._parts([batches[k] for k in shuffle])

    def evaluation_order(self) -> torch.Tensor:
        """All samples sorted by history length, on the host (predictions do not depend on the batch)."""
        return torch.sort(self._length, stable=True).indices
