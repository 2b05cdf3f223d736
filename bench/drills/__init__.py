"""Fault drills: each starts the real system on loopback, injects one fault, reads what a user
sees and measures the recovery (see README.md)."""
