"""Camera backends: file/folder source, OpenCV (on a video file), picamera2 (faked), retries."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image

from appliance.config import ConfigError, parse
from appliance.parts.camera import (
    Camera,
    CameraError,
    FileCamera,
    OpenCVCamera,
    Picamera2Camera,
    fit_inside,
    make_camera,
)
from appliance.parts.settings import CameraSettings


def pattern(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_file_camera_single_image(tmp_path):
    img = pattern()
    Image.fromarray(img).save(tmp_path / "a.png")
    with FileCamera(tmp_path / "a.png") as cam:
        assert np.array_equal(cam.capture(), img)
        assert np.array_equal(cam.capture(), img)


def test_file_camera_folder_cycles_in_name_order_and_skips_corrupt(tmp_path, caplog):
    a, b = pattern(seed=1), pattern(seed=2)
    Image.fromarray(b).save(tmp_path / "b.png")
    Image.fromarray(a).save(tmp_path / "a.png")
    (tmp_path / "c.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    cam = FileCamera(tmp_path)
    got = [cam.capture() for _ in range(4)]
    assert np.array_equal(got[0], a) and np.array_equal(got[1], b)
    assert np.array_equal(got[2], a)  # c.jpg skipped, cycling
    assert "c.jpg" in caplog.text
    cam.close()


def test_file_camera_errors_are_one_line(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        FileCamera(tmp_path / "missing.jpg").open()
    with pytest.raises(CameraError, match="no images in folder"):
        FileCamera(tmp_path).open()
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(CameraError, match="no readable image"):
        FileCamera(tmp_path).capture()


def test_file_camera_arrays_and_fit():
    src = pattern(100, 50)
    cam = FileCamera([src], size=(64, 48))
    frame = cam.capture()
    assert frame.shape == (48, 64, 3)
    frame[:] = 0  # the caller may scribble on its frame; the source stays intact
    assert cam.capture().any()


def test_fit_inside_letterboxes_without_cropping():
    src = np.full((100, 50, 3), 255, np.uint8)
    out = fit_inside(src, 80, 60)
    assert out.shape == (60, 80, 3)
    cols = np.where(out[30, :, 0] == 255)[0]
    assert (cols.min(), cols.max()) == (25, 54)  # 30 wide, centred
    assert out[:, :25].max() == 128 and (out[:, :, 0] == 255).sum() == 30 * 60


@pytest.mark.parametrize(("rotate", "mirror"), [(0, False), (90, False), (180, True), (270, True)])
def test_rotation_and_mirror(rotate, mirror):
    src = pattern(6, 8)
    frame = FileCamera(src, rotate=rotate, mirror=mirror).capture()
    want = np.rot90(src, k=-(rotate // 90))
    if mirror:
        want = want[:, ::-1]
    assert np.array_equal(frame, want)
    if rotate == 90:  # clockwise: the top-left pixel ends up top-right
        assert np.array_equal(frame[0, -1], src[0, 0])


class Flaky(Camera):
    name = "flaky"

    def __init__(self, fail_grabs=0, fail_opens=0, **kw):
        super().__init__(**kw)
        self.fail_grabs, self.fail_opens = fail_grabs, fail_opens
        self.opens = self.closes = self.grabs = 0

    def _open(self):
        self.opens += 1
        if self.fail_opens:
            self.fail_opens -= 1
            raise OSError("device busy")

    def _grab(self):
        self.grabs += 1
        if self.fail_grabs:
            self.fail_grabs -= 1
            raise OSError("frame lost")
        return np.zeros((2, 2, 3), np.uint8)

    def _close(self):
        self.closes += 1


def test_warmup_frames_are_discarded_on_open():
    cam = Flaky(warmup_frames=4)
    cam.open()
    assert cam.grabs == 4
    cam.capture()
    assert cam.grabs == 5 and cam.opens == 1


def test_lost_frame_is_retried_once_after_reopening():
    cam = Flaky(fail_grabs=1)
    cam.open()
    assert cam.capture().shape == (2, 2, 3)
    assert cam.opens == 2 and cam.closes == 1


def test_camera_gone_raises_one_line_camera_error_and_recovers_later():
    cam = Flaky(fail_grabs=2)
    cam.open()
    with pytest.raises(CameraError, match="flaky camera: frame lost"):
        cam.capture()
    assert not cam.is_open
    cam.capture()  # the camera came back: the next capture reopens it
    assert cam.is_open


def test_open_failure_is_camera_error():
    cam = Flaky(fail_opens=1)
    with pytest.raises(CameraError, match="device busy"):
        cam.open()
    cam.open()
    assert cam.is_open


def test_opencv_missing_device_is_camera_error():
    with pytest.raises(CameraError, match="no camera at /dev/video"):
        OpenCVCamera("/dev/video99").open()


def test_opencv_reads_rgb_frames_from_a_video(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG")
    frame_rgb = np.zeros((48, 64, 3), np.uint8)
    frame_rgb[..., 0] = 220  # red
    for _ in range(10):
        writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    cam = OpenCVCamera(path, warmup_frames=2)
    got = cam.capture()
    assert got.shape == (48, 64, 3)
    assert got[..., 0].mean() > 180 and got[..., 2].mean() < 40  # red stays red (BGR -> RGB)
    cam.close()


def test_picamera2_not_installed_is_camera_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="picamera2 package is not installed"):
        Picamera2Camera().open()


def test_picamera2_backend_with_a_fake_library(monkeypatch):
    calls = []

    class FakePicamera2:
        def __init__(self):
            calls.append("init")

        def create_video_configuration(self, main, buffer_count):
            calls.append(("config", main["size"], main["format"]))
            return main

        def configure(self, config):
            calls.append("configure")

        def start(self):
            calls.append("start")

        def capture_array(self, stream):
            bgr = np.zeros((4, 6, 3), np.uint8)
            bgr[..., 0] = 200  # blue channel first, as libcamera's RGB888 lays it out
            return bgr

        def stop(self):
            calls.append("stop")

        def close(self):
            calls.append("close")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    cam = Picamera2Camera(6, 4, warmup_frames=1)
    frame = cam.capture()
    assert frame[..., 2].min() == 200 and frame[..., 0].max() == 0  # now R, G, B
    cam.close()
    assert calls[:4] == ["init", ("config", (6, 4), "RGB888"), "configure", "start"]
    assert calls[-2:] == ["stop", "close"]


def test_picamera2_no_camera_connected(monkeypatch):
    def no_camera():
        raise IndexError("list index out of range")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=no_camera))
    with pytest.raises(CameraError, match="no camera found"):
        Picamera2Camera().open()


def test_make_camera_choices(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    assert isinstance(make_camera(CameraSettings(backend="opencv")), OpenCVCamera)
    cam = make_camera(CameraSettings(), source=pattern())
    assert isinstance(cam, FileCamera) and cam.capture().shape == (480, 640, 3)
    with pytest.raises(CameraError, match=r"camera\.source"):
        make_camera(CameraSettings(backend="file"))
    s = parse(CameraSettings, {"backend": "file", "source": str(tmp_path), "rotate": 180},
              "camera")
    assert isinstance(make_camera(s), FileCamera)


def test_camera_settings_validation():
    with pytest.raises(ConfigError, match=r"camera.rotate' = 45: expected one of 0, 90"):
        parse(CameraSettings, {"rotate": 45}, "camera")
    with pytest.raises(ConfigError, match=r"camera.width"):
        parse(CameraSettings, {"width": 10}, "camera")
