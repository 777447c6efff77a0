"""Where the visitor's photo comes from: the Pi camera, a USB webcam, or image files.

Every backend gives RGB uint8 frames (H, W, 3) through the same small interface: `open()`
(warm-up frames and exposure settle included), `capture()`, `close()`. A failed grab is retried
once after reopening the device; if that fails too, `CameraError` (one line) tells the service,
which shows a camera fault and keeps retrying until the camera is back. Frames live in memory
only.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import one_line
from appliance.parts.diagnosis import Finding, note, ok, problem
from appliance.parts.settings import CameraSettings

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                  ".pgm", ".heic", ".heif"}


Frame = np.ndarray  # (height, width, 3) uint8 RGB: one photo, held only during the visit



class CameraError(RuntimeError):
    """The camera is missing, busy or lost (one line)."""


class Camera:
    """Base class: backends implement `_open`, `_grab` (one RGB frame) and `_close`."""

    name = "camera"

    def __init__(self, *, warmup_frames: int = 0, settle_seconds: float = 0.0,
                 rotate: int = 0, mirror: bool = False) -> None:
        self.warmup_frames = warmup_frames
        self.settle_seconds = settle_seconds
        self.rotate = rotate
        self.mirror = mirror
        self.is_open = False
        self._lock = threading.Lock()  # the visit and the presence watcher share the camera

    def diagnose(self, count_faces: Callable[[Frame], int] | None = None) -> list[Finding]:
        """One frame taken and looked at: its size, brightness, and faces in view if
        `count_faces` is given (`sosie doctor`). The camera is closed again afterwards."""
        try:
            with self:
                frame = self.capture()
        except CameraError as exc:
            return [problem(f"{exc} (check the cable/ribbon and camera.backend)")]
        h, w = frame.shape[:2]
        brightness = float(frame.mean())
        findings = [ok(f"{self.name}: {w}x{h} frame, mean brightness {brightness:.0f}")]
        if brightness < 12:
            findings.append(problem("the picture is almost black (lens cap? no light?)"))
        elif brightness > 245:
            findings.append(problem("the picture is almost white (over-exposed)"))
        if count_faces is not None:
            findings.append(note(f"{count_faces(frame)} face(s) in view right now"))
        return findings

    def open(self) -> None:
        """Open the device, discard warm-up frames, let exposure settle; CameraError if not."""
        with self._lock:
            self._open_locked()

    def _open_locked(self) -> None:
        if self.is_open:
            return
        with self._closed_on_failure():
            self._open()
            if self.settle_seconds:
                time.sleep(self.settle_seconds)
            for _ in range(self.warmup_frames):
                self._grab()
        self.is_open = True

    def capture(self) -> np.ndarray:
        """One RGB frame; reopens the device once if the grab fails, then raises CameraError."""
        with self._lock:
            self._open_locked()
            try:
                frame = self._grab()
            except Exception as exc:
                log.warning("%s camera: grab failed (%s); reopening", self.name, one_line(exc))
                self._close_quietly()
                self._open_locked()
                with self._closed_on_failure():
                    frame = self._grab()
        return self._orient(frame)

    @contextlib.contextmanager
    def _closed_on_failure(self) -> Iterator[None]:
        """Close the device on any failure; anything but a CameraError becomes one (one line)."""
        try:
            yield
        except CameraError:
            self._close_quietly()
            raise
        except Exception as exc:
            self._close_quietly()
            raise CameraError(f"{self.name} camera: {one_line(exc)}") from None

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def _close_quietly(self) -> None:
        self.is_open = False
        try:
            self._close()
        except Exception as exc:
            log.debug("%s camera: close: %s", self.name, exc)

    def _orient(self, frame: np.ndarray) -> np.ndarray:
        if self.rotate:
            frame = np.rot90(frame, k=-(self.rotate // 90))
        if self.mirror:
            frame = frame[:, ::-1]
        return np.ascontiguousarray(frame)

    def __enter__(self) -> Camera:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backend hooks -------------------------------------------------------------------------

    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self) -> np.ndarray:
        raise NotImplementedError

    def _close(self) -> None:
        pass


class FileCamera(Camera):
    """Frames from an image, a folder of images (in name order, cycling) or arrays.

    With `size=(w, h)` each picture is fitted inside w x h (scaled, padded with grey) the way a
    camera of that resolution would frame it. Decoded pictures are kept (they are not visitors).
    """

    name = "file"

    def __init__(self, source: str | Path | np.ndarray | list[np.ndarray],
                 size: tuple[int, int] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.source = source
        self.size = size
        self._frames: list[np.ndarray] = []
        self._paths: list[Path] = []
        self._index = 0

    def _open(self) -> None:
        src = self.source
        if isinstance(src, np.ndarray):
            self._frames = [self._fit(src)]
        elif isinstance(src, list):
            self._frames = [self._fit(a) for a in src]
        else:
            path = Path(src)
            if path.is_dir():
                self._paths = sorted(p for p in path.iterdir()
                                     if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
                if not self._paths:
                    raise CameraError(f"file camera: no images in folder {path}")
            elif path.is_file():
                self._paths = [path]
            else:
                raise CameraError(f"file camera: {path} does not exist")
            self._frames = []
        if not self._frames and not self._paths:
            raise CameraError("file camera: no frames")

    def _grab(self) -> np.ndarray:
        if self._frames and not self._paths:
            frame = self._frames[self._index % len(self._frames)]
            self._index += 1
            return frame.copy()
        from appliance.images import ImageError, load_image

        last = ""
        for _ in range(len(self._paths)):
            path = self._paths[self._index % len(self._paths)]
            self._index += 1
            try:
                return self._fit(load_image(path))
            except ImageError as exc:  # a corrupt file is skipped and reported
                log.warning("file camera: skipping %s", exc)
                last = str(exc)
        raise CameraError(f"file camera: no readable image (last: {last})")

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        from appliance.images import array_to_rgb

        rgb = array_to_rgb(rgb)
        if self.size is None:
            return rgb
        return fit_inside(rgb, *self.size)

    def _close(self) -> None:
        pass


def fit_inside(rgb: np.ndarray, width: int, height: int, fill: int = 128) -> np.ndarray:
    """`rgb` scaled to fit inside width x height, centred on a grey canvas of that size."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        rgb = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.LANCZOS))
    canvas = np.full((height, width, 3), fill, np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = rgb
    return canvas


class OpenCVCamera(Camera):
    """A USB webcam (V4L2) through OpenCV's VideoCapture."""

    name = "opencv"

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.device = device
        self.width, self.height = width, height
        self._cap: Any = None

    def _open(self) -> None:
        import cv2

        # our one-line CameraError says it; OpenCV's own warnings would repeat on every retry
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        device: int | str = self.device
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        cap = cv2.VideoCapture(device)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"opencv camera: no camera at {_device_name(device)}")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def _grab(self) -> np.ndarray:
        import cv2

        if self._cap is None:
            raise CameraError("opencv camera: not open")
        self._cap.grab()  # drop a frame that may have waited in the driver's buffer
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise CameraError(f"opencv camera: no frame from {_device_name(self.device)}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Picamera2Camera(Camera):
    """The Raspberry Pi camera through picamera2/libcamera (kept running: capture is instant)."""

    name = "picamera2"

    def __init__(self, width: int = 640, height: int = 480, **kw: Any) -> None:
        super().__init__(**kw)
        self.width, self.height = width, height
        self._cam: Any = None

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError:
            raise CameraError("picamera2 camera: the picamera2 package is not installed "
                              "(Raspberry Pi OS: apt install python3-picamera2)") from None
        try:
            cam = Picamera2()
        except Exception as exc:  # IndexError/RuntimeError when no camera is connected
            raise CameraError(f"picamera2 camera: no camera found ({one_line(exc)})") from None
        try:
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"}, buffer_count=2
            )
            cam.configure(config)
            cam.start()
        except Exception:
            cam.close()
            raise
        self._cam = cam

    def _grab(self) -> np.ndarray:
        if self._cam is None:
            raise CameraError("picamera2 camera: not open")
        frame = self._cam.capture_array("main")
        return frame[..., 2::-1]  # libcamera's RGB888 is B, G, R in memory

    def _close(self) -> None:
        if self._cam is not None:
            cam, self._cam = self._cam, None
            try:
                cam.stop()
            finally:
                cam.close()


def make_camera(settings: CameraSettings, source: Any = None) -> Camera:
    """The configured camera (not yet opened). `source` overrides `camera.source` (demo)."""
    s = settings
    common = {"warmup_frames": s.warmup_frames, "settle_seconds": s.settle_seconds,
              "rotate": s.rotate, "mirror": s.mirror}
    backend = s.backend
    if source is not None or s.source is not None:
        backend = "file"
    if backend == "file":
        src = source if source is not None else s.source
        if src is None:
            raise CameraError("file camera: set camera.source to an image or a folder of images")
        return FileCamera(src, size=(s.width, s.height),
                          **{**common, "warmup_frames": 0, "settle_seconds": 0.0})
    if backend == "picamera2" or (backend == "auto" and _has_picamera2()):
        return Picamera2Camera(s.width, s.height, **common)
    return OpenCVCamera(s.device, s.width, s.height, **common)


def _has_picamera2() -> bool:
    import importlib.util

    return importlib.util.find_spec("picamera2") is not None


def _device_name(device: int | str) -> str:
    return f"/dev/video{device}" if isinstance(device, int) else str(device)
