"""A PNG bar chart written with zlib alone (no plotting library is needed to
run the benchmarks): per workload, one horizontal bar per comparator for its
time relative to native, on a log scale, labelled with the ratio.

    draw(groups, title, subtitle) -> PNG bytes
    groups = [(heading, [(label, ratio or None, note), ...]), ...]

A ratio of None draws no bar, only the note (e.g. "skipped: not installed")."""
from __future__ import annotations

import math
import struct
import zlib

# 5x7 glyphs, one hex byte per row (top first), bit 4 = leftmost column.
_FONT_HEX = {
    " ": "00000000000000", "0": "0e11131519110e", "1": "040c040404040e",
    "2": "0e11010204081f", "3": "1f02040201110e", "4": "02060a121f0202",
    "5": "1f101e0101110e", "6": "0608101e11110e", "7": "1f010204080808",
    "8": "0e11110e11110e", "9": "0e11110f01020c",
    "a": "00000e010f110f", "b": "1010161911111e", "c": "00000e1010110e",
    "d": "01010d1311110f", "e": "00000e111f100e", "f": "0609081c080808",
    "g": "000f11110f010e", "h": "10101619111111", "i": "04000c0404040e",
    "j": "0200060202120c", "k": "10101214181412", "l": "0c04040404040e",
    "m": "00001a15151111", "n": "00001619111111", "o": "00000e1111110e",
    "p": "00001e111e1010", "q": "00000d130f0101", "r": "00001619101010",
    "s": "00000e100e011e", "t": "08081c08080906", "u": "0000111111130d",
    "v": "00001111110a04", "w": "0000111115150a", "x": "0000110a040a11",
    "y": "000011110f010e", "z": "00001f0204081f",
    ".": "00000000000c0c", ",": "000000000c0408", "-": "0000001f000000",
    "_": "0000000000001f", "(": "02040808080402", ")": "08040202020408",
    ":": "000c0c000c0c00", "/": "00010204081000", "=": "00001f001f0000",
    "<": "02040810080402", ">": "08040201020408", "%": "18190204081303",
    "+": "0004041f040400", "*": "0004150e150400", "?": "0e110102040004",
    "!": "04040404040004", "'": "04040800000000", "[": "0e08080808080e",
    "]": "0e02020202020e", "|": "04040404040404", "#": "0a0a1f0a1f0a0a",
    "µ": "00001111111e10", ";": "000c0c000c0408", "`": "08040200000000", "~": "00000815020000",
}
_FONT = {ch: [int(h[i:i + 2], 16) for i in range(0, 14, 2)] for ch, h in _FONT_HEX.items()}
GLYPH_W, GLYPH_H = 6, 8          # with one column and one row of spacing

WHITE = (255, 255, 255)
BLACK = (30, 30, 30)
GREY = (150, 150, 150)
LIGHT = (225, 225, 225)
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
           (255, 127, 14), (140, 86, 75), (227, 119, 194), (23, 190, 207)]


def _glyph(ch: str) -> list[int]:
    if ch in _FONT:
        return _FONT[ch]
    return _FONT.get(ch.lower(), _FONT["?"])


class Canvas:
    def __init__(self, width: int, height: int):
        self.w, self.h = width, height
        self.px = bytearray(bytes(WHITE) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.w, x + w), min(self.h, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            i = (yy * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def text(self, x: int, y: int, s: str, color=BLACK, scale: int = 2) -> int:
        """Draw s with its top-left corner at (x, y); return the x after it."""
        for ch in s:
            for r, bits in enumerate(_glyph(ch)):
                for c in range(5):
                    if bits & (0x10 >> c):
                        self.rect(x + c * scale, y + r * scale, scale, scale, color)
            x += GLYPH_W * scale
        return x

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        header = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def text_width(s: str, scale: int = 2) -> int:
    return len(s) * GLYPH_W * scale


def _ticks(lo: float, hi: float) -> list[float]:
    out = []
    decade = 10 ** math.floor(math.log10(lo))
    while decade <= hi:
        for m in (1, 2, 5):
            t = m * decade
            if lo <= t <= hi:
                out.append(t)
        decade *= 10
    return out


def _wrap(text: str, chars: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


def draw(groups, title: str, subtitle: str, colors: dict[str, tuple] | None = None) -> bytes:
    """groups: [(heading, [(label, ratio|None, note)])]; returns PNG bytes."""
    s = 2                                         # text scale
    bar_h, row_h, head_h, gap = 12, 18, 22, 8
    labels = [lab for _, bars in groups for lab, _, _ in bars]
    label_w = max(map(text_width, labels), default=0) + 16
    plot_x, plot_w, note_w = 20 + label_w, 640, 260
    width = plot_x + plot_w + note_w
    sub_h = 18 * (len(_wrap(subtitle, (width - 40) // (GLYPH_W * s))) - 1)
    height = 70 + sub_h + sum(head_h + row_h * len(bars) + gap for _, bars in groups) + 40
    ratios = [r for _, bars in groups for _, r, _ in bars if r]
    lo = min([0.8, *ratios])
    hi = max([2.0, *ratios]) * 1.15
    llo, lhi = math.log10(lo), math.log10(hi)

    def xpos(r: float) -> int:
        return plot_x + int((math.log10(r) - llo) / (lhi - llo) * plot_w)

    colors = dict(colors or {})
    c = Canvas(width, height)
    c.text(20, 10, title, BLACK, s)
    sub_lines = _wrap(subtitle, (width - 40) // (GLYPH_W * s))
    for i, line in enumerate(sub_lines):
        c.text(20, 32 + 18 * i, line, GREY, s)
    top, bottom = 60 + 18 * (len(sub_lines) - 1), height - 34
    ticks = _ticks(lo, hi)
    for t in ticks:                               # grid first, bars over it
        x = xpos(t)
        c.rect(x, top, 1 if t != 1 else 2, bottom - top, LIGHT if t != 1 else GREY)
        lab = f"{t:g}x"
        c.text(x - text_width(lab) // 2, bottom + 6, lab, GREY, s)
    y = top + 4
    for heading, bars in groups:
        c.rect(16, y, text_width(heading) + 8, head_h - 2, WHITE)   # no grid under it
        c.text(20, y + 4, heading, BLACK, s)
        y += head_h
        for label, ratio, note in bars:
            color = colors.setdefault(label, PALETTE[len(colors) % len(PALETTE)])
            c.text(20 + label_w - 8 - text_width(label), y + 1, label, color, s)
            if ratio:
                x0, x1 = xpos(min(1.0, ratio)), xpos(max(1.0, ratio))
                c.rect(x0, y, max(2, x1 - x0), bar_h, color)
                c.text(max(x1, xpos(1.0)) + 6, y + 1, note, BLACK, s)
            else:
                c.text(xpos(1.0) + 6, y + 1, note, GREY, s)
            y += row_h
        y += gap
    return c.png()
