"""The content model as data: schema types and fields, their JSON form, names, content-rule patterns,
and where references may lead. Pure Python: no SQL, no I/O.
"""
