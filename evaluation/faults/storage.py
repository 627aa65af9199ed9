"""The record's disk: full while recording (a file-size limit), an unwritable path."""

from __future__ import annotations

import os
import resource

from grasprt.evaluation.faults import Fault, register
from grasprt.evaluation.faults.trial import Trial

# Room the limit leaves for the run's --json summary, written from offset 0 at the end.
MIN_LIMIT = 256 * 1024


def _disk_full(trial: Trial) -> None:
    # RLIMIT_FSIZE set on the running process from outside (prlimit(2)): its next write
    # past the record's present size fails with EFBIG (Python ignores SIGXFSZ), as a
    # full disk fails it with ENOSPC.
    assert trial.proc is not None
    size = max(trial.record.stat().st_size, MIN_LIMIT)
    trial.mark_injected()
    resource.prlimit(trial.proc.pid, resource.RLIMIT_FSIZE, (size, size))
    trial.notes["file_size_limit"] = size


def _unwritable(trial: Trial) -> None:
    trial.mark_injected()
    os.chmod(trial.record.parent, 0o555)
    trial.notes["record_dir_mode"] = "0555"


register(
    Fault(
        "disk_full",
        "storage",
        "the record cannot grow (RLIMIT_FSIZE): the loop never waits on the disk, the "
        "run goes on, the failure is reported, the record reads back to the cut",
        "ride",
        exits=(143,),
        inject=_disk_full,
        args=("--record-frames", "1"),
        record_fails=True,
        observe_s=3.0,
    )
)
register(
    Fault(
        "unwritable_record",
        "storage",
        "the record's folder is read-only: refused up front, exit 2, nothing moves",
        "refuse",
        exits=(2,),
        inject=_unwritable,
        unprivileged=True,
        before_start=True,
        observe_s=60.0,
    )
)
