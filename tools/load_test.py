"""Load test of a running HTTP service (deploy/serving/server.py): requests/s and latency percentiles.

    python tools/load_test.py --url http://127.0.0.1:8866 --image cat.jpg [--clients 1,8,64]
        [--duration 10] [--warmup 2]

For each client count, that many threads each keep one HTTP/1.1 connection and POST the image
(multipart field ``image``) back to back for ``--duration`` seconds after ``--warmup`` seconds;
prints requests/s, p50 and p99 latency and the status codes seen. The clients run on the same
machine as the server unless the URL points elsewhere: on a small machine they share its cores.
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
import urllib.parse
import uuid
from collections import Counter


def multipart_body(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q / 100 * (len(sorted_values) - 1)))))
    return sorted_values[i]


def run_level(url: str, body: bytes, ctype: str, clients: int, duration: float, warmup: float) -> dict:
    """``clients`` threads posting for ``warmup + duration`` s; only the last ``duration`` s are counted."""
    parts = urllib.parse.urlsplit(url)
    start = time.perf_counter()
    t_measure, t_end = start + warmup, start + warmup + duration
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
        mine, codes = [], Counter()
        while True:
            tic = time.perf_counter()
            if tic >= t_end:
                break
            try:
                conn.request("POST", "/predict", body=body, headers={"Content-Type": ctype})
                response = conn.getresponse()
                response.read()
                code = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
                code = 0  # connection error
            toc = time.perf_counter()
            if tic >= t_measure:
                mine.append(toc - tic)
                codes[code] += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            statuses.update(codes)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {"clients": clients, "requests": len(latencies), "rps": len(latencies) / duration,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "statuses": dict(sorted(statuses.items()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8866", help="the service's base URL")
    p.add_argument("--image", required=True, help="the image file every request sends")
    p.add_argument("--clients", default="1,8,64", help="comma-separated client counts")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per client count")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement")
    args = p.parse_args(argv)
    try:
        levels = [int(x) for x in args.clients.split(",") if x.strip()]
    except ValueError:
        p.error(f"--clients: expected comma-separated integers, got {args.clients!r}")
    if not levels or min(levels) < 1 or args.duration <= 0 or args.warmup < 0:
        p.error("--clients must be positive integers, --duration > 0 and --warmup >= 0")
    try:
        with open(args.image, "rb") as f:
            data = f.read()
    except OSError as e:
        p.error(f"--image {args.image}: {e.strerror}")
    body, ctype = multipart_body(data, args.image.rsplit("/", 1)[-1])
    print(f"{args.url}/predict, {len(data)} bytes per request, {args.duration:g} s per level after {args.warmup:g} s")
    print("| clients | requests | req/s | p50 ms | p99 ms | statuses |")
    print("|---|---|---|---|---|---|")
    for clients in levels:
        r = run_level(args.url, body, ctype, clients, args.duration, args.warmup)
        print(f"| {r['clients']} | {r['requests']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['statuses']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
