"""`python -m standins.fake_openai --port N`: serve the fake upstream with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from standins.fake_openai.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible demo upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument(
        "--latency-ms", type=int, default=0, help="added to every chat completion (benchmarks)"
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    print(
        f"Fake OpenAI upstream on http://{args.host}:{args.port}/v1 "
        f"(latency {args.latency_ms} ms; any bearer key)",
        flush=True,
    )
    uvicorn.run(
        create_app(latency_ms=args.latency_ms),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
