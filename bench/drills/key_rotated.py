"""Drill: the upstream auth key is rotated (401) and the key file updated 30 s later."""

from bench.drills import upstream

if __name__ == "__main__":
    upstream.main("key", __doc__)
