"""Face thumbnails in one pack file with an offset index (random access by row).

Thumbnails are colour (RGB) since corpus builds keep what the generators made; corpora built
before that hold grayscale ones, and both decode either way: `decode(..., colour=False)` (what
the ticket prints) gives ITU-R 601 luminance, `colour=True` (the maps) gives RGB, gray rows
repeated in three channels.

`thumbs.pack` holds encoded images back to back; `thumbs.idx` is an (N, 2) little-endian uint64
array of (byte offset, byte length) per row. Rows may share bytes (synthetic corpora reuse a few
placeholder images), and reading row i costs one `pread`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from PIL import Image

from appliance.corpus.format import MAX_THUMBNAIL_SIZE, CorpusError
from appliance.faces.crops import to_gray
from appliance.images import encode_jpeg

Encoding = Literal["png", "jpeg", "raw"]
INDEX_DTYPE = np.dtype("<u8")
MAX_THUMBNAIL_PIXELS = MAX_THUMBNAIL_SIZE**2


def encode(pixels: np.ndarray, encoding: Encoding, quality: int = 92) -> bytes:
    """Bytes of a uint8 image, gray (h, w) or RGB (h, w, 3): PNG (lossless), JPEG (baseline;
    colour with 4:2:0 chroma) or raw pixels (h*w or h*w*3 bytes)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"thumbnail must be a (h, w) gray or (h, w, 3) RGB array, got shape "
                         f"{pixels.shape}")
    if encoding == "raw":
        return pixels.tobytes()
    if encoding == "jpeg":  # libjpeg-turbo through OpenCV: Pillow's very bytes, a bit sooner
        return encode_jpeg(pixels, quality, optimize=True)
    if encoding != "png":
        raise ValueError(f"unknown thumbnail encoding {encoding!r} (expected png, jpeg or raw)")
    buffer = io.BytesIO()
    image = Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB")
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def decode(data: bytes, encoding: Encoding, size: int, *, colour: bool = False) -> np.ndarray:
    """The image encoded in `data`: (h, w) uint8 luminance, or (h, w, 3) RGB with `colour`.

    Raw thumbnails are `size` x `size`, gray (size² bytes) or RGB (3·size² bytes)."""
    if encoding == "raw":
        if len(data) == size * size:
            pixels = np.frombuffer(data, dtype=np.uint8).reshape(size, size)
        elif len(data) == 3 * size * size:
            pixels = np.frombuffer(data, dtype=np.uint8).reshape(size, size, 3)
        else:
            raise ValueError(f"raw thumbnail has {len(data)} bytes, expected {size * size} "
                             f"(gray) or {3 * size * size} (RGB)")
    else:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_THUMBNAIL_PIXELS:  # a bomb in a hostile pack
                raise ValueError(f"{image.width}x{image.height} is larger than any thumbnail")
            image.load()
            pixels = np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB"))
    if colour:
        return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels.copy()
    # the analyzer's own luminance: a colour PNG thumbnail decodes to exactly the gray crop
    # the build used to store
    return to_gray(pixels) if pixels.ndim == 3 else pixels.copy()


class PackWriter:
    """Appends encoded thumbnails to a pack file and collects their index rows."""

    def __init__(self, pack: BinaryIO) -> None:
        self._pack = pack
        self._offset = pack.tell()
        self._rows: list[tuple[int, int]] = []

    def add(self, blob: bytes) -> None:
        """Append one row's encoded thumbnail."""
        self._pack.write(blob)
        self._rows.append((self._offset, len(blob)))
        self._offset += len(blob)

    def index(self) -> np.ndarray:
        """The (N, 2) little-endian uint64 offset index of the rows added so far."""
        return np.array(self._rows, dtype=INDEX_DTYPE).reshape(-1, 2)


class PackReader:
    """Random access to the thumbnails of a corpus by row (thread-safe: `os.pread`)."""

    def __init__(self, pack: Path, index: Path, count: int, encoding: Encoding, size: int):
        self.pack_path, self.index_path = Path(pack), Path(index)
        self.count, self.encoding, self.size = count, encoding, size
        self._fd = os.open(self.pack_path, os.O_RDONLY)
        self._pack_bytes = os.fstat(self._fd).st_size
        if count:
            self.index = np.memmap(self.index_path, dtype=INDEX_DTYPE, mode="r", shape=(count, 2))
        else:
            self.index = np.zeros((0, 2), dtype=INDEX_DTYPE)

    def check(self) -> None:
        """Every index row lies inside the pack file (a vectorised pass over the index)."""
        if not self.count:
            return
        offsets, lengths = self.index[:, 0], self.index[:, 1]
        pack = np.uint64(self._pack_bytes)
        # offset + length > pack, without letting a hostile uint64 sum wrap round to small
        outside = (lengths > pack) | (offsets > pack - np.minimum(lengths, pack))
        if outside.any():
            worst = int(np.argmax(outside))
            raise self._past_end(worst, int(offsets[worst]), int(lengths[worst]))

    def _past_end(self, row: int, offset: int, length: int) -> CorpusError:
        return CorpusError(f"{self.index_path}: row {row} points past the end of "
                           f"{self.pack_path.name} (offset {offset} + {length} bytes > "
                           f"{self._pack_bytes} bytes)")

    def blob(self, row: int) -> bytes:
        """The encoded bytes of `row`."""
        if not 0 <= row < self.count:
            raise IndexError(f"thumbnail row {row} out of range (corpus has {self.count} rows)")
        offset, length = (int(v) for v in self.index[row])
        if length > self._pack_bytes or offset > self._pack_bytes - length:  # `check` may be
            raise self._past_end(row, offset, length)  # still to come (`Corpus.open`)
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise CorpusError(f"{self.pack_path}: row {row} is truncated")
        return data

    def image(self, row: int, colour: bool = False) -> np.ndarray:
        """The decoded thumbnail of `row`: (h, w) uint8 luminance, or (h, w, 3) RGB."""
        data = self.blob(row)
        try:
            return decode(data, self.encoding, self.size, colour=colour)
        except Exception as exc:  # any decoder failure: DecompressionBombError, SyntaxError...
            problem = f"row {row} is not a readable image ({exc})"
            raise CorpusError(f"{self.pack_path}: {problem}") from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
