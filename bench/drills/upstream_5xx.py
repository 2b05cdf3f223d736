"""Drill: bursts of 5xx answers from the upstream for 30 s."""

from bench.drills import upstream

if __name__ == "__main__":
    upstream.main("5xx", __doc__)
