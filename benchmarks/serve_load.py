"""Load on `harlab serve`: many phones streaming at once to one local server, each watched by a page.

Each client streams a synthetic 50 Hz walk (acc in g, gyro in rad/s) at real speed in batches of --batch-s seconds
over HTTP POST, on a kept-alive connection, and a watcher per stream reads the page's event stream (Server-Sent
Events). The clients' batches are spread evenly over a batch period, as phones started at different moments would
send them (--in-step: all at the same moments, the worst case, every window completing at once). The latency of a
window is from the moment the batch that completes it is sent to the moment its prediction reaches the watcher:
what a page sees. The server's resident memory is read at the start, after the first tenth of the run (warm), every
tenth after it and at the end: growth from warm to end is what a long session would accumulate.

Usage: python benchmarks/serve_load.py [--clients 20] [--seconds 60] [--batch-s 0.5] [--in-step] [--model M]

The server runs with OMP_NUM_THREADS=1 (one core for the model). Numbers are printed as JSON, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 50.0


@dataclass
class Client:
    """One phone: the batches it sent (last sample's time, when sent) and its window latencies."""

    name: str
    seed: int
    sent: list[tuple[float, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def walk(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Times and [n, 6] samples of a synthetic walk: gravity on y, a 2 Hz step rhythm, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    step = np.sin(2 * np.pi * 2 * t)[:, None]
    acc = np.array([0.1, 1.0, 0.2]) + 0.3 * step * np.array([1.0, 0.8, 0.5]) + 0.05 * rng.standard_normal((len(t), 3))
    gyro = 0.8 * step * np.array([0.5, 1.0, 0.3]) + 0.05 * rng.standard_normal((len(t), 3))
    return t, np.hstack([acc, gyro])


def stream(client: Client, port: int, seconds: float, batch_s: float, began: float) -> None:
    """Send the client's walk at real speed, batch after batch, from `began` (monotonic)."""
    times, samples = walk(seconds, client.seed)
    per_batch = int(batch_s * RATE)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    names = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    for first in range(0, len(times) - per_batch + 1, per_batch):
        part = slice(first, first + per_batch)
        time.sleep(max(0.0, began + times[part][-1] - time.monotonic()))
        body = json.dumps({"time": times[part].round(4).tolist(),
                           **{n: samples[part, i].round(4).tolist() for i, n in enumerate(names)}})
        client.sent.append((float(times[part][-1]), time.monotonic()))
        try:
            connection.request("POST", f"/api/push?stream={client.name}", body,
                               {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                client.errors.append(f"{answer.status}")
        except OSError as exc:
            client.errors.append(repr(exc))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def watch(client: Client, port: int, until: float) -> None:
    """Read the stream's page events until `until` (monotonic); each window's latency from its completing batch."""
    while not client.sent and time.monotonic() < until:
        time.sleep(0.05)
    time.sleep(0.2)  # the first batch has made the stream
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=max(1.0, until - time.monotonic() + 20))
    connection.request("GET", f"/api/live/events?stream={client.name}")
    events = connection.getresponse()
    while time.monotonic() < until:
        line = events.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        received = time.monotonic()
        event = json.loads(line[6:])
        if event["type"] != "window":
            continue
        last_sample = event["end"] - 1 / RATE
        sent = next((when for last, when in list(client.sent) if last >= last_sample - 1e-6), None)
        if sent is not None:
            client.latencies.append(received - sent)
    connection.close()


def rss(pid: int) -> int:
    """A process's resident memory in bytes (Linux)."""
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())[1]) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch-s", type=float, default=0.5)
    parser.add_argument("--model", default="pretrained:hapt-resnet1d")
    parser.add_argument("--in-step", action="store_true", help="every client sends at the same moments (the worst "
                        "case: all windows complete together)")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "harlab", "serve", args.model, "--port", "0", "--folder", ".",
                               "--max-streams", str(max(32, args.clients))], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert server.stdout is not None
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", server.stdout.readline())[1])
        memory, samples = {"start": rss(server.pid)}, []
        clients = [Client(f"phone-{i}", i) for i in range(args.clients)]
        began = time.monotonic() + 1.0
        until = began + args.seconds + 2.0
        spread = 0.0 if args.in_step else args.batch_s / args.clients
        phases = [began + i * spread for i in range(args.clients)]
        threads = [threading.Thread(target=stream, args=(c, port, args.seconds, args.batch_s, phase))
                   for c, phase in zip(clients, phases, strict=True)]
        threads += [threading.Thread(target=watch, args=(c, port, until)) for c in clients]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(args.seconds / 10)
            memory.setdefault("warm", rss(server.pid))
            samples.append(round(rss(server.pid) / 2**20, 1))
        memory["end"] = rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = np.array([x for c in clients for x in c.latencies]) * 1e3
    expected = args.clients * (math.floor((args.seconds * RATE - 128) / 64) + 1)
    print(json.dumps({
        "clients": args.clients, "seconds": args.seconds, "batch_s": args.batch_s, "in_step": args.in_step,
        "windows_expected": expected,
        "windows_seen": len(latencies), "errors": sum(len(c.errors) for c in clients),
        "latency_ms": {"p50": round(float(np.percentile(latencies, 50)), 1),
                       "p99": round(float(np.percentile(latencies, 99)), 1),
                       "max": round(float(latencies.max()), 1)} if len(latencies) else None,
        "server_rss_mb": {k: round(v / 2**20, 1) for k, v in memory.items()},
        "rss_growth_warm_to_end_mb": round((memory["end"] - memory["warm"]) / 2**20, 1),
        "server_rss_mb_every_tenth": samples,
    }, indent=2))


if __name__ == "__main__":
    main()
