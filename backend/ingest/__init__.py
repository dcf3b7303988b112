"""Reading preference datasets: JSONL (optionally gzipped), JSON, CSV/TSV, Parquet and Arrow files
in five record schemas, validated row by row into pairs within size limits.

Shared by the API's upload and the `prefaudit score` command; every problem raises
`errors.PairFormatError` naming the row (1-based, as a user counts them in the file) and column.
`formats` tells a file's format, `text_formats` / `arrow_formats` read its records, `mapping`
renames columns, `parsing` / `schema_kinds` make pairs, `reading` ties them together for a file,
`preview` shows an upload's first pairs, `writing` writes pairs back out.
"""
