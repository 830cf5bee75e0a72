"""Files built to hurt a server that reads them: the corpus of the hostile-upload tests.

Each builder returns the bytes of one file. The workbooks start from a real one written by
openpyxl, with one part replaced, so everything but the attack is a valid .xlsx.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable

import openpyxl

HEADER = "Name,RT,Volume,Log P,Anchor"
ROW = "GD1(36:1;O2),9.1,1000,1.5,T"
SHEET = "xl/worksheets/sheet1.xml"
_SHEET_START = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
_SHEET_END = "</sheetData></worksheet>"


def rows_csv(n_rows: int) -> bytes:
    return (HEADER + "\n" + (ROW + "\n") * n_rows).encode()


def wide_csv(extra_columns: int, n_rows: int = 3) -> bytes:
    header = HEADER + "".join(f",sample {i}" for i in range(extra_columns))
    row = ROW + ",1" * extra_columns
    return (header + "\n" + (row + "\n") * n_rows).encode()


def long_cell_csv(characters: int) -> bytes:
    return (HEADER + ",Comment\n" + ROW + ",x\n" + ROW + "," + "y" * characters + "\n").encode()


def hostile_text_csv(script: str, formula: str) -> bytes:
    """A valid table whose extra column holds markup and a spreadsheet formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*HEADER.split(","), "Comment"])
    for i in range(8):
        writer.writerow([f"GD1({34 + i}:1;O2)", 7 + 0.6 * i, 1000, 0.5 * i, "T", script if i % 2 else formula])
    return out.getvalue().encode()


def _cell(text: str) -> str:
    return f'<c t="inlineStr"><is><t>{text}</t></is></c>'


def _row(cells: Iterable[str]) -> str:
    return "<row>" + "".join(map(_cell, cells)) + "</row>"


def workbook(sheet_xml_chunks: Iterable[bytes] | None = None) -> bytes:
    """A valid workbook of the sample's five columns; with chunks, its sheet replaced by them."""
    book = openpyxl.Workbook()
    book.active.append(HEADER.split(","))
    book.active.append(["GD1(36:1;O2)", 9.1, 1000, 1.5, "T"])
    plain = io.BytesIO()
    book.save(plain)
    if sheet_xml_chunks is None:
        return plain.getvalue()
    source = zipfile.ZipFile(io.BytesIO(plain.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            if member.filename == SHEET:
                with target.open(SHEET, "w", force_zip64=True) as sheet:
                    for chunk in sheet_xml_chunks:
                        sheet.write(chunk)
            else:
                target.writestr(member, source.read(member.filename))
    return out.getvalue()


def zip_bomb_xlsx(inflated_mb: int) -> bytes:
    """A workbook a few hundred KB long whose sheet inflates to `inflated_mb` MB."""
    row = _row(["GD1(36:1;O2)", "9.1", "1000", "1.5", "T"]).encode()
    block = row * (1024 * 1024 // len(row) + 1)

    def chunks():
        yield _SHEET_START.encode() + _row(HEADER.split(",")).encode()
        for _ in range(inflated_mb):
            yield block
        yield _SHEET_END.encode()

    return workbook(chunks())


def entity_expansion_xlsx(levels: int = 9) -> bytes:
    """The "billion laughs": ten entities, each ten of the one before, in one cell."""
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels + 1)]
    doctype = f'<?xml version="1.0"?><!DOCTYPE worksheet [{"".join(entities)}]>'
    sheet = doctype + _SHEET_START + _row(HEADER.split(",")) + _row([f"&lol{levels};", "9.1", "1", "1", "T"])
    return workbook([(sheet + _SHEET_END).encode()])


def long_cell_xlsx(characters: int) -> bytes:
    cells = ["GD1(36:1;O2)", "9.1", "1", "1", "T", "y" * characters]
    sheet = _SHEET_START + _row([*HEADER.split(","), "Comment"]) + _row(cells)
    return workbook([(sheet + _SHEET_END).encode()])


def padded_xlsx() -> bytes:
    """A legitimate workbook whose sheet declares 16,384 columns but fills five."""
    sheet = (
        _SHEET_START.replace("<sheetData>", '<dimension ref="A1:XFD3"/><sheetData>')
        + _row(HEADER.split(","))
        + _row(["GD1(36:1;O2)", "9.1", "1000", "1.5", "T"])
        + _row(["GD1(34:1;O2)", "8.1", "1000", "0.5", "F"])
        + _SHEET_END
    )
    return workbook([sheet.encode()])
