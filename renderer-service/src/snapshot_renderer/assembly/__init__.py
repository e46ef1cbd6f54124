"""Assembly of rendered pieces into one PDF (issue 11): merge at the seams (``merge``), one set
of font subset tags (``fonts``), page numbers and running header (``stamp``), one outline
(``outline``), document metadata and deterministic bytes (``document``).

Not used by the job path yet (issue 11, first landing).
"""
