"""Drill: the upstream answers 5 s late for 30 s (latency_ms 5000, websocket dropped)."""

from bench.drills import upstream

if __name__ == "__main__":
    upstream.main("slow", __doc__)
