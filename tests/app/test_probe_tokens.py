"""Tokens look like what they are, and nothing on screen is stale: [MASK] and unknown chips by
id, truncation shown in the strip, the hover read-out cleared by a new result, a selection
carried to another model by character position, status messages that agree with the current
model, and a failed probe marking the old result out of date."""

from __future__ import annotations

import pytest
import torch

from app.theme import token_colors, token_pens
from tests.app.helpers import WAIT_MS, probe_and_wait, start_and_wait, wait_idle
from tests.tiny_models import tiny_config, write_vocab


@pytest.fixture(scope="module")
def split_bert(tmp_path_factory):
    """A tiny BERT whose vocabulary lacks "lord": it reads "lo ##rd", one token more than the
    demo models, so token numbers after it differ."""
    from core.loaded_model import LoadedModel, build_model, save_model
    from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, wordpiece_from_vocab

    root = tmp_path_factory.mktemp("split")
    vocab = write_vocab(root / "vocab", "bert", 99)
    lines = vocab.read_text(encoding="utf-8").splitlines()
    lines[lines.index("lord")] = "lo"
    lines[max(i for i, line in enumerate(lines) if line.startswith("##"))] = "##rd"
    vocab.write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = SPECIAL_DEFAULTS["bert"]
    tokenizer = Tokenizer(wordpiece_from_vocab(vocab, True, special), special, 64, True)
    config = tiny_config("bert")
    torch.manual_seed(5)
    model = build_model(config)
    model.init_weights()
    model.eval()
    folder = root / "split-bert"
    save_model(LoadedModel(config, model, tokenizer, "split-bert"), folder)
    return folder


def test_mask_and_unknown_chips_are_styled_by_id(qtbot, window):
    analysis = start_and_wait(qtbot, window, "the [MASK] saw xyz .")
    strip = window.probe.strip
    result = analysis.result
    assert result.token_strings == ["[CLS]", "the", "[MASK]", "saw", "[UNK]", ".", "[SEP]"]
    assert strip.kinds == ["special", "text", "mask", "text", "unknown", "text", "special"]
    assert "mask token" in strip.describe(2)
    assert "word piece" not in strip.describe(2)
    assert strip.describe(4).startswith("#4 '[UNK]' (id ")
    assert "unknown to the vocabulary: 'xyz'" in strip.describe(4)
    # a [MASK] cannot be masked again
    menu = strip.menu_for(2)
    assert not next(a for a in menu.actions() if a.text().startswith("Mask")).isEnabled()
    # the heatmap axes colour them by id as well: [MASK] pink and bold, [UNK] red
    axis = window.probe.heatmap.plot.row_axis
    pens = token_pens(window.probe.heatmap.palette())
    assert axis._colors[2] == pens[3] and axis._bold[2]
    assert axis._colors[4] == token_colors(window.probe.heatmap.palette()).unknown
    # and the PCA draws the [MASK] with the [MASK] brush
    layers = window.probe.layers
    assert layers._groups.tolist() == [2, 0, 3, 0, 0, 0, 2]
    assert layers.scatters[3].opts["brush"].color() == pens[3]


def test_the_text_cut_by_truncation_is_shown_after_a_marker(qtbot, window):
    words = ["the", "king", "came", "to", "the", "city"] * 20  # 64 tokens allowed
    analysis = start_and_wait(qtbot, window, " ".join(words))
    assert analysis.result.truncated
    strip = window.probe.strip
    cut = words[62:]
    assert strip.dropped[0] == f"\u2702 cut: {len(cut)} more words"
    assert strip.dropped[1:] == [*cut[:40], "\u2026"]
    assert len(strip.rects) == len(strip.tokens) + len(strip.dropped)
    assert window.probe.status.text().startswith("64 tokens (truncated)")


def test_hover_read_out_is_cleared_by_a_new_result(qtbot, window):
    start_and_wait(qtbot, window)
    heatmap = window.probe.heatmap
    heatmap._on_hovered((1, 2))
    assert heatmap.readout.text().startswith("from #1 'the'")
    probe_and_wait(qtbot, window, "he saw the city .")
    assert heatmap.readout.text() == ""
    assert heatmap.toolTip() == ""


def test_selection_follows_its_characters_to_another_model(qtbot, window, split_bert):
    text = "the lord came to the city ."
    start_and_wait(qtbot, window, text)
    wait_idle(qtbot, window)
    strip, focus = window.probe.strip, window.probe.focus
    strip.select(3)  # 'came'
    assert focus.index == 3 and strip.tokens[3].text == "came"
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        window.state.open_folder(split_bert)
    result = blocker.args[0].result
    assert result.token_strings[:5] == ["[CLS]", "the", "lo", "##rd", "came"]
    assert strip.selected_index == 4 and focus.index == 4  # still 'came', not '##rd'
    assert "#4 'came'" in focus.title.text()


def test_status_messages_agree_with_the_current_model_and_time_out(qtbot, window):
    start_and_wait(qtbot, window)
    wait_idle(qtbot, window)  # the other demo has loaded in the background by now
    assert "albert" not in window.status.message.text()  # a quiet preload reports nothing
    window.status.show_message("loaded bert-mini")
    assert window.status.message_timer.isActive()
    window.status.message_timer.timeout.emit()
    assert window.status.message.text() == ""
    window.status.show_message("moved bert-mini to CPU")
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS):
        window.state.select("demo:albert-mini")
    assert "bert-mini" not in window.status.message.text()
    assert window.windowTitle() == "albert-mini"


def test_a_failed_probe_marks_the_previous_result_out_of_date(qtbot, window):
    start_and_wait(qtbot, window)
    probe = window.probe
    assert not probe.is_stale and probe.area.graphicsEffect() is None
    with qtbot.waitSignal(window.state.probe_failed, timeout=WAIT_MS):
        window.state.request_probe("   ")
    assert probe.is_stale
    assert "Out of date" in probe.stale_banner.text()
    assert "the lord came to the city ." in probe.stale_banner.text()
    assert probe.dimmer.isVisible() and probe.dimmer.geometry() == probe.area.rect()
    assert probe.area.graphicsEffect() is None  # no offscreen re-composition (it ghosted)
    probe_and_wait(qtbot, window, "he saw the city .")
    assert not probe.is_stale and not probe.dimmer.isVisible()


def test_the_out_of_date_panels_are_one_clean_dimmed_copy(qtbot, window):
    """Every pixel of the dimmed panels is the undimmed pixel under one translucent sheet:
    no offset second copy (an empty sentence + Enter drew two, every time)."""
    start_and_wait(qtbot, window)
    probe = window.probe
    with qtbot.waitSignal(window.state.probe_failed, timeout=WAIT_MS):
        window.state.request_probe("")

    def laid_out_below_the_banner() -> bool:
        banner = probe.stale_banner
        return (
            banner.isVisible()
            and probe.area.geometry().top() >= banner.geometry().bottom()
            and probe.dimmer.geometry() == probe.area.rect()
        )

    qtbot.waitUntil(laid_out_below_the_banner, timeout=WAIT_MS)
    dimmed = probe.area.grab().toImage()
    probe.dimmer.hide()
    clear = probe.area.grab().toImage()
    assert (dimmed.width(), dimmed.height()) == (clear.width(), clear.height())
    sheet = probe.dimmer.colour()
    a = sheet.alphaF()
    worst = 0.0
    for y in range(0, clear.height(), 7):
        for x in range(0, clear.width(), 7):
            before, after = clear.pixelColor(x, y), dimmed.pixelColor(x, y)
            for channel in ("red", "green", "blue"):
                want = getattr(before, channel)() * (1 - a) + getattr(sheet, channel)() * a
                worst = max(worst, abs(getattr(after, channel)() - want))
    assert worst <= 3  # rounding only
