"""hostd's tests; they mirror the packages (a real-systemd tier is a systemd/ subfolder)."""

from pathlib import Path

# The checkout's top: tests find packaging/ and the sources from here, whatever their depth.
REPO = Path(__file__).resolve().parent.parent
