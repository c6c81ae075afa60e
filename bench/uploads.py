"""Upload figures (issue 13): a 10 s 1080p H.264 phone-like clip trimmed to 3 s at 480 px, from
upload complete to GIF on one core (probe, hash, prepare, render, store), with the job's peak
RSS; and the probe's time and peak RSS for each hostile file.

Each measurement runs in a fresh child process pinned to one CPU, so ``ru_maxrss`` is its own
(FFmpeg children included, as RUSAGE_CHILDREN). Run: ``python -m bench.uploads``; with
``--probes`` only the hostile files' probes (seconds, not minutes).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.paths import CLIP
from tests.renderer import hostile_videos as hv


def phone_clip(folder: Path) -> Path:
    """10 s of 1920×1080 H.264 at 30 fps from the shared footage (looped), like a phone's."""
    path = folder / "phone-1080p.mp4"
    hv._ffmpeg(
        "-stream_loop", "2", "-i", f"file:{CLIP}", "-t", "10", "-an",
        "-vf", "scale=1920:1080,fps=30", "-c:v", "libx264", "-preset", "veryfast",
        "-pix_fmt", "yuv420p", f"file:{path}",
    )  # fmt: skip
    return path


def _child_upload(path: str, workdir: str) -> dict[str, float | str]:
    from loopmark.composition import build_services, setup_backends
    from loopmark.config import Settings
    from loopmark.dispatch.base import RenderJob
    from loopmark.service.uploads import new_upload_id

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    settings = Settings.from_env(
        {
            "LOOPMARK_DATA_DIR": workdir,
            "LOOPMARK_TEMPLATES_DIR": str(Path(__file__).resolve().parents[1] / "templates_video"),
            "LOOPMARK_RENDER_CONCURRENCY": "1",
            "LOOPMARK_JSON_LOGS": "off",
        }
    )
    setup_backends(settings)
    services = build_services(settings, with_dispatcher=False)
    services.templates.prepared(services.uploads.clips.style_base())  # the brand's frame
    started = time.perf_counter()
    upload_id = new_upload_id()
    services.uploads.store(upload_id, Path(path))
    stored = time.perf_counter()
    template = services.uploads.clip_for(upload_id, 2.0, 3.0)
    normalised = services.render.check_caption(template.id, "Made on my phone")
    from loopmark.renderer.render import normalised_render_key

    key = normalised_render_key(template, normalised)
    services.render.records.enqueue(key, template_id=template.id, caption=normalised,
                                    words_version=None)  # fmt: skip
    services.render.execute(RenderJob(key, template.id, normalised), lambda _f: None)
    done = time.perf_counter()
    record = services.render.record(key)
    services.close()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "probe_hash_store_s": round(stored - started, 2),
        "upload_to_gif_s": round(done - started, 2),
        "status": record.status if record else "missing",
        "python_peak_rss_mb": round(own, 1),
        "ffmpeg_peak_rss_mb": round(kids, 1),
        "gif_bytes": (record.media or {}).get("bytes", 0) if record else 0,
        "size": f"{(record.media or {}).get('width')}x{(record.media or {}).get('height')}"
        if record
        else "",
    }


def _child_probe(path: str) -> dict[str, float | str]:
    from loopmark.errors import VideoRejected
    from loopmark.renderer.probe import probe_video

    started = time.perf_counter()
    try:
        probe_video(Path(path), max_bytes=50 * 1024 * 1024)
        outcome = "accepted"
    except VideoRejected as exc:
        outcome = exc.code
    elapsed = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"outcome": outcome, "seconds": round(elapsed, 3), "ffmpeg_peak_rss_mb": round(kids, 1),
            "python_peak_rss_mb": round(own, 1)}  # fmt: skip


def _in_child(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.uploads", *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--upload":
        print(json.dumps(_child_upload(sys.argv[2], sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        print(json.dumps(_child_probe(sys.argv[2])))
        return
    probes_only = sys.argv[1:] == ["--probes"]
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        folder = Path(tmp)
        if not probes_only:
            clip = phone_clip(folder)
            figures = _in_child("--upload", str(clip), str(folder / "data"))
            print("phone clip 10 s 1080p H.264 → 3 s at 480 px:", figures)
        huge = hv.huge_frame_video(folder)
        hostile = {
            "hls playlist": hv.hls_playlist(folder),
            "ffconcat": hv.ffconcat_script(folder),
            "10-hour video": hv.ten_hour_video(folder),
            "8192x8192": huge,
            "8192x8192 as a second stream (mkv)": hv.hidden_huge_stream(folder, huge),
            "gif 16000x16000 screen": hv.gif_screen_bomb(folder),
            "gif frame bomb": hv.gif_frame_bomb(folder),
            "truncated mp4": hv.truncated_mp4(folder, faststart=True),
            "audio only": hv.audio_only(folder),
            "html renamed": hv.text_file(folder),
        }
        for name, path in hostile.items():
            print(f"probe {name}:", _in_child("--probe", str(path)))


if __name__ == "__main__":
    main()
