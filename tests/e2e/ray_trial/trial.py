"""A torch-free trial for the Ray e2e tests: records where it ran and which GPUs it saw, reports
two intermediate results and a final one. RAY_TRIAL_SLEEP seconds between reports (default 1)."""

import json
import os
import socket
import time

import nascli

params = nascli.get_next_parameter() or {}
score = sum((p["_idx"] if isinstance(p["_idx"], int) else sum(p["_idx"])) for p in params.values())
sleep = float(os.environ.get("RAY_TRIAL_SLEEP", "1"))
start = time.time()
print(json.dumps({"host": socket.gethostname(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "pid": os.getpid(), "cwd": os.getcwd()}), flush=True)
for step in range(2):
    time.sleep(sleep)
    nascli.report_intermediate_result(score * 0.1 * (step + 1))
nascli.report_final_result(score * 0.3)
with open(os.path.join(os.environ["NASCLI_OUTPUT_DIR"], "span.json"), "w") as f:
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    json.dump({"start": start, "end": time.time(), "cuda": cuda}, f)
