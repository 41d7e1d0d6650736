"""Figs. 5b and 6 set one test user's negative and positive sample side by side: the pair must
share the user and the history, wherever the rows lie."""

from __future__ import annotations

import numpy as np

from sarn.analysis import candidate_pair, figure_choice
from sarn.params import validate


def _split(rows: list[tuple[int, int, list[int]]]) -> dict[str, np.ndarray]:
    """Test arrays from (user, label, history) rows, histories padded to one width."""
    width = max(len(history) for _, _, history in rows)
    hist = np.zeros((len(rows), width), dtype=np.int32)
    for k, (_, _, history) in enumerate(rows):
        hist[k, : len(history)] = history
    return {
        "user": np.array([user for user, _, _ in rows], dtype=np.int32),
        "label": np.array([label for _, label, _ in rows], dtype=np.int8),
        "length": np.array([len(history) for _, _, history in rows], dtype=np.int32),
        "hist_item": hist,
        "hist_category": hist % 7,
    }


def test_a_click_only_logs_adjacent_pair_is_found() -> None:
    test = _split([(0, 0, [1, 2]), (0, 1, [1, 2]), (1, 0, [3, 4, 5]), (1, 1, [3, 4, 5])])
    assert candidate_pair(test, None, 3, 30) == (2, 3)
    assert candidate_pair(test, 0, 3, 30) == (0, 1)  # a named user needs no minimum history


def test_the_pair_is_matched_by_user_and_history_not_by_position() -> None:
    # A labelled log: the row after user 0's negative is user 1's positive, and user 0's own
    # positive with the same history comes later, after a positive with a shorter history.
    test = _split([
        (0, 0, [1, 2, 3]), (1, 1, [1, 2, 3]), (0, 1, [1, 2]), (0, 1, [1, 2, 3]),
    ])
    assert candidate_pair(test, None, 3, 30) == (0, 3)


def test_no_pair_when_no_positive_shares_the_history() -> None:
    test = _split([(0, 0, [1, 2, 3]), (0, 1, [1, 2, 4]), (1, 1, [1, 2, 3])])
    assert candidate_pair(test, None, 1, 30) is None
    assert candidate_pair(test, None, 4, 30) is None  # nobody has four clicks
    assert candidate_pair(_split([(0, 0, [1, 2, 3]), (0, 1, [1, 2, 3])]), None, 3, 2) is None  # cut to 2


def test_each_figure_key_the_data_cannot_serve_is_named(params_dict: dict) -> None:
    test = _split([(0, 0, [1, 2, 3]), (1, 1, [1, 2, 3]), (1, 0, [1, 2, 3])])
    meta = {"user_ids": np.array(["A", "B", "C"]), "category_ids": np.array(["C0", "C1"])}
    params_dict["figures"].update(user="A", categories=["C0", "C9"])
    problems, rows = figure_choice(validate(params_dict), meta, test)
    assert problems == ["figures.categories: 'C9' is not a category of the training data",
                        ("figures.user: 'A' has no negative and positive test sample sharing one history "
                        "(Figs. 5b and 6 compare the two)")] and rows is None
    params_dict["figures"].update(user="B", categories=["C0"])
    assert figure_choice(validate(params_dict), meta, test) == ([], (2, 1))
    for user, said in (("Z", "is not a user of the processed data"), ("C", "is not a test user")):
        params_dict["figures"]["user"] = user
        assert figure_choice(validate(params_dict), meta, test) == ([f"figures.user: {user!r} {said}"], None)
    params_dict["figures"].update(user=None, min_history=4)
    assert figure_choice(validate(params_dict), meta, test)[0] == [
        ("figures.min_history: no test user with 4 clicks of history has no negative and positive test sample "
        "sharing one history (Figs. 5b and 6 compare the two)")]
