"""A torch-free trial that reports a learning curve, for early-stopping tests.

Its curve is a pure function of the architecture: ``quality * (1 - 0.5 ** step)`` for steps
1..CURVE_TRIAL_STEPS (default 6), where ``quality`` grows with the chosen candidate indices; then
the last value as its final result. Switches (environment):
  CURVE_TRIAL_STEP_SLEEP=S   seconds between two results (default 0.3)
  CURVE_TRIAL_QUALITY=Q      every trial's quality is Q (instead of the architecture's)
  CURVE_TRIAL_BAD_SEQ=a,b    trials with these sequence ids report a flat 0.01 instead
  CURVE_TRIAL_STEPS=N        results per trial
On SIGTERM it writes the status the store holds for it at that moment to ``sigterm_status``
in its directory (the manager must have recorded EARLY_STOPPED before signalling), then exits
143.
"""

import os
import signal
import sqlite3
import sys
import time

import nascli

params = nascli.get_next_parameter() or {}
seq = nascli.get_sequence_id()
trial_dir = os.environ["NASCLI_TRIAL_DIR"]


def on_sigterm(*_):
    # test-only knowledge of the layout: <experiment>/trials/<id>/
    db = os.path.join(trial_dir, "..", "..", "experiment.sqlite")
    conn = sqlite3.connect(db, timeout=30)
    row = conn.execute(
        "SELECT status FROM trials WHERE id = ?", (os.environ["NASCLI_TRIAL_ID"],)
    ).fetchone()
    with open(os.path.join(trial_dir, "sigterm_status"), "w") as f:
        f.write(row[0] if row else "?")
    sys.exit(143)


signal.signal(signal.SIGTERM, on_sigterm)
indices = [p["_idx"] if isinstance(p["_idx"], int) else sum(p["_idx"]) for p in params.values()]
quality = float(os.environ.get("CURVE_TRIAL_QUALITY") or 0.3 + 0.1 * sum(indices))
if str(seq) in os.environ.get("CURVE_TRIAL_BAD_SEQ", "").split(","):
    quality = None
steps = int(os.environ.get("CURVE_TRIAL_STEPS", "6"))
pause = float(os.environ.get("CURVE_TRIAL_STEP_SLEEP", "0.3"))
value = 0.0
for step in range(1, steps + 1):
    time.sleep(pause)
    value = 0.01 if quality is None else quality * (1 - 0.5**step)
    nascli.report_intermediate_result(value)
nascli.report_final_result(value)
