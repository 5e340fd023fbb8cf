"""Frame sampling: which frames of a video to look at, decoded by seeking (never every frame).

Targets are the centres of ``n`` equal segments of the duration (:meth:`FrameSampler.timestamps`),
offset by the stream's start time. For each target the sampler returns the frame whose presentation
interval contains it: exactly the frame a sequential decode shows at that moment. It seeks to the
keyframe at or before the target and decodes forward; when the next target's keyframe is already
behind the decoder it keeps decoding instead of seeking back. One container serves all targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import av.container
import numpy as np

from detector.errors import InvalidRequest, NoFramesDecoded
from detector.media.loader import Media, MediaLoader, clockwise_rotation, primary_video_stream
from detector.settings import SamplingSettings, get_settings


@dataclass(frozen=True)
class Frame:
    """One sampled frame: position in the sample, presentation time (s), RGB uint8 upright image."""

    index: int
    timestamp: float
    image: np.ndarray


@dataclass
class FrameSample:
    """The frames of one medium, how many were asked for, and what went wrong on the way."""

    frames: list[Frame]
    requested: int
    warnings: list[str] = field(default_factory=list)


def to_rgb_upright(frame: av.VideoFrame) -> np.ndarray:
    """RGB uint8 HxWx3 (contiguous) with the frame's display rotation applied."""
    image = frame.to_ndarray(format="rgb24")
    turns = clockwise_rotation(frame) // 90
    if turns:
        image = np.rot90(image, k=-turns)  # negative k turns clockwise
    return np.ascontiguousarray(image)


class _Cursor:
    """Decodes one stream forward from the last seek point and remembers where it stands."""

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> None:
        self.container = container
        self.stream = stream
        self.index = stream.index_entries
        self.error: str | None = None
        self.ended = False
        self.last_dts: int | None = None  # dts of the last packet handed to the decoder
        self.seek_dts: int | None = None  # dts of the first packet after the last seek
        self.prev: av.VideoFrame | None = None  # latest frame at or before the last target
        self.ahead: av.VideoFrame | None = None  # first decoded frame after the last target
        self.latest: float | None = None  # latest presentation time decoded so far (s)
        self._frames: Iterator[av.VideoFrame] = iter(())

    def _decode(self) -> Iterator[av.VideoFrame]:
        for packet in self.container.demux(self.stream):
            if packet.dts is not None:
                self.last_dts = packet.dts
                self.seek_dts = packet.dts if self.seek_dts is None else self.seek_dts
            for frame in packet.decode():
                if frame.pts is not None:
                    self.latest = max(self.latest or 0.0, float(frame.time))
                    yield frame

    def seek(self, pts: int) -> None:
        """Jump to the keyframe at or before ``pts`` (stream time base); PyAV flushes the decoder."""
        self.last_dts = self.seek_dts = None
        self.prev = self.ahead = None
        self.ended = False
        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError as exc:
            self.error = f"seeking failed: {exc.strerror or exc}"
            self._frames = iter(())
            return
        self._frames = self._decode()

    def can_continue(self, target_pts: int) -> bool:
        """True when decoding on reaches the target no later than a seek would."""
        if self.error is not None or self.prev is None or self.last_dts is None:
            return False
        if self.ended or (self.ahead is not None and (self.ahead.pts or 0) > target_pts):
            return True  # the frame already in hand is still the one shown
        if not len(self.index):
            return False
        i = self.index.search_timestamp(target_pts, backward=True)
        return i >= 0 and self.index[i].timestamp <= self.last_dts

    def _pull(self) -> av.VideoFrame | None:
        if self.ahead is not None:
            frame, self.ahead = self.ahead, None
            return frame
        if self.error is not None:
            return None
        try:
            return next(self._frames, None)
        except av.FFmpegError as exc:
            self.error = f"decoding failed: {exc.strerror or exc}"
            return None

    def frame_at(self, target: float) -> av.VideoFrame | None:
        """Decode on to the last frame presented at or before ``target`` seconds.

        None when the first frame after this seek point is already past the target (see ``ahead``).
        At the end of the data (``ended``) the last frame is returned; the caller checks it covers.
        """
        while True:
            frame = self._pull()
            if frame is None:
                self.ended = True
                return self.prev
            if float(frame.time) > target + 1e-9:
                self.ahead = frame
                return self.prev
            self.prev = frame


class FrameSampler:
    """Picks ``n`` frames of a video (or the one frame of an image) as upright RGB arrays."""

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

    def sample(self, media: Media, n: int | None = None) -> FrameSample:
        """Image: its one frame (``requested`` 1). Video: up to ``n`` distinct frames."""
        n = self.settings.frames if n is None else n
        if n < 1:
            raise InvalidRequest(f"the number of frames must be at least 1, not {n}")
        if media.info.kind == "image":
            return FrameSample([Frame(0, 0.0, self.loader.decode_image(media))], requested=1)
        with media.open_video() as container:
            return self._sample_video(media, container, n)

    def _sample_video(self, media: Media, container: av.container.InputContainer, n: int) -> FrameSample:
        stream = primary_video_stream(container)
        tb = stream.time_base
        if not tb:
            raise NoFramesDecoded("the video stream has no time base")
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        duration = media.info.duration_s or 0.0
        nominal = 1.0 / media.info.fps if media.info.fps else 0.04
        cursor = _Cursor(container, stream)
        first_dts = cursor.index[0].timestamp if len(cursor.index) else (stream.start_time or 0)
        chosen: list[av.VideoFrame] = []
        warnings: list[str] = []
        duplicates = 0
        for offset in self.timestamps(duration, n):
            target = start + offset
            frame = self._frame_at(cursor, target, int(target / tb), first_dts)
            if frame is None or not self._covers(cursor, frame, target, start + duration, nominal):
                warnings.append(self._broken_warning(cursor, chosen, start + duration))
                break
            if chosen and chosen[-1].pts == frame.pts:
                duplicates += 1
                continue
            chosen.append(frame)
        if not chosen:
            raise NoFramesDecoded(
                f"no frame of the {media.info.format} video could be decoded ({cursor.error or 'no data'})"
            )
        if duplicates:
            warnings.append(
                f"the clip has only {len(chosen)} distinct frames at the {n} sampled timestamps; "
                "each is returned once"
            )
        frames = [Frame(i, float(f.time), to_rgb_upright(f)) for i, f in enumerate(chosen)]
        return FrameSample(frames, requested=n, warnings=warnings)

    @staticmethod
    def _frame_at(cursor: _Cursor, target: float, target_pts: int, first_dts: int) -> av.VideoFrame | None:
        """The frame shown at ``target``: seek (or keep decoding), then step back if we overshot."""
        if not cursor.can_continue(target_pts):
            cursor.seek(target_pts)
        frame = cursor.frame_at(target)
        # A keyframe whose dts is before the target can have its pts after it: seek further back,
        # first to the keyframe before, then (rarely needed) to the very start, which is always exact.
        for fallback in ("previous", "start"):
            if frame is not None or cursor.ahead is None or cursor.seek_dts is None:
                break
            if cursor.seek_dts <= first_dts:
                break
            cursor.seek(cursor.seek_dts - 1 if fallback == "previous" else first_dts)
            frame = cursor.frame_at(target)
        if frame is None and cursor.ahead is not None:  # the target precedes the first frame
            frame, cursor.prev, cursor.ahead = cursor.ahead, cursor.ahead, None
        return frame

    @staticmethod
    def _covers(cursor: _Cursor, frame: av.VideoFrame, target: float, end: float, nominal: float) -> bool:
        """False when the data ran out (or broke) before ``target``: the file was cut or is damaged."""
        if not cursor.ended:
            return True
        length = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else nominal
        frame_end = float(frame.time) + length
        complete = cursor.error is None and frame_end >= end - max(2 * nominal, 1e-3)
        return complete or target < frame_end

    @staticmethod
    def _broken_warning(cursor: _Cursor, chosen: list[av.VideoFrame], end: float) -> str:
        where = f"{cursor.latest:.2f} s" if cursor.latest is not None else "its start"
        why = cursor.error or "the data ends before the stated duration"
        return (
            f"the video stream breaks at {where} of {end:.2f} s ({why}); "
            f"returning the {len(chosen)} frames decoded before that"
        )
