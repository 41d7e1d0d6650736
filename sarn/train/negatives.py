"""History negatives drawn anew for every epoch, as the reference data iterator draws them.

DIEN's and SARN's auxiliary losses pair every clicked history item with a sampled item
the user did not click. Preprocessing draws one per position, once (``aux_negatives:
fixed``); the reference iterator draws a fresh one on every pass over the data
(``per_epoch``). Both draw a click of the whole log at random (so items come
popularity-weighted, mapped through the training vocabulary, unknown items to index 0)
and draw again where it is the clicked item itself. The distribution comes from the
processed dataset's ``negatives.npz`` (:func:`sarn.data.processed.load_negative_pool`).
"""

from __future__ import annotations

import numpy as np

from sarn.errors import DataError
from sarn.train.batching import DeviceSamples

# A stream of the run's seed of its own: drawing negatives never moves the batch order.
_STREAM = 7


class NegativeSampler:
    """Popularity-weighted negatives over the (item, category) pairs of the log's clicks."""

    def __init__(self, pool: dict[str, np.ndarray], seed: int) -> None:
        self.item, self.category = pool["item"], pool["category"]
        self.cumulative = np.cumsum(pool["clicks"])
        if self.cumulative.size == 0 or np.unique(self.item).size < 2:
            raise DataError("the log has fewer than two clicked items: no negative can be drawn")
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM]))

    def draw(self, avoid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An (item, category) per entry of ``avoid`` whose item differs from it."""
        picks = self._picks(avoid.size)
        clash = self.item[picks] == avoid
        while clash.any():
            picks[clash] = self._picks(int(clash.sum()))
            clash = self.item[picks] == avoid
        return self.item[picks], self.category[picks]

    def _picks(self, n: int) -> np.ndarray:
        clicks = self.rng.integers(0, self.cumulative[-1], n)
        return np.searchsorted(self.cumulative, clicks, side="right")

    def redraw(self, samples: DeviceSamples) -> None:
        """New negatives for every valid history position of ``samples`` (one copy to its device)."""
        clicked, valid = samples.history_items()
        items, categories = np.zeros_like(clicked), np.zeros_like(clicked)
        items[valid], categories[valid] = self.draw(clicked[valid])
        samples.set_history_negatives(items, categories)
