"""Outbox benchmark: notifications delivered per second to a local SMS gateway (and webhook receiver).

    python bench/outbox_bench.py [--messages 2000] [--workers 1] [--channel sms|webhook]
                                 [--gateway-ms 0] [--db-url URL]

Queues N notifications (arrival messages to one unit), starts the local HTTP
gateway the tests use (tests/gateways.py: a threaded http.server checking the
Aliyun signature or the webhook HMAC), and lets W dispatchers (threads of this
process, each its own worker with its own leases) deliver them all: claim →
send → record → heartbeat. Prints messages/s, the gateway's requests, keys seen
twice (0 without crashes) and messages left undelivered (must be 0).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.engine_bench import make_runtime  # noqa: E402


def queue(rt, n: int) -> None:
    from engine.store.models import Outbox
    from engine.store.org_models import Unit

    with rt.db.write() as s:
        s.execute(sa.insert(Unit), [{"code": "BENCH", "name": "基准单位", "kind": "city_department", "level": "city",
                                     "phone": "13900001111", "webhook_url": BENCH["url"], "webhook_secret": "bench",
                                     "notify_channel": BENCH["channel"]}])
        now = datetime.now(timezone.utc)
        for base in range(0, n, 5000):
            s.execute(sa.insert(Outbox), [
                {"channel": "auto", "recipient_kind": "unit", "recipient": "BENCH", "message": f"2025-{i:06d}",
                 "kind": "arrival", "params": {"case_no": f"2025-{i:06d}", "category": "城市管理", "unit": "基准单位"},
                 "status": "pending", "created_at": now, "idempotency_key": f"bench-{i}"}
                for i in range(base, min(n, base + 5000))])


BENCH: dict = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--channel", choices=["sms", "webhook"], default="sms")
    parser.add_argument("--gateway-ms", type=float, default=0.0, help="the gateway's answer delay")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--db-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    from channels import build_channels
    from engine.services.outbox import Dispatcher, Settings
    from engine.store.models import Outbox
    from tests.gateways import Gateway, channel_config

    rt, db_url, cleanup = make_runtime(args.db_url)
    with Gateway(default="slow" if args.gateway_ms else "ok", slow_seconds=args.gateway_ms / 1000) as gateway:
        BENCH.update(url=f"{gateway.url}/hooks/bench", channel=args.channel)
        queue(rt, args.messages)
        config = channel_config(gateway, OUTBOX_BATCH=str(args.batch), OUTBOX_QUIET_HOURS="off")
        workers = [Dispatcher(rt, build_channels(config), Settings.from_config(config), worker=f"bench-{i}")
                   for i in range(args.workers)]
        threads = [threading.Thread(target=w.run_until_idle) for w in workers]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        requests = gateway.sms() if args.channel == "sms" else gateway.hooks()
        keys = Counter(r["form"]["OutId"] if args.channel == "sms" else r["headers"]["Idempotency-Key"]
                       for r in requests)
    with rt.db.read() as s:
        left = s.scalar(sa.select(sa.func.count()).select_from(Outbox).where(Outbox.status != "sent"))
    print(f"database {rt.db.engine.dialect.name}, channel {args.channel}, {args.workers} dispatcher(s), "
          f"batch {args.batch}, gateway delay {args.gateway_ms:g} ms")
    print(f"delivered {args.messages - left} of {args.messages} in {elapsed:.2f} s: "
          f"{(args.messages - left) / elapsed:.0f} notifications/s")
    outcomes = Counter()
    for w in workers:
        outcomes.update(w.outcomes)
    print(f"gateway requests {len(requests)}, keys seen twice {sum(1 for c in keys.values() if c > 1)}, "
          f"undelivered {left}; attempts {dict(outcomes)}")
    if cleanup:
        cleanup()


if __name__ == "__main__":
    main()
