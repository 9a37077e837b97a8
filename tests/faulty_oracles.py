"""Oracles for the fault tests, steered by $MATCHOPT_TEST_ORACLE so a rerun can see a fixed one."""

import os
import time

import numpy as np


def oracle(x):
    mode = os.environ.get("MATCHOPT_TEST_ORACLE", "ok")
    if mode == "crash" or (mode == "crash_on_rank1" and os.environ.get("LOCAL_RANK") == "1"):
        raise RuntimeError(f"simulator crashed on rank {os.environ.get('LOCAL_RANK', '0')}")
    if mode == "hang":
        with open(os.environ["MATCHOPT_TEST_PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
    return -((np.asarray(x) - 0.7) ** 2).sum(1)
