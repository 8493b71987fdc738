"""Reading policy files (Markdown, text, HTML, DOCX, PDF) into blocks, and blocks into clauses."""
