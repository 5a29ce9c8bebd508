"""Reading a spreadsheet someone hands us (staff lists, duty rosters) without trusting it.

An XLSX file is a zip of XML: a few kilobytes can declare a sheet of a million rows (openpyxl pads
every row up to the declared dimension) or inflate to gigabytes (a zip bomb). So the uncompressed
size is checked before openpyxl opens it, the declared dimension is ignored, and reading stops at
a row and column limit."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_COLUMNS = 40


class SheetRefused(ValueError):
    """The file is not a spreadsheet we read; the message says why (English, for the command line)."""


def xlsx_rows(file: Path, *, max_rows: int, max_columns: int = MAX_COLUMNS) -> list[list[Any]]:
    """The first sheet's rows (cell values, at most `max_columns` each), at most `max_rows`."""
    try:
        with zipfile.ZipFile(file) as archive:
            inflated = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile:
        raise SheetRefused(f"{file}: not an XLSX file") from None
    if inflated > MAX_UNCOMPRESSED_BYTES:
        raise SheetRefused(f"{file}: unpacks to {inflated} bytes, more than {MAX_UNCOMPRESSED_BYTES}")
    from openpyxl import load_workbook

    book = load_workbook(file, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # never trust the declared size: read what is there
        rows: list[list[Any]] = []
        for row in sheet.iter_rows(values_only=True, max_col=max_columns):
            if len(rows) == max_rows:
                raise SheetRefused(f"{file}: more than {max_rows} rows")
            rows.append(list(row))
        return rows
    finally:
        book.close()
