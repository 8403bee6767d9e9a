"""Content in SQL: documents and their lifecycle, versions, the content hash, validation, references
and back-references, singletons, schedules, the live content model and the `where` compiler.
"""
