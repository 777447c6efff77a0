"""The plain ticket printed when the composed one cannot be: a few centred lines of text in
Pillow's own font (no font file, no photo), so a visitor is never left without an answer."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

#: The plain answer to a photo without a usable face.
NO_FACE_TEXT = ("No face found", "Stand in front of the camera,", "look at it, and press again.")


def simple_text_ticket(lines: tuple[str, ...], width: int) -> Image.Image:
    """A plain 1-bit ticket `width` dots wide with `lines` centred."""
    try:
        font = ImageFont.load_default(size=max(16, width // 18))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    line_height = int(font.size * 1.5) if hasattr(font, "size") else 24
    height = line_height * (len(lines) + 2)
    image = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        w = draw.textlength(text, font=font)
        draw.text(((width - w) / 2, line_height * (i + 1)), text, font=font, fill=0)
    return image
