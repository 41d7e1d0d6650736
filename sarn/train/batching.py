"""Sample arrays resident on the device, cut into batches padded only as far as needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from sarn.batch import Batch
from sarn.params import BatchOrder

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
        # What the reference iterator sorts its buffers by: the length of the whole history line.
        self._sort_length = torch.as_tensor(arrays["full_length"])
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

    def history_items(self) -> tuple[np.ndarray, np.ndarray]:
        """The clicked items of every kept history position (samples, width) and which
        positions are valid, on the host (one copy from the device)."""
        items = self._hist[_HISTORY_KEYS.index("hist_item")].cpu().numpy()
        return items, np.arange(items.shape[1])[None, :] < self._length.numpy()[:, None]

    def set_history_negatives(self, items: np.ndarray, categories: np.ndarray) -> None:
        """Replace the sampled negative of every history position (same shape as
        :meth:`history_items`), in one copy to the device."""
        first = _HISTORY_KEYS.index("neg_item")
        assert _HISTORY_KEYS[first + 1] == "neg_category"
        self._hist[first : first + 2] = torch.as_tensor(np.stack([items, categories]), dtype=torch.int64,
                                                        device=self.device)

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

    def sample_batches(self, size: int, batch_size: int, generator: torch.Generator) -> list[BatchIndex]:
        """``size`` samples drawn at random (all, where the split is smaller), sorted by whole
        history length, longest first, and cut into batches: like a buffer of the reference
        iterator, every history length in its share."""
        chosen = torch.randperm(self.size, generator=generator)[:size]
        return self._parts(list(self._longest_first(chosen, len(chosen)).split(batch_size)) if len(chosen) else [])

    def training_batches(self, batch_size: int, sort_chunk: int, generator: torch.Generator,
                         order: BatchOrder = "longest_first") -> list[BatchIndex]:
        """One epoch's batches, grouped by history length as the reference data iterator does.

        The samples are shuffled, then taken ``sort_chunk`` batches at a time (the reference's
        buffer of 20 × 128), each chunk sorted by whole history length and cut into batches,
        longest first: ``longest_first`` keeps that order (the reference pops its buffer from
        the longest end and never shuffles batches), ``shuffled`` shuffles the epoch's batches.
        Batches of similar lengths need far less padding, which matters for the models whose
        cost grows with L². ``sort_chunk = 1`` gives plain shuffled batches.
        """
        permutation = torch.randperm(self.size, generator=generator)
        batches = list(self._longest_first(permutation, batch_size * sort_chunk).split(batch_size)) if self.size else []
        if order == "shuffled":
            batches = [batches[k] for k in torch.randperm(len(batches), generator=generator)]
        return self._parts(batches)

    def evaluation_order(self, reference_chunk: int | None = None) -> torch.Tensor:
        """Every sample once, on the host, in the order evaluation batches are cut from.

        By default sorted by history length over the whole split: the least padding, for models
        whose predictions do not depend on their batch. With ``reference_chunk`` (samples), as
        the reference iterator's test pass orders them: in the split's order, each
        ``reference_chunk`` samples sorted by whole history length (before any cut), longest first.
        """
        if reference_chunk is None:
            return torch.sort(self._length, stable=True).indices
        return self._longest_first(torch.arange(self.size), reference_chunk)

    def _longest_first(self, order: torch.Tensor, chunk: int) -> torch.Tensor:
        """``order`` with each run of ``chunk`` samples sorted by whole history length, longest first
        (the reference iterator's buffer, which it pops from the longest end)."""
        lengths = self._sort_length[order]
        return torch.cat([order[start : start + chunk][
            torch.sort(lengths[start : start + chunk], descending=True, stable=True).indices]
            for start in range(0, len(order), chunk)]) if len(order) else order
