"""Hand-built XLSX files for reader tests: cell kinds openpyxl cannot write (cached formulas)."""

import io
import zipfile
from collections.abc import Sequence

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
# Style 1 shows a date (built-in format 14), style 2 a date and time (built-in format 22).
STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="{MAIN}">
<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="1"><fill><patternFill patternType="none"/></fill></fills>
<borders count="1"><border/></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="3">
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="22" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
</cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""


def sheet_xml(rows: str, prologue: str = "", dimension: str = "") -> str:
    """A worksheet part whose `<sheetData>` holds `rows` (raw `<row>` elements)."""
    dimension_element = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prologue}'
        f'<worksheet xmlns="{MAIN}">{dimension_element}<sheetData>{rows}</sheetData></worksheet>'
    )


def workbook_bytes(sheets: Sequence[tuple[str, str]], shared_strings: Sequence[str] = ()) -> bytes:
    """An XLSX whose worksheets, in workbook order, are `(name, sheet part XML)`.

    Sheet parts are stored in reverse file order (the first sheet is the highest-numbered part),
    so a reader that follows file order instead of workbook order is caught.
    """
    count = len(sheets)
    parts = {
        f"xl/worksheets/sheet{count - index}.xml": xml for index, (_, xml) in enumerate(sheets)
    }
    overrides = "".join(
        f'<Override PartName="/{part}" ContentType="{SHEET_TYPE}"/>' for part in parts
    )
    sheet_list = "".join(
        f'<sheet name="{name}" sheetId="{index + 1}" r:id="rIdSheet{index}"/>'
        for index, (name, _) in enumerate(sheets)
    )
    sheet_rels = "".join(
        f'<Relationship Id="rIdSheet{index}" Type="{REL}/worksheet" '
        f'Target="worksheets/sheet{count - index}.xml"/>'
        for index in range(count)
    )
    strings = "".join(f"<si><t>{text}</t></si>" for text in shared_strings)
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            f"{overrides}</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL}">'
            f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{REL}">'
            f"<sheets>{sheet_list}</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL}">'
            f"{sheet_rels}"
            f'<Relationship Id="rIdStyles" Type="{REL}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rIdStrings" Type="{REL}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/styles.xml": STYLES,
        "xl/sharedStrings.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}" '
            f'count="{len(shared_strings)}" uniqueCount="{len(shared_strings)}">{strings}</sst>'
        ),
        **parts,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()
