"""Sheets of label QR codes as a PDF for the print shop (A4, 40 labels a page, 200 dpi).

Rendering happens only here, on demand, a range of pages at a time: issuing a
batch never makes an image. Each QR code is drawn from its module matrix as a
1-bit image, and Pillow writes the pages as a multi-page PDF (CCITT G4
compressed, so a page is a few tens of kilobytes).
"""

import logging

import qrcode
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

DPI = 200
PAGE_SIZE = (1654, 2339)            # A4 at 200 dpi
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 60, 110, 50
COLUMNS, ROWS = 5, 8
LABELS_PER_PAGE = COLUMNS * ROWS
MODULE_PX = 5                       # a version-6 code with its quiet zone: 49 x 5 = 245 px
# Every one of the eight masks gives a valid code that readers decode; choosing the
# "best" by the standard's penalty score costs seven times as long in pure Python.
MASK_PATTERN = 0


def page_count(label_count):
    return max(1, -(-label_count // LABELS_PER_PAGE))


def qr_matrix(text):
    """The module matrix (quiet zone included) of ``text`` at error level M."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4,
                         mask_pattern=MASK_PATTERN)
    code.add_data(text, optimize=0)
    code.make(fit=True)
    return code.version, code.get_matrix()


def qr_image(text, module_px=MODULE_PX):
    _version, matrix = qr_matrix(text)
    size = len(matrix)
    image = Image.new("1", (size, size), 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    return image.resize((size * module_px, size * module_px), Image.Resampling.NEAREST)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):    # a Pillow built without FreeType
        return ImageFont.load_default()


def _page(labels, heading):
    page = Image.new("1", PAGE_SIZE, 1)
    draw = ImageDraw.Draw(page)
    draw.text((MARGIN_X, 40), heading, font=_font(28), fill=0)
    cell_w = (PAGE_SIZE[0] - 2 * MARGIN_X) // COLUMNS
    cell_h = (PAGE_SIZE[1] - MARGIN_TOP - MARGIN_BOTTOM) // ROWS
    small = _font(20)
    for index, (serial_text, url) in enumerate(labels):
        x = MARGIN_X + (index % COLUMNS) * cell_w
        y = MARGIN_TOP + (index // COLUMNS) * cell_h
        image = qr_image(url)
        page.paste(image, (x + (cell_w - image.width) // 2, y))
        draw.text((x + (cell_w - image.width) // 2 + 20, y + image.height), serial_text,
                  font=small, fill=0)
    return page


def render_pdf(labels, out, title, first_page=1, total_pages=None):
    """Write the labels ((serial text, URL) in order) as PDF pages to the binary stream ``out``.

    ``title`` heads every page (ASCII: the built-in font has no Chinese glyphs), followed
    by the page number counted from ``first_page`` out of ``total_pages``.
    """
    pages, chunk = [], []
    number = first_page
    for label in labels:
        chunk.append(label)
        if len(chunk) == LABELS_PER_PAGE:
            pages.append(_page(chunk, f"{title}  p. {number}/{total_pages or '?'}"))
            chunk, number = [], number + 1
    if chunk or not pages:
        pages.append(_page(chunk, f"{title}  p. {number}/{total_pages or '?'}"))
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=DPI,
                  title=title, creator="Yingjiang brand office")
    logger.info("rendered %s label pages for %s", len(pages), title)
    return len(pages)
