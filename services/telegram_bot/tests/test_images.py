"""The bot's pictures: PNG bytes that show what they should."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import segno
from PIL import Image, ImageChops, ImageDraw

from services.telegram_bot import images
from services.telegram_bot.images import bar_chart_png, invite_qr_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LINK = "https://t.me/RepitBot?start=Ab3_x-9Zq0LmNoPqRsTu"


def _open(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image


def test_invite_qr_is_a_png_of_exactly_the_links_qr_matrix() -> None:
    png = invite_qr_png(LINK)
    image = _open(png).convert("L")

    # no QR decoder is installed: read every module back from the pixels and compare it with the
    # matrix segno computes for the link itself
    expected = segno.make(LINK, error="m", micro=False)
    modules = len(expected.matrix)
    scale, border = images.QR_SCALE, images.QR_BORDER
    assert image.size == ((modules + 2 * border) * scale,) * 2
    read_back = [
        [
            image.getpixel(((border + col) * scale + scale // 2, (border + row) * scale + scale // 2)) < 128
            for col in range(modules)
        ]
        for row in range(modules)
    ]
    assert read_back == [[bool(bit) for bit in row] for row in expected.matrix]
    assert image.getpixel((0, 0)) == 255  # a white quiet zone
    assert expected.designator.endswith("-M")

    assert invite_qr_png(LINK + "x") != png  # another invite, another picture


def test_invite_qr_refuses_an_empty_link() -> None:
    with pytest.raises(ValueError):
        invite_qr_png("")


def test_bar_chart_is_a_png_of_the_expected_size() -> None:
    png = bar_chart_png("Уроки по неделям", ["1 нед", "2 нед", "3 нед"], [3, 5, 2], unit="ур.")
    image = _open(png)
    assert image.size == (images.CHART_MIN_WIDTH, images.CHART_HEIGHT)
    assert image.mode == "RGB"
    assert images.BAR_COLOR in {color for _, color in image.getcolors(maxcolors=1 << 16)}

    many = _open(bar_chart_png("Дни", [str(day) for day in range(1, 31)], [float(day) for day in range(30)]))
    assert many.size == (images.CHART_MAX_WIDTH, images.CHART_HEIGHT)


def test_bar_heights_follow_the_values() -> None:
    image = _open(bar_chart_png("t", ["a", "b"], [10, 5]))

    def bar_height(x: int) -> int:
        return sum(image.getpixel((x, y)) == images.BAR_COLOR for y in range(image.height))

    width = image.width - 2 * images.PADDING
    tall, short = bar_height(images.PADDING + width // 4), bar_height(images.PADDING + 3 * width // 4)
    assert short > 0 and abs(tall - 2 * short) <= 2


def test_different_data_gives_different_pictures_and_the_same_gives_the_same() -> None:
    first = bar_chart_png("Оплаты", ["янв", "фев"], [1500, 3000], unit="₽")
    assert bar_chart_png("Оплаты", ["янв", "фев"], [1500, 3000], unit="₽") == first
    assert bar_chart_png("Оплаты", ["янв", "фев"], [1500, 3100], unit="₽") != first
    assert bar_chart_png("Оплаты", ["янв", "мар"], [1500, 3000], unit="₽") != first
    assert bar_chart_png("Выплаты", ["янв", "фев"], [1500, 3000], unit="₽") != first


@pytest.mark.parametrize(
    ("labels", "values"),
    [
        ([], []),
        (["пн", "вт", "ср"], [0, 0, 0]),
        (["a"], [-2.5]),
        (["очень длинная подпись столбца"] * 3, [1e9, 0.5, 7]),
    ],
    ids=["empty", "zeros", "negative", "long-labels-and-big-numbers"],
)
def test_edge_data_renders(labels: list[str], values: list[float]) -> None:
    image = _open(bar_chart_png("Пусто? " * 20, labels, values, unit="ч"))
    assert image.size == (images.CHART_MIN_WIDTH, images.CHART_HEIGHT)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        bar_chart_png("t", ["a", "b"], [1])
    with pytest.raises(ValueError):
        bar_chart_png("t", ["a"], [float("nan")])


def test_value_format_groups_thousands_and_keeps_one_decimal() -> None:
    assert images._format_value(150000, "₽") == "150\u00a0000\u00a0₽"
    assert images._format_value(2.34, "") == "2.3"
    assert images._format_value(0, "") == "0"


def test_cyrillic_renders_as_letters_not_boxes() -> None:
    # DejaVu comes with Debian's fonts-dejavu-core (make deps, .ci/run, the bot's image)
    assert Path(images.FONT_CANDIDATES[0]).exists()
    font = images._font(32)

    def glyph(letter: str) -> Image.Image:
        canvas = Image.new("L", (48, 48), 0)
        ImageDraw.Draw(canvas).text((8, 4), letter, font=font, fill=255)
        return canvas

    # a font without Cyrillic draws the same "missing glyph" box for every letter
    assert ImageChops.difference(glyph("Ж"), glyph("Щ")).getbbox() is not None
    assert glyph("Ж").getbbox() is not None
