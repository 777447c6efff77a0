"""The map's images: WebP encoding, JPEG thumbnails decoded reduced, sheets against their index."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.cartography import sheets as face_images
from appliance.cartography.encoding import SUFFIX, encode_webp
from appliance.cartography.site import MapOptions, build_site


def _jpeg(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _smooth(rng: np.random.Generator, h: int, w: int, colour: bool) -> np.ndarray:
    """A face-like smooth image (noise blurred up from a coarse grid)."""
    coarse = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), *((3,) if colour else ())))
    return np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((w, h),
                                                                      Image.Resampling.BICUBIC))


@settings(max_examples=30, deadline=None)
@given(w=st.integers(1, 700), h=st.integers(1, 700), colour=st.booleans(),
       progressive=st.booleans(), comment=st.binary(max_size=300))
def test_the_jpeg_frame_size_is_the_one_pillow_reads(w, h, colour, progressive, comment):
    pixels = np.zeros((h, w, 3) if colour else (h, w), np.uint8)
    blob = _jpeg(pixels, progressive=progressive, comment=comment)
    assert face_images.jpeg_frame_size(blob) == Image.open(io.BytesIO(blob)).size == (w, h)


@pytest.mark.parametrize("blob", [b"", b"\xff\xd8", b"\xff\xd8\xff\xda\x00\x02",
                                  b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\xff\xff" * 3])
def test_no_frame_size_from_what_is_not_a_whole_jpeg_header(blob):
    assert face_images.jpeg_frame_size(blob) is None


class _Thumbs:
    """A corpus of encoded thumbnails only (what decode_thumbnail reads)."""

    def __init__(self, blobs: list[bytes]) -> None:
        self.blobs, self.count, self.manifest = blobs, len(blobs), {}

    def thumbnail_bytes(self, i: int) -> bytes:
        return self.blobs[i]

    def thumbnail(self, i: int) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.blobs[i])))


@settings(max_examples=20, deadline=None)
@given(side=st.sampled_from([96, 128, 200, 256]), size=st.sampled_from([8, 16, 32, 48, 64, 128]),
       colour=st.booleans(), gray_source=st.booleans(), seed=st.integers(0, 2**31))
def test_thumbnails_decoded_reduced_are_pillows_draft_pixels(side, size, colour, gray_source,
                                                             seed):
    """OpenCV's reduced decode (the fast path) gives the bytes PIL's draft mode gave."""
    pixels = _smooth(np.random.default_rng(seed), side, side, not gray_source)
    corpus = _Thumbs([_jpeg(pixels, quality=92)])
    got = face_images.decode_thumbnail(corpus, 0, size, {}, colour=colour)
    mode = "RGB" if colour else "L"
    with Image.open(io.BytesIO(corpus.blobs[0])) as image:
        image.draft(mode, (size, size))
        want = face_images.resize(np.asarray(image.convert(mode)), size)
    assert got.shape == want.shape == ((size, size, 3) if colour else (size, size))
    np.testing.assert_array_equal(got, want)


def test_webp_images_decode_close_to_their_pixels_and_shrink_with_quality():
    rng = np.random.default_rng(3)
    image = _smooth(rng, 256, 512, True)
    sizes = []
    for quality in (50, 75, 95):
        data = encode_webp(image, quality)
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.format == "WEBP" and decoded.size == (512, 256)
            back = np.asarray(decoded.convert("RGB"), np.int16)
        assert np.abs(back - image).mean() < 4
        sizes.append(len(data))
    assert sizes[0] < sizes[1] < sizes[2]
    gray = encode_webp(image[:, :, 1], 75)  # one plane: channels equal once decoded
    back = np.asarray(Image.open(io.BytesIO(gray)).convert("RGB"), np.int16)
    assert np.ptp(back, axis=2).max() <= 1 and len(gray) < sizes[1]
    with pytest.raises(ValueError, match="WebP quality 101"):
        encode_webp(image, 101)


class _Faces:
    """A small corpus of distinct smooth colour faces stored as JPEG thumbnails."""

    def __init__(self, n: int, side: int = 128) -> None:
        rng = np.random.default_rng(n)
        self.count, self.dim, self.synthetic = n, 16, False
        self.blobs = [_jpeg(_smooth(rng, side, side, True), quality=92) for _ in range(n)]
        self.vectors = rng.standard_normal((n, 16)).astype(np.float32)
        self.coords3d = self.vectors[:, :3].astype(np.float64)
        self.coords2d = self.coords3d[:, :2]
        self.manifest = {"thumbnails": {"size": side, "gray": False}}
        self.path = "faces"

        class _Pca:
            explained_variance = np.ones(3)
            explained_variance_ratio = np.full(3, 0.1)

            @staticmethod
            def project(x):
                return np.atleast_2d(np.asarray(x, np.float64))[:, :3]

        self.pca = _Pca()

    def thumbnail_bytes(self, i: int) -> bytes:
        return self.blobs[i]

    def thumbnail(self, i: int) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.blobs[i])).convert("L"))

    def source(self, i: int) -> str:
        return f"face-{i}.jpg"


def _points(out) -> dict:
    text = (out / "data" / "points.js").read_text()
    return json.loads(text[len("window.SOSIE_POINTS = "):].rstrip().rstrip(";"))


def test_every_face_is_in_its_sheet_cell_and_the_sheets_are_webp(tmp_path):
    corpus = _Faces(300)
    build_site(corpus, tmp_path, options=MapOptions(neighbours=2, workers=2))
    place = np.frombuffer(base64.b64decode(_points(tmp_path)["place"]), "<u4")
    sheets = sorted((tmp_path / "sheets").iterdir())
    assert [p.name for p in sheets] == sorted(f"{s}{SUFFIX}" for s in range(2))
    cells = []
    for path in sorted(sheets, key=lambda p: int(p.stem)):
        with Image.open(path) as image:
            assert image.format == "WEBP"
            pixels = np.asarray(image.convert("RGB"), np.int16)
        px = pixels.shape[1] // 16
        cells += [pixels[r * px : (r + 1) * px, c * px : (c + 1) * px]
                  for r in range(pixels.shape[0] // px) for c in range(16)]
    want = np.stack([face_images.decode_thumbnail(corpus, i, px, {}, colour=True)
                     for i in range(corpus.count)]).astype(np.int16)
    got = np.stack([cells[p] for p in place])  # face i's cell, by the index the pages read
    errors = np.abs(got - want).mean(axis=(1, 2, 3))
    assert errors.max() < 6
    # and no other face is as close to any cell (the index is not off by one anywhere)
    shifted = np.abs(got - np.roll(want, 1, axis=0)).mean(axis=(1, 2, 3))
    assert (shifted > errors).all()
    for path in (tmp_path / "tiles").rglob("*"):
        if path.is_file():
            assert path.suffix == SUFFIX and Image.open(path).format == "WEBP"
    # the 3-D atlas is a JPEG (the first frame waits for its decoding): cell i is face i
    text = (tmp_path / "data" / "atlas3d.js").read_text()
    atlas = json.loads(text[len("window.SOSIE_ATLAS = "):].rstrip().rstrip(";"))
    head, data = atlas["src"].split(",", 1)
    assert head == "data:image/jpeg;base64"
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        assert image.format == "JPEG"
        pixels = np.asarray(image.convert("RGB"), np.int16)
    cell, columns = atlas["cell"], atlas["columns"]
    for i in (0, 137, corpus.count - 1):
        r, c = divmod(i, columns)
        got = pixels[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell]
        face = face_images.decode_thumbnail(corpus, i, cell, {}, colour=True)
        assert np.abs(got - face).mean() < 8
