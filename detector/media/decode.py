"""The decode plan: seek only to skip whole GOPs, never decode a frame twice, guard every frame.

Targets are visited in time order. The container's index lists keyframes by *decode* time (dts);
with B-frames a keyframe is *shown* later, by the codec's reorder delay, so a target just after a
keyframe's dts can still be a frame of the previous GOP. The plan therefore places each keyframe at
its dts plus the stream's reorder delay (the first keyframe's dts before the stream start), finds
the GOP that shows each target, and seeks only when that GOP lies ahead of the one being decoded,
to the target's own timestamp (FFmpeg then lands on the keyframe shown at or before it); otherwise
it decodes forward. No frame is decoded twice, and decoding stops after the last target. Decoding
uses FFmpeg's slice threads, or frame and slice threads (``sampling.decode_threads``): on this
project's 2-core machine frame threads made the plan 3-21% slower on every bench clip and held
more memory (probably the frame threads contending for two cores, each with frames in flight), so
slices are the default; the pixels are the same either way.

Forward decoding skips the frames nothing needs: packets are demuxed :data:`LOOKAHEAD` ahead of
the decoder, so each packet's presentation time is compared with the targets and with the packets
around it; a packet that shows no target (another packet is shown after it and still at or before
the next target) goes to the decoder with ``skip_frame = NONREF``. The decoder then drops it if no
other frame references it and decodes it as usual if one does, so every frame that is shown stays
bit-exact. Only codecs whose non-reference frames are truly unreferenced take part
(:data:`SKIPPING_CODECS`; HEVC is left out: its "sub-layer non-reference" pictures can be
referenced by higher temporal layers).

Every decoded frame passes the request's :class:`Guard`: its real size against the pixel limit
(a container may declare 320x240 and carry 9000x9000 frames), the running total of decoded pixels
against the request's budget, and the clock against the decode time limit. The first violation
stops decoding with a typed 413 error.

``keyframes`` mode (batch triage) takes, for each target, the keyframe that starts its GOP and
decodes nothing forward: much cheaper on long GOPs, not frame-exact.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import av
import av.container

from detector.errors import DecodeBudgetExceeded, DecodeTimeExceeded, NoFramesDecoded, TooManyPixels
from detector.settings import LimitSettings

LOOKAHEAD = 16  # packets demuxed ahead of the decoder (more than any B-frame reorder depth in use)
KEEP_SHOWN = 8 * LOOKAHEAD  # presentation times kept before those below every held packet are dropped
SKIPPING_CODECS = frozenset({"h264", "mpeg1video", "mpeg2video", "mpeg4", "vp8", "vp9"})
EPS = 1e-9  # seconds: a frame shown within this of a target counts as shown at it
THREAD_TYPES = {"slice": "SLICE", "frame": "AUTO"}  # sampling.decode_threads -> FFmpeg thread type


@dataclass
class DecodeStats:
    """What decoding cost: frames decoded, packets sent as skippable, seeks, decoded pixels."""

    decoded: int = 0
    skippable: int = 0
    seeks: int = 0
    pixels: int = 0
    pts: list[int] = field(default_factory=list)  # presentation timestamp of every frame decoded


class Guard:
    """Per-request limits on decoding: each frame's real size, total decoded pixels, time."""

    def __init__(self, limits: LimitSettings, stats: DecodeStats) -> None:
        self.limits, self.stats = limits, stats
        self.deadline = time.monotonic() + limits.max_decode_seconds

    def check(self, width: int, height: int) -> None:
        """Count one decoded frame of ``width`` x ``height``; raise at the first limit it breaks."""
        pixels = width * height
        limits = self.limits
        if pixels > limits.max_pixels:
            raise TooManyPixels(
                f"a decoded frame is {width}x{height} ({pixels} pixels), over the limit of "
                f"{limits.max_pixels}; the container's header declared less",
                width=width,
                height=height,
            )
        self.stats.decoded += 1
        self.stats.pixels += pixels
        if self.stats.pixels > limits.max_decoded_pixels:
            raise DecodeBudgetExceeded(
                f"decoding needed more than {limits.max_decoded_pixels} pixels ({self.stats.decoded} frames)",
                decoded_pixels=self.stats.pixels,
            )
        if time.monotonic() > self.deadline:
            raise DecodeTimeExceeded(f"decoding took longer than {limits.max_decode_seconds:g} s")


Held = deque[tuple[av.Packet, float | None]]
"""Packets read but not yet decoded, with the presentation time each shows (None: unknown or flush)."""


def _forget_before(shown: list[float], held: Held) -> None:
    """Drop the times below every held packet's: they can only mark a packet as wanted that is not
    (decoded for nothing, never wrong), and keeping them all makes a long forward decode quadratic."""
    times = [at for _, at in held if at is not None]
    if times:
        del shown[: bisect_left(shown, min(times))]


class Decoder:
    """One video stream decoded forward from seek points chosen by the plan (see the module docstring)."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        guard: Guard,
        targets: Sequence[float] = (),
        threads: Literal["slice", "frame"] = "slice",
    ) -> None:
        """``targets``: the seconds :meth:`frame_at` will be asked for; frames showing none may be
        skipped. ``threads``: ``slice`` or ``frame`` (frame and slice threads)."""
        self.container, self.stream, self.guard = container, stream, guard
        stream.thread_type = THREAD_TYPES[threads]
        self.targets = sorted(targets)
        self.skips = bool(self.targets) and stream.codec_context.name in SKIPPING_CODECS
        if not stream.time_base:
            raise NoFramesDecoded("the video stream has no time base")
        self.tb: Fraction = stream.time_base
        self.keyframes = sorted({e.timestamp for e in stream.index_entries if e.is_keyframe})
        start = stream.start_time or 0
        self.delay = max(0, start - self.keyframes[0]) if self.keyframes else 0  # keyframe pts - dts
        self.gop: int | None = None  # dts of the keyframe that starts the GOP being decoded
        self.prev: av.VideoFrame | None = None  # last frame shown at or before the last target
        self.ahead: av.VideoFrame | None = None  # first decoded frame after the last target
        self.ended = False
        self.error: str | None = None
        self.latest: float | None = None
        self._frames: Iterator[av.VideoFrame] | None = None

    def close(self) -> None:
        """Finish the decode generator and drop the frames held: the generator's frame refers back
        to this decoder, so without this the cycle keeps the last decoded frames and the codec's
        frame pool (tens of MB at 1080p) until the garbage collector's next pass."""
        if isinstance(self._frames, Generator):
            self._frames.close()
        self._frames = None
        self.prev = self.ahead = None

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def gop_of(self, target_pts: int) -> int | None:
        """The keyframe (dts) whose GOP shows ``target_pts``; None without an index."""
        if not self.keyframes:
            return None
        fit = [k for k in self.keyframes if k + self.delay <= target_pts]
        return fit[-1] if fit else self.keyframes[0]

    def _prime(self) -> None:
        """Show the decoder the stream's first packet, decoding nothing (``skip_frame = ALL``), before
        the first seek skips it: FFmpeg reads workarounds for old encoders' bugs from there (x264's
        version SEI, Xvid's and DivX's user data), and without them a stream that needs one decodes
        wrong from every later keyframe. FaceForensics++'s c23 clips (H.264 High 4:4:4 by x264 build
        148) came out green below the first rows whenever a sample's first target lay past the first
        GOP (``--frames 1``); the seek that follows flushes the decoder."""
        context = self.stream.codec_context
        try:
            first = next(self.container.demux(self.stream), None)
            if first is not None:
                context.skip_frame = "ALL"
                for frame in first.decode():  # none where the codec honours ALL; guarded if one does
                    self.guard.check(frame.width, frame.height)
        except av.FFmpegError:
            pass  # nothing readable there to learn from: the seek and decode report what breaks
        finally:
            context.skip_frame = "DEFAULT"

    def seek(self, target_pts: int, gop: int) -> None:
        """Jump to the keyframe shown at or before ``target_pts`` (the start of ``gop``; decoder flushed)."""
        if self._frames is None and self.keyframes and gop != self.keyframes[0]:
            self._prime()  # nothing decoded yet, and the first GOP is about to be skipped
        self.prev = self.ahead = None
        self.ended = False
        self.guard.stats.seeks += 1
        self.gop = gop
        try:
            self.container.seek(target_pts, stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError as exc:
            self.error = f"seeking failed: {exc.strerror or exc}"
            self._frames = iter(())
            return
        self._frames = self._decode()

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Frames from the current position on, each packet sent once :data:`LOOKAHEAD` more are known."""
        shown: list[float] = []  # presentation times of the packets demuxed since the last seek, sorted
        held: Held = deque()
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets, None)
            except av.FFmpegError:  # damaged container: first decode what was read before the damage
                while held:
                    yield from self._send(*held.popleft(), shown)
                yield from self._send(None, None, shown)  # and drain the decoder
                raise
            if packet is None:
                break
            at = None if packet.pts is None or packet.size == 0 else float(packet.pts * self.tb)
            if at is not None and self.skips:
                insort(shown, at)
            held.append((packet, at))
            if len(held) > LOOKAHEAD:
                yield from self._send(*held.popleft(), shown)
                if len(shown) > KEEP_SHOWN:
                    _forget_before(shown, held)
        while held:
            yield from self._send(*held.popleft(), shown)

    def wanted(self, packet_time: float | None, shown: Sequence[float]) -> bool:
        """False when the packet's frame shows no target: a frame of ``shown`` (sorted presentation
        times) comes after it and still at or before the first target at or after it, or it comes
        after the last target."""
        if packet_time is None:
            return True
        i = bisect_left(self.targets, packet_time - EPS)
        if i == len(self.targets):
            return False
        later = bisect_right(shown, packet_time)
        return later == len(shown) or shown[later] > self.targets[i] + EPS

    def _send(
        self, packet: av.Packet | None, at: float | None, shown: list[float]
    ) -> Iterator[av.VideoFrame]:
        """Decode one packet shown at ``at`` s (None: drain the decoder); skippable if it shows no target."""
        if packet is not None and packet.is_keyframe and packet.dts is not None:
            self.gop = packet.dts
        if self.skips:
            skip = not self.wanted(at, shown)
            self.guard.stats.skippable += skip
            self.stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
        for frame in packet.decode() if packet is not None else self.stream.decode(None):
            if frame.time_base is None:  # a drained frame has no packet to take it from
                frame.time_base = self.tb
            self.guard.check(frame.width, frame.height)
            if frame.pts is not None:
                self.guard.stats.pts.append(frame.pts)
                self.latest = max(self.latest or 0.0, float(frame.time))
                yield frame

    def _pull(self) -> av.VideoFrame | None:
        if self.ahead is not None:
            frame, self.ahead = self.ahead, None
            return frame
        if self._frames is None:
            self._frames = self._decode()
        if self.error is not None:
            return None
        try:
            return next(self._frames, None)
        except av.FFmpegError as exc:
            self.error = f"decoding failed: {exc.strerror or exc}"
            return None

    def _forward_to(self, target: float) -> av.VideoFrame | None:
        """Decode on to the last frame shown at or before ``target`` s (None: the first one is later)."""
        while True:
            frame = self._pull()
            if frame is None:
                self.ended = True
                return self.prev
            if float(frame.time) > target + EPS:
                self.ahead = frame
                return self.prev
            self.prev = frame

    def frame_at(self, target: float) -> av.VideoFrame | None:
        """The frame a sequential decode shows at ``target`` seconds."""
        target_pts = int(target / self.tb)
        gop = self.gop_of(target_pts)
        if gop is not None and (self._frames is None or self.gop is None or gop > self.gop):
            self.seek(target_pts, gop)
        frame = self._forward_to(target)
        if frame is None and self.ahead is not None and gop is not None and gop > self.keyframes[0]:
            # the index put a keyframe before the target that is shown after it: start one GOP back
            earlier = max(k for k in self.keyframes if k < gop)
            self.seek(earlier + self.delay, earlier)
            frame = self._forward_to(target)
        if frame is None and self.ahead is not None:  # the target precedes the first frame
            frame, self.prev, self.ahead = self.ahead, self.ahead, None
        return frame

    def keyframe_at(self, target: float) -> av.VideoFrame | None:
        """``keyframes`` mode: the first frame of the target's GOP, nothing decoded forward."""
        target_pts = int(target / self.tb)
        gop = self.gop_of(target_pts)
        if gop is None:
            return self.frame_at(target)
        if self.gop != gop or self.prev is None:
            self.seek(target_pts, gop)
            self.prev = self._pull()
        return self.prev
