"""The contact / about panel: project contact, licences and the model card.

The paper's GUI had a "contact information" toggle; here it also carries what
a reader must know about the model: its training data, honest metrics and
that the default model may not be used commercially (its LiTS training data
are CC BY-NC-SA 4.0).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping

from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from liverseg_studio import __version__

CONTACT_HTML = """
<h2>LiverSeg Studio {version}</h2>
<p>Liver and liver-tumour segmentation of abdominal CT with a ResNet-34 U-Net, offline on the CPU.
Based on the paper <i>Deep Learning for Liver Segmentation</i>.</p>
<h3>Contact</h3>
<p>LiverSeg Studio founding engineers &mdash; report problems through the project's issue tracker
and attach the output of <code>liverseg info</code> and <code>liverseg plugins</code>.
No data ever leaves this computer: the studio makes no network calls.</p>
<h3>Licence</h3>
<p>Code: MIT licence. The default model: <b>CC BY-NC-SA 4.0</b> because of its LiTS training data
&mdash; <b>non-commercial use only</b>. The sample case (LiTS case 117) is CC BY-NC-SA 4.0 and is never
used for training or model selection.</p>
<p><b>Not a medical device.</b> Research use only; every segmentation must be reviewed by a qualified reader.</p>
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{html.escape(str(k))}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return html.escape(str(value))


def _table(data: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td style='color:#9aa3b2;padding-right:10px;vertical-align:top'>{html.escape(str(k))}</td>"
        f"<td>{_fmt(v)}</td></tr>"
        for k, v in data.items()
    )
    return f"<table cellspacing='2'>{rows}</table>"


def model_card_html(model_dir: Path | None, backend: str = "", needs_model: bool = True) -> str:
    """HTML for the model card of ``model_dir`` (or why there is none)."""
    if not needs_model:
        return (
            f"<h3>Model</h3><p>The <b>{html.escape(backend)}</b> backend needs no trained model "
            "(a classical baseline), so there is no model card.</p>"
        )
    if model_dir is None:
        return (
            "<h3>Model card</h3><p>The default model (<code>resources/models/default</code>) is not installed. "
            "Choose a model folder in the segmentation panel.</p>"
        )
    try:
        from liverseg_studio.core.modelcard import read_card

        card = read_card(model_dir)
    except Exception as exc:  # noqa: BLE001 - shown, not raised
        return f"<h3>Model card</h3><p>Cannot read the model card of {html.escape(str(model_dir))}: {html.escape(str(exc))}</p>"
    parts = [
        f"<h3>Model card: {html.escape(card.name)} {html.escape(card.version)}</h3>",
        f"<p>Folder: <code>{html.escape(str(model_dir))}</code><br>"
        f"Input {card.input_size} px · classes {html.escape(', '.join(card.classes))} · "
        f"licence <b>{html.escape(card.licence or 'not stated')}</b></p>",
    ]
    if card.licence and "NC" in card.licence.upper():
        parts.append("<p><b>Non-commercial use only</b> (licence of the training data).</p>")
    if card.training:
        parts.append("<h4>Training data</h4>" + _table(card.training))
    if card.metrics:
        parts.append("<h4>Metrics (held-out data)</h4>" + _table(card.metrics))
    else:
        parts.append("<p>The card reports no metrics.</p>")
    if card.files:
        parts.append(
            "<h4>Files</h4>"
            + _table({k: f"{v.get('path', '')} (sha256 {str(v.get('sha256', ''))[:12]}…)" for k, v in card.files.items()})
        )
    return "".join(parts)


class AboutPanel(QWidget):
    """Contact, licence and model card (toggled from the toolbar / F1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)  # offline: never open the network
        lay.addWidget(self.browser)
        self._model_html = ""
        self._render()

    def set_model(self, model_dir: Path | None, backend: str = "", needs_model: bool = True) -> None:
        self._model_html = model_card_html(model_dir, backend, needs_model)
        self._render()

    def _render(self) -> None:
        self.browser.setHtml(CONTACT_HTML.format(version=html.escape(__version__)) + self._model_html)

    def text(self) -> str:
        return self.browser.toPlainText()
