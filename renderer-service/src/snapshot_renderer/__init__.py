"""Room Snapshots renderer: consumes render jobs, caches and renders PDFs with WeasyPrint."""
