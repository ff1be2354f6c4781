"""Every script renders: a Chinese sentence and an emoji are drawn with real glyphs, not the
missing-glyph box, in the token strip and on the heatmap's token axes.

Qt finds the fonts through fontconfig's fallback (the Makefile's ``apt`` step installs WenQuanYi
Micro Hei and Noto Color Emoji). Two checks per place: every glyph Qt lays the label out with
is a real one (glyph 0 is the font's ``.notdef`` box, what a missing character becomes), and
the pixels drawn there show it: the colour emoji puts saturated colour on screen, where the
box or a monochrome outline would only mix the text colour with the background.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QImage, QPainter, QTextLayout

from tests.app.helpers import start_and_wait
from tests.tiny_models import tiny_config, write_vocab

CJK, EMOJI = ("中", "文"), "\U0001f917"  # 中文 "Chinese (language)", 🤗 hugging face
TEXT = f"{CJK[0]}{CJK[1]} {EMOJI} the lord"


def fonts_for(pattern: str) -> str:
    if shutil.which("fc-list") is None:
        return ""
    return subprocess.run(["fc-list", pattern, "family"], capture_output=True, text=True).stdout


pytestmark = pytest.mark.skipif(
    not fonts_for(":lang=zh-cn") or not fonts_for(":charset=1f917:color=true"),
    reason="no CJK or no colour emoji font: run `make apt` (fonts-wqy-microhei, "
    "fonts-noto-color-emoji)",
)


@pytest.fixture(scope="module")
def scripts_root(tmp_path_factory):
    """A tiny BERT (under the demo name) whose vocabulary holds 中, 文 and 🤗 as pieces."""
    from core.loaded_model import LoadedModel, build_model, save_model
    from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, wordpiece_from_vocab

    root = tmp_path_factory.mktemp("scripts")
    vocab = write_vocab(root / "vocab", "bert", 99)
    lines = vocab.read_text(encoding="utf-8").splitlines()
    lines[-3:] = [*CJK, EMOJI]  # in place of three filler pieces
    vocab.write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = SPECIAL_DEFAULTS["bert"]
    tokenizer = Tokenizer(wordpiece_from_vocab(vocab, True, special), special, 64, True)
    config = tiny_config("bert")
    torch.manual_seed(7)
    model = build_model(config)
    model.init_weights()
    model.eval()
    save_model(LoadedModel(config, model, tokenizer, "bert-mini"), root / "models" / "bert-mini")
    return root / "models"


def missing_glyphs(text: str, font: QFont) -> list[str]:
    """The fonts (after Qt's fallback) that draw part of ``text`` as the missing-glyph box."""
    layout = QTextLayout(text, font)
    layout.beginLayout()
    layout.createLine()
    layout.endLayout()
    runs = layout.glyphRuns()
    assert runs, text
    return [r.rawFont().familyName() for r in runs if 0 in list(r.glyphIndexes())]


def colourful_pixels(image: QImage) -> int:
    """Pixels whose channels differ by more than 100 of 255: saturated colour (the chips' tints
    and the text pens are pale or dark; 🤗's yellow face is neither)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    data = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=rgb.sizeInBytes())
    pixels = data.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).astype(int)
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 100).sum())


def axis_image(heatmap, axis) -> QImage:
    """The axis as drawn in the heatmap's scene, at twice its size."""
    rect = axis.sceneBoundingRect()
    image = QImage(int(rect.width()) * 2, int(rect.height()) * 2, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    heatmap.canvas.scene().render(painter, QRectF(image.rect()), rect)
    painter.end()
    return image


def ink(image: QImage) -> int:
    """Pixels darker than mid-grey: drawn text."""
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    h, w, stride = gray.height(), gray.width(), gray.bytesPerLine()
    data = np.frombuffer(gray.constBits(), dtype=np.uint8, count=gray.sizeInBytes())
    return int((data.reshape(h, stride)[:, :w] < 128).sum())


def test_chinese_and_emoji_render_in_the_token_strip_and_axes(qtbot, make_window, scripts_root):
    window = make_window(root=scripts_root)
    window.probe.build_plots()
    strip, heatmap = window.probe.strip, window.probe.heatmap
    axes = (heatmap.plot.row_axis, heatmap.plot.col_axis)
    colour = {}
    for text in (TEXT, TEXT.replace(EMOJI, "the")):  # with the emoji, then without it
        analysis = start_and_wait(qtbot, window, text)
        tokens = analysis.result.token_strings[1:4]
        assert tokens == [*CJK, EMOJI if EMOJI in text else "the"]
        qtbot.waitUntil(lambda t=tokens: all(a._labels[1:4] == t for a in axes))
        fonts = [strip._font(False), strip._font(True), *(a.tick_font() for a in axes)]
        assert all(missing_glyphs(text, font) == [] for font in fonts)  # no box anywhere
        shot = strip.grab().toImage()
        ratio = shot.devicePixelRatio()
        chips = [
            shot.copy(*(round(v * ratio) for v in strip.rects[i].getRect())) for i in (1, 2, 3)
        ]
        assert min(ink(chip) for chip in chips[:2]) > 10  # 中 and 文 are drawn
        colour[text] = [colourful_pixels(chip) for chip in chips] + [
            colourful_pixels(axis_image(heatmap, axis)) for axis in axes
        ]
    # the colour emoji font drew 🤗: saturated colour in its chip and on both axes, and none
    # where "the" stands instead
    with_emoji, without = colour[TEXT], colour[TEXT.replace(EMOJI, "the")]
    assert with_emoji[:2] == [0, 0] and without[:3] == [0, 0, 0]
    assert with_emoji[2] > 30 and min(with_emoji[3:]) > 30, with_emoji
    assert max(without[3:]) < 5, without
