"""Pictures the bot sends: an invite's QR code and simple bar charts (PNG bytes, no I/O but font lookup).

Both are pure functions of their arguments, so the same input gives the same bytes; callers in async code
may run them in a thread (``asyncio.to_thread``) — a chart takes a few milliseconds.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import segno
from PIL import Image, ImageDraw, ImageFont

QR_SCALE = 8  # pixels per module: sharp on a phone without resampling
QR_BORDER = 4  # the quiet zone the QR standard asks for
QR_ERROR = "m"  # survives a crease or a glare on a printed invite

CHART_HEIGHT = 420
CHART_MIN_WIDTH = 640
CHART_MAX_WIDTH = 1280
CHART_SLOT = 72  # px per bar before the width is capped
PADDING = 24
BAR_COLOR = (76, 120, 168)
TEXT_COLOR = (33, 37, 41)
MUTED_COLOR = (108, 117, 125)
AXIS_COLOR = (173, 181, 189)
BACKGROUND = (255, 255, 255)

# fonts with Cyrillic glyphs, at their usual places (Debian/Ubuntu, Fedora, Arch, Alpine, macOS)
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
)
BOLD_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Bold.ttf",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def invite_qr_png(deep_link: str) -> bytes:
    """A QR code of an invite's deep link (``https://t.me/<bot>?start=<code>``), as PNG bytes."""
    if not deep_link:
        raise ValueError("an empty link has no QR code")
    buffer = io.BytesIO()
    invite_qr(deep_link).save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return buffer.getvalue()


def invite_qr(deep_link: str) -> segno.QRCode:
    # micro=False: phone cameras do not read Micro QR
    return segno.make(deep_link, error=QR_ERROR, micro=False)


def bar_chart_png(title: str, labels: list[str], values: list[float], *, unit: str = "") -> bytes:
    """A bar chart: a title, one bar per label with its value above it, the labels below.

    Negative values are drawn as empty bars (the label shows the number); no data draws an empty frame
    with a dash, so a report for a quiet week still renders."""
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    if not all(math.isfinite(value) for value in values):
        raise ValueError("values must be finite numbers")

    count = len(values)
    width = max(CHART_MIN_WIDTH, min(CHART_MAX_WIDTH, 2 * PADDING + count * CHART_SLOT))
    image = Image.new("RGB", (width, CHART_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font, value_font, label_font = _font(24, bold=True), _font(15), _font(14)

    title_text = _fit(draw, title, title_font, width - 2 * PADDING)
    draw.text((PADDING, PADDING), title_text, font=title_font, fill=TEXT_COLOR)

    value_height = _line_height(draw, value_font)
    label_height = _line_height(draw, label_font)
    plot_top = PADDING + _line_height(draw, title_font) + 16 + value_height + 6
    baseline = CHART_HEIGHT - PADDING - label_height - 10
    left, right = PADDING, width - PADDING
    draw.line([(left, baseline), (right, baseline)], fill=AXIS_COLOR, width=2)

    if count == 0:
        _centered(draw, "—", value_font, (left + right) / 2, (plot_top + baseline) / 2, MUTED_COLOR)
        return _png(image)

    top_value = max(max(values), 0.0)
    slot = (right - left) / count
    bar_width = max(2.0, slot * 0.6)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        centre = left + slot * (index + 0.5)
        # all-zero data: no bar has height, nothing divides by zero
        height = 0.0 if top_value == 0 else max(value, 0.0) / top_value * (baseline - plot_top)
        bar_top = baseline - height
        if height >= 1:
            draw.rectangle([(centre - bar_width / 2, bar_top), (centre + bar_width / 2, baseline - 1)], fill=BAR_COLOR)
        value_text = _fit(draw, _format_value(value, unit), value_font, slot - 4)
        _centered(draw, value_text, value_font, centre, bar_top - 6 - value_height / 2, TEXT_COLOR)
        label_text = _fit(draw, label, label_font, slot - 4)
        _centered(draw, label_text, label_font, centre, baseline + 10 + label_height / 2, MUTED_COLOR)
    return _png(image)


def _format_value(value: float, unit: str) -> str:
    if value == int(value):
        text = f"{int(value):,}".replace(",", "\u00a0")  # 150 000: the Russian grouping, never split
    else:
        text = f"{value:,.1f}".replace(",", "\u00a0")
    return f"{text}\u00a0{unit}" if unit else text


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, max_width: float) -> str:
    """The text, cut with an ellipsis until it fits."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "…", font=font) > max_width:
        text = text[:-1]
    return text.rstrip() + "…" if text else ""


def _centered(draw: ImageDraw.ImageDraw, text: str, font: Font, x: float, y: float, fill: tuple[int, int, int]) -> None:
    if text:
        draw.text((x, y), text, font=font, fill=fill, anchor="mm")


def _line_height(draw: ImageDraw.ImageDraw, font: Font) -> int:
    # ascent to descent of letters with both, so Cyrillic capitals and descenders are never clipped
    box = draw.textbbox((0, 0), "ЙДgy", font=font)
    return int(box[3] - box[1])


@lru_cache(maxsize=16)
def _font(size: int, *, bold: bool = False) -> Font:
    """A TrueType font with Cyrillic if one is installed, else Pillow's own (Latin only on some builds)."""
    for path in BOLD_FONT_CANDIDATES if bold else FONT_CANDIDATES:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    if bold:
        return _font(size)
    return ImageFont.load_default(size=size)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
