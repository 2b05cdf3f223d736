"""Stand-alone emulator of the Avaya Call Reporting (Xima Chronicall) realtime metric API.

See /work/shared/spec/acr-realtime-api.md. Run it with ``python -m acr_emulator``; tests build
it in-process with :func:`create_app`.
"""

from acr_emulator.config import EmulatorConfig
from acr_emulator.server import create_app

__all__ = ["EmulatorConfig", "create_app"]
