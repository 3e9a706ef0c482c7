"""A stage that only records when it starts and ends (the local executor's tests):
python -m tests.helpers.step --name a --log <file> --seconds 0.5 [--code 3]"""

from __future__ import annotations

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--seconds", type=float, default=0.0)
parser.add_argument("--code", type=int, default=0)
args = parser.parse_args()
with open(args.log, "a") as log:
    log.write(f"start {args.name} {time.time()}\n")
time.sleep(args.seconds)
with open(args.log, "a") as log:
    log.write(f"end {args.name} {time.time()}\n")
raise SystemExit(args.code)
