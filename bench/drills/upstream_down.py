"""Drill: the upstream is down for 30 s (emulator killed, or `--mode refuse`)."""

from bench.drills import upstream

if __name__ == "__main__":
    upstream.main(None, __doc__)
