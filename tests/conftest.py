"""Shared test helpers."""

import random

import numpy as np
import pytest
import torch


@pytest.fixture
def assert_global_rngs_untouched():
    """``check(fit)``: calling ``fit()`` leaves torch's, numpy's and random's global RNGs as
    they were (the next draws are the ones that would have come without the call)."""

    def check(fit):
        def seed_all():
            torch.manual_seed(123)
            np.random.seed(123)
            random.seed(123)

        seed_all()
        expected = (torch.rand(3), np.random.rand(3), random.random())
        seed_all()
        fit()
        torch.testing.assert_close(torch.rand(3), expected[0])
        np.testing.assert_array_equal(np.random.rand(3), expected[1])
        assert random.random() == expected[2]

    return check
