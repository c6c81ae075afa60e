"""Preparation, once per template version: everything a render needs that no caption changes.

Decode, trim, retime, scale, loop style, branding, the palette (with room for the caption's
colours), every frame mapped onto it and stabilised, and a look-up table for caption pixels. The
result is cached on disk under ``<prepared_dir>/<template id>/<version>/``.

Artifacts are not trusted blindly: ``meta.json`` (the manifest, written last) carries a SHA-256
of every other file, checked when a process loads the folder (once: the catalog keeps what it
loaded). Frames are read into memory, never memory-mapped, so a file that shrinks under a
running server cannot kill it with SIGBUS. A folder that fails the check (a flipped byte, a
truncated file, an older manifest without checksums) is logged, deleted and prepared again; one
that cannot be deleted (a read-only, baked-in folder) is prepared again in the spill folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from loopmark.errors import TemplateInvalid
from loopmark.renderer.caption_palette import caption_reserved_colours
from loopmark.renderer.palette_groups import (
    PALETTE_GROUP_CANDIDATES,
    PaletteTrial,
    choose_palettes,
    palette_runs,
)
from loopmark.renderer.probe import probe_video
from loopmark.renderer.quantize import STABILISE_DISTANCE, build_lut
from loopmark.renderer.templates import OUTPUT_MAX_FRAMES, Template, TextBox
from loopmark.renderer.video import decode_frames, encode_mp4

# Bump when this module's output changes for the same template. Render keys include it, so a
# bump renders every caption afresh: the manifest's format has its own version (below).
# A frame fitted by its corners (a clip's) is fitted so when its shape differs from the output's
# by more than this share; the corners are this share of the frame's shorter side (a logo in a
# corner fits in it: Hop & Co.'s badge ends at 42 %).
FRAME_ASPECT_TOLERANCE = 0.02
FRAME_CORNER_SHARE = 0.45
# 5: k-means sample with replacement; 6: stabilise distance per template; 7: the emoji colours
# reserved in the palette, FFmpeg's palettegen over the k-means sample instead of every pixel;
# 8: the k-means weights pixels by their SSIM cost, the sample drawn from 16 frames; no emoji
# colours for a template whose captions are presets without emoji; 9: a palette per group of
# frames where that measures better per byte (palette_groups), palette.npy and lut.npy one a group.
PREPARE_VERSION = 9
# meta.json's format: 2 added "checksums" (a SHA-256 per file); a folder without them is
# prepared again (same folder name, same bytes, same render keys).
MANIFEST_VERSION = 2
POSTER_JPEG_QUALITY = 88
MANIFEST = "meta.json"
_ARRAYS = ("frames", "indices", "palette", "lut")
_FILES = (*(f"{name}.npy" for name in _ARRAYS), "preview.mp4", "poster.jpg")
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()

log = logging.getLogger(__name__)


class ArtifactInvalid(Exception):
    """A prepared folder that must not be used: a file missing, truncated, altered, or a
    manifest without checksums. Never leaves this module: the folder is prepared again."""


@dataclass(frozen=True)
class PreparedTemplate:
    template: Template
    folder: Path
    frames: NDArray[np.uint8]  # (n, h, w, 3) RGB with branding: the unquantised truth
    indices: NDArray[np.uint8]  # (n, h, w) palette indices, stabilised
    palette: NDArray[np.uint8]  # (256, 3): the first group's (the GIF's global colour table)
    lut: NDArray[np.uint8]  # RGB at LUT_BITS → palette index (the first group's)
    box: TextBox  # the text box, resolved against the output height
    # What ``indices`` were stabilised with (template.toml's, or tuned; in meta.json), and what
    # renders stabilise the caption's edge with unless their settings say otherwise.
    stabilise_distance: float = STABILISE_DISTANCE
    # Whether preparation tuned that distance (True) or template.toml set it (False).
    stabilise_tuned: bool = True
    # A palette per span of the clip's time (palette_groups): each frame's palette, and the
    # palettes (p, 256, 3) and their LUTs; None for one palette (``palette``, ``lut``).
    frame_palettes: tuple[int, ...] | None = None
    palettes: NDArray[np.uint8] | None = None
    luts: NDArray[np.uint8] | None = None

    @property
    def grouped(self) -> bool:
        """Whether frames have palettes of their own (GIF local colour tables)."""
        return self.frame_palettes is not None

    def frame_groups(self) -> NDArray[np.intp]:
        """Each frame's palette (all 0 for one palette)."""
        if self.frame_palettes is None:
            return np.zeros(self.frame_count, dtype=np.intp)
        return np.array(self.frame_palettes, dtype=np.intp)

    def group_views(self) -> list[tuple[slice, PreparedTemplate]]:
        """Each run of consecutive frames on one palette as a one-palette template of its own
        (views of the same arrays)."""
        if self.frame_palettes is None or self.palettes is None or self.luts is None:
            return [(slice(0, self.frame_count), self)]
        return [
            (
                s,
                dataclasses.replace(
                    self,
                    frames=self.frames[s],
                    indices=self.indices[s],
                    palette=self.palettes[g],
                    lut=self.luts[g],
                    frame_palettes=None,
                    palettes=None,
                    luts=None,
                ),
            )
            for s, g in palette_runs(self.frame_palettes)
        ]

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def frame_count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def fps(self) -> int:
        return self.template.fps

    @property
    def seconds(self) -> float:
        return self.frame_count / self.fps

    @property
    def preview_mp4(self) -> Path:
        return self.folder / "preview.mp4"

    @property
    def poster_jpg(self) -> Path:
        return self.folder / "poster.jpg"


def prepared_folder_name(template_version: str, prepare_version: int = PREPARE_VERSION) -> str:
    """The folder of a template version's prepared artifacts, under ``<prepared_dir>/<id>/``.

    It names the preparation code's version too, since either changes the prepared bytes; the
    site uses it as the version segment of a template's preview and poster URLs.
    """
    return f"{template_version}-p{prepare_version}"


def output_height(width: int, source_width: int, source_height: int) -> int:
    height = round(width * source_height / source_width)
    return max(2, height + height % 2)


def resolve_box(box: TextBox, width: int, height: int) -> TextBox:
    """A box with no height means the default: the lower third, inset from the edges."""
    if box.h == 0:
        margin = max(4, height // 24)
        return TextBox(box.x, height * 2 // 3, box.w, height - height * 2 // 3 - margin)
    if box.y + box.h > height or box.w < 16 or box.h < 8:
        raise TemplateInvalid(f"text.box {box} does not fit a {width}x{height} output")
    return box


def apply_loop_style(frames: NDArray[np.uint8], loop: str) -> NDArray[np.uint8]:
    if loop == "reverse":
        return frames[::-1]
    if loop == "boomerang" and len(frames) > 2:
        return np.concatenate([frames, frames[-2:0:-1]])
    return frames


def frame_overlay(
    frame_png: Path, width: int, height: int, *, keep_corners: bool = False
) -> Image.Image:
    """The frame PNG as an RGBA overlay of the output's size: stretched to it; or, with
    ``keep_corners`` and a shape other than the frame's, cut in nine (corners, edges, middle)
    with the corners scaled evenly to the output's shorter side and the rest stretched between
    them, so a logo in a corner keeps its proportions on a portrait or square clip."""
    with Image.open(frame_png) as img:
        frame = img.convert("RGBA")
    fw, fh = frame.size
    if not keep_corners or abs(width / height - fw / fh) <= FRAME_ASPECT_TOLERANCE * fw / fh:
        return frame.resize((width, height), Image.Resampling.LANCZOS)
    corner = max(1, int(min(fw, fh) * FRAME_CORNER_SHARE))  # in the frame's pixels
    scale = min(width, height) / min(fw, fh)
    out_corner = max(1, min(round(corner * scale), min(width, height) // 2))
    # (from, to) in the frame, then (from, to) in the output: left/top, middle, right/bottom.
    columns = [
        (0, corner, 0, out_corner),
        (corner, fw - corner, out_corner, width - out_corner),
        (fw - corner, fw, width - out_corner, width),
    ]
    rows = [
        (0, corner, 0, out_corner),
        (corner, fh - corner, out_corner, height - out_corner),
        (fh - corner, fh, height - out_corner, height),
    ]
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    for x0, x1, ox0, ox1 in columns:
        for y0, y1, oy0, oy1 in rows:
            if x1 > x0 and y1 > y0 and ox1 > ox0 and oy1 > oy0:
                piece = frame.crop((x0, y0, x1, y1))
                piece = piece.resize((ox1 - ox0, oy1 - oy0), Image.Resampling.LANCZOS)
                overlay.paste(piece, (ox0, oy0))
    return overlay


def composite_branding(
    frames: NDArray[np.uint8], frame_png: Path, *, keep_corners: bool = False
) -> NDArray[np.uint8]:
    """Alpha-blend the brand's frame (fitted to the output: see frame_overlay) over every
    frame."""
    _, height, width, _ = frames.shape
    overlay = frame_overlay(frame_png, width, height, keep_corners=keep_corners)
    rgba = np.asarray(overlay, dtype=np.float32)
    alpha = rgba[..., 3:] / 255.0
    mask = alpha[..., 0] > 0
    if not mask.any():
        return frames
    out = frames.copy()
    blended = frames[:, mask].astype(np.float32) * (1 - alpha[mask]) + rgba[mask, :3] * alpha[mask]
    out[:, mask] = np.rint(blended).astype(np.uint8)
    return out


def prepare_template(
    template: Template, prepared_dir: Path, *, spill_dir: Path | None = None
) -> PreparedTemplate:
    """Load the prepared artifacts of this template version, building them first if needed.

    Complete artifacts are only read (``prepared_dir`` may be read-only, baked into an image);
    with a ``spill_dir``, a version missing from a ``prepared_dir`` that cannot be written is
    built there instead.
    """
    folder = prepared_version_folder(template, prepared_dir, spill_dir)
    spill = None if spill_dir is None else spill_dir / template.id / folder.name
    return _prepare_in(template, folder, spill if spill != folder else None)


def _prepare_in(template: Template, folder: Path, spill: Path | None) -> PreparedTemplate:
    """Load ``folder``, verified; build it first when missing, again when bad. When a bad folder
    cannot be deleted (read-only), prepare in ``spill`` instead."""
    with _lock_for(folder):
        if is_prepared(folder):
            try:
                return _load(template, folder)
            except ArtifactInvalid as exc:
                log.error(
                    "template %s: prepared artifacts in %s are bad (%s)", template.id, folder, exc
                )
                if not _discard(folder):
                    if spill is None:
                        raise TemplateInvalid(
                            f"template {template.id!r}: its prepared artifacts are bad ({exc}) "
                            f"and {folder} cannot be written"
                        ) from exc
                    log.warning("template %s: preparing again in %s", template.id, spill)
                    return _prepare_in(template, spill, None)
                log.warning("template %s: deleted %s, preparing it again", template.id, folder)
        _build(template, folder)
        try:
            return _load(template, folder)
        except ArtifactInvalid as exc:  # the disk lost what was just written: never serve it
            raise TemplateInvalid(
                f"template {template.id!r}: fresh preparation in {folder} does not verify: {exc}"
            ) from exc


def prepared_version_folder(
    template: Template, prepared_dir: Path, spill_dir: Path | None = None
) -> Path:
    """Where this template version's artifacts are read from, or are to be built or fetched:
    under ``prepared_dir`` when complete there or when it can be written, else ``spill_dir``."""
    name = prepared_folder_name(template.version)
    folder = prepared_dir / template.id / name
    if spill_dir is None or is_prepared(folder) or _writable(folder.parent):
        return folder
    return spill_dir / template.id / name


def is_prepared(folder: Path) -> bool:
    """Whether a version's artifacts are complete (``meta.json`` is written last); whether they
    are intact is checked when they are loaded."""
    return (folder / MANIFEST).is_file()


def _writable(path: Path) -> bool:
    """Whether ``path`` could be written: the nearest folder that exists is writable."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return os.access(candidate, os.W_OK)
    return False


def _lock_for(folder: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(folder, threading.Lock())


def _build(template: Template, folder: Path) -> None:
    info = probe_video(template.source, max_bytes=template.source_max_bytes)
    width = template.width
    height = output_height(width, info.width, info.height)
    box = resolve_box(template.box, width, height)
    # A boomerang plays every frame twice but the ends once, so decode about half the cap.
    decode_cap = (OUTPUT_MAX_FRAMES + 2) // 2 if template.loop == "boomerang" else OUTPUT_MAX_FRAMES
    frames = decode_frames(
        template.source,
        start_s=template.start_s,
        duration_s=template.duration_s,
        width=width,
        height=height,
        fps=template.fps,
        speed=template.speed,
        max_frames=decode_cap,
        tonemap=info.hdr_transfer is not None,
    )
    frames = apply_loop_style(frames, template.loop)[:OUTPUT_MAX_FRAMES]
    if template.frame is not None:
        frames = composite_branding(
            frames, template.frame, keep_corners=template.frame_keeps_corners
        )
    frames = np.ascontiguousarray(frames)
    # The caption's colours (fill, stroke, the emoji's) keep entries of their own: a clip
    # rarely holds them, and caption pixels are only ever mapped onto this palette.
    # (The emoji's only when the template's captions can hold any.) One palette, or one per
    # group of consecutive frames where that measures better per byte (palette_groups).
    reserved = caption_reserved_colours(template.style, emoji=template.draws_emoji)
    choice = choose_palettes(
        frames,
        reserved,
        template.fps,
        distance=template.stabilise_distance,
        loop=template.loop,
        candidates=PALETTE_GROUP_CANDIDATES if template.palette_spans else (),
    )
    distance = choice.distance
    arrays = {
        "frames": frames,
        "indices": choice.indices,
        "palette": choice.palettes,
        "lut": np.stack([build_lut(palette) for palette in choice.palettes]),
    }
    meta = {
        "template": template.id,
        "version": template.version,
        "width": width,
        "height": height,
        "frames": len(frames),
        "fps": template.fps,
        "box": [box.x, box.y, box.w, box.h],
        "stabilise_distance": distance,
        "stabilise_tuned": template.stabilise_distance is None,
        "frame_palettes": list(choice.frame_palettes),
        "palette_choice": choice.record,
        "source": {"width": info.width, "height": info.height, "seconds": info.duration_s},
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        (tmp / "preview.mp4").write_bytes(encode_mp4(frames, fps=template.fps))
        Image.fromarray(frames[0]).save(tmp / "poster.jpg", quality=POSTER_JPEG_QUALITY)
        meta["manifest"] = MANIFEST_VERSION
        # Hashed from the files in chunks: reading frames.npy whole beside the arrays still in
        # memory was the peak of a 96-frame preparation (+37 MB).
        meta["checksums"] = {name: _file_sha256(tmp / name) for name in _FILES}
        (tmp / MANIFEST).write_text(json.dumps(meta, indent=2))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not is_prepared(folder):  # another process won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load(template: Template, folder: Path) -> PreparedTemplate:
    """The folder's artifacts, read into memory and checked against the manifest's checksums
    (a SHA-256 of a 480 px, 3 s template's files: tens of milliseconds, once per process).
    ArtifactInvalid when anything is missing, altered or inconsistent."""
    try:
        meta = json.loads((folder / MANIFEST).read_text())
        if not isinstance(meta, dict) or meta.get("manifest") != MANIFEST_VERSION:
            raise ArtifactInvalid(f"manifest is not version {MANIFEST_VERSION} (no checksums)")
        checksums = meta["checksums"]
        loaded = {}
        for name in _FILES:
            data = (folder / name).read_bytes()
            if _sha256(data) != checksums[name]:
                raise ArtifactInvalid(f"{name} does not match its checksum")
            if name.endswith(".npy"):
                loaded[name.removesuffix(".npy")] = _array(data)
        box = TextBox(*meta["box"])
        distance = float(meta["stabilise_distance"])
        frame_palettes = tuple(int(p) for p in meta["frame_palettes"])
        tuned = bool(meta.get("stabilise_tuned", template.stabilise_distance is None))
        shape = (int(meta["frames"]), int(meta["height"]), int(meta["width"]), 3)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise ArtifactInvalid(f"{type(exc).__name__}: {exc}") from exc
    if loaded["frames"].shape != shape or loaded["indices"].shape != shape[:3]:
        raise ArtifactInvalid(f"frames are {loaded['frames'].shape}, the manifest says {shape}")
    palettes, luts = loaded["palette"], loaded["lut"]
    used = set(frame_palettes)
    if (
        len(frame_palettes) != shape[0]
        or used != set(range(len(palettes)))
        or len(luts) != len(palettes)
    ):
        raise ArtifactInvalid(f"{len(palettes)} palettes, {len(luts)} LUTs for {sorted(used)}")
    grouped = len(palettes) > 1
    return PreparedTemplate(
        template=template,
        folder=folder,
        frames=loaded["frames"],
        indices=loaded["indices"],
        palette=palettes[0],
        lut=luts[0],
        box=box,
        stabilise_distance=distance,
        stabilise_tuned=tuned,
        frame_palettes=frame_palettes if grouped else None,
        palettes=palettes if grouped else None,
        luts=luts if grouped else None,
    )


def tuned_stabilise_distance(folder: Path) -> float | None:
    """The stabilise distance preparation tuned for the version prepared in ``folder``, read from
    its manifest; None when that version is not prepared, or its distance was set, not tuned."""
    try:
        meta = json.loads((folder / MANIFEST).read_text())
        if not isinstance(meta, dict) or not meta.get("stabilise_tuned"):
            return None
        return float(meta["stabilise_distance"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def recorded_palette_trial(folder: Path) -> PaletteTrial | None:
    """What preparation measured of a palette per span for the version prepared in ``folder``
    (its manifest's ``palette_choice``); None when that version is not prepared."""
    try:
        meta = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return PaletteTrial.of_record(meta.get("palette_choice") if isinstance(meta, dict) else None)


def _array(data: bytes) -> NDArray[np.uint8]:
    """An ``.npy`` file's array over ``data`` itself (no copy), read-only as the artifacts are."""
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype != np.uint8 or fortran:
        raise ArtifactInvalid(f"unexpected array layout: {dtype}, fortran={fortran}")
    count = int(np.prod(shape))
    array = np.frombuffer(data, dtype=np.uint8, count=count, offset=stream.tell())
    return array.reshape(shape)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _discard(folder: Path) -> bool:
    """Delete a bad prepared folder: renamed aside first, so no reader sees it half deleted.
    False when it cannot be (a read-only folder)."""
    aside = folder.with_name(f".bad-{folder.name}-{os.getpid()}-{threading.get_ident()}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return True  # another process discarded it first
    except OSError:
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return True
