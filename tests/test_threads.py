"""The OpenMP wait setting applied at import (see skdeepcluster._threads)."""

import os
import subprocess
import sys

from skdeepcluster._threads import OPENMP_SPINCOUNT, configure_openmp_wait


def test_sets_a_short_spin_when_the_user_chose_nothing():
    env = {}
    assert configure_openmp_wait(env) == str(OPENMP_SPINCOUNT)
    assert env == {"GOMP_SPINCOUNT": "3000"}


def test_never_overrides_the_user():
    env = {"GOMP_SPINCOUNT": "200000"}
    assert configure_openmp_wait(env) == "200000"
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_openmp_wait(env) is None
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def _probe(code, **extra_env):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(extra_env)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def test_import_before_torch_takes_effect_and_after_torch_is_reported():
    first = _probe("import os, skdeepcluster as s; "
                   "print(os.environ['GOMP_SPINCOUNT'], s._threads.openmp_wait_configured())")
    assert first == ["3000", "True"]
    late = _probe("import torch, skdeepcluster as s; "
                  "print(s._threads.openmp_wait_configured())")
    assert late == ["False"]
    user = _probe("import os, skdeepcluster; print(os.environ.get('GOMP_SPINCOUNT'))",
                  OMP_WAIT_POLICY="PASSIVE")
    assert user == ["None"]
