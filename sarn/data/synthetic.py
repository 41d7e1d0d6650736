"""The embedded default dataset: a seeded generator of click logs, no network needed.

Modelled on the story of the paper's Fig. 1: every user holds a few latent interests,
each interest owns a group of categories, items belong to categories, and a user's
sequence interleaves those interests by chance. A model that relates the candidate to
the right part of the history (attention, relations) therefore has something real to
find, while the order of the clicks carries little information.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sarn.params import GeneratorSpec

_MEAN_GAP_SECONDS = 86_400.0


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Popularity weights of ``n`` things in a random order (rank ** -exponent)."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    rng.shuffle(weights)
    return weights / weights.sum()


def generate_clicks(spec: GeneratorSpec) -> pd.DataFrame:
    """Return a click log with columns user_id, item_id, category_id, timestamp."""
    rng = np.random.default_rng(spec.seed)

    # Categories are dealt to interests round-robin, items to categories at random
    # (every category gets at least one item).
    category_interest = np.arange(spec.n_categories) % spec.n_interests
    item_category = np.concatenate(
        [
            np.arange(spec.n_categories),
            rng.integers(0, spec.n_categories, spec.n_items - spec.n_categories),
        ]
    )
    rng.shuffle(item_category)
    item_weight = _zipf_weights(spec.n_items, spec.popularity_exponent, rng)

    interest_items = []
    for interest in range(spec.n_interests):
        members = np.flatnonzero(category_interest[item_category] == interest)
        weights = item_weight[members]
        interest_items.append((members, weights / weights.sum()))

    # Sequence lengths: min_clicks plus a geometric excess with the requested mean.
    excess_mean = spec.mean_clicks - spec.min_clicks
    if excess_mean > 0:
        excess = rng.geometric(1.0 / (excess_mean + 1.0), spec.n_users) - 1
    else:
        excess = np.zeros(spec.n_users, dtype=np.int64)
    lengths = np.minimum(spec.min_clicks + excess, spec.max_clicks)

    rows = []
    for user in range(spec.n_users):
        n = int(lengths[user])
        interests = rng.choice(spec.n_interests, spec.interests_per_user, replace=False)
        mixture = rng.dirichlet(np.ones(spec.interests_per_user))
        chosen = interests[rng.choice(spec.interests_per_user, n, p=mixture)]
        items = np.empty(n, dtype=np.int64)
        for interest in np.unique(chosen):
            slots = np.flatnonzero(chosen == interest)
            members, weights = interest_items[interest]
            items[slots] = rng.choice(members, slots.size, p=weights)
        start = spec.start_time + rng.integers(0, 30 * 86_400)
        times = start + np.cumsum(rng.exponential(_MEAN_GAP_SECONDS, n)).astype(np.int64)
        rows.append((np.full(n, user), items, times))

    users = np.concatenate([r[0] for r in rows])
    items = np.concatenate([r[1] for r in rows])
    times = np.concatenate([r[2] for r in rows])
    return pd.DataFrame(
        {
            "user_id": [f"U{u}" for u in users],
            "item_id": [f"I{i}" for i in items],
            "category_id": [f"C{c}" for c in item_category[items]],
            "timestamp": times,
        }
    )
