"""The weekly review report: figures from the warehouse, charts, one self-contained HTML file."""
