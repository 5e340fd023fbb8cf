"""Frame sampling: which frames of a video to look at, decoded by the plan of :mod:`.decode`.

Targets are the centres of ``n`` equal segments of the duration (:meth:`FrameSampler.timestamps`),
offset by the stream's start time. In ``exact`` mode the sampler returns, for each target, the frame
whose presentation interval contains it: exactly the frame a sequential decode shows at that moment.
In ``keyframes`` mode (batch triage) it returns the keyframe that starts each target's GOP.

Sampled frames keep their decoded YUV 4:2:0 planes where they can (:mod:`.frames`: half the
memory of RGB, unpacked to the same RGB when read); others are converted to upright RGB at once.
Frames larger than ``limits.frame_max_side`` on their longest side are scaled down at once (area
interpolation, to RGB): detectors never need more, and a 7000x7000 frame would otherwise cost
147 MB per copy. ``Frame.scale`` records the factor so face boxes are reported in the medium's own
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import av
import av.container
import numpy as np

from detector.errors import InvalidRequest, NoFramesDecoded
from detector.media.decode import Decoder, DecodeStats, Guard
from detector.media.frames import Frame, pack
from detector.media.loader import Media, MediaLoader, clockwise_rotation, primary_video_stream
from detector.settings import SamplingSettings, get_settings

SamplingMode = Literal["exact", "keyframes"]


@dataclass
class FrameSample:
    """The frames of one medium, how many were asked for, what decoding cost and what went wrong."""

    frames: list[Frame]
    requested: int
    warnings: list[str] = field(default_factory=list)
    mode: SamplingMode = "exact"
    stats: DecodeStats = field(default_factory=DecodeStats)


def fit_side(width: int, height: int, max_side: int) -> tuple[int, int, float]:
    """(width, height, scale) no larger than ``max_side`` on the longest side (never enlarged)."""
    scale = min(1.0, max_side / max(width, height))
    if scale >= 1.0:
        return width, height, 1.0
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def to_rgb_upright(frame: av.VideoFrame, max_side: int | None = None) -> tuple[np.ndarray, float]:
    """RGB uint8 HxWx3 (contiguous), display rotation applied, scaled down to ``max_side``; and the scale."""
    width, height, scale = fit_side(frame.width, frame.height, max_side or max(frame.width, frame.height))
    if scale < 1.0:
        frame = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    image = frame.to_ndarray(format="rgb24")
    turns = clockwise_rotation(frame) // 90
    if turns:
        image = np.rot90(image, k=-turns)  # negative k turns clockwise
    return np.ascontiguousarray(image), scale


def sampled_frame(index: int, frame: av.VideoFrame, max_side: int | None = None) -> Frame:
    """A decoded frame as a :class:`Frame`: its upright I420 planes when it fits ``max_side`` and
    :func:`detector.media.frames.pack` takes its layout, else upright RGB (scaled to ``max_side``)."""
    if max_side is None or max(frame.width, frame.height) <= max_side:
        packed = pack(frame, clockwise_rotation(frame) // 90)
        if packed is not None:
            return Frame(index, float(frame.time), packed[0], 1.0, packed[1])
    return Frame(index, float(frame.time), *to_rgb_upright(frame, max_side))


def animated_warning(fmt: str) -> str:
    """The warning of an image with more than one frame or page: only its first is judged."""
    name = {"webp": "WebP", "heic": "HEIC image"}.get(fmt, fmt.upper())
    return (
        f"the {name} holds more than one frame or page (animated or multi-page): only the first was "
        "analysed, the others were not examined"
    )


class FrameSampler:
    """Picks ``n`` frames of a video (or the one frame of an image); each reads as upright RGB."""

    def __init__(self, settings: SamplingSettings | None = None, loader: MediaLoader | None = None) -> None:
        self.settings = settings if settings is not None else get_settings().sampling
        self.loader = loader if loader is not None else MediaLoader()

    @staticmethod
    def timestamps(duration_s: float, n: int) -> list[float]:
        """Centres of ``n`` equal segments of ``[0, duration_s]``: ``(i + 0.5) * duration_s / n``.

        Centres avoid the very first and last instants (often black, or cut mid-GOP), and when a
        constant-rate clip has fewer than ``n`` frames every frame still contains a target.
        """
        if n < 1:
            raise InvalidRequest(f"the number of frames must be at least 1, not {n}")
        step = max(duration_s, 0.0) / n
        return [(i + 0.5) * step for i in range(n)]

    def sample(self, media: Media, n: int | None = None, mode: SamplingMode | None = None) -> FrameSample:
        """Image: its one frame (``requested`` 1). Video: up to ``n`` distinct frames."""
        n = self.settings.frames if n is None else n
        mode = mode or self.settings.mode
        if n < 1:
            raise InvalidRequest(f"the number of frames must be at least 1, not {n}")
        if media.info.kind == "image":
            image, scale = self.loader.decode_image(media, self.loader.limits.frame_max_side)
            warnings = [animated_warning(media.info.format)] if media.info.animated else []
            return FrameSample([Frame(0, 0.0, image, scale)], requested=1, warnings=warnings)
        with media.open_video() as container:
            return self._sample_video(media, container, n, mode)

    def _sample_video(
        self, media: Media, container: av.container.InputContainer, n: int, mode: SamplingMode
    ) -> FrameSample:
        stream = primary_video_stream(container)
        if not stream.time_base:
            raise NoFramesDecoded("the video stream has no time base")
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = media.info.duration_s or 0.0
        nominal = 1.0 / media.info.fps if media.info.fps else 0.04
        stats = DecodeStats()
        targets = [start + offset for offset in self.timestamps(duration, n)]
        exact = mode == "exact"
        guard = Guard(self.loader.limits, stats)
        threads = self.settings.decode_threads
        with Decoder(container, stream, guard, targets if exact else (), threads) as decoder:
            pick = decoder.frame_at if exact else decoder.keyframe_at
            side = self.loader.limits.frame_max_side
            chosen: list[Frame] = []  # copied out as soon as picked: no decoder frame is held
            last_pts: int | None = None
            warnings: list[str] = []
            duplicates = 0
            for target in targets:
                frame = pick(target)
                if frame is None or (
                    exact and not self._covers(decoder, frame, target, start + duration, nominal)
                ):
                    warnings.append(self._broken_warning(decoder, chosen, start + duration))
                    break
                if chosen and last_pts == frame.pts:
                    duplicates += 1
                    continue
                last_pts = frame.pts
                chosen.append(sampled_frame(len(chosen), frame, side))
        if not chosen:
            raise NoFramesDecoded(
                f"no frame of the {media.info.format} video could be decoded ({decoder.error or 'no data'})"
            )
        if duplicates:
            warnings.append(
                f"the clip has only {len(chosen)} distinct frame{'s' if len(chosen) > 1 else ''} at the "
                f"{n} sampled timestamps; "
                "each is returned once"
            )
        if mode == "keyframes":
            warnings.append(
                "keyframes mode: the keyframe before each timestamp, not the exact frame (batch triage)"
            )
        return FrameSample(chosen, requested=n, warnings=warnings, mode=mode, stats=stats)

    @staticmethod
    def _covers(cursor: Decoder, frame: av.VideoFrame, target: float, end: float, nominal: float) -> bool:
        """False when the data ran out (or broke) before ``target``: the file was cut or is damaged."""
        if not cursor.ended:
            return True
        length = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else nominal
        frame_end = float(frame.time) + length
        complete = cursor.error is None and frame_end >= end - max(2 * nominal, 1e-3)
        return complete or target < frame_end

    @staticmethod
    def _broken_warning(cursor: Decoder, chosen: list[Frame], end: float) -> str:
        where = f"{cursor.latest:.2f} s" if cursor.latest is not None else "its start"
        why = cursor.error or "the data ends before the stated duration"
        return (
            f"the video stream breaks at {where} of {end:.2f} s ({why}); "
            f"returning the {len(chosen)} frames decoded before that"
        )
