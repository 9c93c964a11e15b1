"""A torch-free trial for experiment tests: its score is a pure function of the architecture.

Behaviour switches (environment, so one config can mix them):
  QUICK_TRIAL_SLEEP=S        sleep S seconds before reporting (default 0); odd sequence ids
                             sleep 3 x S
  QUICK_TRIAL_SLEEP_FROM=N   only trials with sequence ids >= N sleep
  QUICK_TRIAL_CRASH_SEQ=a,b  trials with these sequence ids raise after one intermediate result
  QUICK_TRIAL_GARBAGE=1      print garbage to stdout/stderr and append a garbage line to the
                             trial's metrics file (the manager must skip and count it)
  QUICK_TRIAL_CHILD=1        start a grandchild that sleeps (to test group kills); its pid goes
                             to child.pid in the trial's output directory
"""

import json
import os
import subprocess
import sys
import time

import nascli

params = nascli.get_next_parameter() or {}
seq = nascli.get_sequence_id()
score = sum((p["_idx"] if isinstance(p["_idx"], int) else sum(p["_idx"])) for p in params.values())

out_dir = os.environ.get("NASCLI_OUTPUT_DIR", ".")
with open(os.path.join(out_dir, "env.json"), "w") as f:
    keys = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "NASCLI_TRIAL_ID", "NASCLI_EXP_ID")
    json.dump({k: os.environ.get(k) for k in keys}, f)
if os.environ.get("QUICK_TRIAL_CHILD"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(os.path.join(out_dir, "child.pid"), "w") as f:
        f.write(str(child.pid))
if os.environ.get("QUICK_TRIAL_GARBAGE"):
    print("\x00\xff garbage {not json", flush=True)
    sys.stderr.write("more garbage \x1b[31m")
    from nascli.channel import METRICS_FILE

    with open(os.path.join(os.environ["NASCLI_TRIAL_DIR"], METRICS_FILE), "a") as f:
        f.write('{"type": "FINAL", "value": NaN}\nnot json at all\n')
nascli.report_intermediate_result(score / 2)
if str(seq) in os.environ.get("QUICK_TRIAL_CRASH_SEQ", "").split(","):
    raise RuntimeError(f"trial {seq} crashes on purpose")
if seq >= int(os.environ.get("QUICK_TRIAL_SLEEP_FROM", "0")):
    time.sleep(float(os.environ.get("QUICK_TRIAL_SLEEP", "0")) * (3 if seq % 2 else 1))
nascli.report_final_result({"default": float(score), "seq": seq})
