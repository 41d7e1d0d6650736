"""Sample arrays resident on the device, cut into batches padded only as far as needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from sarn.models import Batch

_HISTORY_KEYS = ("hist_item", "hist_category", "hist_timestamp", "neg_item", "neg_category")


class BatchIndex(NamedTuple):
    """One batch: its sample indices (on the device) and its width, the longest history
    among them (at least 1). The width is found on the host, so cutting a batch never
    waits for the device."""

    index: torch.Tensor
    width: int


class DeviceSamples:
    """One split's arrays as tensors on ``device``; no per-sample Python when batching."""

    def __init__(self, arrays: dict[str, np.ndarray], device: torch.device, max_len: int | None = None) -> None:
        width = arrays["hist_item"].shape[1] if max_len is None else max_len
        length = np.minimum(arrays["length"], width)
        self.device = device
        self.size = int(arrays["label"].size)
        self.user = arrays["user"]
        self.label = arrays["label"].astype(np.float64)
        self._length = torch.as_tensor(length)  # on the host: batch widths without a device sync
        self._device_length = self._length.to(device)
        self._flat = {
            "item": torch.as_tensor(arrays["item"], dtype=torch.long, device=device),
            "category": torch.as_tensor(arrays["category"], dtype=torch.long, device=device),
            "timestamp": torch.as_tensor(arrays["timestamp"], device=device),
            "label": torch.as_tensor(arrays["label"], dtype=torch.float32, device=device),
        }
        if "context" in arrays:
            self._flat["context"] = torch.as_tensor(arrays["context"], dtype=torch.long, device=device)
        # Histories are stored left-aligned (oldest first); keeping the latest ``width``
        # clicks means dropping from the left for histories longer than ``width``.
        positions = np.arange(width)[None, :] + (arrays["length"] - length)[:, None]
        positions = np.minimum(positions, arrays["hist_item"].shape[1] - 1)
        self._hist = {
            key: torch.as_tensor(np.take_along_axis(arrays[key], positions, axis=1), dtype=torch.long, device=device)
            for key in _HISTORY_KEYS
        }

    def batch(self, part: BatchIndex) -> Batch:
        """The samples of ``part``, histories cut to its width."""
        index, width = part
        mask = (torch.arange(width, device=self.device)[None, :] < self._device_length[index][:, None]).float()
        hist = {key: value[index, :width] * mask.long() for key, value in self._hist.items()}
        return Batch(
            item=self._flat["item"][index],
            category=self._flat["category"][index],
            timestamp=self._flat["timestamp"][index],
            mask=mask,
            label=self._flat["label"][index],
            context=self._flat["context"][index] if "context" in self._flat else None,
            **hist,
        )

    def _part(self, host_index: torch.Tensor) -> BatchIndex:
        return BatchIndex(host_index.to(self.device), max(int(self._length[host_index].max()), 1))

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[Batch]:
        """Consecutive batches following ``order`` (a permutation of sample indices, on the host)."""
        for start in range(0, self.size, batch_size):
            yield self.batch(self._part(order[start : start + batch_size]))

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
        return [self._part(batches[k]) for k in shuffle]

    def evaluation_order(self) -> torch.Tensor:
        """All samples sorted by history length, on the host (predictions do not depend on the batch)."""
        return torch.sort(self._length, stable=True).indices
