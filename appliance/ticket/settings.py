"""The ticket's config sections (`installation`, `ticket` with its `tone` and `fonts`): a leaf,
so that `appliance.settings` composes them without loading the ticket's drawing code."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from appliance.config import ConfigError, check_dots, setting
from appliance.dots import MAX_DOTS, MIN_DOTS

Method = Literal["floyd-steinberg", "atkinson", "bayer", "threshold"]
METHODS: tuple[str, ...] = ("floyd-steinberg", "atkinson", "bayer", "threshold")


@dataclass(frozen=True)
class Tone:
    """How a photo is prepared and dithered (config `ticket.tone`)."""

    method: Method = "atkinson"  # floyd-steinberg | atkinson | bayer | threshold
    serpentine: bool = True  # error diffusion alternates direction per row (fewer worms)
    bayer_size: int = setting(8, min=2, max=16)  # ordered-dither matrix side (power of two)
    autocontrast: float = setting(1.0, min=0.0, max=20.0)  # % of darkest/lightest clipped
    #: The mean level (0 ink .. 1 paper), once prepared, of the face region and the whole
    #: photo (their average): each face's tone is normalised to it; 0: no face normalisation
    #: (autocontrast on the whole photo instead).
    face_level: float = setting(0.5, min=0.0, max=0.95)
    black: int = setting(0, min=0, max=254)  # input level printed as full black
    white: int = setting(255, min=1, max=255)  # input level printed as bare paper
    gamma: float = setting(1.25, min=0.2, max=5.0)  # > 1 lifts midtones against dot gain
    contrast: float = setting(1.1, min=0.0, max=4.0)  # around mid-grey, 1 = unchanged
    sharpen: float = setting(80.0, min=0.0, max=500.0)  # unsharp-mask strength %, 0 = off
    sharpen_radius: float = setting(1.2, min=0.1, max=10.0)  # unsharp-mask radius in dots

    def __post_init__(self) -> None:
        if self.bayer_size & (self.bayer_size - 1):
            raise ConfigError(f"config key 'ticket.tone.bayer_size' = {self.bayer_size}: "
                              "expected a power of two (2, 4, 8, 16)")
        if self.white <= self.black:
            raise ConfigError(f"config key 'ticket.tone.white' = {self.white}: expected more "
                              f"than ticket.tone.black ({self.black})")


@dataclass(frozen=True)
class Installation:
    """The installation's identity (config section `installation`)."""

    # printed texts: at most `max_chars` characters, cut after `max_lines` printed lines
    title: str = setting("Sosie", max_chars=80, max_lines=3)
    subtitle: str = setting("Your double among faces that do not exist", max_chars=200,
                            max_lines=4)


@dataclass(frozen=True)
class Fonts:
    """Optional TrueType files replacing the bundled DejaVu faces (empty: bundled)."""

    title: str = ""
    text: str = ""
    bold: str = ""
    note: str = ""


#: The ticket's privacy line, true to `service.keep_captures` (see `privacy_line`).
NOTHING_KEPT = "Nothing of you was kept. Your photo lived in memory for a moment, and is gone."
PHOTO_KEPT = "This installation keeps a copy of your photo. Ask its staff to see or delete it."


def text_lines(cls: type, name: str) -> int:
    """The printed lines the text field `name` of `cls` may take (its `max_lines`)."""
    return next(f.metadata["max_lines"] for f in fields(cls) if f.name == name)


def privacy_line(line: str, keep_captures: bool) -> str:
    """`line`, unless it says nothing was kept while photos are: then PHOTO_KEPT."""
    claims_nothing = "nothing of you was kept" in " ".join(line.lower().split())
    return PHOTO_KEPT if keep_captures and claims_nothing else line


@dataclass(frozen=True)
class TicketLayout:
    """What the ticket shows and how (config section `ticket`)."""

    layout: Literal["classic", "mugshot"] = "classic"
    width: int | None = setting(None, min=MIN_DOTS, max=MAX_DOTS)  # dots; None: the printer's
    lookalikes: int = setting(5, min=1, max=10)  # how many doubles are printed
    columns: int = setting(0, min=0, max=5)  # grid columns after the first; 0: by width
    show_visitor: bool = False  # print the visitor's own face next to their double (classic)
    show_map: bool = True  # the corpus map with the visitor's place
    show_distance: bool = False  # print the raw descriptor distance under each likeness
    map_points: int = setting(4000, min=0, max=200_000)  # corpus dots drawn on the map
    map_height: int = setting(300, min=80, max=2000)  # dots at 576 wide, scales with width
    margin: int = setting(20, min=8, max=100)  # dots at 576 wide, left and right
    number_digits: int = setting(6, min=1, max=12)  # ticket number zero padding
    date_format: str = setting("%d.%m.%Y  %H:%M", max_chars=40, max_lines=1)
    date: Literal["auto", "always", "never"] = "auto"  # auto: only when the clock is synchronised
    # printed as privacy_line(privacy, service.keep_captures)
    privacy: str = setting(NOTHING_KEPT, max_chars=300, max_lines=6)
    retry_hint: str = setting("Face the camera, come a little closer, and press the button "
                              "again.", max_chars=200, max_lines=4)
    conjure: Literal["off", "after"] = "off"  # after: a second ticket with a conjured double
    conjure_seconds: float = setting(20.0, min=1.0, max=300.0)  # its search budget
    tone: Tone = field(default_factory=Tone)
    fonts: Fonts = field(default_factory=Fonts)

    def __post_init__(self) -> None:
        check_dots("ticket.width", self.width)
