"""The render benchmark: our renderer against the standard FFmpeg recipe and gifski, side by side.

Run it as ``python -m bench`` (``make bench``); ``--quick`` is a smoke run. Every timed candidate
runs in a child process pinned to one core, on the same frames, and the results land in
``bench/results.md``.
"""
