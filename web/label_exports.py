"""The print shop's files for a label batch, shared by the API and the enterprise portal.

The CSV is streamed row by row from the database (a batch of 100,000 labels is
never held in memory); the PDF is rendered for at most ``LABEL_PDF_MAX_PAGES``
pages per request, chosen with ``?page=3`` or ``?page=3-10``.
"""

import io
import re

from flask import Response, current_app, request, send_file, stream_with_context

from engine import labels
from engine.errors import N_, ValidationFailed

PAGE_RANGE = re.compile(r"^\s*(\d{1,7})\s*(?:-\s*(\d{1,7}))?\s*$")
BAD_PAGES = N_("应为页码或页码范围，如 3 或 3-10")
TOO_MANY_PAGES = N_("一次导出的页数超过上限，请指定较小的页码范围")


def csv_response(batch):
    """``serial,url`` for every label of the batch, streamed."""
    def rows():
        # Serials are digits and URLs are upper-case letters, digits and ":/.": no field
        # ever needs CSV quoting, so lines are joined directly, 5,000 to a chunk.
        yield "serial,url\n"
        lines = []
        for serial, url in labels.iter_batch_urls(batch):
            lines.append(f"{serial:012d},{url}\n")
            if len(lines) == 5000:
                yield "".join(lines)
                lines = []
        yield "".join(lines)

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f"attachment; filename=label-batch-{batch.id}-codes.csv"})


def page_range(batch):
    """The pages a PDF export asks for, checked against the batch and the per-request cap."""
    total = labels.batch_page_count(batch)
    limit = current_app.config["LABEL_PDF_MAX_PAGES"]
    raw = request.args.get("page")
    if raw:
        match = PAGE_RANGE.match(raw)
        if match is None:
            raise ValidationFailed("页码无效", fields={"page": [BAD_PAGES]}, pages=total)
        first = int(match.group(1))
        last = int(match.group(2) or first)
    else:
        first, last = 1, total
    if last - first + 1 > limit:
        raise ValidationFailed("导出页数过多", fields={"page": [TOO_MANY_PAGES]}, max=limit,
                               pages=total)
    return first, last


def pdf_response(batch):
    first, last = page_range(batch)
    out = io.BytesIO()
    labels.render_batch_pdf(batch, out, first, last)
    out.seek(0)
    suffix = f"p{first}" if first == last else f"p{first}-{last}"
    return send_file(out, mimetype="application/pdf", as_attachment=True,
                     download_name=f"label-batch-{batch.id}-{suffix}.pdf")
