"""The PDF of a postal letter: address block in the window position, reference, text, the half.

fpdf2's core fonts speak Latin-1, which covers Italian; anything else is replaced so a
foreign address can never stop a letter from printing.
"""

from __future__ import annotations

from fpdf import FPDF

from broker.outbox.model import Letter


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(letter: Letter) -> bytes:
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.set_title("Istituto - PIN")
    pdf.set_font("Helvetica", size=11)
    # Window envelope (DL, right window): the address block at 110 mm from the left.
    pdf.set_xy(110, 50)
    for line in letter.address_lines:
        pdf.set_x(110)
        pdf.cell(0, 5.5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(20, 95)
    pdf.set_font("Helvetica", style="B", size=11)
    pdf.cell(0, 6, _latin1(f"Pratica / Practice: {letter.reference}"), new_x="LMARGIN",
             new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    for paragraph in letter.paragraphs:
        pdf.multi_cell(0, 5.5, _latin1(paragraph), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    if letter.highlight:
        pdf.ln(2)
        pdf.set_font("Courier", style="B", size=22)
        pdf.cell(0, 12, _latin1(" ".join(letter.highlight)), align="C", new_x="LMARGIN",
                 new_y="NEXT")
    return bytes(pdf.output())
