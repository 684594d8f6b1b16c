"""Direct vs LiteLLM proxy vs Tollgate, side by side, in one command:

    .venv/bin/python bench/side_by_side.py

All three talk to the same loopback upstream (standins/fake_openai), in
interleaved rounds (direct, LiteLLM, Tollgate, direct, ...), so a machine that
gets slower or faster mid-run affects all three alike. Prints the medians of
`--rounds` rounds (min-max beside them) and the load average:

  c=1 p50 latency; c=50 throughput; CPU per request of the gateway's processes
  (+ PostgreSQL's for Tollgate); p99 at a fixed 100 req/s (open loop); and the
  in-flight test: 1,000 requests at once with the upstream answering in 2 s.

- Tollgate: production settings, moderation ON, exact accounting (API key, Redis
  rate limits, PostgreSQL reservation and settle), POST /api/v1/summaries.
- LiteLLM proxy: installed by this script into its own throwaway venv under
  var/ (never a project dependency), 2 workers (gunicorn), master key, no database
  (LITELLM_LOCAL_MODEL_COST_MAP=True: offline price map), POST /chat/completions.
- direct: the upstream itself, POST /v1/chat/completions.

The direct and LiteLLM requests carry exactly the chat body Tollgate sends
upstream for its summary (captured from the fake upstream after a warm-up).
Run by hand, never a test; it needs PostgreSQL and Redis (the defaults below).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import meter_overhead as mo  # the shared client, servers and CPU accounting

ROOT = mo.ROOT
LITELLM_VENV = ROOT / "var" / "litellm-venv"
LITELLM_SPEC = "litellm[proxy]"
LITELLM_KEY = "sk-" + "litellm-bench-master"  # LiteLLM wants an sk- master key


def litellm_binary() -> Path:
    """The proxy in its own venv under var/ (created on first use)."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if binary.exists():
        return binary
    print(f"installing {LITELLM_SPEC} into {LITELLM_VENV} (once) ...", flush=True)
    uv = ROOT / ".venv" / "bin" / "uv"
    subprocess.run([str(uv), "venv", "-q", str(LITELLM_VENV), "--python", "3.12"], check=True)
    python = str(LITELLM_VENV / "bin" / "python")
    subprocess.run([str(uv), "pip", "install", "-q", "--python", python, LITELLM_SPEC], check=True)
    return binary


def start_litellm(port: int, upstream_port: int, model: str, workers: int) -> subprocess.Popen:
    config = mo.LOG_DIR / "litellm.yaml"
    mo.LOG_DIR.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: openai/{model}\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        f"      api_key: {mo.UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    args = [str(litellm_binary()), "--config", str(config), "--host", "127.0.0.1"]
    # gunicorn's supervisor: uvicorn's own kills workers whose (slow) import of
    # litellm outlasts its 5 s health check on a busy box.
    args += ["--port", str(port), "--num_workers", str(workers), "--run_gunicorn"]
    return mo.start(args, env, "litellm")


def wait_ready(url: str, seconds: float, headers: dict | None = None) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=3):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.5)


# --- One round of every measurement, per target ---------------------------------------


async def measure_round(args, target: mo.Target, roots: dict[str, int], database: str) -> dict:
    figures: dict[str, float] = {}
    if target.name == "Tollgate":
        mo.vacuum_hot_tables(args.database_url)  # see meter_overhead.vacuum_hot_tables
    one = await mo.closed_loop(target, 1, args.requests_c1)
    figures["c1_p50"] = one.pct(0.5)
    figures["c1_p99"] = one.pct(0.99)
    before = mo.cpu_seconds(roots, database)
    fifty = await mo.closed_loop(target, 50, args.requests_c50)
    after = mo.cpu_seconds(roots, database)
    figures["c50_rps"] = fifty.rps
    done = max(len(fifty.latencies), 1)
    figures["cpu_ms"] = 1000 * (after["gateway"] - before["gateway"]) / done
    figures["pg_ms"] = 1000 * (after["postgres"] - before["postgres"]) / done
    if target.name == "Tollgate":
        mo.vacuum_hot_tables(args.database_url)
    rate = await mo.open_loop(target, args.rate, args.seconds)
    figures["rate_p99"] = rate.pct(0.99)
    figures["errors"] = sum(one.errors.values()) + sum(fifty.errors.values())
    figures["errors"] += sum(rate.errors.values())
    return figures


async def inflight(target: mo.Target, upstream: str, count: int, latency_ms: int) -> str:
    mo.control(upstream, "/_control/reset", {})
    mo.control(upstream, "/_control/config", {"latency_ms": latency_ms})
    try:
        run = await mo.burst(target, count)
        stats = mo.control(upstream, "/_control/stats")
    finally:
        mo.control(upstream, "/_control/config", {"latency_ms": 0})
    errors = sum(run.errors.values())
    detail = f" errors {run.errors}" if errors else ""
    return (
        f"{len(run.latencies)}/{count} ok, upstream peak in flight "
        f"{stats['peak_in_flight']}, all done in {run.elapsed:.2f} s{detail}"
    )


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


def _spread(values: list[float], digits: int = 1) -> str:
    median = statistics.median(values)
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(results: dict[str, list[dict]], inflight_lines: dict[str, str], rounds: int) -> None:
    print(f"\nmedians of {rounds} rounds (min-max):\n")
    header = (
        "| target | c=1 p50 ms | c=50 req/s | CPU ms per request (+ PostgreSQL) "
        "| p99 ms at 100 req/s | errors |"
    )
    print(header)
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        cpu = _spread([r["cpu_ms"] for r in rows])
        if name.startswith("Tollgate"):
            cpu += f" (+ {_median([r['pg_ms'] for r in rows])})"
        if name == "direct":
            cpu = f"upstream only: {cpu}"
        print(
            f"| {name} | {_spread([r['c1_p50'] for r in rows])} "
            f"| {_spread([r['c50_rps'] for r in rows])} | {cpu} "
            f"| {_spread([r['rate_p99'] for r in rows])} "
            f"| {int(sum(r['errors'] for r in rows))} |"
        )
    direct = results["direct"]
    for name, rows in results.items():
        if name == "direct":
            continue
        ratios = [r["c50_rps"] / d["c50_rps"] for r, d in zip(rows, direct, strict=True)]
        overhead = [r["c1_p50"] - d["c1_p50"] for r, d in zip(rows, direct, strict=True)]
        print(
            f"\n{name}: c=50 throughput / direct's in the same round: {_spread(ratios, 3)}; "
            f"c=1 p50 overhead vs direct: {_spread(overhead)} ms"
        )
    lite_rows = results.get("LiteLLM proxy")
    for name, tg in results.items():
        if lite_rows is None or not name.startswith("Tollgate"):
            continue
        pairs = list(zip(tg, lite_rows, strict=True))
        ratios = [t["c50_rps"] / lite["c50_rps"] for t, lite in pairs]
        cpu = [lite["cpu_ms"] / t["cpu_ms"] for t, lite in pairs]
        print(
            f"{name} / LiteLLM, pair by pair: c=50 throughput {_spread(ratios, 2)}; "
            f"LiteLLM's CPU per request / Tollgate's {_spread(cpu, 2)}"
        )
    print("\nin flight (1 run each):")
    for name, line in inflight_lines.items():
        print(f"  {name}: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/tollgate_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--ports", help="take the servers' ports from this range, e.g. 9300-9319")
    parser.add_argument("--workers", type=int, default=2, help="Tollgate's uvicorn workers")
    parser.add_argument("--litellm-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests-c1", type=int, default=200)
    parser.add_argument("--requests-c50", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--inflight-latency-ms", type=int, default=2000)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--no-fresh-texts",
        action="store_true",
        help="skip the Tollgate row whose every request carries a new text (no cached "
        "moderation verdict, no cached token count)",
    )
    args = parser.parse_args()
    mo.use_port_range(args.ports)
    # What meter_overhead's helpers read from their own arguments.
    args.workspaces, args.no_moderation = 1, False

    (ROOT / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)
    upstream_port, web_port, litellm_port = mo.free_port(), mo.free_port(), mo.free_port()
    env = mo.bench_env(args, upstream_port)
    upstream = f"http://127.0.0.1:{upstream_port}"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            mo.start(
                [mo.PY, "-m", "standins.fake_openai", "--port", str(upstream_port)], env, "upstream"
            )
        )
        if not args.no_litellm:
            procs.append(
                start_litellm(litellm_port, upstream_port, "gpt-4o-mini", args.litellm_workers)
            )
        secrets = mo.prepare_database(args, env)
        uvicorn = [mo.PY, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        uvicorn += ["--port", str(web_port), "--workers", str(args.workers), "--no-access-log"]
        uvicorn += ["--log-level", "warning", "--backlog", "4096", "--lifespan", "off"]
        web = mo.start(uvicorn, env, "web")
        procs.append(web)
        mo.wait_http(f"http://127.0.0.1:{web_port}/healthz", 60)
        mo.wait_http(f"{upstream}/_control/stats")
        summary = json.dumps({"text": mo.TEXT, "length": "short", "format": "paragraph"})
        auth = {"Authorization": f"Bearer {secrets[0]}", "Content-Type": "application/json"}
        tollgate = mo.Target(
            "Tollgate",
            "127.0.0.1",
            web_port,
            [mo.build_request("127.0.0.1", web_port, "/api/v1/summaries", summary.encode(), auth)],
        )
        status, body = mo.arun(mo._probe(tollgate))
        if status not in (200, 201):
            raise SystemExit(f"Tollgate answered {status}: {body[:300]!r}")
        chat_body = json.dumps(mo.control(upstream, "/_control/last_request")["body"]).encode()
        targets = {
            "direct": (
                mo.Target(
                    "direct",
                    "127.0.0.1",
                    upstream_port,
                    [
                        mo.build_request(
                            "127.0.0.1",
                            upstream_port,
                            "/v1/chat/completions",
                            chat_body,
                            {
                                "Authorization": f"Bearer {mo.UPSTREAM_KEY}",
                                "Content-Type": "application/json",
                            },
                        )
                    ],
                ),
                procs[0].pid,
            )
        }
        if not args.no_litellm:
            wait_ready(
                f"http://127.0.0.1:{litellm_port}/health/liveliness", 240, {"Authorization": ""}
            )
            litellm = mo.Target(
                "LiteLLM proxy",
                "127.0.0.1",
                litellm_port,
                [
                    mo.build_request(
                        "127.0.0.1",
                        litellm_port,
                        "/chat/completions",
                        chat_body,
                        {
                            "Authorization": f"Bearer {LITELLM_KEY}",
                            "Content-Type": "application/json",
                        },
                    )
                ],
            )
            status, body = mo.arun(mo._probe(litellm))
            if status != 200:
                raise SystemExit(f"LiteLLM answered {status}: {body[:300]!r}")
            targets["LiteLLM proxy"] = (litellm, procs[1].pid)
        targets["Tollgate (moderation on)"] = (tollgate, web.pid)
        if not args.no_fresh_texts:
            # Every request a text never seen: each pays its moderation call
            # (micro-batched with its neighbours) and its own token count.
            wanted = args.rounds * (args.requests_c1 + args.requests_c50)
            wanted += int(args.rounds * args.rate * args.seconds) + args.inflight + 400
            texts = (f"{mo.TEXT} (ticket {n})" for n in range(wanted))
            fresh = [
                mo.build_request(
                    "127.0.0.1",
                    web_port,
                    "/api/v1/summaries",
                    json.dumps({"text": t, "length": "short", "format": "paragraph"}).encode(),
                    auth,
                )
                for t in texts
            ]
            targets["Tollgate (moderation on, every text new)"] = (
                mo.Target("Tollgate", "127.0.0.1", web_port, fresh),
                web.pid,
            )

        database = args.database_url.rsplit("/", 1)[1]
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"{os.cpu_count()} CPUs; load average before: {load}; Tollgate {args.workers} "
            f"uvicorn workers (production settings, moderation on); LiteLLM "
            f"{args.litellm_workers} workers; one fake upstream for all"
        )
        for target, _pid in targets.values():  # warm every path
            mo.arun(mo.closed_loop(target, 20, 200))
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for n in range(args.rounds):
            for name, (target, pid) in targets.items():
                roots = {"gateway": pid}
                results[name].append(mo.arun(measure_round(args, target, roots, database)))
            print(f"round {n + 1}/{args.rounds} done", flush=True)
        lines = {}
        for name, (target, _pid) in targets.items():
            lines[name] = mo.arun(
                inflight(target, upstream, args.inflight, args.inflight_latency_ms)
            )
        report(results, lines, args.rounds)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\nload average after: {load}; logs in {mo.LOG_DIR}")
    finally:
        for proc in reversed(procs):
            mo.stop(proc)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    main()
