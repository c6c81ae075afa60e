"""The hardened probe: hostile files are refused with the right code, honest ones described."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loopmark.errors import VideoRejected
from loopmark.renderer import probe
from loopmark.renderer.probe import (
    ALLOWED_DEMUXERS,
    SOURCE_MAX_BYTES,
    SOURCE_MAX_PIXELS,
    VideoInfo,
    hardened_input_args,
    probe_video,
)
from tests.renderer import hostile_videos as hv

BIG_BUCK_BUNNY = Path("/work/shared/clips/bigbuckbunny.mp4")


@pytest.fixture(scope="session")
def huge_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hv.huge_frame_video(tmp_path_factory.mktemp("huge"))


def rejected(path: Path) -> VideoRejected:
    with pytest.raises(VideoRejected) as caught:
        probe_video(path)
    error = caught.value
    # Every refusal is one human line.
    assert "\n" not in error.reason and error.reason.strip() == error.reason
    return error


# --- the argv ----------------------------------------------------------------------------------


def test_hardened_args_whitelist_protocol_and_demuxers_and_prefix_the_path() -> None:
    args = hardened_input_args(Path("relative/-clip.mp4"))
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert args[args.index("-format_whitelist") + 1] == ",".join(ALLOWED_DEMUXERS)
    assert int(args[args.index("-probesize") + 1]) > 0
    assert int(args[args.index("-analyzeduration") + 1]) > 0
    assert int(args[args.index("-max_pixels") + 1]) == SOURCE_MAX_PIXELS
    assert args[-2] == "-i"
    assert args[-1] == f"file:{Path.cwd() / 'relative' / '-clip.mp4'}"
    assert "-safe" not in args


# --- honest files --------------------------------------------------------------------------------


def test_big_buck_bunny_is_described_exactly() -> None:
    info = probe_video(BIG_BUCK_BUNNY)
    assert info.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert (info.width, info.height) == (1280, 720)
    assert info.duration_s == pytest.approx(5.3, abs=0.05)
    assert info.fps == 25
    assert info.frames == pytest.approx(133, abs=1)
    assert info.has_audio is True


def test_small_webm(tmp_path: Path) -> None:
    info = probe_video(hv.small_webm(tmp_path))
    assert info == VideoInfo(
        container="matroska,webm",
        width=64,
        height=48,
        duration_s=1.0,
        fps=10.0,
        frames=10,
        has_audio=False,
    )


def test_small_gif_is_counted_from_its_own_blocks(tmp_path: Path) -> None:
    info = probe_video(hv.small_gif(tmp_path))
    assert (info.container, info.width, info.height) == ("gif", 64, 48)
    assert (info.frames, info.duration_s, info.fps) == (10, 1.0, 10.0)
    assert info.has_audio is False


def test_gif_named_mp4_is_still_checked_as_gif(tmp_path: Path) -> None:
    assert rejected(hv.gif_screen_bomb(tmp_path, "bomb.mp4")).code == "video_dimensions"


def test_webm_without_duration_is_measured_by_demuxing(tmp_path: Path) -> None:
    info = probe_video(hv.webm_without_duration(tmp_path))
    assert info.duration_s == pytest.approx(2.0, abs=0.15)
    assert info.frames == 20


def test_rotation_is_applied_to_the_size(tmp_path: Path) -> None:
    info = probe_video(hv.rotated_mp4(tmp_path))
    assert (info.width, info.height) == (48, 64)


def test_awkward_file_name_is_read_as_a_file(tmp_path: Path) -> None:
    info = probe_video(hv.awkward_name(tmp_path))
    assert (info.width, info.height) == (64, 48)


def test_pattern_like_name_is_taken_literally(tmp_path: Path) -> None:
    literal = hv.literal_pattern_name(tmp_path)
    assert probe_video(literal).width == 64
    # The expansion image2 would pick exists, the literal name does not.
    hv.small_webm(tmp_path, "clip001.webm")
    assert rejected(tmp_path / "clip%03d.webm").code == "video_missing"


def test_relative_path_is_probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hv.small_webm(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert probe_video(Path("small.webm")).height == 48


# --- hostile files -------------------------------------------------------------------------------


def test_hls_playlist_named_mp4(tmp_path: Path) -> None:
    error = rejected(hv.hls_playlist(tmp_path))
    assert error.code == "video_unsupported"
    assert error.reason == "That file is a playlist, not a video."


def test_ffconcat_script_named_mp4(tmp_path: Path) -> None:
    error = rejected(hv.ffconcat_script(tmp_path))
    assert error.code == "video_unsupported"
    assert "concat" in error.reason


@pytest.mark.parametrize("name", ["concat.ffconcat", "list.m3u8"])
def test_ffmpeg_itself_refuses_scripts_we_did_not_spot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Behind our own sniffing, FFmpeg's demuxer allow-list still stops a script it recognises.
    monkeypatch.setattr(probe, "_refuse_scripts", lambda _head: None)
    script = hv.ffconcat_script(tmp_path) if "concat" in name else hv.hls_playlist(tmp_path)
    script = script.rename(tmp_path / name)
    error = rejected(script)
    assert error.code == "video_unsupported"
    assert "not supported" in error.reason


def test_ten_hour_video(tmp_path: Path) -> None:
    path = hv.ten_hour_video(tmp_path)
    assert path.stat().st_size < 10_000
    error = rejected(path)
    assert error.code == "video_too_long"
    assert "10:00:0" in error.reason and "60 s" in error.reason


def test_huge_frame_video(huge_video: Path) -> None:
    error = rejected(huge_video)
    assert error.code == "video_dimensions"
    assert error.reason == "Video is 8192×8192; the limit is 3840×2160."


def test_huge_second_video_stream(tmp_path: Path, huge_video: Path) -> None:
    assert rejected(hv.hidden_huge_stream(tmp_path, huge_video)).code == "video_dimensions"


def test_huge_mp4_frame_is_refused_from_its_index_before_ffmpeg(
    huge_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_ffmpeg(*_args: object) -> str:
        raise AssertionError("FFmpeg must not see this file")

    monkeypatch.setattr(probe, "_ffmpeg_report", no_ffmpeg)
    error = rejected(huge_video)
    assert (error.code, error.reason) == (
        "video_dimensions",
        "Video is 8192×8192; the limit is 3840×2160.",
    )


# The probe of a file whose frame is over the pixel budget decodes nothing: FFmpeg's decoders
# refuse the frame before allocating it (8192×8192 cost 185 MB before -max_pixels; 53-55 MB now,
# most of it FFmpeg itself). Measured in a child process, as ru_maxrss of its children.
PROBE_RSS = """
import resource, sys
from pathlib import Path
from loopmark.errors import VideoRejected
from loopmark.renderer.probe import probe_video
try:
    probe_video(Path(sys.argv[1]))
except VideoRejected as exc:
    print(exc.code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""
PROBE_MAX_RSS_MB = 100  # issue 13's target for every hostile file


def test_a_hidden_huge_stream_is_refused_without_decoding_it(
    tmp_path: Path, huge_video: Path
) -> None:
    hidden = hv.hidden_huge_stream(tmp_path, huge_video)  # Matroska: FFmpeg reads its index
    out = subprocess.run(
        [sys.executable, "-c", PROBE_RSS, str(hidden)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert out[0] == "video_dimensions"
    assert 0 < int(out[1]) < PROBE_MAX_RSS_MB


def test_gif_screen_bomb_is_refused_before_ffmpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = hv.gif_screen_bomb(tmp_path)
    assert path.stat().st_size == 35

    def no_ffmpeg(*_args: object) -> str:
        raise AssertionError("FFmpeg must not see this file")

    monkeypatch.setattr(probe, "_ffmpeg_report", no_ffmpeg)
    error = rejected(path)
    assert error.code == "video_dimensions"
    assert "16000×16000" in error.reason


def test_gif_frame_bomb(tmp_path: Path) -> None:
    assert rejected(hv.gif_frame_bomb(tmp_path)).code == "video_dimensions"


def test_gif_that_lasts_too_long(tmp_path: Path) -> None:
    error = rejected(hv.gif_long_delay(tmp_path))
    assert error.code == "video_too_long"
    assert "655.4 s" in error.reason


def test_gif_of_tiny_sub_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "GIF_MAX_SUB_BLOCKS", 5)
    # The valid small GIF has more than five sub-blocks; with the budget lowered it is refused.
    error = rejected(hv.small_gif(tmp_path))
    assert (error.code, error.reason) == ("video_unsupported", "That GIF is too fragmented.")


@pytest.mark.parametrize(
    "make",
    [hv.text_file, hv.empty_file, hv.audio_only],
    ids=["text", "empty", "audio-only"],
)
def test_not_a_video(tmp_path: Path, make: object) -> None:
    assert callable(make)
    assert rejected(make(tmp_path)).code == "video_unsupported"


def test_audio_only_says_so(tmp_path: Path) -> None:
    assert rejected(hv.audio_only(tmp_path)).reason == "That file has no video track."


@pytest.mark.parametrize("faststart", [False, True], ids=["index-last", "index-first"])
def test_truncated_mp4(tmp_path: Path, faststart: bool) -> None:
    assert rejected(hv.truncated_mp4(tmp_path, faststart=faststart)).code == "video_unsupported"


def test_png_is_not_an_allowed_format(tmp_path: Path) -> None:
    path = tmp_path / "still.mp4"
    hv._ffmpeg("-f", "lavfi", "-i", "color=red:s=16x16", "-frames:v", "1", "-f", "apng", str(path))
    error = rejected(path)
    assert error.code == "video_unsupported"
    assert "not supported" in error.reason


def test_missing_file(tmp_path: Path) -> None:
    assert rejected(tmp_path / "nope.mp4").code == "video_missing"
    assert rejected(tmp_path / "nope" / "deeper.mp4").code == "video_missing"


def test_directory(tmp_path: Path) -> None:
    error = rejected(tmp_path)
    assert error.code == "video_unsupported"
    assert "folder" in error.reason


def test_file_over_the_byte_cap(tmp_path: Path) -> None:
    error = rejected(hv.oversized_file(tmp_path, SOURCE_MAX_BYTES + 1))
    assert error.code == "video_too_large"
    assert "limit is 25 MB" in error.reason


def test_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    # Opening a FIFO with no writer blocks; a refusal at all proves it was never opened.
    error = rejected(hv.fifo(tmp_path))
    assert error.code == "video_unsupported"


def test_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.mp4"
    link.symlink_to(hv.fifo(tmp_path))
    assert rejected(link).code == "video_unsupported"


def test_control_characters_in_the_name(tmp_path: Path) -> None:
    path = hv.small_webm(tmp_path, "a\n  Duration: 00:00:01.00.webm")
    assert rejected(path).code == "video_unsupported"


def test_timeout_is_its_own_code(tmp_path: Path) -> None:
    with pytest.raises(VideoRejected) as caught:
        probe_video(hv.small_webm(tmp_path), timeout_s=0.0)
    assert caught.value.code == "video_timeout"


# --- the parser, on reports FFmpeg could print ---------------------------------------------------

REPORT_HEAD = "Input #0, matroska,webm, from 'file:/x.webm':\n  Duration: 00:00:02.00, start: 0\n"


def test_forged_stream_line_is_refused() -> None:
    report = (
        REPORT_HEAD
        + "  Stream #0:0: Video: vp9, yuv420p(tv, progressive), 8192x8192, 25 fps, 25 tbr\n"
        + "    Metadata:\n"
        + "  Stream #0:0: Video: vp9, yuv420p, 64x48, 25 fps\n"
    )
    with pytest.raises(VideoRejected) as caught:
        probe._parse_report(report)
    assert caught.value.code == "video_unsupported"


def test_forged_duration_line_is_refused() -> None:
    report = REPORT_HEAD + "  Duration: 00:00:01.00\n  Stream #0:0: Video: vp9, 64x48, 25 fps\n"
    with pytest.raises(VideoRejected):
        probe._parse_report(report)


def test_codec_tag_is_not_mistaken_for_a_size() -> None:
    report = REPORT_HEAD + (
        "  Stream #0:0[0x1](und): Video: h264 (avc1 / 0x31637661), yuv420p(tv, bt709), "
        "1920x1080 [SAR 1:1 DAR 16:9], 30k fps, 1k tbr, 90k tbn (default)\n"
    )
    info = probe._parse_report(report)
    assert (info.width, info.height, info.fps) == (1920, 1080, 30000.0)


def test_zero_size_and_portrait_4k() -> None:
    zero = REPORT_HEAD + "  Stream #0:0: Video: vp9, 0x0, 25 fps\n"
    with pytest.raises(VideoRejected) as caught:
        probe._parse_report(zero)
    assert caught.value.code == "video_dimensions"
    portrait = REPORT_HEAD + "  Stream #0:0: Video: vp9, 2160x3840, 25 fps\n"
    assert probe._parse_report(portrait).height == 3840


@pytest.mark.parametrize("declared", [8, 12, 15, 16])
def test_an_index_box_smaller_than_its_own_header_is_corrupt(tmp_path: Path, declared: int) -> None:
    """A ``moov`` with a 64-bit size below its 16-byte header: refused as corrupt (it was a
    negative read, a ValueError and a 500; 15 read the whole rest of the file)."""
    ftyp = (24).to_bytes(4, "big") + b"ftypisom" + b"\0\0\2\0" + b"isomiso2"
    moov = (1).to_bytes(4, "big") + b"moov" + declared.to_bytes(8, "big")
    path = tmp_path / "tiny-index.mp4"
    path.write_bytes(ftyp + moov + b"\0" * 40)
    error = rejected(path)
    assert error.code == "video_unsupported"
    if declared < 16:
        assert error.reason == "That MP4 file is corrupt."
